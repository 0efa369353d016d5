// The SQLite store's group commit (issue 13 "Scale-out"): a group of writes commits without an
// fsync, then ONE fdatasync of the WAL runs off the event loop; a write resolves, and its event is
// announced, only after that fdatasync; reads wait for it too, so nobody sees an event a power cut
// could take back; the next group waits; a failed fdatasync stops the store. Checkpoints run on
// their own thread. The fdatasync is held and released by the test (`syncFile`), so none of this
// depends on timing.
import Database from 'better-sqlite3';
import { fdatasync, fdatasyncSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelId, MemberKey, RelayEvent } from '../../src/shared/relay-api.js';
import { INLINE_SYNC_MAX_MS, openSqliteStore, SQLITE_FILE_NAME, type SqliteRelayStore } from '../../src/relay/store/sqlite.js';
import { StoreUnavailableError } from '../../src/relay/store/types.js';
import { startRelay } from '../../src/relay/server.js';
import { RelayClient } from '../../src/worker/relay-client.js';
import { makeMember, nodeFetch, packetOf } from './helpers/relay-harness.js';

function makeClient(baseUrl: string, signer: ConstructorParameters<typeof RelayClient>[0]['signer']): RelayClient {
  return new RelayClient({ baseUrl, fetch: nodeFetch, ...(signer === undefined ? {} : { signer }) });
}

const CHANNEL = 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId;
const OWNER = 'B'.repeat(43) as MemberKey;
const NOW_MS = 1_700_000_000_000;

/** An fdatasync the test completes by hand. */
class HeldSync {
  readonly calls: Array<(error: Error | null) => void> = [];
  readonly syncFile = (_fd: number, done: (error: Error | null) => void): void => {
    this.calls.push(done);
  };

