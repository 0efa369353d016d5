// The relay contract (tests/relay/contract.ts) on the Redis store: a fresh redis-server for this
// file; each harness gets its own key prefix, so suites never see each other's data.
import { afterAll, beforeAll, describe } from 'vitest';
import { openRedisStore } from '../../src/relay/store/redis.js';
import { macContract } from './contract-mac.js';
import { pwaContract } from './contract-pwa.js';
import { relayContract } from './contract.js';
import { skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { Redis } from 'ioredis';

describe.skipIf(skipWithoutRedis('relay contract (redis)'))('redis', () => {
  let server: RedisServer;
  let harnesses = 0;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  const harness = async () => {
    harnesses += 1;
    const prefix = `contract${harnesses}:`;
    return {
      open: () => openRedisStore({ url: server.url, prefix, warn: () => undefined }),
      destroy: async () => {
        // Bounded: SCAN visits each key of this prefix once.
        const admin = new Redis(server.url);
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
          cursor = next;
          if (keys.length > 0) await admin.del(...keys);
        } while (cursor !== '0');
        admin.disconnect();
      },
      dump: async () => {
        // Every key of this prefix with its whole value, whatever its type.
        const admin = new Redis(server.url);
        const parts: string[] = [];
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
          cursor = next;
          for (const key of keys) {
            const type = await admin.type(key);
            parts.push(key);
            if (type === 'string') parts.push((await admin.getBuffer(key))?.toString('latin1') ?? '');
            else if (type === 'hash') parts.push(JSON.stringify(await admin.hgetall(key)));
            else if (type === 'set') parts.push(JSON.stringify(await admin.smembers(key)));
            else if (type === 'zset') parts.push(JSON.stringify(await admin.zrange(key, '0', '-1')));
            else if (type === 'stream') parts.push(JSON.stringify(await admin.xrange(key, '-', '+')));
          }
        } while (cursor !== '0');
        admin.disconnect();
        return parts.join('\n');
      },
    };
  };
  relayContract('redis', harness);
  pwaContract('redis', harness);
  macContract('redis', harness);
});
