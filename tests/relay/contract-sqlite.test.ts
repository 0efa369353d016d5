/** The relay contract on the SQLite store: a fresh temp dir per run, reopened for durability. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import { relayContract } from './contract.js';

relayContract('sqlite', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-relay-contract-'));
  return {
    open: async () => openSqliteStore({ dataDir }),
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
});
