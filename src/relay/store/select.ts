/**
 * Picks the store from the environment (issue 5 §8): RELAY_REDIS_URL set → Redis (./redis.ts,
 * imported lazily so SQLite-only runs never load ioredis), else SQLite in RELAY_DATA_DIR (./data).
 */
import { openSqliteStore } from './sqlite.js';
import type { RelayStore } from './types.js';

/** The Redis store module's expected export (src/relay/store/redis.ts). */
interface RedisStoreModule {
  openRedisStore(options: { readonly url: string }): Promise<RelayStore>;
}

export async function openStoreFromEnv(env: NodeJS.ProcessEnv): Promise<RelayStore> {
  const redisUrl = env['RELAY_REDIS_URL'];
  if (redisUrl !== undefined && redisUrl !== '') {
    // A variable specifier keeps the SQLite-only build independent of the Redis module.
    const modulePath = './redis.js';
    const redis = (await import(modulePath)) as RedisStoreModule;
    return redis.openRedisStore({ url: redisUrl });
  }
  return openSqliteStore({ dataDir: env['RELAY_DATA_DIR'] ?? './data' });
}
