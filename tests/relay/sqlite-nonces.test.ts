// The SQLite store's replay protection (src/relay/store/sqlite-nonces.ts): ordinary nonces are
// checked in memory and logged, one row per group commit, in the same transaction as the request's
// write; long-lived ones (deferred posts) and those beyond the memory cap stay in the `nonces`
// table, which is also where a relay before this change kept every nonce. Each (key, nonce) must be
// accepted once until it expires, whichever place holds it, across a reopen, and memory must follow
// the file when a transaction rolls back. Pages are counted in the WAL itself (no timing). The
// crash test (crash.test.ts) replays acknowledged posts after SIGKILLs.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelId, MemberKey } from '../../src/shared/relay-api.js';
import { openSqliteStore, SQLITE_FILE_NAME, type SqliteRelayStore, type SqliteStoreOptions } from '../../src/relay/store/sqlite.js';
import type { NonceUse } from '../../src/relay/store/types.js';
import { channelId, KEEP, OTHER, OWNER, packet, tempDirs } from './helpers/sqlite-fixture.js';
import { framesOfLastCommit, HeldSync } from './helpers/sqlite-wal.js';

const MINUTE_MS = 60_000;
/** Random-looking nonces (base64url, 22 characters), so they do not sort in the order they are used. */
const nonceText = (i: number): string => Buffer.from(`${(i * 2_654_435_761) % 4_294_967_291}-${i}`.padEnd(16, 'x')).toString('base64url').slice(0, 22);

