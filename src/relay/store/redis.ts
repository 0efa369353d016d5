/**
 * The Redis store: several relay nodes behind one address share one Redis, standalone or a Redis
 * Cluster (DESIGN.md §3, issue 5 §8, issue 13 "Scale-out"). Each channel is a Redis Stream whose
 * entry ids are the relay's seqs; membership, cursors, capabilities, nonces, uploads and blobs
 * live in hashes, sets and sorted sets. Every state change is one Lua script on one hash slot
 * (./redis-scripts.ts explains why the seq stays dense and monotonic per channel across nodes;
 * ./redis-keys.ts the key layout and its hash tags). Contracts: ./types.ts.
 *
 * Speed (issue 13): a post is ONE script, so one round trip (nonce, membership, dedup, rule 7
 * condition, append, retention, "anyone to wake by push?"); commands issued in the same tick go
 * out in one write (ioredis auto-pipelining), and Redis serves them before one AOF fsync. Each
 * append publishes its WebSocket frame ready to send, so a node parses it once and serializes
 * nothing.
 *
 * Cross-node push: every node subscribes to the event channel (./redis-events.ts) and calls its
 * listeners; a WebSocket on node B gets an event posted on node A. The local node hears its own
 * events the same way, which keeps the per-channel order of notifications equal to the seq order
 * on every node. After the subscriber connection drops and comes back, listeners are asked to
 * resync from the logs.
 *
 * Cluster: `url` may list several seed nodes (comma-separated); when the first reachable one says
 * `cluster_enabled:1` the store talks to the cluster (ioredis Cluster, redirections followed). A
 * channel lives on the node that owns its shard's slot; while that node is down, its channels'
 * calls fail with StoreUnavailableError (the relay answers 503 `store-unavailable`) and the other
 * channels go on, if the cluster runs with `cluster-require-full-coverage no`.
 *
 * Durability: Redis replies to a write only after its AOF is fsynced when it runs with
 * `appendonly yes` and `appendfsync always`; the store checks that on every master at connect and
 * warns loudly otherwise. Writes are never re-sent by the client after a reconnect
 * (`autoResendUnfulfilledCommands: false`): a script that ran but whose reply was lost must not
 * run twice (that would append a packet twice); the caller sees an error and may retry with a
 * postId, which is idempotent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { BlobHash, CapabilityKind, ChannelId, ChannelKind, MemberInfo, MemberKey, RelayEvent } from '../../shared/relay-api.js';
import { openEventLink, type EventLinkTarget } from './redis-events.js';
import { BLOB_SHARDS, CHANNEL_SHARDS, KEY_LAYOUT_VERSION, blobShard, channelShard, redisKeys } from './redis-keys.js';
import { migrateLayoutV1 } from './redis-migrate.js';
import { RespConnectionError, openRespPipe, type RespPipe } from './resp-pipe.js';
import {
  ACK_CURSOR,
  APPEND,
  APPEND_UPLOAD_CHUNK,
  CHECK_CAPABILITY,
  CREATE_CHANNEL,
  CREATE_UPLOAD,
  DELETE_CHANNEL_IF_EMPTY,
  DELETE_PUSH,
  FINALIZE_UPLOAD,
  JOIN,
  PUT_CAPABILITY,
  PUT_FETCH_TOKEN,
  PUT_PUSH,
  REMOVE_MEMBER,
  REVOKE_CAPABILITY,
  REVOKE_FETCH_TOKENS,
  SET_ONLINE,
  SWEEP_EXPIRED,
  TRIM,
  USE_FETCH_TOKEN,
} from './redis-scripts.js';
import {
  StoreUnavailableError,
  eventSizeBytes,
  type ChannelRecord,
  type EventListener,
  type NewEvent,
  type PushSubscriptionRecord,
  type PushTarget,
  type RelayStore,
  type StoreRefusal,
  type StoreResult,
  type UploadRecord,
  type VapidKeys,
} from './types.js';

/** Stream entries read per XRANGE inside the trim script (bounds one reply's size). */
const TRIM_SCAN_BATCH = 256;
/** Events one trim script removes at most: bounds how long one script blocks Redis; trim loops. */
const TRIM_MAX_EVENTS_PER_SCRIPT = 5_000;
/** Events a post's own retention removes at most (the sweep does the rest of a long backlog). */
const TRIM_MAX_EVENTS_PER_POST = 64;
/** Channel ids per SSCAN page during a sweep. */
const SWEEP_SCAN_COUNT = 500;
/** Expired records deleted per script call during a sweep (bounded work per call). */
const SWEEP_EXPIRED_BATCH = 200;
/** Events per XRANGE page of a read (a byte cap usually ends the read within the first page). */
const READ_PAGE_EVENTS = 64;
/** How often a node refreshes its heartbeat, and how long it counts as alive without one. */
const NODE_HEARTBEAT_MS = 10_000;
const NODE_HEARTBEAT_TTL_MS = 3 * NODE_HEARTBEAT_MS;
/** A node's entry is deleted from the node table this long after its heartbeat stopped. */
const NODE_FORGET_MS = 24 * 60 * 60 * 1000;
/** Presence naming a node this node has not heard of yet re-reads the node table, at most this often. */
const NODE_REFRESH_MIN_MS = 1_000;
/** Random bytes of a node id (presence entries name their node). */
const NODE_ID_BYTES = 9;
/** How long connecting to Redis may take before the store gives up (startup fails loudly). */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * A command without a reply after this long fails (StoreUnavailableError): a node that stopped
 * answering must not hold requests forever. Generous: a loaded Redis can take a second.
 */
