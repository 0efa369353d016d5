// The throwaway redis-server the Redis suites rely on: it answers, it is durable (AOF with fsync
// on every write), and stopping it really stops it.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';

describe.skipIf(skipWithoutRedis('redis-server helper'))('redis-server helper', () => {
  let server: RedisServer;
  let client: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
  });

  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  it('listens on loopback and is configured for durable writes', async () => {
    expect(server.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await client.ping()).toBe('PONG');
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await client.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    expect(await client.config('GET', 'save')).toEqual(['save', '']);
  });

  it('stops for good', async () => {
    const other = await startRedisServer();
    const probe = new Redis(other.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await probe.connect();
    expect(await probe.set('k', 'v')).toBe('OK');
    probe.disconnect();
    await other.stop();
    const after = new Redis(other.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    after.on('error', () => undefined);
    await expect(after.connect()).rejects.toThrow();
    after.disconnect();
  });
});
