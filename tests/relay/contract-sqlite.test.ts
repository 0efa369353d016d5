/**
 * The relay contract on the SQLite store: a fresh temp dir per run, reopened for durability; once
 * with the store in the test's thread, once on its own thread (sqlite-proxy.ts, RELAY_SQLITE_THREAD=on).
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

const harnessOf = (open: (dataDir: string) => Promise<RelayStore>) => async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-relay-contract-'));
  return {
    open: () => open(dataDir),
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
