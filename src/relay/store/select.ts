/**
 * Picks the store from the environment (issue 5 §8): RELAY_REDIS_URL set → Redis (./redis.ts,
 * imported lazily so SQLite-only runs never load ioredis), else SQLite in RELAY_DATA_DIR (./data).
 */
import { openSqliteStore } from './sqlite.js';
import type { RelayStore } from './types.js';

export async function openStoreFromEnv(env: NodeJS.ProcessEnv): Promise<RelayStore> {
  const redisUrl = env['RELAY_REDIS_URL'];
  if (redisUrl !== undefined && redisUrl !== '') {
    const { openRedisStore } = await import('./redis.js');
    return openRedisStore({ url: redisUrl });
  }
  return openSqliteStore({ dataDir: env['RELAY_DATA_DIR'] ?? './data' });
}
