/**
 * The Redis store: several relay nodes behind one address share one Redis (DESIGN.md §3,
 * issue 5 §8). Each channel is a Redis Stream whose entry ids are the relay's seqs; membership,
 * cursors, capabilities, nonces, uploads and blobs live in hashes, sets and sorted sets. Every
 * state change is one Lua script (./redis-scripts.ts explains the key layout and why the seq stays
 * dense and monotonic per channel across nodes). Contracts: ./types.ts.
 *
 * Cross-node push: the append script PUBLISHes each event on one pub/sub channel; every store
 * instance subscribes on its own connection and calls its listeners, so a WebSocket on node B
 * gets an event posted on node A. The local node hears its own events the same way, which keeps
 * the per-channel order of notifications equal to the seq order on every node.
 *
 * Durability: Redis replies to a write only after its AOF is fsynced when it runs with
 * `appendonly yes` and `appendfsync always`; the store checks that at connect and warns loudly
 * otherwise. Writes are never re-sent by the client after a reconnect
 * (`autoResendUnfulfilledCommands: false`): a script that ran but whose reply was lost must not
 * run twice (that would append a packet twice); the caller sees an error and may retry with a
 * postId, which is idempotent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BlobHash, CapabilityKind, ChannelId, ChannelKind, MemberInfo, MemberKey, RelayEvent } from '../../shared/relay-api.js';
import {
  ACK_CURSOR,
  APPEND,
  APPEND_UPLOAD_CHUNK,
  CHECK_CAPABILITY,
  DELETE_CHANNEL_IF_EMPTY,
  FINALIZE_UPLOAD,
  REVOKE_CAPABILITY,
  CREATE_CHANNEL,
  CREATE_UPLOAD,
  DELETE_PUSH,
  JOIN,
  PUT_CAPABILITY,
  PUT_FETCH_TOKEN,
  PUT_PUSH,
  REMOVE_MEMBER,
  REVOKE_FETCH_TOKENS,
  SET_ONLINE,
  USE_FETCH_TOKEN,
  FEED_MAX_ENTRIES,
  SWEEP_EXPIRED,
  TRIM,
} from './redis-scripts.js';
import {
  eventSizeBytes,
  type ChannelRecord,
  type EventListener,
  type NewEvent,
  type PushSubscriptionRecord,
  type PushTarget,
  type RelayStore,
  type VapidKeys,
  type StoreRefusal,
  type StoreResult,
  type UploadRecord,
} from './types.js';

/** Stream entries read per XRANGE inside the trim script (bounds one reply's size). */
const TRIM_SCAN_BATCH = 256;
/** Events one trim script removes at most: bounds how long one script blocks Redis; trim loops. */
const TRIM_MAX_EVENTS_PER_SCRIPT = 5_000;
/** Channel ids per SSCAN page during a sweep. */
const SWEEP_SCAN_COUNT = 500;
/** Expired records deleted per script call during a sweep (bounded work per call). */
const SWEEP_EXPIRED_BATCH = 1_000;
/** Feed entries read per round while catching up after a pub/sub reconnect. */
const FEED_CATCH_UP_BATCH = 200;
/** Events per XRANGE page of a read (a byte cap usually ends the read within the first page). */
const READ_PAGE_EVENTS = 64;
/** How often a node refreshes its heartbeat key, and how long the key lives without refresh. */
const NODE_HEARTBEAT_MS = 10_000;
const NODE_HEARTBEAT_TTL_MS = 3 * NODE_HEARTBEAT_MS;
/** Random bytes of a node id (presence entries name their node). */
const NODE_ID_BYTES = 9;
/** How long connecting to Redis may take before the store gives up (startup fails loudly). */
const CONNECT_TIMEOUT_MS = 10_000;

export interface RedisStoreOptions {
  /** redis://host:port/db */
  readonly url: string;
  /** Key prefix: relays sharing a prefix share channels; another prefix is another relay. */
  readonly prefix?: string;
  /** Called with a human message for operational warnings (non-durable Redis config, lost pub/sub). */
  readonly warn?: (message: string) => void;
}

/** One Lua script, run by SHA with a fallback to EVAL when Redis has not cached it yet. */
class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      // EVAL caches the script; a NOSCRIPT reply means nothing ran, so retrying is safe.
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

