/** The relay contract on the SQLite store: a fresh temp dir per run, reopened for durability. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import { macContract } from './contract-mac.js';
import { pwaContract } from './contract-pwa.js';
import { relayContract } from './contract.js';

async function harness() {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-relay-contract-'));
  return {
    open: async () => openSqliteStore({ dataDir }),
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
    dump: async () =>
      ['relay.sqlite', 'relay.sqlite-wal']
        .map((name) => join(dataDir, name))
        .filter((path) => existsSync(path))
        .map((path) => readFileSync(path).toString('latin1'))
        .join('\n'),
  };
}

relayContract('sqlite', harness);
pwaContract('sqlite', harness);
macContract('sqlite', harness);
