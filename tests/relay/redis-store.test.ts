// What the shared contract suite cannot see about the Redis store: several store instances (relay
// nodes) on one Redis keep one dense order per channel, pub/sub reaches every node in seq order,
// the trim script's bounded batches add up, and a non-durable Redis is reported.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChannelId, MemberKey, RelayEvent } from '../../src/shared/relay-api.js';
import { openRedisStore, unavailable } from '../../src/relay/store/redis.js';
import { redisKeys } from '../../src/relay/store/redis-keys.js';
import { StoreUnavailableError, type CapabilityHash, type RelayStore } from '../../src/relay/store/types.js';
import { skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';

const memberKey = (n: number): MemberKey => `member-${String(n).padStart(36, '0')}` as MemberKey;
const channelId = (name: string): ChannelId => `ch-${name}` as ChannelId;
const NOW_MS = 1_700_000_000_000;

describe.skipIf(skipWithoutRedis('redis store'))('redis store', () => {
  let server: RedisServer;
  let admin: Redis;
  let prefixCounter = 0;
  let prefix = '';
  const opened: RelayStore[] = [];

  const open = async (): Promise<RelayStore> => {
    const store = await openRedisStore({ url: server.url, prefix, warn: () => undefined });
    opened.push(store);
    return store;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });

  afterAll(async () => {
    await Promise.all(opened.map((store) => store.close()));
    admin.disconnect();
    await server.stop();
  });

  beforeEach(() => {
    prefixCounter += 1;
    prefix = `t${prefixCounter}:`;
  });

  it('keeps one dense order per channel when two nodes append concurrently', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const id = channelId('dense');
    const seen: Record<string, number[]> = { a: [], b: [] };
    nodeA.subscribe((channel, event) => channel === id && seen.a?.push(event.seq));
    nodeB.subscribe((channel, event) => channel === id && seen.b?.push(event.seq));
    await nodeA.createChannel(id, 'group', memberKey(0), NOW_MS);

    const POSTS_PER_NODE = 200;
    const post = (store: RelayStore, node: string, i: number) =>
      store.appendEvent(id, { type: 'packet', author: memberKey(0), packet: `${node}${i}` }, NOW_MS, { asMember: memberKey(0) });
    const results = await Promise.all([
      ...Array.from({ length: POSTS_PER_NODE }, (_, i) => post(nodeA, 'a', i)),
      ...Array.from({ length: POSTS_PER_NODE }, (_, i) => post(nodeB, 'b', i)),
    ]);
    const seqs = results.map((result) => (result.ok ? result.value.event.seq : -1)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 2 * POSTS_PER_NODE }, (_, i) => i + 2));

    const fromA = await nodeA.readEvents(id, 0, 1_000, Infinity);
    const fromB = await nodeB.readEvents(id, 0, 1_000, Infinity);
    expect(fromA).toEqual(fromB);
    expect(fromA.map((event) => event.seq)).toEqual(Array.from({ length: 2 * POSTS_PER_NODE + 1 }, (_, i) => i + 1));

    // Pub/sub: every node hears every event, in seq order (the script publishes in its atomic step).
    const all = [1, ...seqs];
    await waitFor(() => (seen.a?.length ?? 0) >= all.length && (seen.b?.length ?? 0) >= all.length);
    expect(seen.a).toEqual(all);
    expect(seen.b).toEqual(all);
  });

  it('delivers the full event to the other node', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const id = channelId('push');
    const received: Array<[ChannelId, RelayEvent]> = [];
    nodeB.subscribe((channel, event) => received.push([channel, event]));
    const created = await nodeA.createChannel(id, 'group', memberKey(1), NOW_MS);
    const posted = await nodeA.appendEvent(id, { type: 'packet', author: memberKey(1), packet: 'AQID' }, NOW_MS + 5);
    await waitFor(() => received.length >= 2);
    expect(received).toEqual([
      [id, created],
      [id, posted.ok ? posted.value.event : undefined],
    ]);
  });

  it('asks its listeners to resync once its pub/sub connection is back, and publishes live again', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const id = channelId('blip');
    await nodeA.createChannel(id, 'group', memberKey(6), NOW_MS);
    const heard: number[] = [];
    let resyncs = 0;
    nodeB.subscribe(
      (channel, event) => channel === id && heard.push(event.seq),
      () => (resyncs += 1),
    );
    await nodeA.appendEvent(id, { type: 'packet', author: memberKey(6), packet: 'AAAA' }, NOW_MS);
    await waitFor(() => heard.includes(2));
    expect(resyncs).toBe(0);
    // Drop every pub/sub connection: the events published before the resubscribe are not heard,
    // and the resync is how listeners learn to read them from the log (push.ts does).
    expect(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
    await waitFor(() => resyncs >= 1);
    // After the reconnect, live pub/sub works again.
    await nodeA.appendEvent(id, { type: 'packet', author: memberKey(6), packet: 'AAAA' }, NOW_MS);
    await waitFor(() => heard.includes(3));
  });

  it('publishes each event as its ready-to-send WebSocket frame', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const id = channelId('frame');
    const frames: string[] = [];
    nodeB.subscribe((_channel, _event, frame) => frame !== undefined && frames.push(frame));
    await nodeA.createChannel(id, 'group', memberKey(7), NOW_MS);
    const posted = await nodeA.appendEvent(id, { type: 'packet', author: memberKey(7), packet: 'AQID' }, NOW_MS + 5);
    await waitFor(() => frames.length >= 2);
    expect(frames.map((frame) => JSON.parse(frame) as unknown)).toEqual([
      { type: 'event', channel: id, event: { seq: 1, type: 'member-joined', timeMs: NOW_MS, member: memberKey(7) } },
      { type: 'event', channel: id, event: posted.ok ? posted.value.event : undefined },
    ]);
  });

  it('trims a log longer than one script batch, keeping the counters right', async () => {
    const store = await open();
    const id = channelId('long');
    await store.createChannel(id, 'group', memberKey(2), NOW_MS);
    const EVENTS = 12_000; // more than TRIM_MAX_EVENTS_PER_SCRIPT (5,000): trim loops
    const pipeline: Array<Promise<unknown>> = [];
    for (let i = 0; i < EVENTS; i++) {
      pipeline.push(store.appendEvent(id, { type: 'packet', author: memberKey(2), packet: 'x'.repeat(10) }, NOW_MS));
    }
    await Promise.all(pipeline);
    expect(await store.ackCursor(id, memberKey(2), EVENTS + 1 - 7)).toBe(EVENTS + 1 - 7);
    const removed = await store.trim(id, { maxEventAgeMs: 1e12, maxChannelBytes: 1e12 }, NOW_MS);
    expect(removed).toBe(EVENTS + 1 - 7);
    const channel = await store.getChannel(id);
    expect(channel?.firstSeq).toBe(EVENTS + 1 - 6);
    expect(channel?.headSeq).toBe(EVENTS + 1);
    expect(channel?.storedBytes).toBe(7 * (64 + 10));
    expect(await store.stats()).toEqual({ channels: 1, events: 7, bytes: 7 * (64 + 10) });
    expect((await store.readEvents(id, 0, 100, Infinity)).map((event) => event.seq)).toEqual(
      Array.from({ length: 7 }, (_, i) => EVENTS + 1 - 6 + i),
    );
    expect(await admin.xlen(redisKeys(prefix).events(id))).toBe(7);
  });

  it('refuses a reused capability across nodes: exactly one join per use', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const id = channelId('cap');
    await nodeA.createChannel(id, 'group', memberKey(3), NOW_MS);
    const hash = 'c'.repeat(64) as CapabilityHash;
    await nodeA.putCapability({ hash, channelId: id, kind: 'invite', expiresAtMs: NOW_MS + 1_000, usesLeft: 3, creator: memberKey(3) });
    const joins = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? nodeA : nodeB).joinWithCapability(id, memberKey(100 + i), hash, NOW_MS)),
    );
    expect(joins.filter((join) => join.ok)).toHaveLength(3);
    expect(await nodeB.listMembers(id)).toHaveLength(4);
  });

  it('posts again after Redis lost its cached scripts (SCRIPT FLUSH): appends fall back to EVAL, in order', async () => {
    const store = await open();
    const id = channelId('flushed');
    await store.createChannel(id, 'group', memberKey(8), NOW_MS);
    const post = (packet: string) => store.appendEvent(id, { type: 'packet', author: memberKey(8), packet }, NOW_MS, { asMember: memberKey(8) });
    expect((await post('AAAA')).ok).toBe(true);
    await admin.script('FLUSH');
    const results = await Promise.all(['AQID', 'AgME', 'AwQF'].map(post));
    expect(results.map((result) => (result.ok ? result.value.event.seq : -1))).toEqual([3, 4, 5]);
    expect((await store.readEvents(id, 2, 10, Infinity)).map((event) => (event.type === 'packet' ? event.packet : ''))).toEqual(['AQID', 'AgME', 'AwQF']);
  });

  /** On a redis-server asking for `password`, a store opened on `url(port)` posts into database `db` (and none into 0). */
  const postsIntoDatabase = async (password: string, url: (port: number) => string, db: number): Promise<void> => {
    const guarded = await startRedisServer();
    const guardedAdmin = new Redis(guarded.url);
    try {
      await guardedAdmin.config('SET', 'requirepass', password);
      const store = await openRedisStore({ url: url(guarded.port), prefix, warn: () => undefined });
      try {
        const id = channelId(`database-${db}`);
        await store.createChannel(id, 'group', memberKey(9), NOW_MS);
        const posted = await store.appendEvent(id, { type: 'packet', author: memberKey(9), packet: 'AQID' }, NOW_MS, { asMember: memberKey(9) });
        expect(posted.ok && posted.value.event.seq).toBe(2);
        // Every connection used database `db`: the channel and its two events are there, none in 0.
        expect(await guardedAdmin.xlen(redisKeys(prefix).events(id))).toBe(0);
        await guardedAdmin.select(db);
        expect(await guardedAdmin.xlen(redisKeys(prefix).events(id))).toBe(2);
      } finally {
        await store.close();
      }
    } finally {
      guardedAdmin.disconnect();
      await guarded.stop();
    }
  };

  it("posts on a Redis that asks for a password, into the URL's database", async () => {
    await postsIntoDatabase('p@ss:word', (port) => `redis://:${encodeURIComponent('p@ss:word')}@127.0.0.1:${port}/2`, 2);
  });

  it('posts on a Redis that asks for no password when the URL gives one (ioredis warns and goes on)', async () => {
    const store = await openRedisStore({ url: `redis://:${encodeURIComponent('not-needed')}@127.0.0.1:${server.port}`, prefix, warn: () => undefined });
    opened.push(store);
    const id = channelId('unguarded');
    await store.createChannel(id, 'group', memberKey(9), NOW_MS);
    const posted = await store.appendEvent(id, { type: 'packet', author: memberKey(9), packet: 'AQID' }, NOW_MS, { asMember: memberKey(9) });
    expect(posted.ok && posted.value.event.seq).toBe(2);
  });

  it('posts into the database and with the password a URL gives in its query (?db=N&password=…), as ioredis reads it', async () => {
    await postsIntoDatabase('p@ss', (port) => `redis://127.0.0.1:${port}?db=3&password=${encodeURIComponent('p@ss')}`, 3);
  });

  it('accepts each nonce once across nodes', async () => {
    const [nodeA, nodeB] = [await open(), await open()];
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? nodeA : nodeB).useNonce(memberKey(4), 'nonce-1', NOW_MS + 60_000)),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    await nodeA.sweep({ maxEventAgeMs: 1e12, maxChannelBytes: 1e12 }, NOW_MS + 60_000);
    expect(await nodeB.useNonce(memberKey(4), 'nonce-1', NOW_MS + 120_000)).toBe(true);
  });

  it('sweeps expired capabilities, uploads, blobs and nonces out of Redis, keeping live ones', async () => {
    const store = await open();
    const id = channelId('sweep');
    await store.createChannel(id, 'group', memberKey(5), NOW_MS);
    const hash = (c: string) => c.repeat(64) as CapabilityHash;
    const creator = memberKey(5);
    await store.putCapability({ hash: hash('1'), channelId: id, kind: 'invite', expiresAtMs: NOW_MS + 10, usesLeft: 1, creator });
    await store.putCapability({ hash: hash('2'), channelId: id, kind: 'invite', expiresAtMs: NOW_MS + 1_000, usesLeft: 1, creator });
    const sha = 'ab'.repeat(32) as Parameters<RelayStore['finalizeUpload']>[1];
    await store.createUpload({ id: hash('3'), channelId: id, sha256: sha, size: 4, received: 0, expiresAtMs: NOW_MS + 10 });
    expect(await store.appendUploadChunk(hash('3'), 0, new Uint8Array([1, 2]), NOW_MS)).toEqual({ ok: true, value: 2 });
    const finalized = async (upload: CapabilityHash, readCap: CapabilityHash, expiresAtMs: number): Promise<boolean> => {
      await store.createUpload({ id: upload, channelId: id, sha256: sha, size: 3, received: 0, expiresAtMs: NOW_MS + 1_000 });
      await store.appendUploadChunk(upload, 0, new Uint8Array([9, 8, 7]), NOW_MS);
      return store.finalizeUpload(upload, sha, readCap, expiresAtMs);
    };
    expect(await finalized(hash('6'), hash('4'), NOW_MS + 10)).toBe(true);
    // The same blob uploaded again later extends its life (each upload gets its own read capability).
    expect(await finalized(hash('7'), hash('5'), NOW_MS + 1_000)).toBe(true);
    expect(await store.openBlob(sha, hash('4'), NOW_MS + 5)).toEqual({ sha256: sha, size: 3 });
    expect(await store.readBlobRange(sha, 1, 100)).toEqual(new Uint8Array([8, 7]));
    expect(await store.getUpload(hash('6'), NOW_MS)).toBeUndefined();
    expect(await store.useNonce(memberKey(5), 'n1', NOW_MS + 10)).toBe(true);

    await store.sweep({ maxEventAgeMs: 1e12, maxChannelBytes: 1e12 }, NOW_MS + 10);
    expect(await admin.exists(redisKeys(prefix).capability(id, hash('1')))).toBe(0);
    expect(await store.checkCapability(hash('2'), id, 'invite', NOW_MS + 10)).toBe(true);
    expect(await store.getUpload(hash('3'), NOW_MS)).toBeUndefined();
    expect(await admin.exists(redisKeys(prefix).upload(sha, hash('3')), redisKeys(prefix).uploadData(sha, hash('3')))).toBe(0);
    expect(await store.openBlob(sha, hash('5'), NOW_MS + 10)).toEqual({ sha256: sha, size: 3 });
    expect(await store.openBlob(sha, hash('4'), NOW_MS + 10)).toBeUndefined(); // its own capability expired and was swept
    expect(await store.useNonce(memberKey(5), 'n1', NOW_MS + 20)).toBe(true);

    await store.sweep({ maxEventAgeMs: 1e12, maxChannelBytes: 1e12 }, NOW_MS + 1_000);
    expect(await store.openBlob(sha, hash('5'), NOW_MS + 1_000)).toBeUndefined();
    const left = (await admin.keys(`${prefix}*`)).sort();
    // Only the channel itself and the indexes remain.
    expect(left.filter((k) => /cap:|up:|upd:|upi:|blob:|blobd:|blobcap:/.test(k))).toEqual([]);
  });

  it('warns when Redis could lose an acknowledged write', async () => {
    await admin.config('SET', 'appendfsync', 'everysec');
    const warnings: string[] = [];
    try {
      const store = await openRedisStore({ url: server.url, prefix, warn: (message) => warnings.push(message) });
      opened.push(store);
    } finally {
      await admin.config('SET', 'appendfsync', 'always');
    }
    expect(warnings.join('\n')).toMatch(/appendfsync=everysec/);
  });

  it('maps a Redis that refuses writes it cannot make durable or safe (MISCONF, NOREPLICAS, BUSY) to store-unavailable, on posts and other writes', async () => {
    // Each is Redis unable to serve for now (a disk it cannot write, replicas gone, a script
    // stuck), like OOM and READONLY: the relay answers 503 with retry-after, not a 500 logged as a bug.
    const refusing = await startRedisServer({ args: ['--enable-protected-configs', 'yes', '--busy-reply-threshold', '100'] });
    const refusingAdmin = new Redis(refusing.url);
    const blocker = new Redis(refusing.url);
    blocker.on('error', () => undefined);
    const store = await openRedisStore({ url: refusing.url, prefix, warn: () => undefined });
    try {
      const id = channelId('refused');
      await store.createChannel(id, 'group', memberKey(9), NOW_MS);
      const outcomes = async (): Promise<unknown[]> => [
        await store.appendEvent(id, { type: 'packet', author: memberKey(9), packet: 'AQID' }, NOW_MS, { asMember: memberKey(9) }).catch((error: unknown) => error),
        await store.createChannel(channelId(`refused-${String(Math.random())}`), 'group', memberKey(9), NOW_MS).catch((error: unknown) => error),
      ];
      // A failed RDB snapshot (its directory cannot be written) with stop-writes-on-bgsave-error.
      await refusingAdmin.config('SET', 'save', '3600 1');
      await refusingAdmin.config('SET', 'dir', '/proc');
      await refusingAdmin.bgsave();
      while (!/rdb_last_bgsave_status:err/.test(await refusingAdmin.info('persistence'))) await new Promise((resolve) => setTimeout(resolve, 10));
      const misconf = await outcomes();
      await refusingAdmin.config('SET', 'save', '');
      await refusingAdmin.config('SET', 'min-replicas-to-write', '1');
      const noReplicas = await outcomes();
      await refusingAdmin.config('SET', 'min-replicas-to-write', '0');
      const stuck = blocker.eval('while true do end', 0).catch(() => undefined);
      // Redis answers BUSY to everything once the script has run past busy-reply-threshold.
      while (!(await refusingAdmin.ping().then(() => false, (error: unknown) => /^BUSY /.test(String((error as Error).message))))) await new Promise((resolve) => setTimeout(resolve, 10));
      const busy = await outcomes();
      await refusingAdmin.script('KILL');
      await stuck;
      for (const [name, errors] of [['MISCONF', misconf], ['NOREPLICAS', noReplicas], ['BUSY', busy]] as const) {
        for (const error of errors) {
          expect(String(error), name).toMatch(new RegExp(name));
          expect(error, name).toBeInstanceOf(StoreUnavailableError);
        }
      }
    } finally {
      await store.close();
      blocker.disconnect();
      refusingAdmin.disconnect();
      await refusing.stop();
    }
  });

  it('maps a transaction that Redis refused for being unable to serve to store-unavailable, and keeps other aborts as errors', async () => {
    // A refusal at queue time aborts the whole MULTI (EXECABORT); the reason is only in the
    // queued commands' errors. OOM stands in for a live cluster node's "CLUSTERDOWN Hash slot
    // not served" for a dead node's slot: both are Redis unable to serve, not a bug.
    const key = `${prefix}k`;
    await admin.config('SET', 'maxmemory', '1');
    let oom: unknown;
    try {
      oom = await admin.multi().set(key, 'v').exec().catch((error: unknown) => error);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(oom).toBeInstanceOf(Error);
    expect((oom as Error).message).toMatch(/^EXECABORT/);
    const mapped = unavailable(oom);
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect((mapped as Error).message).toMatch(/OOM/);

    // A transaction refused for its own fault (a wrong number of arguments) is a bug: a 500, not a retry.
    const malformed = await admin.multi().call('SET', key).exec().catch((error: unknown) => error);
    expect((malformed as Error).message).toMatch(/^EXECABORT/);
    expect(unavailable(malformed)).toBe(malformed);
    // Plain connection failures and non-Redis errors keep their mapping.
    expect(unavailable(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBeInstanceOf(StoreUnavailableError);
    // What ioredis itself rejects with when a cluster node is lost (its words, cluster/index.js
    // and Pipeline.js): storage not serving now, a 503, not a bug's 500.
    for (const message of ['Node is disconnected', 'Cluster is disconnected.', 'All keys in the pipeline should belong to the same slots allocation group']) {
      expect(unavailable(new Error(message))).toBeInstanceOf(StoreUnavailableError);
    }
    const bug = new TypeError('x is undefined');
    expect(unavailable(bug)).toBe(bug);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  const WAIT_LIMIT_MS = 10_000;
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