const COMMAND_TIMEOUT_MS = 10_000;
/** Upload token hash → its blob's sha, remembered per node (an upload's chunks come one by one). */
const UPLOAD_INDEX_CACHE_MAX = 1_000;

export interface RedisStoreOptions {
  /**
   * redis://[user:password@]host:port[/db], or several seed nodes of a Redis Cluster separated by
   * commas (any one reachable node is enough to find the others).
   */
  readonly url: string;
  /** Key prefix: relays sharing a prefix share channels; another prefix is another relay. No braces. */
  readonly prefix?: string;
  /** Called with a human message for operational warnings (non-durable Redis config, lost pub/sub). */
  readonly warn?: (message: string) => void;
}

type Client = Redis | Cluster;

/** One Lua script, run by SHA with a fallback to EVAL when the node has not cached it yet. */
class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Client, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      // EVAL caches the script; a NOSCRIPT reply means nothing ran, so retrying is safe.
      return await client.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  /** `run` on the lean post-path connection (./resp-pipe.ts). */
  async runOnPipe(pipe: RespPipe, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await pipe.call(['EVALSHA', this.sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return await pipe.call(['EVAL', this.source, keys.length, ...keys, ...args]);
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

/** An event from its parsed JSON; anything else is a corrupt store (a bug: crash). */
function eventFromJson(seq: number, parsed: Record<string, unknown>): RelayEvent {
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

function toEvent(seq: number, data: string): RelayEvent {
  return eventFromJson(seq, JSON.parse(data) as Record<string, unknown>);
}

/** The seq of a stream entry id "<seq>-0". */
function seqOf(entryId: string): number {
  return Number.parseInt(entryId, 10);
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new Error(`unexpected Redis reply ${String(reply)}`);
  return reply;
}

function refusal<T>(code: unknown): StoreResult<T> {
  return { ok: false, code: String(code) as StoreRefusal };
}

/** The replies of a MULTI/EXEC, each checked (a failed command throws its error). */
function results(replies: Array<[Error | null, unknown]> | null): unknown[] {
  if (replies === null) throw new Error('Redis transaction aborted');
  return replies.map(([error, value]) => {
    if (error !== null) throw error;
    return value;
  });
}

/**
 * Errors that mean "storage unreachable or not serving this slot now", as opposed to bugs: the
 * relay answers 503 for these. Matched by message (ioredis and Redis report them as text). Redis
 * refusing writes for now counts: MISCONF (it cannot persist: a failed RDB snapshot or AOF write,
 * a full disk), NOREPLICAS (min-replicas-to-write not met), BUSY (a script past its time). The
 * last three are ioredis' own words when a cluster node goes (cluster/index.js: "Node is
 * disconnected", "Cluster is disconnected."; Pipeline.js: an auto-pipeline whose keys' slots moved
 * between queueing and sending): the redis-cluster test saw a 500 for a dead node's channel once.
 */
const UNAVAILABLE_PATTERN =
  /CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|READONLY|OOM |MISCONF|NOREPLICAS|BUSY |Connection is closed|connect ECONN|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|Command timed out|MaxRetriesPerRequest|max retries|Too many Cluster redirections|Failed to refresh slots|None of startup nodes|Cluster isn't ready|Stream isn't writeable|enableOfflineQueue|is closed|Node is disconnected|Cluster is disconnected|same slots allocation group/i;

function isUnavailable(error: unknown): error is Error {
  return (
    error instanceof Error &&
    (UNAVAILABLE_PATTERN.test(error.message) || error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError' || error instanceof RespConnectionError)
  );
}

/**
 * The error a store call should reject with: StoreUnavailableError for the errors above, the
 * error itself otherwise. A MULTI whose queued commands were refused fails as a whole with
 * "EXECABORT Transaction discarded because of previous errors" and carries the refusals in
 * `previousErrors` (ioredis); it is unavailable when one of them is. That is what a live node
 * answers a transaction on a dead node's slot ("CLUSTERDOWN Hash slot not served"), and the
 * redis-cluster test saw a 500 for it once in three runs before this looked inside.
 */
export function unavailable(error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  if (isUnavailable(error)) return new StoreUnavailableError(`Redis unavailable: ${error.message}`);
  const previous = error instanceof Error ? (error as { previousErrors?: unknown }).previousErrors : undefined;
  const cause = Array.isArray(previous) ? previous.find(isUnavailable) : undefined;
  if (cause !== undefined) return new StoreUnavailableError(`Redis unavailable: ${cause.message} (transaction aborted)`);
  return error;
}

interface Seed {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
}

function parseSeeds(spec: string): Seed[] {
  const seeds = spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((url) => {
      const parsed = new URL(url);
      if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new RangeError(`not a redis:// URL: ${url}`);
      return {
        url,
        host: parsed.hostname.replace(/^\[|\]$/g, ''),
        port: parsed.port === '' ? 6379 : Number(parsed.port),
        ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
        ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
      };
    });
  if (seeds.length === 0) throw new RangeError('no Redis URL');
  return seeds;
}

/** Whether the first reachable seed runs in cluster mode (INFO cluster). */
async function probeCluster(seeds: readonly Seed[], connection: RedisOptions): Promise<boolean> {
  let lastError: unknown;
  for (const seed of seeds) {
    const probe = new Redis(seed.url, { ...connection, lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const info = await probe.info('cluster');
      return /^cluster_enabled:1/m.test(info);
    } catch (error) {
      lastError = error;
    } finally {
      probe.disconnect();
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * Connects the command and pub/sub connections, checks durability, moves an older key layout,
 * subscribes to the event channel, and returns the store. Rejects if Redis is unreachable.
 */
export async function openRedisStore(options: RedisStoreOptions): Promise<RelayStore> {
  const prefix = options.prefix ?? 'covey:';
  const warn = options.warn ?? ((message: string) => console.warn(`[relay redis] ${message}`));
  const key = redisKeys(prefix);
  const seeds = parseSeeds(options.url);
  const connection: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // See the module comment: a write whose reply was lost must not be executed twice.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
  };
  const isCluster = await probeCluster(seeds, connection);
  let redis: Client;
  if (isCluster) {
    const first = seeds[0] as Seed;
    redis = new Cluster(
      seeds.map((seed): ClusterNode => ({ host: seed.host, port: seed.port })),
      {
        lazyConnect: true,
        enableAutoPipelining: true,
        scaleReads: 'master',
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        maxRedirections: 16,
        redisOptions: {
          ...connection,
          ...(first.username === undefined ? {} : { username: first.username }),
          ...(first.password === undefined ? {} : { password: first.password }),
        },
      },
    );
  } else {
    redis = new Redis((seeds[0] as Seed).url, { ...connection, lazyConnect: true, enableAutoPipelining: true });
  }
  // ioredis emits 'error' on every failed reconnect; without a handler Node would crash the relay.
  redis.on('error', (error: Error) => warn(`command connection: ${error.message}`));
  await redis.connect();

  await checkDurability(redis, warn);
  await checkLayout(redis, isCluster, prefix, warn);

  // Presence (setOnline) names this node; its entry in the node table says the node is alive, so
  // the presence a crashed node leaves behind is ignored once its heartbeat expires.
  const nodeId = randomBytes(NODE_ID_BYTES).toString('base64url');
  let aliveNodes = new Set<string>([nodeId]);
  let nodesReadAtMs = 0;
  const readNodes = async (): Promise<void> => {
    const now = Date.now();
    nodesReadAtMs = now;
    const table = await redis.hgetall(key.nodes);
    const alive = new Set<string>([nodeId]);
    const forgotten: string[] = [];
    for (const [id, expiry] of Object.entries(table)) {
      if (Number(expiry) > now) alive.add(id);
      else if (Number(expiry) + NODE_FORGET_MS < now) forgotten.push(id);
    }
    aliveNodes = alive;
    if (forgotten.length > 0) await redis.hdel(key.nodes, ...forgotten);
  };
  const heartbeat = async (): Promise<void> => {
    await redis.hset(key.nodes, nodeId, String(Date.now() + NODE_HEARTBEAT_TTL_MS));
    await readNodes();
  };
  await heartbeat();
  const heartbeatTimer = setInterval(() => {
    heartbeat().catch((error: unknown) => warn(`node heartbeat failed: ${error instanceof Error ? error.message : String(error)}`));
  }, NODE_HEARTBEAT_MS);
  heartbeatTimer.unref();

  const listeners = new Set<EventListener>();
  const resyncListeners = new Set<() => void>();
  let closed = false;

  const onMessage = (message: string): void => {
    let channelId: ChannelId;
    let event: RelayEvent;
    try {
      const frame = JSON.parse(message) as { channel?: unknown; event?: Record<string, unknown> };
      const seq = frame.event?.seq;
      if (typeof frame.channel !== 'string' || frame.event === undefined || typeof seq !== 'number') throw new Error('not an event frame');
      channelId = frame.channel as ChannelId;
      event = eventFromJson(seq, frame.event);
    } catch (error) {
      warn(`ignored a malformed pub/sub message: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    for (const listener of listeners) {
      try {
        listener(channelId, event, message);
      } catch {
        // Listeners must not throw (types.ts); one bad listener must not stop the others.
      }
    }
  };
  const onResync = (): void => {
    for (const resync of resyncListeners) {
      try {
        resync();
      } catch {
        // As for listeners.
      }
    }
  };
  const linkTargets = (): EventLinkTarget[] => {
    if (!(redis instanceof Cluster)) return [{ url: (seeds[0] as Seed).url }];
    const known = redis.nodes('all').map((node) => ({ host: String(node.options.host), port: Number(node.options.port) }));
    return known.length > 0 ? known : seeds.map((seed) => ({ host: seed.host, port: seed.port }));
  };
  const first = seeds[0] as Seed;
  const link = await openEventLink({
    targets: linkTargets,
    connection: {
      ...connection,
      ...(first.username === undefined ? {} : { username: first.username }),
      ...(first.password === undefined ? {} : { password: first.password }),
    },
    channel: key.pubsub,
    onMessage,
    onResync,
    warn,
  });

  // Posts take the lean connection (./resp-pipe.ts) on a standalone Redis over plain TCP; a
  // cluster routes by slot and TLS (rediss://, ?tls=) needs ioredis' socket, so those stay on
  // ioredis. The lean connection takes ioredis' reading of the URL (database and password from the
  // path or the query, ?db=N&password=…), so posts go to the database the other calls use.
  const direct = redis instanceof Redis && !redis.options.tls ? redis.options : undefined;
  const pipe: RespPipe | undefined =
    direct === undefined
      ? undefined
      : await openRespPipe({
          host: direct.host ?? 'localhost',
          port: direct.port ?? 6379,
          ...(typeof direct.username === 'string' && direct.username !== '' ? { username: direct.username } : {}),
          ...(typeof direct.password === 'string' && direct.password !== '' ? { password: direct.password } : {}),
          ...(direct.db === undefined ? {} : { db: direct.db }),
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
        }).catch(async (error: unknown) => {
          clearInterval(heartbeatTimer);
          await link.close();
          redis.disconnect();
          throw error;
        });

  function checkOpen(): void {
    if (closed) throw new Error('redis store is closed');
  }

  /** The fields of the append scripts' shared tail: channel JSON, data, time, size. */
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
    const stats = key.stats(channelShard(channelId));
    let removed = 0;
    // Bounded: each round removes up to TRIM_MAX_EVENTS_PER_SCRIPT of a finite log, and stops when a round removes fewer.
    for (;;) {
      const count = Number(
        await scripts.trim.run(
          redis,
          [key.channel(channelId), key.events(channelId), key.cursors(channelId), key.posts(channelId), stats],
          [nowMs - maxEventAgeMs, maxChannelBytes, TRIM_SCAN_BATCH, TRIM_MAX_EVENTS_PER_SCRIPT],
        ),
      );
      removed += count;
      if (count < TRIM_MAX_EVENTS_PER_SCRIPT) return removed;
    }
  }

  /**
   * Deletes what an expiry index says has expired: candidates read first, then deleted by a
   * script that re-checks each score (SWEEP_EXPIRED). `keysOf` names the keys of one member.
   */
  async function sweepIndex(index: string, keysOf: (member: string) => string[], nowMs: number): Promise<void> {
    // Bounded: each round deletes the batch it read (or stops when nothing is left).
    for (;;) {
      const members = await redis.zrangebyscore(index, '-inf', nowMs, 'LIMIT', 0, SWEEP_EXPIRED_BATCH);
      if (members.length === 0) return;
      const per = keysOf(members[0] as string).length;
      await scripts.sweepExpired.run(redis, [index, ...members.flatMap(keysOf)], [nowMs, per, ...members]);
      if (members.length < SWEEP_EXPIRED_BATCH) return;
    }
  }

  /** Upload token hash → the sha of the blob it uploads (its keys live in that blob's shard). */
  const uploadIndexCache = new Map<string, BlobHash>();
  async function uploadSha(id: string): Promise<BlobHash | undefined> {
    const cached = uploadIndexCache.get(id);
    if (cached !== undefined) return cached;
    const sha = await redis.get(key.uploadIndex(id));
    if (sha === null) return undefined;
    if (uploadIndexCache.size >= UPLOAD_INDEX_CACHE_MAX) {
      const oldest = uploadIndexCache.keys().next();
      if (oldest.done !== true) uploadIndexCache.delete(oldest.value);
    }
    uploadIndexCache.set(id, sha as BlobHash);
    return sha as BlobHash;
  }
  async function forgetUpload(id: string): Promise<void> {
    uploadIndexCache.delete(id);
    results(await redis.multi().del(key.uploadIndex(id)).zrem(key.uploadIndexExpiry(blobShard(id)), id).exec());
  }

  const store: RelayStore = {
    name: 'redis',

    async createChannel(channelId, kind, owner, nowMs) {
      checkOpen();
      const event = { type: 'member-joined', member: owner } as const;
      const [channelJson, data, , size] = appendArgs(channelId, event, nowMs);
      const shard = channelShard(channelId);
      const seq = Number(
        await scripts.createChannel.run(
          redis,
          [
            key.channel(channelId),
            key.events(channelId),
            key.members(channelId),
            key.cursors(channelId),
            key.channels(shard),
            key.stats(shard),
            key.posts(channelId),
          ],
          [channelJson, channelId, kind, owner, nowMs, data, size, key.pubsub],
        ),
      );
      return { seq, timeMs: nowMs, type: 'member-joined', member: owner };
    },

    async getChannel(channelId) {
      checkOpen();
      const [fields, memberCount] = results(await redis.multi().hgetall(key.channel(channelId)).hlen(key.members(channelId)).exec()) as [
        Record<string, string>,
        number,
      ];
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
      const [joined, cursor] = results(
        await redis.multi().hget(key.members(channelId), memberKey).hget(key.cursors(channelId), memberKey).exec(),
      ) as [string | null, string | null];
      if (joined === null) return undefined;
      return { key: memberKey, joinedSeq: Number(joined), cursor: Number(cursor ?? 0) };
    },

    async listMembers(channelId) {
      checkOpen();
      const [joined, cursors] = results(await redis.multi().hgetall(key.members(channelId)).hgetall(key.cursors(channelId)).exec()) as [
        Record<string, string>,
        Record<string, string>,
      ];
      const members: MemberInfo[] = Object.entries(joined).map(([memberKey, joinedSeq]) => ({
        key: memberKey as MemberKey,
        joinedSeq: Number(joinedSeq),
        cursor: Number(cursors[memberKey] ?? 0),
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
            key.capability(channelId, capHash),
            key.stats(channelShard(channelId)),
            key.posts(channelId),
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
        value: { member: { key: memberKey, joinedSeq: seq, cursor: seq - 1 }, event: { seq, timeMs: nowMs, ...event } },
      };
    },

    async removeMember(channelId, actor, target, nowMs) {
      checkOpen();
      const event = { type: 'member-left', member: target, by: actor } as const;
      const [channelJson, data, timeMs, size] = appendArgs(channelId, event, nowMs);
      const shard = channelShard(channelId);
      const reply = asArray(
        await scripts.removeMember.run(
          redis,
          [
            key.channel(channelId),
            key.events(channelId),
            key.members(channelId),
            key.cursors(channelId),
            key.stats(shard),
            key.posts(channelId),
            key.fetchTokens(channelId),
            key.memberFetchTokens(channelId, target),
            key.push(channelId),
            key.online(channelId),
            key.channels(shard),
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
      const nonce = options?.nonce;
      const retention = options?.retention;
      const shard = channelShard(channelId);
      const keys = [
        key.channel(channelId),
        key.events(channelId),
        key.members(channelId),
        key.posts(channelId),
        key.stats(shard),
        key.cursors(channelId),
        key.push(channelId),
        key.nonces(shard),
      ];
      if (capability !== undefined) keys.push(key.capability(channelId, capability.hash));
      const args = [
        channelJson,
        data,
        timeMs,
        size,
        options?.asMember ?? '',
        postField,
        key.pubsub,
        options?.ifNoLeaveAfter ?? '',
        capability?.kind ?? '',
        nonce === undefined ? '' : `${nonce.key}\n${nonce.nonce}`,
        nonce?.expiresAtMs ?? '',
        retention === undefined ? '' : nowMs - retention.maxEventAgeMs,
        retention?.maxChannelBytes ?? '',
        TRIM_SCAN_BATCH,
        TRIM_MAX_EVENTS_PER_POST,
      ];
      const reply = asArray(pipe === undefined ? await scripts.append.run(redis, keys, args) : await scripts.append.runOnPipe(pipe, keys, args));
      if (reply[0] === 'dup') {
        return { ok: true, value: { event: toEvent(Number(reply[1]), String(reply[2])), duplicate: true, hasPushSubscriptions: false } };
      }
      if (reply[0] !== 'ok') return refusal(reply[1]);
      const appended: RelayEvent = { seq: Number(reply[1]), timeMs: nowMs, ...event };
      return { ok: true, value: { event: appended, duplicate: false, hasPushSubscriptions: Number(reply[2]) === 1 } };
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
        [key.capability(record.channelId, record.hash), key.capabilityExpiry(channelShard(record.channelId)), key.members(record.channelId)],
        [record.hash, record.channelId, record.kind, record.expiresAtMs, record.usesLeft, record.creator],
      );
      return Number(done) === 1 ? { ok: true, value: undefined } : refusal('not-member');
    },

    async checkCapability(capHash, channelId, kind: CapabilityKind, nowMs) {
      checkOpen();
      const reply = await scripts.checkCapability.run(redis, [key.capability(channelId, capHash), key.members(channelId)], [channelId, kind, nowMs]);
      return Number(reply) === 1;
    },

    async revokeCapability(capHash, channelId) {
      checkOpen();
      return Number(
        await scripts.revokeCapability.run(
          redis,
          [key.capability(channelId, capHash), key.capabilityExpiry(channelShard(channelId))],
          [channelId, capHash],
        ),
      );
    },

    async useNonce(memberKey, nonce, expiresAtMs, channelId) {
      checkOpen();
      // One sorted set per shard, the channel's (a post's append uses the same one) or, for a
      // request about no channel, the key's. ZADD NX is atomic across nodes; sweep drops by score.
      const shard = channelShard(channelId ?? memberKey);
      return (await redis.zadd(key.nonces(shard), 'NX', expiresAtMs, `${memberKey}\n${nonce}`)) === 1;
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
      const [subscriptions, presence] = results(await redis.multi().hgetall(key.push(channelId)).hgetall(key.online(channelId)).exec()) as [
        Record<string, string>,
        Record<string, string>,
      ];
      if (Object.keys(subscriptions).length === 0) return [];
      // Presence counts only while its node's heartbeat lives.
      const entries = Object.keys(presence).map((field) => field.split('\n') as [string, string]);
      if (entries.some(([, node]) => !aliveNodes.has(node)) && Date.now() - nodesReadAtMs > NODE_REFRESH_MIN_MS) await readNodes();
      const onlineMembers = new Set(entries.filter(([, node]) => aliveNodes.has(node)).map(([member]) => member));
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
      // The index first: an index without its upload is harmless (not found), the reverse is lost.
      results(
        await redis
          .multi()
          .set(key.uploadIndex(record.id), record.sha256)
          .zadd(key.uploadIndexExpiry(blobShard(record.id)), record.expiresAtMs, record.id)
          .exec(),
      );
      await scripts.createUpload.run(
        redis,
        [key.upload(record.sha256, record.id), key.uploadData(record.sha256, record.id), key.uploadExpiry(blobShard(record.sha256))],
        [record.id, record.channelId, record.sha256, record.size, record.expiresAtMs],
      );
    },

    async getUpload(id, nowMs) {
      checkOpen();
      const sha = await uploadSha(id);
      if (sha === undefined) return undefined;
      const fields = await redis.hgetall(key.upload(sha, id));
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
      const sha = await uploadSha(id);
      if (sha === undefined) return refusal('not-found');
      const reply = asArray(
        await scripts.appendUploadChunk.run(
          redis,
          [key.upload(sha, id), key.uploadData(sha, id)],
          [offset, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), nowMs],
        ),
      );
      if (reply[0] !== 'ok') return refusal(reply[1]);
      return { ok: true, value: Number(reply[1]) };
    },

    async readUploadRange(id, offset, maxBytes) {
      checkOpen();
      const sha = await uploadSha(id);
      if (sha === undefined) return undefined;
      const [exists, bytes] = results(
        await redis
          .multi()
          .exists(key.upload(sha, id))
          .getrangeBuffer(key.uploadData(sha, id), offset, offset + maxBytes - 1)
          .exec(),
      ) as [number, Buffer];
      if (exists === 0) return undefined;
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },

    async deleteUpload(id) {
      checkOpen();
      const sha = await uploadSha(id);
      if (sha !== undefined) {
        results(await redis.multi().del(key.upload(sha, id), key.uploadData(sha, id)).zrem(key.uploadExpiry(blobShard(sha)), id).exec());
      }
      await forgetUpload(id);
    },

    async finalizeUpload(id, sha256, readCapHash, expiresAtMs) {
      checkOpen();
      const uploadedSha = await uploadSha(id);
      // The caller checked the bytes hash to sha256; an upload announced as another blob is a bug.
      if (uploadedSha === undefined) return false;
      if (uploadedSha !== sha256) throw new Error(`upload ${id} is for blob ${uploadedSha}, not ${sha256}`);
      const shard = blobShard(sha256);
      const done = await scripts.finalizeUpload.run(
        redis,
        [
          key.upload(sha256, id),
          key.uploadData(sha256, id),
          key.blob(sha256),
          key.blobData(sha256),
          key.blobCapability(sha256, readCapHash),
          key.blobExpiry(shard),
          key.blobCapabilityExpiry(shard),
          key.uploadExpiry(shard),
        ],
        [sha256, readCapHash, expiresAtMs, id],
      );
      if (Number(done) !== 1) return false;
      await forgetUpload(id).catch(() => undefined);
      return true;
    },

    async openBlob(sha256, readCapHash, nowMs) {
      checkOpen();
      const [capSha, fields, length] = results(
        await redis
          .multi()
          .hget(key.blobCapability(sha256, readCapHash), 'sha')
          .hmget(key.blob(sha256), 'exp', 'size')
          .strlen(key.blobData(sha256))
          .exec(),
      ) as [string | null, Array<string | null>, number];
      if (capSha === null) return undefined;
      // As in the SQLite store: the blob's own (possibly extended) expiry decides.
      const [exp, size] = fields;
      if (exp === null || exp === undefined || Number(exp) <= nowMs) return undefined;
      return { sha256: capSha as BlobHash, size: size === null || size === undefined ? length : Number(size) };
    },

    async readBlobRange(sha256, offset, maxBytes) {
      checkOpen();
      const bytes = await redis.getrangeBuffer(key.blobData(sha256), offset, offset + maxBytes - 1);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },

    async sweep(policy, nowMs) {
      checkOpen();
      let removed = 0;
      // Bounded: every shard once; SSCAN visits each of its channels once (ids added meanwhile may or may not be seen).
      for (let shard = 0; shard < CHANNEL_SHARDS; shard++) {
        let cursor = '0';
        do {
          const [next, ids] = await redis.sscan(key.channels(shard), cursor, 'COUNT', SWEEP_SCAN_COUNT);
          cursor = next;
          // One page at a time, its trims pipelined on the connection.
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
                  key.channels(shard),
                  key.stats(shard),
                ],
                [id],
              ),
            ),
          );
        } while (cursor !== '0');
        await redis.zremrangebyscore(key.nonces(shard), '-inf', nowMs);
        const tag = key.channelShardTag(shard);
        await sweepIndex(key.capabilityExpiry(shard), (hash) => [`${tag}cap:${hash}`], nowMs);
      }
      for (let shard = 0; shard < BLOB_SHARDS; shard++) {
        const tag = key.blobShardTag(shard);
        await sweepIndex(key.uploadExpiry(shard), (hash) => [`${tag}up:${hash}`, `${tag}upd:${hash}`], nowMs);
        await sweepIndex(key.uploadIndexExpiry(shard), (hash) => [`${tag}upi:${hash}`], nowMs);
        await sweepIndex(key.blobExpiry(shard), (sha) => [`${tag}blob:${sha}`, `${tag}blobd:${sha}`], nowMs);
        await sweepIndex(key.blobCapabilityExpiry(shard), (hash) => [`${tag}blobcap:${hash}`], nowMs);
      }
      uploadIndexCache.clear();
      return removed;
    },

    subscribe(listener, onResync) {
      listeners.add(listener);
      if (onResync !== undefined) resyncListeners.add(onResync);
      return () => {
        listeners.delete(listener);
        if (onResync !== undefined) resyncListeners.delete(onResync);
      };
    },

    async stats() {
      checkOpen();
      // O(shards), not O(channels): each shard keeps its own counters (issue 13 "Broken" 4).
      const shards = Array.from({ length: CHANNEL_SHARDS }, (_, shard) => shard);
      const [channels, counts] = await Promise.all([
        Promise.all(shards.map((shard) => redis.scard(key.channels(shard)))),
        Promise.all(shards.map((shard) => redis.hmget(key.stats(shard), 'events', 'bytes'))),
      ]);
      return {
        channels: channels.reduce((sum, n) => sum + n, 0),
        events: counts.reduce((sum, [events]) => sum + Number(events ?? 0), 0),
        bytes: counts.reduce((sum, [, bytes]) => sum + Number(bytes ?? 0), 0),
      };
    },

    async storageUsage() {
      checkOpen();
      // The fullest master decides: a channel on it cannot move elsewhere.
      const masters = redis instanceof Cluster ? redis.nodes('master') : [redis];
      let usage: { usedBytes?: number; limitBytes?: number } = {};
      let worst = -1;
      for (const node of masters) {
        const info = await node.info('memory');
        const field = (name: string): number | undefined => {
          const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
          return match?.[1] === undefined ? undefined : Number(match[1]);
        };
        const used = field('used_memory');
        const limit = field('maxmemory');
        const fill = used !== undefined && limit !== undefined && limit > 0 ? used / limit : 0;
        if (fill > worst) {
          worst = fill;
          usage = { ...(used === undefined ? {} : { usedBytes: used }), ...(limit === undefined || limit === 0 ? {} : { limitBytes: limit }) };
        }
      }
      return usage;
    },

    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      resyncListeners.clear();
      clearInterval(heartbeatTimer);
      // This node's presence dies with it (pushTargets ignores fields of nodes without a heartbeat).
      await redis.hdel(key.nodes, nodeId).catch(() => undefined);
      await link.close();
      await pipe?.close();
      await redis.quit().catch(() => undefined);
      redis.disconnect();
    },
  };
  return withUnavailableErrors(store);
}

/**
 * The store with every asynchronous method's connection-level failures turned into
 * StoreUnavailableError (see `unavailable`); refusals and bugs pass through unchanged.
 */
function withUnavailableErrors(store: RelayStore): RelayStore {
  const wrapped: Record<string, unknown> = { ...store };
  for (const [name, value] of Object.entries(store)) {
    if (typeof value !== 'function' || name === 'subscribe') continue;
    const method = value as (...args: unknown[]) => Promise<unknown>;
    wrapped[name] = (...args: unknown[]) => method(...args).catch((error: unknown) => Promise.reject(unavailable(error)));
  }
  return wrapped as unknown as RelayStore;
}

/** Warns when Redis could acknowledge a write it has not fsynced (issue 5 §8), on every master. */
async function checkDurability(redis: Client, warn: (message: string) => void): Promise<void> {
  const masters = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of masters) {
    const where = `${String(node.options.host ?? '?')}:${String(node.options.port ?? '?')}`;
    try {
      const appendonly = (await node.config('GET', 'appendonly')) as string[];
      const appendfsync = (await node.config('GET', 'appendfsync')) as string[];
      if (appendonly[1] !== 'yes' || appendfsync[1] !== 'always') {
        warn(
          `Redis ${where} runs with appendonly=${appendonly[1] ?? '?'} appendfsync=${appendfsync[1] ?? '?'}: ` +
            'an acknowledged write can be lost in a crash. Run Redis with --appendonly yes --appendfsync always.',
        );
      }
    } catch {
      warn(`could not read the durability settings of Redis ${where} (CONFIG disabled?): make sure it runs with appendfsync always.`);
    }
  }
}

/**
 * Makes sure the keys follow layout v2: a fresh prefix is marked; a standalone store of layout v1
 * is moved (./redis-migrate.ts); a newer layout stops the relay (it was written by a newer relay).
 */
async function checkLayout(redis: Client, isCluster: boolean, prefix: string, warn: (message: string) => void): Promise<void> {
  const key = redisKeys(prefix);
  const stored = await redis.get(key.layout);
  if (stored !== null && Number(stored) > KEY_LAYOUT_VERSION) {
    throw new Error(`Redis keys under "${prefix}" use layout ${stored}; this relay knows up to ${KEY_LAYOUT_VERSION}: upgrade the relay`);
  }
  if (stored !== null && Number(stored) === KEY_LAYOUT_VERSION) return;
  if (!isCluster && redis instanceof Redis) await migrateLayoutV1(redis, prefix, warn);
  await redis.set(key.layout, String(KEY_LAYOUT_VERSION));
}