  async waitForCall(count: number): Promise<void> {
    await expect.poll(() => this.calls.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(count);
  }

  release(index: number, error: Error | null = null): void {
    const done = this.calls[index];
    if (done === undefined) throw new Error(`no fdatasync call ${index}`);
    done(error);
  }
}

/** Tracks whether a promise has settled yet. */
function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  const wrapped = promise.finally(() => {
    settled = true;
  });
  wrapped.catch(() => undefined);
  return { settled: () => settled, promise: wrapped };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('sqlite group commit', () => {
  const dirs: string[] = [];
  const stores: SqliteRelayStore[] = [];
  const open = (sync?: HeldSync): { store: SqliteRelayStore; dataDir: string } => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covey-sqlite-commit-'));
    dirs.push(dataDir);
    const store = openSqliteStore({ dataDir, warn: () => undefined, ...(sync === undefined ? {} : { syncFile: sync.syncFile }) });
    stores.push(store);
    return { store, dataDir };
  };
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('answers, announces and shows a write only after its group is fdatasynced; the next group waits', async () => {
    const sync = new HeldSync();
    const { store, dataDir } = open(sync);
    const heard: RelayEvent[] = [];
    store.subscribe((_channel, event) => heard.push(event));

    const created = track(store.createChannel(CHANNEL, 'group', OWNER, NOW_MS));
    await sync.waitForCall(1);
    await turns();
    expect(created.settled()).toBe(false);
    expect(heard).toEqual([]);
    sync.release(0);
    await created.promise;
    expect(heard.map((event) => event.seq)).toEqual([1]);

    // Group 2: one post. Its fdatasync is held.
    const post = (packet: string) => store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet }, NOW_MS, { asMember: OWNER });
    const first = track(post('AAAA'));
    await sync.waitForCall(2);
    // Committed (another connection sees it in the WAL) but not answered, not announced, not readable.
    const probe = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
    const head = (): number => (probe.prepare('SELECT head_seq AS h FROM channels').get() as { h: number }).h;
    expect(head()).toBe(2);
    const read = track(store.getChannel(CHANNEL));
    const events = track(store.readEvents(CHANNEL, 0, 10, Infinity));
    // The next post waits for the running fdatasync: not even committed.
    const second = track(post('BBBB'));
    await turns();
    expect([first.settled(), read.settled(), events.settled(), second.settled()]).toEqual([false, false, false, false]);
    expect(heard.map((event) => event.seq)).toEqual([1]);
    expect(head()).toBe(2);
    expect(sync.calls).toHaveLength(2);

    sync.release(1);
    const firstResult = await first.promise;
    expect(firstResult.ok && firstResult.value.event.seq).toBe(2);
    // Reads ran while everything they could see was durable: before the second post committed.
    expect((await read.promise)?.headSeq).toBe(2);
    expect((await events.promise).map((event) => event.seq)).toEqual([1, 2]);
    expect(heard.map((event) => event.seq)).toEqual([1, 2]);

    // Then the second post's group commits and waits for its own fdatasync.
    await sync.waitForCall(3);
    expect(head()).toBe(3);
    expect(second.settled()).toBe(false);
    sync.release(2);
    const secondResult = await second.promise;
    expect(secondResult.ok && secondResult.value.event.seq).toBe(3);
    probe.close();
  });

  it('commits the writes that arrived during an fdatasync as one group with one fdatasync', async () => {
    const sync = new HeldSync();
    const { store } = open(sync);
    const created = store.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
    await sync.waitForCall(1);
    sync.release(0);
    await created;
    const post = (i: number) =>
      store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: 'AAAA' }, NOW_MS, { asMember: OWNER, postId: `p${i}` });
    const lone = post(0);
    await sync.waitForCall(2);
    // 50 posts while the first one's fdatasync is held: they wait, then form ONE group.
    const posts = Array.from({ length: 50 }, (_, i) => post(i + 1));
    await turns();
    sync.release(1);
    await lone;
    await sync.waitForCall(3);
    await turns();
    expect(sync.calls).toHaveLength(3);
    sync.release(2);
    const results = await Promise.all(posts);
    expect(results.map((result) => (result.ok ? result.value.event.seq : 0)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 3),
    );
  });

  it('stops after a failed fdatasync: that group and every later call fail, nothing is announced', async () => {
    const sync = new HeldSync();
    const { store } = open(sync);
    const heard: RelayEvent[] = [];
    store.subscribe((_channel, event) => heard.push(event));
    const created = track(store.createChannel(CHANNEL, 'group', OWNER, NOW_MS));
    await sync.waitForCall(1);
    sync.release(0, new Error('EIO: i/o error'));
    await expect(created.promise).rejects.toThrow(/fdatasync of the SQLite WAL failed.*EIO/);
    expect(heard).toEqual([]);
    await expect(store.getChannel(CHANNEL)).rejects.toThrow(/fdatasync/);
    await expect(store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: 'AAAA' }, NOW_MS)).rejects.toThrow(/fdatasync/);
  });

  describe('an idle server\'s lone write, synced on the event loop (idleWhen, INLINE_SYNC_MAX_MS)', () => {
    const post = (store: SqliteRelayStore, packet: string) => store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet }, NOW_MS, { asMember: OWNER });
    /** A store whose pool sync is held (HeldSync) and whose inline sync is recorded, taking `inlineMs`. */
    // The bound is what decides, not the machine's speed: Infinity unless a test means to pass it
    // (a sync of a loaded machine may take longer than 1 ms; the slow one spins past it).
    const openBoth = (inlineMs = 0, fail = false, inlineSyncMaxMs = Infinity) => {
      const sync = new HeldSync();
      const inline: number[] = [];
      const dataDir = mkdtempSync(join(tmpdir(), 'covey-sqlite-commit-'));
      dirs.push(dataDir);
      const syncFileSync = (fd: number): void => {
        inline.push(fd);
        // A slow disk: the sync takes at least `inlineMs` (a spin: at least, whatever the load).
        const until = performance.now() + inlineMs;
        while (performance.now() < until) {
          /* spin */
        }
        if (fail) throw new Error('EIO');
      };
      const store = openSqliteStore({ dataDir, warn: () => undefined, syncFile: sync.syncFile, syncFileSync, inlineSyncMaxMs });
      stores.push(store);
      return { store, sync, inline };
    };

    it('syncs inline when the server is idle, and announces only after the sync', async () => {
      const { store, sync, inline } = openBoth();
      const heard: number[] = [];
      store.subscribe((_channel, event) => heard.push(inline.length * 100 + event.seq));
      store.idleWhen?.(() => true);
      await store.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
      await post(store, 'cGFja2V0');
      expect(inline).toHaveLength(2);
      expect(sync.calls).toHaveLength(0);
      // Each event was announced after its own sync (2 syncs: seq 1 after the first, seq 2 after the second).
      expect(heard).toEqual([101, 202]);
    });

    it('uses the pool when the server is busy, when it never said how to tell, and for a group of several writes', async () => {
      let idle = false;
      const { store, sync, inline } = openBoth();
      store.idleWhen?.(() => idle);
      const created = store.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
      await sync.waitForCall(1);
      sync.release(0);
      await created;
      idle = true;
      // Two writes queued together: one group, on the pool.
      const a = post(store, 'YQ');
      const b = post(store, 'Yg');
      await sync.waitForCall(2);
      sync.release(1);
      await Promise.all([a, b]);
      expect(inline).toEqual([]);
      const { store: other, sync: otherSync, inline: otherInline } = openBoth();
      const made = other.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
      await otherSync.waitForCall(1);
      otherSync.release(0);
      await made;
      expect(otherInline).toEqual([]);
    });

    it('is what a relay with the default settings does for a lone post (startRelay passes its idle check)', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'covey-sqlite-commit-'));
      dirs.push(dataDir);
      let onPool = 0;
      let inline = 0;
      const store = openSqliteStore({
        dataDir,
        warn: () => undefined,
        syncFile: (fd, done) => {
          onPool += 1;
          fdatasync(fd, done);
        },
        syncFileSync: (fd) => {
          inline += 1;
          fdatasyncSync(fd);
        },
        inlineSyncMaxMs: Infinity,
      });
      const relay = await startRelay({ store, port: 0, logLevel: 'silent' });
      try {
        const client = makeClient(relay.url, makeMember());
        const channel = (await client.createChannel('group')).channelId;
        const before = { onPool, inline };
        for (let i = 0; i < 3; i++) await client.post(channel, packetOf(`alone ${i}`));
        // One request at a time: each post's group is synced on the event loop.
        expect({ onPool: onPool - before.onPool, inline: inline - before.inline }).toEqual({ onPool: 0, inline: 3 });
      } finally {
        await relay.close();
      }
    });

    it('after an inline sync slower than INLINE_SYNC_MAX_MS, syncs go to the pool', async () => {
      const { store, sync, inline } = openBoth(INLINE_SYNC_MAX_MS * 2, false, INLINE_SYNC_MAX_MS);
      store.idleWhen?.(() => true);
      await store.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
      expect(inline).toHaveLength(1);
      const appended = post(store, 'YQ');
      await sync.waitForCall(1);
      sync.release(0);
      await appended;
      expect(inline).toHaveLength(1);
    });

    it('stops after a failed inline sync, like after a failed one on the pool', async () => {
      const { store, inline } = openBoth(0, true);
      const heard: RelayEvent[] = [];
      store.subscribe((_channel, event) => heard.push(event));
      store.idleWhen?.(() => true);
      await expect(store.createChannel(CHANNEL, 'group', OWNER, NOW_MS)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(inline).toHaveLength(1);
      expect(heard).toEqual([]);
      await expect(store.getChannel(CHANNEL)).rejects.toBeInstanceOf(StoreUnavailableError);
    });
  });

  it('checkpoints on its own thread: the main connection never does, the database file still gets the pages', async () => {
    const { store, dataDir } = open();
    expect(store.durability()).toMatchObject({ commitSync: 'fdatasync', checkpoints: 'thread' });
    const file = join(dataDir, SQLITE_FILE_NAME);
    const before = statSync(file).size;
    await store.createChannel(CHANNEL, 'group', OWNER, NOW_MS);
    // Enough commits to ask the thread for a checkpoint; each adds pages to the WAL.
    for (let i = 0; i < 80; i++) {
      await store.appendEvent(CHANNEL, { type: 'packet', author: OWNER, packet: 'A'.repeat(4_000) }, NOW_MS, { asMember: OWNER });
    }
    await expect.poll(() => statSync(file).size, { timeout: 10_000 }).toBeGreaterThan(before + 80 * 3_000);
  });
});
