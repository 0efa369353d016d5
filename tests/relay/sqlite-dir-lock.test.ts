// One relay process per SQLite data directory (store/sqlite-dir-lock.ts): a second relay process
// on a directory in use exits at once with the operator's message (its store in the event loop's
// thread or on its own); a SIGKILLed relay leaves no stale lock; in one process a second store is
// refused too, a refused open keeps the lock other processes see, close() and a store thread that
// ends release it, and ':memory:' takes none. An open that fails on the data file leaves nothing open.
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, isDataDirInUse } from '../../src/relay/store/sqlite-dir-lock.js';
import { openSqliteThreadStore } from '../../src/relay/store/sqlite-proxy.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { RelayStore } from '../../src/relay/store/types.js';
import { openInChild } from './helpers/open-data-dir.js';
import { startRelayProcess, type RelayProcess } from './helpers/process.js';
import { tempDirs } from './helpers/sqlite-fixture.js';

/** Up to four child processes start in a test (tsx transpiles each: seconds apiece on 2 busy cores). */
const PROCESS_TEST_TIMEOUT_MS = 300_000;

const inUse = (dir: string): string => `the data directory ${dir} is in use by another relay process`;

describe('one relay process per SQLite data directory', () => {
  const dirs = tempDirs('covey-dir-lock-');
  const stores: RelayStore[] = [];
  const relays: RelayProcess[] = [];
  const dataDir = (): string => dirs.make();
  const open = (dir: string): RelayStore => {
    const store = openSqliteStore({ dataDir: dir, warn: () => undefined });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.allSettled(relays.splice(0).map((relay) => relay.kill()));
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    dirs.removeAll();
  });

  it(
    'refuses a second relay process at once with the message, the store in the event loop or on its thread; a SIGKILLed one leaves no stale lock',
    async () => {
      const dir = dataDir();
      const first = await startRelayProcess({ env: { RELAY_DATA_DIR: dir, RELAY_LOG: 'silent' } });
      relays.push(first);
      for (const thread of ['off', 'on']) {
        // Another port, the same directory: what the lock is for.
        const failure = await startRelayProcess({ env: { RELAY_DATA_DIR: dir, RELAY_SQLITE_THREAD: thread, RELAY_LOG: 'silent' } }).then(
          (relay) => {
            relays.push(relay);
            return `RELAY_SQLITE_THREAD=${thread}: a second relay started on ${relay.url}`;
          },
          (error: unknown) => String(error),
        );
        expect(failure).toContain('relay exited (code 1');
        expect(failure).toContain(`relay failed to start: ${inUse(dir)}`);
        expect(failure).not.toContain('    at ');
      }
      // The refused ones left the first alone.
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

      await first.kill();
      const again = await startRelayProcess({ env: { RELAY_DATA_DIR: dir, RELAY_LOG: 'silent' } });
      relays.push(again);
      expect((await fetch(`${again.url}/healthz`)).status).toBe(200);
      // And the one that now runs holds it as the first did.
      expect(() => open(dir)).toThrow(DataDirInUseError);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    "in one process: a second store is refused, the lock outlives that refusal for other processes, close() releases it; ':memory:' takes none",
    async () => {
      const dir = dataDir();
      const first = open(dir);
      expect(() => open(dir)).toThrow(DataDirInUseError);
      expect(() => open(dir)).toThrow(inUse(dir));
      // The refused open closed its own descriptor of relay.lock, which would drop every POSIX lock
      // this process holds on that file if SQLite did not keep the descriptor until the lock is released.
      expect(await openInChild(dir)).toEqual({ error: 'DataDirInUseError', message: expect.stringContaining(inUse(dir)) });
      await first.close();
      await open(dir).close();
      expect(await openInChild(dir)).toEqual({ opened: true });
      // A directory held by another process: refused here too.
      const held = await startRelayProcess({ env: { RELAY_DATA_DIR: dir, RELAY_LOG: 'silent' } });
      relays.push(held);
      expect(() => open(dir)).toThrow(inUse(dir));
      const [a, b] = [openSqliteStore({ dataDir: ':memory:' }), openSqliteStore({ dataDir: ':memory:' })];
      stores.push(a, b);
      expect(await a.stats()).toEqual(await b.stats());
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it.skipIf(process.platform !== 'linux')('a data file that is not a database: the open fails, keeps no descriptor of it, and releases the lock', async () => {
    const dir = dataDir();
    const file = join(dir, 'relay.sqlite');
    writeFileSync(file, 'not a database, but long enough to have a header that SQLite reads and refuses'.repeat(4));
    /** This process's open descriptors of the data file (/proc/self/fd). */
    const descriptors = (): number =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false; // closed meanwhile (the readdir's own descriptor)
        }
      }).length;
    expect(() => open(dir)).toThrow(/not a database/);
    expect(descriptors()).toBe(0);
    rmSync(file);
    await open(dir).close();
  });

  it('the store on its own thread: refused with the same error, released by close() and by the end of its thread', async () => {
    const dir = dataDir();
    const inProcess = open(dir);
    const refused = await openSqliteThreadStore({ dataDir: dir, warn: () => undefined }).then(
      (store) => {
        stores.push(store);
        return undefined;
      },
      (error: unknown) => error,
    );
    // Across the thread the error keeps its name (not its class): what main.ts looks for.
    expect(isDataDirInUse(refused)).toBe(true);
    expect((refused as Error).message).toContain(inUse(dir));
    await inProcess.close();

    const threaded = await openSqliteThreadStore({ dataDir: dir, warn: () => undefined });
    stores.push(threaded);
    expect(() => open(dir)).toThrow(DataDirInUseError);
    await threaded.close();
    await open(dir).close();

    // A thread that ends without close() (a crash of the thread): better-sqlite3 closes its
    // connections, so the relay, restarted in the same process by a test, can open the directory.
    const crashed = await openSqliteThreadStore({ dataDir: dir, warn: () => undefined });
    stores.push(crashed);
    expect(() => open(dir)).toThrow(DataDirInUseError);
    await crashed.terminateThread();
    await open(dir).close();
  });
});
