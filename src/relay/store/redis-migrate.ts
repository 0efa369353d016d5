/**
 * Moves a standalone Redis store from key layout v1 (no hash tags; global channel set, counters,
 * nonces and expiry indexes; a feed stream) to layout v2 (./redis-keys.ts), once, when the first
 * v2 relay node starts on it. Stop every older relay node first: one writing v1 keys meanwhile
 * would write them where nobody reads.
 *
 * Idempotent, so a node that dies halfway can simply start again: each key is RENAMEd only if its
 * v1 name still exists, the counters are recomputed from the moved channels at the end, and the v1
 * indexes are deleted last. A lock (SET NX with a timeout) keeps a second node starting at the
 * same moment from racing this one; it waits for the layout mark instead.
 *
 * Nonces: v1 kept them in one set; v2 keeps them per shard (posts in their channel's shard, other
 * signed requests in their key's). Each v1 nonce is copied to its key's shard and to the shard of
 * every channel the key is a member of, so no request accepted before the move can be replayed
 * after it.
 */
import type { Redis } from 'ioredis';
import { CHANNEL_SHARDS, KEY_LAYOUT_VERSION, blobShard, channelShard, redisKeys } from './redis-keys.js';

/** How long one node may hold the migration lock (a very large store takes a while). */
const LOCK_TTL_MS = 10 * 60 * 1000;
/** How often a node waiting for another node's migration looks again. */
const WAIT_POLL_MS = 500;
/** Members per ZSCAN/SSCAN/HSCAN page. */
const SCAN_COUNT = 500;

/** Every member of a v1 sorted set with its score (ZSCAN: bounded pages, not one huge reply). */
async function zscanAll(redis: Redis, key: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  let cursor = '0';
  do {
    const [next, flat] = await redis.zscan(key, cursor, 'COUNT', SCAN_COUNT);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, Number(flat[i + 1])]);
  } while (cursor !== '0');
  return out;
}

async function moveIfPresent(redis: Redis, from: string, to: string): Promise<boolean> {
  if ((await redis.exists(from)) === 0) return false;
  await redis.rename(from, to);
  return true;
}

/** Whether `prefix` holds any v1 key that the move would carry. */
async function hasLayoutV1(redis: Redis, prefix: string): Promise<boolean> {
  const globals = ['channels', 'stats', 'nonces', 'feed', 'exp:cap', 'exp:up', 'exp:blob', 'exp:blobcap'].map((name) => `${prefix}${name}`);
  return (await redis.exists(...globals)) > 0;
}