const scripts = {
  createChannel: new LuaScript(CREATE_CHANNEL),
  append: new LuaScript(APPEND),
  join: new LuaScript(JOIN),
  removeMember: new LuaScript(REMOVE_MEMBER),
  ackCursor: new LuaScript(ACK_CURSOR),
  trim: new LuaScript(TRIM),
  putCapability: new LuaScript(PUT_CAPABILITY),
  checkCapability: new LuaScript(CHECK_CAPABILITY),
  revokeCapability: new LuaScript(REVOKE_CAPABILITY),
  deleteChannelIfEmpty: new LuaScript(DELETE_CHANNEL_IF_EMPTY),
  createUpload: new LuaScript(CREATE_UPLOAD),
  appendUploadChunk: new LuaScript(APPEND_UPLOAD_CHUNK),
  finalizeUpload: new LuaScript(FINALIZE_UPLOAD),
  sweepExpired: new LuaScript(SWEEP_EXPIRED),
  putFetchToken: new LuaScript(PUT_FETCH_TOKEN),
  useFetchToken: new LuaScript(USE_FETCH_TOKEN),
  revokeFetchTokens: new LuaScript(REVOKE_FETCH_TOKENS),
  putPush: new LuaScript(PUT_PUSH),
  deletePush: new LuaScript(DELETE_PUSH),
  setOnline: new LuaScript(SET_ONLINE),
};

/** The JSON stored for an event: everything but seq (the stream entry id is the seq). */
function eventData(event: NewEvent, timeMs: number): string {
  switch (event.type) {
    case 'member-joined':
      return JSON.stringify({ type: event.type, timeMs, member: event.member });
    case 'member-left':
      return JSON.stringify({ type: event.type, timeMs, member: event.member, by: event.by });
    case 'packet':
      return JSON.stringify({ type: event.type, timeMs, author: event.author, packet: event.packet, ...(event.wake === true ? { wake: true } : {}) });
  }
}

/** Rebuilds an event from its stored JSON; anything else is a corrupt store (a bug: crash). */
function toEvent(seq: number, data: string): RelayEvent {
  const parsed = JSON.parse(data) as Record<string, unknown>;
  const timeMs = parsed.timeMs;
  if (typeof timeMs !== 'number') throw new Error(`corrupt event ${seq}: no timeMs`);
  switch (parsed.type) {
    case 'member-joined':
      return { seq, timeMs, type: 'member-joined', member: parsed.member as MemberKey };
    case 'member-left':
      return { seq, timeMs, type: 'member-left', member: parsed.member as MemberKey, by: parsed.by as MemberKey };
    case 'packet':
      return {
        seq,
        timeMs,
        type: 'packet',
        author: (parsed.author ?? null) as MemberKey | null,
        packet: String(parsed.packet),
        ...(parsed.wake === true ? { wake: true as const } : {}),
      };
    default:
      throw new Error(`corrupt event ${seq}: type ${String(parsed.type)}`);
  }
}

/** The seq of a stream entry id "<seq>-0". */
function seqOf(entryId: string): number {
  return Number.parseInt(entryId, 10);
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** True when stream id `a` ("<ms>-<n>") comes after `b`. */
function feedIdAfter(a: string, b: string): boolean {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs > bMs || (aMs === bMs && aSeq > bSeq);
}

function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new Error(`unexpected Redis reply ${String(reply)}`);
  return reply;
}

function refusal<T>(code: unknown): StoreResult<T> {
  return { ok: false, code: String(code) as StoreRefusal };
}

/**
 * Connects the command and pub/sub connections, checks durability, subscribes to the event channel,
 * and returns the store. Rejects if Redis is unreachable.
 */
