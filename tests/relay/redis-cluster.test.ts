// The relay on a three-node Redis Cluster (issue 13 "Scale-out"): the whole store contract suite,
// then the failure of one node: the channels it held answer 503 store-unavailable (never a wrong
// or partial answer), every other channel goes on (posts, reads, WebSocket push, whose pub/sub
// connection may have to move to another node), and once the node is back everything that was
// acknowledged before is there, in order.
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelId, ServerFrame } from '../../src/shared/relay-api.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { redisKeys } from '../../src/relay/store/redis-keys.js';
import { openRedisStore } from '../../src/relay/store/redis.js';
import { pwaContract } from './contract-pwa.js';
import { relayContract } from './contract.js';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { skipWithoutRedis } from './helpers/redis-server.js';
import { newMember, rawRequest, setupGroup, signedHeaders, signedJson, subscribeFrame, type TestMember } from './helpers/signed-http.js';

/** Channels made until every node holds at least this many. */
const CHANNELS_PER_NODE = 2;
/** Posts per channel acknowledged before the node goes down. */
const POSTS_BEFORE = 3;
/** A refusal must come within this (the relay must not hang on a dead node). */
const ANSWER_WITHIN_MS = 15_000;

/** Every key of `prefix` on every running node (SCAN per node: keys are spread over the cluster). */
async function keysOf(cluster: RedisCluster, prefix: string): Promise<Array<{ node: Redis; key: string }>> {
  const found: Array<{ node: Redis; key: string }> = [];
  for (const server of cluster.nodes) {
    const node = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    node.on('error', () => undefined);
    try {
      await node.connect();
    } catch {
      continue;
    }
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
      cursor = next;
      for (const key of keys) found.push({ node, key });
    } while (cursor !== '0');
  }
  return found;
}

