/**
 * Key names of the Redis store, laid out for Redis Cluster (issue 13 "Scale-out"): every key a
 * script touches carries the same hash tag, so each script runs on one slot of one node.
 *
 * Channels are spread over CHANNEL_SHARDS shards by a hash of their id; a channel's keys and its
 * shard's shared keys (the channel set, counters, nonces, capability expiry index) carry the tag
 * `{c<shard>}`. Blobs and their uploads live in BLOB_SHARDS shards by a hash of the blob's SHA-256
 * (`{b<shard>}`), so finalizing an upload can RENAME its bytes into the blob in one script; an
 * upload token names its blob's shard through a small index key in the token's own shard.
 *
 * Why shards rather than one tag per channel: the per-shard counters and sets are updated in the
 * same script as the channel (exact O(1) stats, one script per post), and reading them all means
 * CHANNEL_SHARDS commands, not one per channel. 128 shards spread over a cluster of up to 128
 * masters; more masters than shards would leave some without channels.
 *
 * Layout v2 (v1 had no tags and global keys; ./redis-migrate.ts moves a standalone v1 store).
 */

/** Channel shards. Fixed for the life of a store: changing it renames every key. */
export const CHANNEL_SHARDS = 128;
/** Blob shards (same reasoning). */
export const BLOB_SHARDS = 128;
/** The layout these keys follow (stored in `P layout`). */
export const KEY_LAYOUT_VERSION = 2;

/** FNV-1a, 32 bit: a fast, stable hash of a string (ids are random, so any decent mix spreads them). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function channelShard(channelId: string): number {
  return fnv1a(channelId) % CHANNEL_SHARDS;
}

export function blobShard(sha256OrUploadHash: string): number {
  return fnv1a(sha256OrUploadHash) % BLOB_SHARDS;
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/** Key builders for prefix `prefix` (which must not contain '{' or '}': it would change the tags). */
export function redisKeys(prefix: string) {
  if (/[{}]/.test(prefix)) throw new RangeError('the Redis key prefix must not contain { or }');
  const c = (shard: number) => `${prefix}{c${shard}}`;
  const b = (shard: number) => `${prefix}{b${shard}}`;
  const ch = (id: string) => c(channelShard(id));
  return {
    /** All keys of channel `id` and of its shard start with this (one slot). */
    channelTag: ch,
    /** The prefix and tag of channel shard `shard` / blob shard `shard`. */
    channelShardTag: c,
    blobShardTag: b,
    channel: (id: string) => `${ch(id)}ch:${id}`,
    events: (id: string) => `${ch(id)}ev:${id}`,
    members: (id: string) => `${ch(id)}mem:${id}`,
    cursors: (id: string) => `${ch(id)}cur:${id}`,
    posts: (id: string) => `${ch(id)}post:${id}`,
    fetchTokens: (id: string) => `${ch(id)}ft:${id}`,
    memberFetchTokens: (id: string, member: string) => `${ch(id)}ftm:${id}:${member}`,
    push: (id: string) => `${ch(id)}push:${id}`,
    online: (id: string) => `${ch(id)}online:${id}`,
    capability: (id: string, hash: string) => `${ch(id)}cap:${hash}`,
    /** Shard-wide keys, addressed by a channel of the shard or by the shard number. */
    channels: (shard: number) => `${c(shard)}channels`,
    stats: (shard: number) => `${c(shard)}stats`,
    nonces: (shard: number) => `${c(shard)}nonces`,
    capabilityExpiry: (shard: number) => `${c(shard)}exp:cap`,
    /** Blob shard keys. */
    upload: (sha: string, hash: string) => `${b(blobShard(sha))}up:${hash}`,
    uploadData: (sha: string, hash: string) => `${b(blobShard(sha))}upd:${hash}`,
    /** Upload token hash → the blob it uploads, in the token's own shard. */
    uploadIndex: (hash: string) => `${b(blobShard(hash))}upi:${hash}`,
    uploadIndexExpiry: (shard: number) => `${b(shard)}exp:upi`,
    blob: (sha: string) => `${b(blobShard(sha))}blob:${sha}`,
    blobData: (sha: string) => `${b(blobShard(sha))}blobd:${sha}`,
    blobCapability: (sha: string, hash: string) => `${b(blobShard(sha))}blobcap:${hash}`,
    uploadExpiry: (shard: number) => `${b(shard)}exp:up`,
    blobExpiry: (shard: number) => `${b(shard)}exp:blob`,
    blobCapabilityExpiry: (shard: number) => `${b(shard)}exp:blobcap`,
    /** Relay nodes alive: node id → heartbeat expiry (ms). */
    nodes: `${prefix}{nodes}nodes`,
    vapid: `${prefix}vapid`,
    layout: `${prefix}layout`,
    /** The pub/sub channel every append publishes its frame on. */
    pubsub: `${prefix}events`,
  };
}