describe('sqlite nonces', () => {
  const dirs = tempDirs('covey-sqlite-nonces-');
  const stores: SqliteRelayStore[] = [];
  const newDir = (): string => dirs.make();
  const open = (dataDir: string, options: Omit<SqliteStoreOptions, 'dataDir'> = {}): SqliteRelayStore => {
    const store = openSqliteStore({ dataDir, warn: () => undefined, ...options });
    stores.push(store);
    return store;
  };
  /** A store's file made and closed again (its schema in place), for a test to plant rows or faults in. */
  const closedFile = async (): Promise<{ dataDir: string; nowMs: number; expiresAtMs: number }> => {
    const dataDir = newDir();
    const nowMs = Date.now();
    await open(dataDir).close();
    stores.splice(0);
    return { dataDir, nowMs, expiresAtMs: nowMs + 10 * MINUTE_MS };
  };
  /** Runs `query` on its own connection to the store's file (WAL: it sees every commit). */
  const inFile = <T>(dataDir: string, query: (db: Database.Database) => T): T => {
    const db = new Database(join(dataDir, SQLITE_FILE_NAME));
    try {
      return query(db);
    } finally {
      db.close();
    }
  };
  const rows = (dataDir: string, table: 'nonces' | 'nonce_log'): number =>
    inFile(dataDir, (db) => db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).get()?.n ?? 0);
  /** The (key, nonce) entries of the log's rows ("<key> <nonce>", one a line per row). */
  const logged = (dataDir: string): string[] =>
    inFile(dataDir, (db) => db.prepare<[], string>('SELECT nonces FROM nonce_log').pluck().all().flatMap((text) => text.split('\n'))).sort();
  const post = (store: SqliteRelayStore, id: ChannelId, nonce: NonceUse | undefined, nowMs: number, text = 'x') =>
    store.appendEvent(id, { type: 'packet', author: OWNER, packet: text }, nowMs, { asMember: OWNER, retention: KEEP, ...(nonce === undefined ? {} : { nonce }) });

  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    dirs.removeAll();
  });

  it('refuses a nonce again after the store is reopened, and after its expiry the sweep forgets it', async () => {
    const dataDir = newDir();
    const first = open(dataDir);
    const nowMs = Date.now();
    await first.createChannel(channelId(1), 'group', OWNER, nowMs);
    const expiresAtMs = nowMs + 10 * MINUTE_MS;
    expect(await first.useNonce(OWNER, 'request-nonce-000001', expiresAtMs)).toBe(true);
    expect(await post(first, channelId(1), { key: OWNER, nonce: 'post-nonce-00000001', expiresAtMs }, nowMs)).toMatchObject({ ok: true });
    expect(await first.useNonce(OWNER, 'request-nonce-000001', expiresAtMs)).toBe(false);
    expect(await first.useNonce(OTHER, 'request-nonce-000001', expiresAtMs)).toBe(true);
    await first.close();
    // Kept in memory and in the log, not in the table.
    expect(rows(dataDir, 'nonces')).toBe(0);
    expect(logged(dataDir)).toEqual([`${OTHER} request-nonce-000001`, `${OWNER} post-nonce-00000001`, `${OWNER} request-nonce-000001`].sort());

    const second = open(dataDir);
    expect(await second.useNonce(OWNER, 'request-nonce-000001', expiresAtMs)).toBe(false);
    expect(await second.useNonce(OWNER, 'post-nonce-00000001', expiresAtMs)).toBe(false);
    expect(await post(second, channelId(1), { key: OTHER, nonce: 'request-nonce-000001', expiresAtMs }, nowMs)).toEqual({ ok: false, code: 'replayed-nonce' });
    expect(await post(second, channelId(1), { key: OWNER, nonce: 'post-nonce-00000001', expiresAtMs }, nowMs)).toEqual({ ok: false, code: 'replayed-nonce' });
    // Not yet expired: the sweep keeps them.
    await second.sweep(KEEP, expiresAtMs - 1);
    expect(await second.useNonce(OWNER, 'request-nonce-000001', expiresAtMs)).toBe(false);
    await second.sweep(KEEP, expiresAtMs);
    expect(rows(dataDir, 'nonce_log')).toBe(0);
    // Expired: no request carrying it passes the time check any more, so it is forgotten (as before).
    expect(await second.useNonce(OWNER, 'request-nonce-000001', expiresAtMs + 10 * MINUTE_MS)).toBe(true);
  });

  it('reads the nonces a relay before this change kept in the `nonces` table', async () => {
    const { dataDir, nowMs, expiresAtMs } = await closedFile();
    // What that relay wrote for a request and for a post (its form, unchanged by this one).
    inFile(dataDir, (db) => {
      const insert = db.prepare('INSERT INTO nonces (key, nonce, expires_ms) VALUES (?, ?, ?)');
      insert.run(OWNER, 'old-request-nonce-01', expiresAtMs);
      insert.run(OWNER, 'old-post-nonce-00001', expiresAtMs + MINUTE_MS);
    });
    const store = open(dataDir);
    await store.createChannel(channelId(1), 'group', OWNER, nowMs);
    expect(await store.useNonce(OWNER, 'old-request-nonce-01', expiresAtMs)).toBe(false);
    expect(await post(store, channelId(1), { key: OWNER, nonce: 'old-post-nonce-00001', expiresAtMs }, nowMs)).toEqual({ ok: false, code: 'replayed-nonce' });
    // Another key's nonce of the same text, and a new nonce of the same key, are new.
    expect(await store.useNonce(OTHER, 'old-request-nonce-01', expiresAtMs)).toBe(true);
    expect(await post(store, channelId(1), { key: OWNER, nonce: 'new-post-nonce-00001', expiresAtMs }, nowMs)).toMatchObject({ ok: true });
    // The sweep expires them from the table as before, each at its own time.
    await store.sweep(KEEP, expiresAtMs);
    expect(await store.useNonce(OWNER, 'old-post-nonce-00001', expiresAtMs + 2 * MINUTE_MS)).toBe(false);
    expect(await store.useNonce(OWNER, 'old-request-nonce-01', expiresAtMs + 2 * MINUTE_MS)).toBe(true);
    await store.sweep(KEEP, expiresAtMs + MINUTE_MS);
    expect(rows(dataDir, 'nonces')).toBe(0);
  });

  it("keeps a deferred post's long-lived nonce, and every nonce past the memory cap, in the table", async () => {
    const dataDir = newDir();
    const nowMs = Date.now();
    const first = open(dataDir, { maxNoncesInMemory: 2 });
    await first.createChannel(channelId(1), 'group', OWNER, nowMs);
    // Deferred posts: remembered for 14 days.
    const deferred = { key: OWNER, nonce: 'deferred-nonce-00001', expiresAtMs: nowMs + 14 * 24 * 60 * MINUTE_MS };
    expect(await post(first, channelId(1), deferred, nowMs)).toMatchObject({ ok: true });
    for (let i = 0; i < 4; i++) expect(await first.useNonce(OWNER, `capped-nonce-0000${i}`, nowMs + 10 * MINUTE_MS)).toBe(true);
    expect(rows(dataDir, 'nonces')).toBe(3);
    expect(logged(dataDir)).toHaveLength(2);
    expect(await post(first, channelId(1), deferred, nowMs)).toEqual({ ok: false, code: 'replayed-nonce' });
    for (let i = 0; i < 4; i++) expect(await first.useNonce(OWNER, `capped-nonce-0000${i}`, nowMs + 10 * MINUTE_MS)).toBe(false);
    await first.close();
    const second = open(dataDir, { maxNoncesInMemory: 2 });
    expect(await post(second, channelId(1), deferred, nowMs)).toEqual({ ok: false, code: 'replayed-nonce' });
    for (let i = 0; i < 4; i++) expect(await second.useNonce(OWNER, `capped-nonce-0000${i}`, nowMs + 10 * MINUTE_MS)).toBe(false);
  });

  it('forgets the nonce of a write that rolled back, as the file does', async () => {
    const { dataDir, nowMs, expiresAtMs } = await closedFile();
    // Faults planted in the file: a post whose event cannot be stored (its savepoint rolls back
    // after the nonce was taken), and a group whose nonce log row cannot be written (the whole
    // commit fails).
    inFile(dataDir, (db) => {
      db.exec(`CREATE TRIGGER fail_event BEFORE INSERT ON events WHEN NEW.packet = 'fail' BEGIN SELECT RAISE(ABORT, 'planted'); END`);
      db.exec(`CREATE TRIGGER fail_log BEFORE INSERT ON nonce_log WHEN NEW.nonces LIKE '%fail-group%' BEGIN SELECT RAISE(ABORT, 'planted'); END`);
    });
    const store = open(dataDir);
    await store.createChannel(channelId(1), 'group', OWNER, nowMs);

    await expect(post(store, channelId(1), { key: OWNER, nonce: 'rolled-back-post-01', expiresAtMs }, nowMs, 'fail')).rejects.toThrow('planted');
    expect(await post(store, channelId(1), { key: OWNER, nonce: 'rolled-back-post-01', expiresAtMs }, nowMs)).toMatchObject({ ok: true });
    expect(await store.useNonce(OWNER, 'rolled-back-post-01', expiresAtMs)).toBe(false);

    // Two writes in one group; the group's commit fails, so neither nonce was taken.
    const failed = await Promise.allSettled([
      store.useNonce(OWNER, 'fail-group-nonce-001', expiresAtMs),
      post(store, channelId(1), { key: OWNER, nonce: 'same-group-nonce-01', expiresAtMs }, nowMs),
    ]);
    expect(failed.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect(await post(store, channelId(1), { key: OWNER, nonce: 'same-group-nonce-01', expiresAtMs }, nowMs)).toMatchObject({ ok: true });
    expect(await store.useNonce(OWNER, 'same-group-nonce-01', expiresAtMs)).toBe(false);
    await store.close();
    const reopened = open(dataDir);
    expect(await reopened.useNonce(OWNER, 'rolled-back-post-01', expiresAtMs)).toBe(false);
    expect(await reopened.useNonce(OWNER, 'same-group-nonce-01', expiresAtMs)).toBe(false);
  });

  it('refuses, as a bug, a key or nonce that would not read back from the log', async () => {
    const store = open(newDir());
    const expiresAtMs = Date.now() + 10 * MINUTE_MS;
    // "<key> <nonce>" names, one a line: "a b" + "c" would come back as "a" + "b c".
    await expect(store.useNonce(OWNER, 'two words-000000000', expiresAtMs)).rejects.toThrow(TypeError);
    await expect(store.useNonce(`${OWNER}\n` as MemberKey, 'one-line-000000000', expiresAtMs)).rejects.toThrow(TypeError);
    expect(await store.useNonce(OWNER, 'two-words-000000000', expiresAtMs)).toBe(true);
  });

  it("writes a group's nonces as one row: a group of 60 posts to 60 channels dirties about as many WAL pages with nonces as without", async () => {
    const framesOfGroup = async (withNonces: boolean): Promise<number> => {
      const sync = new HeldSync();
      const dataDir = newDir();
      const store = open(dataDir, { syncFile: sync.syncFile });
      const nowMs = Date.now();
      const nonceOf = (i: number): NonceUse | undefined => (withNonces ? { key: OWNER, nonce: nonceText(i), expiresAtMs: nowMs + 10 * MINUTE_MS } : undefined);
      const channels = Array.from({ length: 60 }, (_, i) => channelId(i));
      for (const id of channels) await sync.settle(store.createChannel(id, 'group', OWNER, nowMs));
      // History: 20 groups of posts, 1,200 nonces used before.
      for (let round = 0; round < 20; round++) {
        await sync.settle(Promise.all(channels.map((id, i) => post(store, id, nonceOf(round * 100 + i), nowMs, packet(round * 100 + i)))));
      }
      // One group: a post to each channel, all queued while the previous write's sync is held.
      const held = post(store, channels[0]!, nonceOf(4_999), nowMs, packet(1));
      await sync.nextCall();
      const group = Promise.all(channels.map((id, i) => post(store, id, nonceOf(5_000 + i), nowMs, packet(5_000 + i))));
      let frames = 0;
      sync.onCall = () => {
        frames = framesOfLastCommit(join(dataDir, `${SQLITE_FILE_NAME}-wal`));
      };
      sync.releaseNext();
      await held;
      const results = await sync.settle(group);
      expect(results.every((result) => result.ok)).toBe(true);
      return frames;
    };
    const without = await framesOfGroup(false);
    const withNonces = await framesOfGroup(true);
    // Measured: 25 without, 28 with (the group's row of 60 nonces, ~4 KB, and its index entry).
    // Before, with a row per nonce in `nonces` (a random leaf each, and their splits): 77.
    expect(withNonces - without).toBeLessThanOrEqual(6);
  });
});
