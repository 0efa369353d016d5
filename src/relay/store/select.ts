/**
 * Picks the store from the environment (issue 5 §8): RELAY_REDIS_URL set → Redis (./redis.ts,
 * imported lazily so SQLite-only runs never load ioredis), else SQLite in RELAY_DATA_DIR (./data),
 * in the event loop's thread, or on its own thread (./sqlite-proxy.ts) with RELAY_SQLITE_THREAD=on.
 */
import { openSqliteThreadStore } from './sqlite-proxy.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { RelayStore } from './types.js';

export async function openStoreFromEnv(env: NodeJS.ProcessEnv): Promise<RelayStore> {
  const choice = storeChoiceFromEnv(env);
  if (choice.kind === 'redis') {
    const { openRedisStore } = await import('./redis.js');
    return openRedisStore({ url: choice.url });
  }
  return openSqlite({ dataDir: choice.dataDir }, sqliteThreadFromEnv(env['RELAY_SQLITE_THREAD']));
}

/** Which store the environment picks: RELAY_REDIS_URL set → Redis, else SQLite in RELAY_DATA_DIR (./data). */
export function storeChoiceFromEnv(env: NodeJS.ProcessEnv): { readonly kind: 'redis'; readonly url: string } | { readonly kind: 'sqlite'; readonly dataDir: string } {
  const url = env['RELAY_REDIS_URL'];
  return url !== undefined && url !== '' ? { kind: 'redis', url } : { kind: 'sqlite', dataDir: env['RELAY_DATA_DIR'] ?? './data' };
}

/**
 * RELAY_SQLITE_THREAD: 'on' → true (the store on its own thread: the event loop's CPU per post
 * drops, the process's rises a little, which pays only on a host with a core to spare; on the
 * 2-core bench machine it did not raise the peak, src/relay/README.md "The SQLite store on its own
 * thread"); unset, '' or 'off' → false (the default: in the event loop's thread). Anything else
 * stops the relay.
 */
export function sqliteThreadFromEnv(text: string | undefined): boolean {
  const value = (text ?? '').trim();
  if (value === 'on') return true;
  if (value === '' || value === 'off') return false;
  throw new Error(`RELAY_SQLITE_THREAD must be on or off, got ${text}`);
}

/**
 * The SQLite store, on its own thread when `thread` is true and the data is in a file; a
 * ':memory:' store lives in the event loop's thread (a thread would have its own, empty database).
 */
export async function openSqlite(options: Pick<SqliteStoreOptions, 'dataDir' | 'durability'>, thread: boolean): Promise<RelayStore> {
  if (thread && options.dataDir !== ':memory:') return openSqliteThreadStore(options);
  return openSqliteStore(options);
}
