/**
 * The relay contract on the SQLite store: a fresh temp dir per run, reopened for durability (relays
 * open at the same time share one store: `sharedOpen`); once with the store in the test's thread,
 * once on its own thread (sqlite-proxy.ts, RELAY_SQLITE_THREAD=on).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteThreadStore } from '../../src/relay/store/sqlite-proxy.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { RelayStore } from '../../src/relay/store/types.js';
import { macContract } from './contract-mac.js';
import { pwaContract } from './contract-pwa.js';
import { relayContract } from './contract.js';

/**
 * One store per data directory at a time (store/sqlite-dir-lock.ts): the relays a test runs side
 * by side on the same data (Redis: several nodes) share the open store, as relays in one process
 * must; it closes when the last of them closes, so the next relay reopens the file (a restart).
 */
function sharedOpen(open: () => Promise<RelayStore>): () => Promise<RelayStore> {
  let shared: { readonly store: Promise<RelayStore>; users: number } | undefined;
  return async () => {
    const entry = (shared ??= { store: open(), users: 0 });
    entry.users += 1;
    const store = await entry.store.catch((error: unknown) => {
      if (shared === entry) shared = undefined;
      throw error;
    });
    let closed = false;
    return {
      ...store,
      async close() {
        if (closed) return;
        closed = true;
        entry.users -= 1;
        if (entry.users > 0) return;
        if (shared === entry) shared = undefined;
        await store.close();
      },
    };
  };
}

const harnessOf = (open: (dataDir: string) => Promise<RelayStore>) => async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-relay-contract-'));
  return {
    open: sharedOpen(() => open(dataDir)),
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
    dump: async () =>
      ['relay.sqlite', 'relay.sqlite-wal']
        .map((name) => join(dataDir, name))
        .filter((path) => existsSync(path))
        .map((path) => readFileSync(path).toString('latin1'))
        .join('\n'),
  };
};
const inProcess = harnessOf(async (dataDir) => openSqliteStore({ dataDir }));
const onThread = harnessOf((dataDir) => openSqliteThreadStore({ dataDir }));

relayContract('sqlite', inProcess);
pwaContract('sqlite', inProcess);
macContract('sqlite', inProcess);
relayContract('sqlite thread', onThread);
pwaContract('sqlite thread', onThread);
macContract('sqlite thread', onThread);