export async function migrateLayoutV1(redis: Redis, prefix: string, warn: (message: string) => void): Promise<void> {
  if (!(await hasLayoutV1(redis, prefix))) return;
  const v2 = redisKeys(prefix);
  const lock = `${prefix}migrating`;
  // Bounded: the lock expires, so some node gets it within LOCK_TTL_MS.
  while ((await redis.set(lock, String(process.pid), 'PX', LOCK_TTL_MS, 'NX')) === null) {
    if ((await redis.get(v2.layout)) === String(KEY_LAYOUT_VERSION)) return;
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
  try {
    if (!(await hasLayoutV1(redis, prefix))) return;
    warn(`moving the Redis keys under "${prefix}" to layout ${KEY_LAYOUT_VERSION} (hash tags for Redis Cluster)`);
    const v1 = (name: string): string => `${prefix}${name}`;
    // Channels and everything kept per channel.
    const channelsOfKey = new Map<string, string[]>();
    let moved = 0;
    let cursor = '0';
    do {
      const [next, ids] = await redis.sscan(v1('channels'), cursor, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const id of ids) {
        for (const [name, target] of [
          ['ch', v2.channel(id)],
          ['ev', v2.events(id)],
          ['mem', v2.members(id)],
          ['cur', v2.cursors(id)],
          ['post', v2.posts(id)],
          ['push', v2.push(id)],
        ] as const) {
          await moveIfPresent(redis, v1(`${name}:${id}`), target);
        }
        // A fetch token's member names its per-member index.
        if ((await redis.exists(v1(`ft:${id}`))) === 1) {
          const tokens = await redis.hvals(v1(`ft:${id}`));
          for (const member of new Set(tokens.map((value) => value.split('\n')[0] ?? ''))) {
            await moveIfPresent(redis, v1(`ftm:${id}:${member}`), v2.memberFetchTokens(id, member));
          }
          await redis.rename(v1(`ft:${id}`), v2.fetchTokens(id));
        }
        // Presence is per running node: every node starts afresh.
        await redis.del(v1(`online:${id}`));
        await redis.sadd(v2.channels(channelShard(id)), id);
        for (const member of await redis.hkeys(v2.members(id))) {
          const list = channelsOfKey.get(member) ?? [];
          list.push(id);
          channelsOfKey.set(member, list);
        }
        moved += 1;
      }
    } while (cursor !== '0');
    // Capabilities: found through their expiry index, moved next to their channel.
    for (const [hash, expiresAtMs] of await zscanAll(redis, v1('exp:cap'))) {
      const channel = await redis.hget(v1(`cap:${hash}`), 'channel');
      if (channel === null) continue;
      await redis.rename(v1(`cap:${hash}`), v2.capability(channel, hash));
      await redis.zadd(v2.capabilityExpiry(channelShard(channel)), expiresAtMs, hash);
    }
    // Uploads, blobs and blob read capabilities: into their blob's shard.
    for (const [hash, expiresAtMs] of await zscanAll(redis, v1('exp:up'))) {
      const sha = await redis.hget(v1(`up:${hash}`), 'sha');
      if (sha === null) continue;
      await redis.rename(v1(`up:${hash}`), v2.upload(sha, hash));
      await moveIfPresent(redis, v1(`upd:${hash}`), v2.uploadData(sha, hash));
      await redis.zadd(v2.uploadExpiry(blobShard(sha)), expiresAtMs, hash);
      await redis.set(v2.uploadIndex(hash), sha);
      await redis.zadd(v2.uploadIndexExpiry(blobShard(hash)), expiresAtMs, hash);
    }
    for (const [sha, expiresAtMs] of await zscanAll(redis, v1('exp:blob'))) {
      if (!(await moveIfPresent(redis, v1(`blob:${sha}`), v2.blob(sha)))) continue;
      await moveIfPresent(redis, v1(`blobd:${sha}`), v2.blobData(sha));
      await redis.zadd(v2.blobExpiry(blobShard(sha)), expiresAtMs, sha);
    }
    for (const [hash, expiresAtMs] of await zscanAll(redis, v1('exp:blobcap'))) {
      const sha = await redis.hget(v1(`blobcap:${hash}`), 'sha');
      if (sha === null) continue;
      await redis.rename(v1(`blobcap:${hash}`), v2.blobCapability(sha, hash));
      await redis.zadd(v2.blobCapabilityExpiry(blobShard(sha)), expiresAtMs, hash);
    }
    // Nonces: see the module comment.
    for (const [member, expiresAtMs] of await zscanAll(redis, v1('nonces'))) {
      const memberKey = member.split('\n')[0] ?? '';
      const shards = new Set([channelShard(memberKey), ...(channelsOfKey.get(memberKey) ?? []).map(channelShard)]);
      for (const shard of shards) await redis.zadd(v2.nonces(shard), 'NX', expiresAtMs, member);
    }
    // Counters, from what was moved (exact whatever happened in an interrupted earlier run).
    for (let shard = 0; shard < CHANNEL_SHARDS; shard++) {
      let events = 0;
      let bytes = 0;
      let page = '0';
      do {
        const [next, ids] = await redis.sscan(v2.channels(shard), page, 'COUNT', SCAN_COUNT);
        page = next;
        for (const id of ids) {
          events += await redis.xlen(v2.events(id));
          bytes += Number((await redis.hget(v2.channel(id), 'bytes')) ?? 0);
        }
      } while (page !== '0');
      if (events > 0 || bytes > 0) await redis.hset(v2.stats(shard), 'events', events, 'bytes', bytes);
      else await redis.del(v2.stats(shard));
    }
    await redis.del(v1('channels'), v1('stats'), v1('nonces'), v1('feed'), v1('exp:cap'), v1('exp:up'), v1('exp:blob'), v1('exp:blobcap'));
    await redis.set(v2.layout, String(KEY_LAYOUT_VERSION));
    warn(`moved ${moved} channels to layout ${KEY_LAYOUT_VERSION}`);
  } finally {
    await redis.del(lock);
  }
}