describe.skipIf(skipWithoutRedis('relay on a Redis Cluster', true))('redis cluster', () => {
  let cluster: RedisCluster;
  let harnesses = 0;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  const harness = async () => {
    harnesses += 1;
    const prefix = `cluster${harnesses}:`;
    const withKeys = async <T>(use: (keys: Array<{ node: Redis; key: string }>) => Promise<T>): Promise<T> => {
      const keys = await keysOf(cluster, prefix);
      try {
        return await use(keys);
      } finally {
        for (const node of new Set(keys.map((entry) => entry.node))) node.disconnect();
      }
    };
    return {
      open: () => openRedisStore({ url: cluster.url, prefix, warn: () => undefined }),
      destroy: () =>
        withKeys(async (keys) => {
          for (const { node, key } of keys) await node.del(key);
        }),
      dump: () =>
        withKeys(async (keys) => {
          const parts: string[] = [];
          for (const { node, key } of keys) {
            const type = await node.type(key);
            parts.push(key);
            if (type === 'string') parts.push((await node.getBuffer(key))?.toString('latin1') ?? '');
            else if (type === 'hash') parts.push(JSON.stringify(await node.hgetall(key)));
            else if (type === 'set') parts.push(JSON.stringify(await node.smembers(key)));
            else if (type === 'zset') parts.push(JSON.stringify(await node.zrange(key, '0', '-1')));
            else if (type === 'stream') parts.push(JSON.stringify(await node.xrange(key, '-', '+')));
          }
          return parts.join('\n');
        }),
    };
  };
  relayContract('redis cluster', harness);
  pwaContract('redis cluster', harness);

  describe('one node down', () => {
    const prefix = 'failover:';
    let relay: RunningRelay;
    const channels: Array<{ id: ChannelId; members: TestMember[]; port: number; seqs: number[] }> = [];

    beforeAll(async () => {
      const store = await openRedisStore({ url: cluster.url, prefix, warn: () => undefined });
      relay = await startRelay({ store, port: 0, logLevel: 'silent', push: false, limits: { rateBurst: 1e6, channelQuotaBurst: 1e6 } });
    });
    afterAll(async () => {
      await relay.close();
    });

    const post = async (channel: (typeof channels)[number], text: string) => {
      const path = `/v1/channels/${channel.id}/events`;
      const body = JSON.stringify({ packet: Buffer.from(text).toString('base64url') });
      const author = channel.members[0] as TestMember;
      const started = Date.now();
      const response = await rawRequest(relay.url + path, 'POST', { 'content-type': 'application/json', ...signedHeaders(author, 'POST', path, body) }, body);
      return { ...response, ms: Date.now() - started, json: JSON.parse(response.body.toString('utf8')) as Record<string, unknown> };
    };

    it('answers 503 store-unavailable for the channels of a dead node only, and loses nothing acknowledged', async () => {
      const keys = redisKeys(prefix);
      // Channels until every node holds some: a channel lives where its shard's slot is.
      const perNode = new Map<number, number>();
      // Bounded: 3 nodes own about a third of the shards each; 200 tries cannot all miss one.
      for (let tries = 0; tries < 200 && cluster.nodes.some((node) => (perNode.get(node.port) ?? 0) < CHANNELS_PER_NODE); tries++) {
        const members = [newMember(), newMember()];
        const id = await setupGroup(relay.url, members);
        const port = (await cluster.nodeOf(keys.channel(id))).port;
        perNode.set(port, (perNode.get(port) ?? 0) + 1);
        channels.push({ id, members, port, seqs: [] });
      }
      for (const node of cluster.nodes) expect(perNode.get(node.port) ?? 0).toBeGreaterThanOrEqual(CHANNELS_PER_NODE);
      for (const channel of channels) {
        for (let i = 0; i < POSTS_BEFORE; i++) {
          const response = await post(channel, `before ${i}`);
          expect(response.status).toBe(201);
          channel.seqs.push(Number(response.json['seq']));
        }
      }

      const victim = cluster.nodes[1];
      if (victim === undefined) throw new Error('no second node');
      await victim.kill();
      const lost = channels.filter((channel) => channel.port === victim.port);
      const alive = channels.filter((channel) => channel.port !== victim.port);

      // The dead node's channels: a clear, retryable refusal, in bounded time; posts and reads alike.
      for (const channel of lost) {
        const refused = await post(channel, 'while down');
        expect(refused.status).toBe(503);
        expect(refused.json['code']).toBe('store-unavailable');
        expect(refused.headers['retry-after']).toBe('5');
        expect(refused.ms).toBeLessThan(ANSWER_WITHIN_MS);
        const read = await signedJson(relay.url, channel.members[1], 'GET', `/v1/channels/${channel.id}/events?after=0`);
        expect(read.status).toBe(503);
        expect(read.json['code']).toBe('store-unavailable');
      }
      // Every other channel goes on: posts, reads, and WebSocket push (over a pub/sub
      // connection that may have had to move off the dead node).
      const watched = alive[0];
      if (watched === undefined) throw new Error('no channel on a live node');
      const frames: ServerFrame[] = [];
      const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/ws`);
      ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(JSON.stringify(subscribeFrame(watched.members[1] as TestMember, watched.id, watched.seqs.at(-1) ?? 0)));
      await expect.poll(() => frames.some((frame) => frame.type === 'subscribed'), { timeout: ANSWER_WITHIN_MS }).toBe(true);
      for (const channel of alive) {
        const accepted = await post(channel, 'while another node is down');
        expect(accepted.status).toBe(201);
        channel.seqs.push(Number(accepted.json['seq']));
        const read = await signedJson<{ events: Array<{ seq: number }> }>(relay.url, channel.members[1], 'GET', `/v1/channels/${channel.id}/events?after=0`);
        expect(read.status).toBe(200);
        expect(read.json.events.map((event) => event.seq).slice(-channel.seqs.length)).toEqual(channel.seqs);
      }
      const pushed = (): number[] => frames.flatMap((frame) => (frame.type === 'event' && frame.channel === watched.id ? [frame.event.seq] : []));
      await expect.poll(pushed, { timeout: ANSWER_WITHIN_MS }).toEqual([watched.seqs.at(-1)]);
      // A subscription to a channel of the dead node is refused with the same code.
      const down = lost[0];
      if (down === undefined) throw new Error('no channel on the dead node');
      ws.send(JSON.stringify(subscribeFrame(down.members[1] as TestMember, down.id, 0)));
      await expect
        .poll(() => frames.find((frame) => frame.type === 'error' && frame.code === 'store-unavailable'), { timeout: ANSWER_WITHIN_MS })
        .toBeDefined();
      ws.terminate();

      // Back: every acknowledged post is there, in order, and the channel takes posts again.
      await victim.restart();
      await cluster.waitHealthy();
      /** The relay's cluster client may need a moment to reconnect to the node: 503 until then. */
      const once = async <T extends { status: number }>(request: () => Promise<T>): Promise<T> => {
        let response = await request();
        // Bounded: 50 tries, 200 ms apart.
        for (let tries = 0; response.status === 503 && tries < 50; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          response = await request();
        }
        return response;
      };
      for (const channel of lost) {
        const read = await once(() =>
          signedJson<{ events: Array<{ seq: number }> }>(relay.url, channel.members[1], 'GET', `/v1/channels/${channel.id}/events?after=0`),
        );
        expect(read.status).toBe(200);
        expect(read.json.events.map((event) => event.seq).slice(-POSTS_BEFORE)).toEqual(channel.seqs);
        const again = await once(() => post(channel, 'after'));
        expect(again.status).toBe(201);
        expect(Number(again.json['seq'])).toBe((channel.seqs.at(-1) ?? 0) + 1);
      }
    });
  });
});
