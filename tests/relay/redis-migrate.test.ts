// A standalone Redis store written by a relay of key layout v1 (no hash tags, global sets and
// counters) is moved to layout v2 when a new relay opens it: every channel, capability, fetch
// token, push subscription, upload, blob and nonce still works, the counters are right, no v1 key
// is left, and opening again changes nothing.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobHash, ChannelId, MemberKey } from '../../src/shared/relay-api.js';
import { openRedisStore } from '../../src/relay/store/redis.js';
import type { CapabilityHash, RelayStore } from '../../src/relay/store/types.js';
import { skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';

const NOW_MS = 1_700_000_000_000;
const P = 'old:';
const CHANNEL = 'ch-old' as ChannelId;
const OWNER = `owner-${'o'.repeat(37)}` as MemberKey;
const BOB = `bob-${'b'.repeat(39)}` as MemberKey;
const CAP = 'c'.repeat(64) as CapabilityHash;
const TOKEN = 'f'.repeat(64) as CapabilityHash;
const UPLOAD = 'a'.repeat(64) as CapabilityHash;
const BLOB_CAP = 'e'.repeat(64) as CapabilityHash;
const SHA = 'ab'.repeat(32) as BlobHash;
const PACKET = 'AQID';
const LATER = NOW_MS + 60_000;

/** Writes what a v1 relay left: one channel with three events and everything around it. */
async function writeLayoutV1(redis: Redis): Promise<void> {
  const data = (event: Record<string, unknown>): string => JSON.stringify(event);
  const events = [
    { seq: 1, d: data({ type: 'member-joined', timeMs: NOW_MS, member: OWNER }), sz: 64 },
    { seq: 2, d: data({ type: 'member-joined', timeMs: NOW_MS, member: BOB }), sz: 64 },
    { seq: 3, d: data({ type: 'packet', timeMs: NOW_MS, author: OWNER, packet: PACKET }), sz: 64 + PACKET.length, pf: `${OWNER}\np1` },
  ];
  for (const event of events) {
    const fields = ['d', event.d, 't', String(NOW_MS), 'sz', String(event.sz), ...(event.pf === undefined ? [] : ['pf', event.pf])];
    await redis.xadd(`${P}ev:${CHANNEL}`, `${event.seq}-0`, ...fields);
  }
  const bytes = events.reduce((sum, event) => sum + event.sz, 0);
  await redis.hset(`${P}ch:${CHANNEL}`, 'kind', 'group', 'owner', OWNER, 'created', NOW_MS, 'head', 3, 'first', 1, 'bytes', bytes);
  await redis.hset(`${P}mem:${CHANNEL}`, OWNER, 1, BOB, 2);
  await redis.hset(`${P}cur:${CHANNEL}`, OWNER, 0, BOB, 1);
  await redis.hset(`${P}post:${CHANNEL}`, `${OWNER}\np1`, 3);
  await redis.sadd(`${P}channels`, CHANNEL);
  await redis.hset(`${P}stats`, 'events', 3, 'bytes', bytes);
  await redis.hset(`${P}cap:${CAP}`, 'channel', CHANNEL, 'kind', 'invite', 'exp', LATER, 'uses', 2, 'creator', OWNER, 'cjoined', 1);
  await redis.zadd(`${P}exp:cap`, LATER, CAP);
  await redis.zadd(`${P}nonces`, LATER, `${OWNER}\nnonce-from-v1`);
  await redis.hset(`${P}ft:${CHANNEL}`, TOKEN, `${BOB}\n2\n${LATER}`);
  await redis.zadd(`${P}ftm:${CHANNEL}:${BOB}`, LATER, TOKEN);
  await redis.hset(`${P}push:${CHANNEL}`, BOB, JSON.stringify({ e: 'https://push.example/x', p: 'p', a: 'a' }));
  await redis.hset(`${P}online:${CHANNEL}`, `${BOB}\nold-node`, 1);
  await redis.hset(`${P}up:${UPLOAD}`, 'channel', CHANNEL, 'sha', SHA, 'size', 4, 'received', 2, 'exp', LATER);
  await redis.set(`${P}upd:${UPLOAD}`, Buffer.from([1, 2]));
  await redis.zadd(`${P}exp:up`, LATER, UPLOAD);
  await redis.hset(`${P}blob:${SHA}`, 'exp', LATER, 'size', 3);
  await redis.set(`${P}blobd:${SHA}`, Buffer.from([7, 8, 9]));
  await redis.zadd(`${P}exp:blob`, LATER, SHA);
  await redis.hset(`${P}blobcap:${BLOB_CAP}`, 'sha', SHA, 'exp', LATER);
  await redis.zadd(`${P}exp:blobcap`, LATER, BLOB_CAP);
  await redis.xadd(`${P}feed`, '*', 'c', CHANNEL, 's', '3');
  await redis.set(`${P}vapid`, JSON.stringify({ publicKey: 'pub', privateKey: 'priv' }));
}

describe.skipIf(skipWithoutRedis('redis layout migration'))('redis layout migration', () => {
  let server: RedisServer;
  let admin: Redis;
  const opened: RelayStore[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    await Promise.all(opened.map((store) => store.close()));
    admin.disconnect();
    await server.stop();
  });

  it('moves a v1 store to layout v2 and keeps everything it held', async () => {
    await writeLayoutV1(admin);
    const warnings: string[] = [];
    const store = await openRedisStore({ url: server.url, prefix: P, warn: (message) => warnings.push(message) });
    opened.push(store);
    expect(warnings.join('\n')).toMatch(/moved 1 channels to layout 2/);

    expect(await store.getChannel(CHANNEL)).toMatchObject({ headSeq: 3, firstSeq: 1, memberCount: 2, kind: 'group', owner: OWNER });
    expect((await store.readEvents(CHANNEL, 0, 10, Infinity)).map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(await store.listMembers(CHANNEL)).toEqual([
      { key: OWNER, joinedSeq: 1, cursor: 0 },
      { key: BOB, joinedSeq: 2, cursor: 1 },
    ]);
    expect(await store.stats()).toEqual({ channels: 1, events: 3, bytes: 3 * 64 + PACKET.length });
    expect(await store.checkCapability(CAP, CHANNEL, 'invite', NOW_MS)).toBe(true);
    expect(await store.useFetchToken(TOKEN, CHANNEL, NOW_MS)).toEqual({ key: BOB, joinedSeq: 2, cursor: 1 });
    // Presence of the old nodes is dropped: nobody is online until they subscribe again.
    expect(await store.pushTargets(CHANNEL)).toEqual([
      { member: BOB, subscription: { endpoint: 'https://push.example/x', p256dh: 'p', auth: 'a' }, online: false },
    ]);
    expect(await store.getUpload(UPLOAD, NOW_MS)).toMatchObject({ sha256: SHA, size: 4, received: 2 });
    expect(await store.appendUploadChunk(UPLOAD, 2, new Uint8Array([3, 4]), NOW_MS)).toEqual({ ok: true, value: 4 });
    expect(await store.openBlob(SHA, BLOB_CAP, NOW_MS)).toEqual({ sha256: SHA, size: 3 });
    expect(await store.readBlobRange(SHA, 0, 10)).toEqual(new Uint8Array([7, 8, 9]));
    expect(await store.vapidKeys({ publicKey: 'new', privateKey: 'new' })).toEqual({ publicKey: 'pub', privateKey: 'priv' });

    // A request accepted before the move cannot be replayed after it: as a post, or otherwise.
    expect(await store.useNonce(OWNER, 'nonce-from-v1', LATER)).toBe(false);
    const replayed = await store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: PACKET }, NOW_MS, {
      asMember: OWNER,
      nonce: { key: OWNER, nonce: 'nonce-from-v1', expiresAtMs: LATER },
    });
    expect(replayed).toEqual({ ok: false, code: 'replayed-nonce' });
    // Idempotent posts still find their first seq; new posts go on from the head.
    const again = await store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: PACKET }, NOW_MS, { asMember: OWNER, postId: 'p1' });
    expect(again.ok && again.value).toMatchObject({ duplicate: true, event: { seq: 3 } });
    const next = await store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: PACKET }, NOW_MS, { asMember: OWNER });
    expect(next.ok && next.value.event.seq).toBe(4);

    // No v1 key is left: every key but the two singletons carries a hash tag.
    const left = await admin.keys(`${P}*`);
    expect(left.filter((name) => !name.includes('{')).sort()).toEqual([`${P}layout`, `${P}vapid`]);
    expect(await admin.get(`${P}layout`)).toBe('2');

    // Opening again (another node, a restart) moves nothing and changes nothing.
    const keysBefore = (await admin.keys(`${P}*`)).sort();
    const second = await openRedisStore({ url: server.url, prefix: P, warn: (message) => warnings.push(message) });
    opened.push(second);
    expect((await admin.keys(`${P}*`)).sort()).toEqual(keysBefore);
    expect(warnings.filter((message) => /moved/.test(message))).toHaveLength(1);
    expect(await second.stats()).toEqual({ channels: 1, events: 4, bytes: 4 * 64 + 2 * PACKET.length });
  });
});