export async function openRedisStore(options: RedisStoreOptions): Promise<RelayStore> {
  const prefix = options.prefix ?? 'covey:';
  const warn = options.warn ?? ((message: string) => console.warn(`[relay redis] ${message}`));
  const connectionOptions = {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // See the module comment: a write whose reply was lost must not be executed twice.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
  };
  const redis = new Redis(options.url, connectionOptions);
  const subscriber = new Redis(options.url, { ...connectionOptions, autoResendUnfulfilledCommands: true });
  // ioredis emits 'error' on every failed reconnect; without a handler Node would crash the relay.
  redis.on('error', (error: Error) => warn(`command connection: ${error.message}`));
  subscriber.on('error', (error: Error) => warn(`pub/sub connection: ${error.message}`));
  await Promise.all([redis.connect(), subscriber.connect()]);

  await checkDurability(redis, warn);

  const key = {
    channel: (id: string) => `${prefix}ch:${id}`,
    events: (id: string) => `${prefix}ev:${id}`,
    members: (id: string) => `${prefix}mem:${id}`,
    cursors: (id: string) => `${prefix}cur:${id}`,
    posts: (id: string) => `${prefix}post:${id}`,
    channels: `${prefix}channels`,
    stats: `${prefix}stats`,
    capability: (hash: string) => `${prefix}cap:${hash}`,
    nonces: `${prefix}nonces`,
    upload: (hash: string) => `${prefix}up:${hash}`,
    uploadData: (hash: string) => `${prefix}upd:${hash}`,
    blob: (sha: string) => `${prefix}blob:${sha}`,
    blobData: (sha: string) => `${prefix}blobd:${sha}`,
    blobCapability: (hash: string) => `${prefix}blobcap:${hash}`,
    expiry: (kind: 'cap' | 'up' | 'blob' | 'blobcap') => `${prefix}exp:${kind}`,
    pubsub: `${prefix}events`,
    feed: `${prefix}feed`,
    fetchTokens: (id: string) => `${prefix}ft:${id}`,
    memberFetchTokens: (id: string, member: string) => `${prefix}ftm:${id}:${member}`,
    push: (id: string) => `${prefix}push:${id}`,
    online: (id: string) => `${prefix}online:${id}`,
    node: (nodeId: string) => `${prefix}node:${nodeId}`,
    vapid: `${prefix}vapid`,
  };

  // Presence (setOnline) names this node; its heartbeat key says the node is alive, so the
  // presence a crashed node leaves behind is ignored once the key expires.
  const nodeId = randomBytes(NODE_ID_BYTES).toString('base64url');
  const heartbeat = (): Promise<unknown> => redis.set(key.node(nodeId), '1', 'PX', NODE_HEARTBEAT_TTL_MS);
  await heartbeat();
  const heartbeatTimer = setInterval(() => {
    heartbeat().catch((error: unknown) => warn(`node heartbeat failed: ${error instanceof Error ? error.message : String(error)}`));
  }, NODE_HEARTBEAT_MS);
  heartbeatTimer.unref();

  const listeners = new Set<EventListener>();
  let closed = false;

  const notify = (channelId: ChannelId, event: RelayEvent): void => {
    for (const listener of listeners) {
      try {
        listener(channelId, event);
      } catch {
        // Listeners must not throw (types.ts); one bad listener must not stop the others.
      }
    }
  };

  // The newest feed entry this node has notified: where a catch-up after a reconnect starts.
  const [newest] = (await redis.xrevrange(key.feed, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
  let lastFeedId = newest?.[0] ?? '0-0';

  subscriber.on('message', (_channel: string, message: string) => {
    let channelId: ChannelId;
    let event: RelayEvent;
    try {
      const parsed = JSON.parse(message) as { c: string; s: number; f: string; e: Record<string, unknown> };
      channelId = parsed.c as ChannelId;
      event = toEvent(parsed.s, JSON.stringify(parsed.e));
      if (feedIdAfter(parsed.f, lastFeedId)) lastFeedId = parsed.f;
    } catch (error) {
      warn(`ignored a malformed pub/sub message: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    notify(channelId, event);
  });

  /**
   * After the pub/sub connection comes back, notify what was published while it was down, from the
   * feed. Events may be notified twice (types.ts allows it; the push hub skips seqs it has sent).
   */
  let catchingUp = false;
  const catchUp = async (): Promise<void> => {
    if (catchingUp || closed) return;
    catchingUp = true;
    try {
      const [oldest] = (await redis.xrange(key.feed, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
      if (oldest !== undefined && lastFeedId !== '0-0' && feedIdAfter(oldest[0], lastFeedId)) {
        warn('pub/sub was down longer than the feed covers: some subscribers catch up only on their next event');
      }
      // Bounded: the feed holds about FEED_MAX_ENTRIES entries and each round moves past a batch.
      for (let round = 0; round <= FEED_MAX_ENTRIES / FEED_CATCH_UP_BATCH + 1; round++) {
        const entries = (await redis.xrange(key.feed, `(${lastFeedId}`, '+', 'COUNT', FEED_CATCH_UP_BATCH)) as Array<[string, string[]]>;
        const events = await Promise.all(
          entries.map(async ([, fields]) => {
            const channelId = fieldOf(fields, 'c') as ChannelId;
            const seq = Number(fieldOf(fields, 's'));
            return { channelId, events: await readEntries(channelId, seq - 1, 1) };
          }),
        );
        for (const { channelId, events: [event] } of events) if (event !== undefined) notify(channelId, event);
        const last = entries.at(-1);
        if (last !== undefined && feedIdAfter(last[0], lastFeedId)) lastFeedId = last[0];
        if (entries.length < FEED_CATCH_UP_BATCH) return;
      }
    } catch (error) {
      warn(`catch-up after a pub/sub reconnect failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      catchingUp = false;
    }
  };
  // 'ready' fires again after every reconnect, just BEFORE ioredis resubscribes by itself. Reading
  // the feed then could miss what is published before the SUBSCRIBE lands, so subscribe first
  // (twice is harmless) and read the feed once Redis has confirmed it.
  subscriber.on('ready', () => {
    subscriber.subscribe(key.pubsub).then(
      () => catchUp(),
      (error: unknown) => warn(`resubscribe failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  });
  await subscriber.subscribe(key.pubsub);

  function checkOpen(): void {
    if (closed) throw new Error('redis store is closed');
  }

  /** The fields of the append script's shared tail: channel JSON, data, time, size. */
  function appendArgs(channelId: ChannelId, event: NewEvent, nowMs: number): [string, string, number, number] {
    return [JSON.stringify(channelId), eventData(event, nowMs), nowMs, eventSizeBytes(event)];
  }

  /**
   * Up to `limit` events after `afterSeq`, stopping before `maxBytes` (store/types.ts). Read in
   * pages of READ_PAGE_EVENTS so a byte-capped read never fetches hundreds of big packets.
   */
  async function readEntries(channelId: ChannelId, afterSeq: number, limit: number, maxBytes = Infinity): Promise<RelayEvent[]> {
    const events: RelayEvent[] = [];
    let bytes = 0;
    let from = Math.max(0, Math.floor(afterSeq));
    // Bounded: each page moves `from` forward or ends the loop.
    while (events.length < limit) {
      const count = Math.min(limit - events.length, READ_PAGE_EVENTS);
      const entries = (await redis.xrange(key.events(channelId), `${from + 1}-0`, '+', 'COUNT', count)) as Array<[string, string[]]>;
      for (const [id, fields] of entries) {
        const data = fieldOf(fields, 'd');
        if (data === undefined) throw new Error(`corrupt event ${id} in ${channelId}`);
        bytes += Number(fieldOf(fields, 'sz') ?? 0);
        if (bytes > maxBytes && events.length > 0) return events;
        events.push(toEvent(seqOf(id), data));
      }
      const last = events.at(-1);
      if (entries.length < count || last === undefined) return events;
      from = last.seq;
    }
    return events;
  }

  async function trimChannel(channelId: ChannelId, maxEventAgeMs: number, maxChannelBytes: number, nowMs: number): Promise<number> {
    let removed = 0;
    // Bounded: each round removes up to TRIM_MAX_EVENTS_PER_SCRIPT of a finite log, and stops when a round removes fewer.
    for (;;) {
      const count = Number(
        await scripts.trim.run(
          redis,
          [key.channel(channelId), key.events(channelId), key.cursors(channelId), key.posts(channelId), key.stats],
          [nowMs - maxEventAgeMs, maxChannelBytes, TRIM_SCAN_BATCH, TRIM_MAX_EVENTS_PER_SCRIPT],
        ),
      );
      removed += count;
      if (count < TRIM_MAX_EVENTS_PER_SCRIPT) return removed;
    }
  }

  async function sweepIndex(kind: 'cap' | 'up' | 'blob' | 'blobcap', keyPrefix: string, dataPrefix: string | undefined, nowMs: number): Promise<void> {
    for (;;) {
      const args: Array<string | number> = [nowMs, keyPrefix, SWEEP_EXPIRED_BATCH];
      if (dataPrefix !== undefined) args.push(dataPrefix);
      const count = Number(await scripts.sweepExpired.run(redis, [key.expiry(kind)], args));
      if (count < SWEEP_EXPIRED_BATCH) return;
    }
  }

  const store: RelayStore = {
    name: 'redis',

    async createChannel(channelId, kind, owner, nowMs) {
      checkOpen();
      const event = { type: 'member-joined', member: owner } as const;
      const [channelJson, data, , size] = appendArgs(channelId, event, nowMs);
      const seq = Number(
        await scripts.createChannel.run(
          redis,
          [
            key.channel(channelId),
            key.events(channelId),
            key.members(channelId),
            key.cursors(channelId),
            key.channels,
            key.stats,
            key.posts(channelId),
            key.feed,
          ],
          [channelJson, channelId, kind, owner, nowMs, data, size, key.pubsub],
        ),
      );
      return { seq, timeMs: nowMs, type: 'member-joined', member: owner };
    },

    async getChannel(channelId) {
      checkOpen();
      const [[channelError, fields], [membersError, memberCount]] = (await redis
        .multi()
        .hgetall(key.channel(channelId))
        .hlen(key.members(channelId))
        .exec()) as [[Error | null, Record<string, string>], [Error | null, number]];
      if (channelError !== null) throw channelError;
      if (membersError !== null) throw membersError;
      if (fields.head === undefined) return undefined;
      const record: ChannelRecord = {
        channelId,
        kind: fields.kind as ChannelKind,
        owner: fields.owner as MemberKey,
        createdAtMs: Number(fields.created),
        headSeq: Number(fields.head),
        firstSeq: Number(fields.first),
        storedBytes: Number(fields.bytes),
        memberCount,
        lastLeftSeq: Number(fields.left ?? 0),
      };
      return record;
    },

    async getMember(channelId, memberKey) {
      checkOpen();
      const [joined, cursor] = (await redis
        .multi()
        .hget(key.members(channelId), memberKey)
        .hget(key.cursors(channelId), memberKey)
        .exec()) as [[Error | null, string | null], [Error | null, string | null]];
      if (joined[0] !== null) throw joined[0];
      if (joined[1] === null) return undefined;
      return { key: memberKey, joinedSeq: Number(joined[1]), cursor: Number(cursor[1] ?? 0) };
    },

    async listMembers(channelId) {
      checkOpen();
      const [joined, cursors] = (await redis
        .multi()
        .hgetall(key.members(channelId))
        .hgetall(key.cursors(channelId))
        .exec()) as [[Error | null, Record<string, string>], [Error | null, Record<string, string>]];
      if (joined[0] !== null) throw joined[0];
      const members: MemberInfo[] = Object.entries(joined[1]).map(([memberKey, joinedSeq]) => ({
        key: memberKey as MemberKey,
        joinedSeq: Number(joinedSeq),
        cursor: Number(cursors[1][memberKey] ?? 0),
      }));
      return members.sort((a, b) => a.joinedSeq - b.joinedSeq);
    },

    async joinWithCapability(channelId, memberKey, capHash, nowMs) {
      checkOpen();
      const event = { type: 'member-joined', member: memberKey } as const;
      const [channelJson, data, , size] = appendArgs(channelId, event, nowMs);
      const reply = asArray(
        await scripts.join.run(
          redis,
          [
            key.channel(channelId),
            key.events(channelId),
            key.members(channelId),
            key.cursors(channelId),
            key.capability(capHash),
            key.stats,
            key.posts(channelId),
            key.feed,
          ],
          [channelJson, channelId, memberKey, nowMs, data, size, key.pubsub],
        ),
      );
      if (reply[0] === 'member') {
        return { ok: true, value: { member: { key: memberKey, joinedSeq: Number(reply[1]), cursor: Number(reply[2]) }, event: null } };
      }
      if (reply[0] !== 'joined') return refusal(reply[1]);
      const seq = Number(reply[1]);
      return {
        ok: true,
        value: { member: { key: memberKey, joinedSeq: seq, cursor: seq - 1 }, event: { seq, timeMs: nowMs, type: 'member-joined', member: memberKey } },
      };
    },

    async removeMember(channelId, actor, target, nowMs) {
      checkOpen();
      const event = { type: 'member-left', member: target, by: actor } as const;
      const [channelJson, data, timeMs, size] = appendArgs(channelId, event, nowMs);
      const reply = asArray(
        await scripts.removeMember.run(
          redis,
          [
            key.channel(channelId),
            key.events(channelId),
            key.members(channelId),
            key.cursors(channelId),
            key.stats,
            key.posts(channelId),
            key.fetchTokens(channelId),
            key.memberFetchTokens(channelId, target),
            key.push(channelId),
            key.online(channelId),
            key.channels,
            key.feed,
          ],
          [channelJson, actor, target, data, timeMs, size, key.pubsub],
        ),
      );
      if (reply[0] !== 'ok') return refusal(reply[1]);
      return { ok: true, value: { seq: Number(reply[1]), timeMs: nowMs, ...event } };
    },

    async appendEvent(channelId, event, nowMs, options) {
      checkOpen();
      const [channelJson, data, timeMs, size] = appendArgs(channelId, event, nowMs);
      const author = event.type === 'packet' ? event.author : null;
      // Idempotent posts are per (channel, author, postId), as in the SQLite store.
      const postField = options?.postId !== undefined && author !== null ? `${author}\n${options.postId}` : '';
      const capability = options?.capability;
      const keys = [key.channel(channelId), key.events(channelId), key.members(channelId), key.posts(channelId), key.stats];
      if (capability !== undefined) keys.push(key.capability(capability.hash));
      keys.push(key.feed);
      const reply = asArray(
        await scripts.append.run(redis, keys, [
          channelJson,
          data,
          timeMs,
          size,
          options?.asMember ?? '',
          postField,
          key.pubsub,
          options?.ifNoLeaveAfter ?? '',
          capability?.kind ?? '',
        ]),
      );
      if (reply[0] === 'dup') return { ok: true, value: { event: toEvent(Number(reply[1]), String(reply[2])), duplicate: true } };
      if (reply[0] !== 'ok') return refusal(reply[1]);
      return { ok: true, value: { event: toEvent(Number(reply[1]), data), duplicate: false } };
    },

    async readEvents(channelId, afterSeq, limit, maxBytes) {
      checkOpen();
      return await readEntries(channelId, afterSeq, limit, maxBytes);
    },

    async ackCursor(channelId, memberKey, seq) {
      checkOpen();
      const reply = await scripts.ackCursor.run(
        redis,
        [key.channel(channelId), key.members(channelId), key.cursors(channelId)],
        [memberKey, Math.floor(seq)],
      );
      return reply === null ? undefined : Number(reply);
    },

    async trim(channelId, policy, nowMs) {
      checkOpen();
      return await trimChannel(channelId, policy.maxEventAgeMs, policy.maxChannelBytes, nowMs);
    },

    async putCapability(record) {
      checkOpen();
      const done = await scripts.putCapability.run(
        redis,
        [key.capability(record.hash), key.expiry('cap'), key.members(record.channelId)],
        [record.hash, record.channelId, record.kind, record.expiresAtMs, record.usesLeft, record.creator],
      );
      return Number(done) === 1 ? { ok: true, value: undefined } : refusal('not-member');
    },

    async checkCapability(capHash, channelId, kind: CapabilityKind, nowMs) {
      checkOpen();
      return Number(await scripts.checkCapability.run(redis, [key.capability(capHash), key.members(channelId)], [channelId, kind, nowMs])) === 1;
    },

    async revokeCapability(capHash, channelId) {
      checkOpen();
      return Number(await scripts.revokeCapability.run(redis, [key.capability(capHash), key.expiry('cap')], [channelId, capHash]));
    },

    async useNonce(memberKey, nonce, expiresAtMs) {
      checkOpen();
      // One sorted set for all nonces: ZADD NX is atomic across nodes, and sweep drops by score.
      return (await redis.zadd(key.nonces, 'NX', expiresAtMs, `${memberKey}\n${nonce}`)) === 1;
    },

    async putFetchToken(record, maxPerMember, nowMs) {
      checkOpen();
      const done = await scripts.putFetchToken.run(
        redis,
        [key.members(record.channelId), key.fetchTokens(record.channelId), key.memberFetchTokens(record.channelId, record.member)],
        [record.member, record.hash, record.expiresAtMs, nowMs, maxPerMember],
      );
      return Number(done) === 1 ? { ok: true, value: undefined } : refusal('not-member');
    },

    async useFetchToken(hash, channelId, nowMs) {
      checkOpen();
      const reply = await scripts.useFetchToken.run(
        redis,
        [key.fetchTokens(channelId), key.members(channelId), key.cursors(channelId)],
        [hash, nowMs],
      );
      if (reply === null) return undefined;
      const [member, joinedSeq, cursor] = asArray(reply);
      return { key: String(member) as MemberKey, joinedSeq: Number(joinedSeq), cursor: Number(cursor) };
    },

    async revokeFetchTokens(channelId, member, hash) {
      checkOpen();
      return Number(
        await scripts.revokeFetchTokens.run(redis, [key.fetchTokens(channelId), key.memberFetchTokens(channelId, member)], [hash ?? '']),
      );
    },

    async putPushSubscription(channelId, member, subscription) {
      checkOpen();
      const json = JSON.stringify({ e: subscription.endpoint, p: subscription.p256dh, a: subscription.auth });
      return Number(await scripts.putPush.run(redis, [key.members(channelId), key.push(channelId)], [member, json])) === 1;
    },

    async deletePushSubscription(channelId, member, endpoint) {
      checkOpen();
      await scripts.deletePush.run(redis, [key.push(channelId)], [member, endpoint ?? '']);
    },

    async pushTargets(channelId) {
      checkOpen();
      const [[pushError, subscriptions], [onlineError, presence]] = (await redis
        .multi()
        .hgetall(key.push(channelId))
        .hgetall(key.online(channelId))
        .exec()) as [[Error | null, Record<string, string>], [Error | null, Record<string, string>]];
      if (pushError !== null) throw pushError;
      if (onlineError !== null) throw onlineError;
      if (Object.keys(subscriptions).length === 0) return [];
      // Presence counts only while its node's heartbeat lives.
      const entries = Object.keys(presence).map((field) => field.split('\n') as [string, string]);
      const nodes = [...new Set(entries.map(([, node]) => node))];
      const alive = new Set<string>();
      if (nodes.length > 0) {
        const beats = await redis.mget(...nodes.map((node) => key.node(node)));
        nodes.forEach((node, i) => {
          if (beats[i] !== null) alive.add(node);
        });
      }
      const onlineMembers = new Set(entries.filter(([, node]) => alive.has(node)).map(([member]) => member));
      return Object.entries(subscriptions).map(([member, json]): PushTarget => {
        const parsed = JSON.parse(json) as { e: string; p: string; a: string };
        const subscription: PushSubscriptionRecord = { endpoint: parsed.e, p256dh: parsed.p, auth: parsed.a };
        return { member: member as MemberKey, subscription, online: onlineMembers.has(member) };
      });
    },

    async setOnline(channelId, member, delta) {
      checkOpen();
      await scripts.setOnline.run(redis, [key.online(channelId)], [`${member}\n${nodeId}`, delta]);
    },

    async vapidKeys(candidate) {
      checkOpen();
      await redis.set(key.vapid, JSON.stringify(candidate), 'NX');
      const stored = await redis.get(key.vapid);
      if (stored === null) throw new Error('redis store lost its VAPID keys');
      return JSON.parse(stored) as VapidKeys;
    },

    async createUpload(record: UploadRecord) {
      checkOpen();
      await scripts.createUpload.run(
        redis,
        [key.upload(record.id), key.uploadData(record.id), key.expiry('up')],
        [record.id, record.channelId, record.sha256, record.size, record.expiresAtMs],
      );
    },

    async getUpload(id, nowMs) {
      checkOpen();
      const fields = await redis.hgetall(key.upload(id));
      if (fields.exp === undefined || Number(fields.exp) <= nowMs) return undefined;
      return {
        id,
        channelId: fields.channel as ChannelId,
        sha256: fields.sha as BlobHash,
        size: Number(fields.size),
        received: Number(fields.received),
        expiresAtMs: Number(fields.exp),
      };
    },

    async appendUploadChunk(id, offset, bytes, nowMs) {
      checkOpen();
      const reply = asArray(
        await scripts.appendUploadChunk.run(
          redis,
          [key.upload(id), key.uploadData(id)],
          [offset, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), nowMs],
        ),
      );
      if (reply[0] !== 'ok') return refusal(reply[1]);
      return { ok: true, value: Number(reply[1]) };
    },

    async readUploadRange(id, offset, maxBytes) {
      checkOpen();
      const [[existsError, exists], [rangeError, bytes]] = (await redis
        .multi()
        .exists(key.upload(id))
        .getrangeBuffer(key.uploadData(id), offset, offset + maxBytes - 1)
        .exec()) as [[Error | null, number], [Error | null, Buffer]];
      if (existsError !== null) throw existsError;
      if (rangeError !== null) throw rangeError;
      if (exists === 0) return undefined;
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },

    async deleteUpload(id) {
      checkOpen();
      await redis.multi().del(key.upload(id), key.uploadData(id)).zrem(key.expiry('up'), id).exec();
    },

    async finalizeUpload(id, sha256, readCapHash, expiresAtMs) {
      checkOpen();
      const done = await scripts.finalizeUpload.run(
        redis,
        [
          key.upload(id),
          key.uploadData(id),
          key.blob(sha256),
          key.blobData(sha256),
          key.blobCapability(readCapHash),
          key.expiry('blob'),
          key.expiry('blobcap'),
          key.expiry('up'),
        ],
        [sha256, readCapHash, expiresAtMs, id],
      );
      return Number(done) === 1;
    },

    async openBlob(readCapHash, nowMs) {
      checkOpen();
      const sha = await redis.hget(key.blobCapability(readCapHash), 'sha');
      if (sha === null) return undefined;
      // As in the SQLite store: the blob's own (possibly extended) expiry decides.
      const [[fieldsError, fields], [lengthError, length]] = (await redis
        .multi()
        .hmget(key.blob(sha), 'exp', 'size')
        .strlen(key.blobData(sha))
        .exec()) as [[Error | null, Array<string | null>], [Error | null, number]];
      if (fieldsError !== null) throw fieldsError;
      if (lengthError !== null) throw lengthError;
      const [exp, size] = fields;
      if (exp === null || exp === undefined || Number(exp) <= nowMs) return undefined;
      return { sha256: sha as BlobHash, size: size === null || size === undefined ? length : Number(size) };
    },

    async readBlobRange(sha256, offset, maxBytes) {
      checkOpen();
      const bytes = await redis.getrangeBuffer(key.blobData(sha256), offset, offset + maxBytes - 1);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },

    async sweep(policy, nowMs) {
      checkOpen();
      let removed = 0;
      let cursor = '0';
      // Bounded: SSCAN visits every channel once (ids added meanwhile may or may not be seen).
      do {
        const [next, ids] = await redis.sscan(key.channels, cursor, 'COUNT', SWEEP_SCAN_COUNT);
        cursor = next;
        // One page at a time, its trims pipelined on the connection (bounded by SWEEP_SCAN_COUNT-ish).
        const counts = await Promise.all(ids.map((id) => trimChannel(id as ChannelId, policy.maxEventAgeMs, policy.maxChannelBytes, nowMs)));
        for (const count of counts) removed += count;
        // Channels without members (left before the last leave deleted them).
        await Promise.all(
          ids.map((id) =>
            scripts.deleteChannelIfEmpty.run(
              redis,
              [
                key.channel(id),
                key.events(id),
                key.members(id),
                key.cursors(id),
                key.posts(id),
                key.fetchTokens(id),
                key.push(id),
                key.online(id),
                key.channels,
                key.stats,
              ],
              [id],
            ),
          ),
        );
      } while (cursor !== '0');
      await redis.zremrangebyscore(key.nonces, '-inf', nowMs);
      await sweepIndex('cap', `${prefix}cap:`, undefined, nowMs);
      await sweepIndex('up', `${prefix}up:`, `${prefix}upd:`, nowMs);
      await sweepIndex('blob', `${prefix}blob:`, `${prefix}blobd:`, nowMs);
      await sweepIndex('blobcap', `${prefix}blobcap:`, undefined, nowMs);
      return removed;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    async stats() {
      checkOpen();
      const [[channelsError, channels], [statsError, counts]] = (await redis
        .multi()
        .scard(key.channels)
        .hmget(key.stats, 'events', 'bytes')
        .exec()) as [[Error | null, number], [Error | null, Array<string | null>]];
      if (channelsError !== null) throw channelsError;
      if (statsError !== null) throw statsError;
      return { channels, events: Number(counts[0] ?? 0), bytes: Number(counts[1] ?? 0) };
    },

    async storageUsage() {
      checkOpen();
      const info = await redis.info('memory');
      const field = (name: string): number | undefined => {
        const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
        return match?.[1] === undefined ? undefined : Number(match[1]);
      };
      const used = field('used_memory');
      const limit = field('maxmemory');
      return { ...(used === undefined ? {} : { usedBytes: used }), ...(limit === undefined || limit === 0 ? {} : { limitBytes: limit }) };
    },

    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      clearInterval(heartbeatTimer);
      // This node's presence dies with it (pushTargets ignores fields of nodes without a heartbeat).
      await redis.del(key.node(nodeId)).catch(() => undefined);
      await Promise.allSettled([subscriber.quit(), redis.quit()]);
      subscriber.disconnect();
      redis.disconnect();
    },
  };
  return store;
}

/** Warns when Redis could acknowledge a write it has not fsynced (issue 5 §8). */
async function checkDurability(redis: Redis, warn: (message: string) => void): Promise<void> {
  try {
    const appendonly = (await redis.config('GET', 'appendonly')) as string[];
    const appendfsync = (await redis.config('GET', 'appendfsync')) as string[];
    if (appendonly[1] !== 'yes' || appendfsync[1] !== 'always') {
      warn(
        `Redis runs with appendonly=${appendonly[1] ?? '?'} appendfsync=${appendfsync[1] ?? '?'}: ` +
          'an acknowledged write can be lost in a crash. Run Redis with --appendonly yes --appendfsync always.',
      );
    }
  } catch {
    warn('could not read the Redis durability settings (CONFIG disabled?): make sure it runs with appendfsync always.');
  }
}
