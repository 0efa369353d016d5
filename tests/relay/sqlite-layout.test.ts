// The SQLite store's events layout (issue 13 "Scale-out": fewer WAL pages per post). A new file
// keeps events in a rowid table in arrival order with a unique (channel, seq) index, so a group of
// posts to many channels shares the table's last pages and dirties one small index page per
// channel; before, the table was clustered by (channel, seq) and every post rewrote (and every few
// posts split) its channel's last row-sized leaf. A file made before keeps its layout and must work
// exactly as a new one. Pages are counted in the WAL itself (the frames of the group's commit), so
// nothing here depends on timing.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayEvent } from '../../src/shared/relay-api.js';
import { openSqliteStore, SQLITE_FILE_NAME, type SqliteRelayStore } from '../../src/relay/store/sqlite.js';
import { channelId, KEEP, NOW_MS, OTHER, OWNER, packet, tempDirs } from './helpers/sqlite-fixture.js';
import { framesOfLastCommit, HeldSync } from './helpers/sqlite-wal.js';

/** The events table of the files made before the arrival-order layout. */
const CLUSTERED_EVENTS = `CREATE TABLE events (
  channel TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, type TEXT NOT NULL,
  member TEXT, actor TEXT, packet TEXT, size INTEGER NOT NULL, post_id TEXT,
  PRIMARY KEY (channel, seq)
) WITHOUT ROWID`;

describe('sqlite events layout', () => {
  const dirs = tempDirs('covey-sqlite-layout-');
  const stores: SqliteRelayStore[] = [];
  const open = (options: { clustered?: boolean; sync?: HeldSync } = {}): { store: SqliteRelayStore; dataDir: string } => {
    const dataDir = dirs.make();
    if (options.clustered === true) {
      const db = new Database(join(dataDir, SQLITE_FILE_NAME));
      db.exec(CLUSTERED_EVENTS);
      db.close();
    }
    const store = openSqliteStore({ dataDir, warn: () => undefined, ...(options.sync === undefined ? {} : { syncFile: options.sync.syncFile }) });
    stores.push(store);
    return { store, dataDir };
  };
  const eventsTableSql = (dataDir: string): string => {
    const db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
    try {
      return String(db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").get()?.sql);
    } finally {
      db.close();
    }
  };
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    dirs.removeAll();
  });

  /** WAL frames of one group commit of one post to each of 60 channels, each with some history. */
  const framesOfGroup = async (clustered: boolean): Promise<number> => {
    const sync = new HeldSync();
    const { store, dataDir } = open({ clustered, sync });
    const channels = Array.from({ length: 60 }, (_, i) => channelId(i));
    for (const id of channels) await sync.settle(store.createChannel(id, 'group', OWNER, NOW_MS));
    for (let round = 0; round < 20; round++) {
      await sync.settle(Promise.all(channels.map((id, i) => store.appendEvent(id, { type: 'packet', author: OWNER, packet: packet(round * 100 + i) }, NOW_MS, { asMember: OWNER, retention: KEEP }))));
    }
    // One group: a post to each channel, all queued while the previous write's sync is held.
    const held = store.appendEvent(channels[0]!, { type: 'packet', author: OWNER, packet: packet(1) }, NOW_MS, { asMember: OWNER });
    await sync.nextCall();
    const group = Promise.all(channels.map((id, i) => store.appendEvent(id, { type: 'packet', author: OWNER, packet: packet(5_000 + i) }, NOW_MS, { asMember: OWNER, retention: KEEP })));
    let frames = 0;
    sync.onCall = () => {
      frames = framesOfLastCommit(join(dataDir, `${SQLITE_FILE_NAME}-wal`));
    };
    sync.releaseNext();
    await held;
    await sync.settle(group);
    expect(eventsTableSql(dataDir)).toContain(clustered ? 'WITHOUT ROWID' : 'rid INTEGER PRIMARY KEY');
    return frames;
  };

  it('commits a group of posts to 60 channels in under one WAL page per post (clustered by channel: over two)', async () => {
    const fresh = await framesOfGroup(false);
    const clustered = await framesOfGroup(true);
    // Measured: 25 and 138 frames (the table's last pages and the index leaves the channels share; each channel's leaf and its splits).
    expect(fresh).toBeLessThan(60);
    expect(clustered).toBeGreaterThan(90);
  });

  it('keeps the layout of a file made before (events clustered by channel) and answers the same as a new file', async () => {
    const run = async (store: SqliteRelayStore): Promise<unknown[]> => {
      const out: unknown[] = [];
      const a = channelId(1);
      const b = channelId(2);
      out.push(await store.createChannel(a, 'group', OWNER, NOW_MS));
      out.push(await store.createChannel(b, 'group', OTHER, NOW_MS));
      for (let i = 0; i < 30; i++) {
        const [id, author] = i % 3 === 0 ? [b, OTHER] : [a, OWNER];
        out.push(await store.appendEvent(id, { type: 'packet', author, packet: packet(i) }, NOW_MS + i, { asMember: author, postId: `p${i}`, retention: KEEP }));
      }
      // Idempotent post, its first seq; a non-member; reads, limits and byte caps.
      out.push(await store.appendEvent(a, { type: 'packet', author: OWNER, packet: 'again' }, NOW_MS, { asMember: OWNER, postId: 'p1' }));
      out.push(await store.appendEvent(a, { type: 'packet', author: OTHER, packet: 'no' }, NOW_MS, { asMember: OTHER }));
      out.push(await store.readEvents(a, 0, 100, 1e9));
      out.push(await store.readEvents(a, 5, 3, 1e9));
      out.push(await store.readEvents(b, 0, 100, 700));
      // Retention: what every member read, then by age, then by bytes.
      out.push(await store.ackCursor(a, OWNER, 6));
      out.push(await store.trim(a, KEEP, NOW_MS));
      out.push(await store.trim(b, { maxEventAgeMs: 10, maxChannelBytes: 1e12 }, NOW_MS + 15));
      out.push(await store.trim(a, { maxEventAgeMs: 1e12, maxChannelBytes: 2_000 }, NOW_MS));
      out.push(await store.readEvents(a, 0, 100, 1e9));
      out.push(await store.readEvents(b, 0, 100, 1e9));
      out.push(await store.getChannel(a));
      out.push(await store.stats());
      // A removal of the last member deletes the channel and its events.
      out.push(await store.removeMember(b, OTHER, OTHER, NOW_MS + 40));
      out.push(await store.getChannel(b));
      out.push(await store.stats());
      return out;
    };
    const fresh = open();
    const old = open({ clustered: true });
    const expected = await run(fresh.store);
    expect(await run(old.store)).toEqual(expected);
    expect((expected[expected.length - 6] as RelayEvent[]).length).toBeGreaterThan(0);
    expect(eventsTableSql(old.dataDir)).toContain('WITHOUT ROWID');
    expect(eventsTableSql(fresh.dataDir)).toContain('rid INTEGER PRIMARY KEY');
  });
});
