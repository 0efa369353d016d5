/**
 * The default store: one SQLite file (better-sqlite3) in WAL mode, durable before each method
 * resolves (issue 5 §8: durable before acknowledged). better-sqlite3 is synchronous; a single
 * relay process owns the file (enforced: the store locks its data directory, ./sqlite-dir-lock.ts),
 * so each method is one transaction (a savepoint) and therefore atomic, and what only this process
 * writes can be kept in memory too (the nonces of the last minutes: ./sqlite-nonces.ts; two relays
 * on one file would not see each other's). Contracts: ./types.ts.
 *
 * Group commit, with the fsync off the event loop (issue 13 "Scale-out": fsync must not be what
 * limits posts/s). Writes requested while the previous group is being made durable queue up; then
 * they all run in ONE transaction, committed without an fsync (synchronous=NORMAL: in WAL mode a
 * commit only appends to the WAL file), and ONE `fdatasync` of the WAL file runs on libuv's thread
 * pool while the event loop goes on verifying, parsing and pushing. Each write's promise resolves
 * (and its events are announced) only after that fdatasync. While it runs, the next group waits
 * and so do reads: a read runs only when every commit it can see is durable, so nobody ever sees
 * an event that a power cut could take back (its seq would then be given to another event).
 * Checkpoints (copying the WAL into the database file, with their own fsyncs) run on a worker
 * thread (./sqlite-checkpointer.ts), not inside commits.
 */
import Database from 'better-sqlite3';
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobHash, CapabilityKind, ChannelId, ChannelKind, MemberInfo, MemberKey, RelayEvent } from '../../shared/relay-api.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import { lockDataDir, type DataDirLock } from './sqlite-dir-lock.js';
import { NONCE_LOG_SCHEMA, openNonceStore, type NonceStore } from './sqlite-nonces.js';
import {
  StoreUnavailableError,
  eventSizeBytes,
  type CapabilityHash,
  type CapabilityRecord,
  type ChannelRecord,
  type FetchTokenRecord,
  type VapidKeys,
  type EventListener,
  type NewEvent,
  type RelayStore,
  type RetentionPolicy,
  type StoreResult,
  type UploadRecord,
} from './types.js';

/** File name inside the data directory. */
export const SQLITE_FILE_NAME = 'relay.sqlite';

/**
 * A capability that may be used: (hash, channel, kind) match, unexpired, uses left, and its maker
 * still the member it was when it made it (NULL creator: made before creators were recorded).
 * Parameters: hash, channel, kind, nowMs.
 */
const USABLE_CAPABILITY = `hash = ? AND channel = ? AND kind = ? AND expires_ms > ? AND uses_left > 0
  AND (creator IS NULL OR EXISTS (SELECT 1 FROM members m
    WHERE m.channel = capabilities.channel AND m.key = capabilities.creator AND m.joined_seq = capabilities.creator_joined))`;

/** Empty channels deleted per sweep batch. */
const SWEEP_BATCH_EMPTY_CHANNELS = 500;

/** The settings row that holds the VAPID key pair (JSON). */
const VAPID_SETTING = 'vapid';

/** Writes committed together at most: bounds one transaction's time and the loop stall. */
const MAX_WRITES_PER_COMMIT = 512;
/** Commits between two requests to the checkpoint thread (each commit adds pages to the WAL). */
const COMMITS_PER_CHECKPOINT_POKE = 64;
/** WAL bytes kept on disk after it is reused (SQLite truncates it to this). */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** Channels trimmed per sweep batch (bounds one transaction; the sweep loops over batches). */
const SWEEP_BATCH_CHANNELS = 500;

/**
 * The tables. \`events\` is a rowid table in arrival order with a unique (channel, seq) index
 * (issue 13 "Scale-out", eleventh session): a commit of N posts to N channels appends the rows to
 * the table's last pages, which the posts share (about 9 rows a page), and dirties one small
 * index page per channel. Clustered by (channel, seq) (a WITHOUT ROWID table, files made before),
 * every post rewrote its channel's last leaf, a whole row-sized page, and split one every few
 * posts (SQLite balances up to three siblings and their parent): 2.2 WAL frames and 11.8 KB of
 * writes per post without the nonce, against 1.0 and 4.3 KB (bench/scratch-store numbers in
 * src/relay/README.md "Fewer WAL pages per post"). The statements are the same for both layouts:
 * files made before keep theirs and work as they did. Nonces: ./sqlite-nonces.ts (`nonces` holds
 * the long-lived ones, and every one a relay before it kept; `nonce_log` one row per group).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL, created_ms INTEGER NOT NULL,
  head_seq INTEGER NOT NULL, first_seq INTEGER NOT NULL, bytes INTEGER NOT NULL,
  last_left_seq INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  channel TEXT NOT NULL, key TEXT NOT NULL, joined_seq INTEGER NOT NULL, cursor INTEGER NOT NULL,
  PRIMARY KEY (channel, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  rid INTEGER PRIMARY KEY,
  channel TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, type TEXT NOT NULL,
  member TEXT, actor TEXT, packet TEXT, size INTEGER NOT NULL, post_id TEXT,
  UNIQUE (channel, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_post_id ON events (channel, actor, post_id) WHERE post_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS capabilities (
  hash TEXT PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL, expires_ms INTEGER NOT NULL, uses_left INTEGER NOT NULL,
  creator TEXT, creator_joined INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS capabilities_channel ON capabilities (channel);
CREATE TABLE IF NOT EXISTS nonces (
  key TEXT NOT NULL, nonce TEXT NOT NULL, expires_ms INTEGER NOT NULL, PRIMARY KEY (key, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_ms);
${NONCE_LOG_SCHEMA}
CREATE TABLE IF NOT EXISTS uploads (
  id TEXT PRIMARY KEY, channel TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  received INTEGER NOT NULL, expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upload_chunks (
  id TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_files (
  sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_chunks (
  sha256 TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sha256, offset)
);
CREATE TABLE IF NOT EXISTS blob_caps (
  hash TEXT PRIMARY KEY, sha256 TEXT NOT NULL, expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fetch_tokens (
  hash TEXT PRIMARY KEY, channel TEXT NOT NULL, member TEXT NOT NULL, joined_seq INTEGER NOT NULL, expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fetch_tokens_member ON fetch_tokens (channel, member, expires_ms);
CREATE TABLE IF NOT EXISTS push_subs (
  channel TEXT NOT NULL, member TEXT NOT NULL, endpoint TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
  PRIMARY KEY (channel, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats (
  id INTEGER PRIMARY KEY CHECK (id = 1), channels INTEGER NOT NULL, events INTEGER NOT NULL, bytes INTEGER NOT NULL
);
`;

/** Columns added after the first release: [table, column, definition] (ALTER TABLE on older files). */
const ADDED_COLUMNS: ReadonlyArray<readonly [string, string, string]> = [
  ['channels', 'last_left_seq', 'INTEGER NOT NULL DEFAULT 0'],
  // NULL in capabilities made before creators were recorded: those stay valid until they expire.
  ['capabilities', 'creator', 'TEXT'],
  ['capabilities', 'creator_joined', 'INTEGER'],
  // 1 when the packet asked to wake members who are away (PacketEvent.wake); NULL otherwise.
  ['events', 'wake', 'INTEGER'],
];

/**
 * Migrations of data, run once at open: blobs stored whole (table `blobs`) move to chunked
 * storage; the O(1) counters are computed once for a file that has none yet.
 */
function migrate(db: Database.Database): void {
  const hasOldBlobs = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'blobs'").get();
  if ((hasOldBlobs?.n ?? 0) > 0) {
    db.transaction(() => {
      db.exec('INSERT OR IGNORE INTO blob_files (sha256, size, expires_ms) SELECT sha256, length(data), expires_ms FROM blobs');
      db.exec('INSERT OR IGNORE INTO blob_chunks (sha256, offset, data) SELECT sha256, 0, data FROM blobs WHERE length(data) > 0');
      db.exec('DROP TABLE blobs');
    })();
  }
  db.exec(`INSERT OR IGNORE INTO stats (id, channels, events, bytes) SELECT 1,
    (SELECT COUNT(*) FROM channels), (SELECT COUNT(*) FROM events), (SELECT COALESCE(SUM(bytes), 0) FROM channels)`);
}

interface ChannelRow {
  id: string;
  kind: string;
  owner: string;
  created_ms: number;
  head_seq: number;
  first_seq: number;
  bytes: number;
  last_left_seq: number;
}
/** store.trimProbe: a channel's retention inputs and whether it has push subscriptions. */
interface TrimProbeRow {
  first_seq: number;
  head_seq: number;
  bytes: number;
  /** NULL when the channel has no members. */
  min_cursor: number | null;
  /** NULL when the channel has no stored events. */
  oldest_ms: number | null;
  has_push: 0 | 1;
}
interface EventRow {
  size?: number;
  seq: number;
  time_ms: number;
  type: string;
  member: string | null;
  actor: string | null;
  packet: string | null;
  wake?: number | null;
}
interface MemberRow {
  key: string;
  joined_seq: number;
  cursor: number;
}
interface UploadRow {
  id: string;
  channel: string;
  sha256: string;
  size: number;
  received: number;
  expires_ms: number;
}

function toEvent(row: EventRow): RelayEvent {
  switch (row.type) {
    case 'member-joined':
      return { seq: row.seq, timeMs: row.time_ms, type: 'member-joined', member: row.member as MemberKey };
    case 'member-left':
      return { seq: row.seq, timeMs: row.time_ms, type: 'member-left', member: row.member as MemberKey, by: row.actor as MemberKey };
    case 'packet':
      return {
        seq: row.seq,
        timeMs: row.time_ms,
        type: 'packet',
        author: row.actor as MemberKey | null,
        packet: row.packet ?? '',
        ...(row.wake === 1 ? { wake: true as const } : {}),
      };
    default:
      throw new Error(`corrupt event row type ${row.type}`);
  }
}

/** Up to maxBytes of a stored chunk starting at `offset` (which lies in it, or past the end: empty). */
function sliceChunk(row: { offset: number; data: Buffer } | undefined, offset: number, maxBytes: number): Uint8Array {
  if (row === undefined) return new Uint8Array(0);
  const start = offset - row.offset;
  if (start >= row.data.length) return new Uint8Array(0);
  const slice = row.data.subarray(start, start + maxBytes);
  return new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength);
}

function toMember(row: MemberRow): MemberInfo {
  return { key: row.key as MemberKey, joinedSeq: row.joined_seq, cursor: row.cursor };
}

export interface SqliteStoreOptions {
  /** Directory of the database file (created if missing); ':memory:' for a throwaway store. */
  readonly dataDir: string;
  /**
   * 'off' = synchronous=OFF: nothing is fsynced, so an acknowledged write can be lost in a power
   * cut. Only for `npm run bench:relay`'s group-commit comparison; never for a real relay.
   */
  readonly durability?: 'fsync' | 'off';
  /** Operational warnings (the checkpoint thread stopped, an fsync failed). Default console.warn. */
  readonly warn?: (message: string) => void;
  /** How a group's WAL is made durable; default `fs.fdatasync`. Tests hold or fail it. */
  readonly syncFile?: (fd: number, done: (error: Error | null) => void) => void;
  /**
   * The same on the event loop (an idle relay's lone write: `idleWhen`); default `fs.fdatasyncSync`.
   * A store given `syncFile` without it never syncs inline (tests that hold the sync).
   */
  readonly syncFileSync?: (fd: number) => void;
  /** Tests: the bound on an inline sync's time (default INLINE_SYNC_MAX_MS). */
  readonly inlineSyncMaxMs?: number;
  /** Tests: nonces held in memory at most (default MAX_NONCES_IN_MEMORY, ./sqlite-nonces.ts). */
  readonly maxNoncesInMemory?: number;
}

/**
 * An idle relay's lone write is made durable on the event loop (`fdatasyncSync`) instead of on
 * libuv's pool, as long as such syncs take at most this long. The trip to the pool wakes a pool
 * thread and then the loop again: for a lone post that costs more than the sync itself (2-core
 * bench machine: sync p50 0.21 ms, the pool trip 0.66 ms p50 and 1.5 ms p90; src/relay/README.md
 * "Latency of a post"). A slower sync (a busy or slow disk) would hold every connection for that
 * long: after one, syncs go to the pool for INLINE_SYNC_PAUSE_MS.
 */
export const INLINE_SYNC_MAX_MS = 1;
const INLINE_SYNC_PAUSE_MS = 30_000;

/** The SQLite store, plus its durability settings for tests and /healthz-style checks. */
export interface SqliteRelayStore extends RelayStore {
  /**
   * The connection's journal mode and synchronous level (expected: 'wal', 1 = NORMAL: commits
   * append to the WAL), and how commits are made durable ('fdatasync' of the WAL before a write
   * resolves; 'none' for ':memory:' and the bench's durability 'off').
   */
  durability(): {
    readonly journalMode: string;
    readonly synchronous: number;
    readonly commitSync: 'fdatasync' | 'none';
    /** 'thread': ./sqlite-checkpointer.ts; 'inline': SQLite's own, inside commits (that thread died, or ':memory:'). */
    readonly checkpoints: 'thread' | 'inline';
  };
}

/**
 * Opens the store. A data directory is locked first (./sqlite-dir-lock.ts: one relay process per
 * directory, since nonces are kept in memory); a directory in use throws DataDirInUseError before
 * the database is touched. close() releases it.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteRelayStore {
  if (options.dataDir === ':memory:') return openStore(options, ':memory:', undefined);
  // Owner-only: the file holds the VAPID private key and every channel's ciphertext.
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const dirLock = lockDataDir(options.dataDir);
  try {
    return openStore(options, join(options.dataDir, SQLITE_FILE_NAME), dirLock);
  } catch (error) {
    dirLock.release();
    throw error;
  }
}

function openStore(options: SqliteStoreOptions, path: string, dirLock: DataDirLock | undefined): SqliteRelayStore {
  const warn = options.warn ?? ((message: string) => console.warn(`[relay sqlite] ${message}`));
  // NORMAL: a commit appends to the WAL without an fsync; `write` below fsyncs each group itself.
  const synchronous = options.durability === 'off' ? 'OFF' : 'NORMAL';
  /** Whether writes wait for an fdatasync of the WAL before they resolve. */
  const syncCommits = path !== ':memory:' && options.durability !== 'off';
  const db = new Database(path);
  let nonces: NonceStore;
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma('foreign_keys = OFF');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    for (const [table, column, definition] of ADDED_COLUMNS) {
      const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
      if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
    migrate(db);
    nonces = openNonceStore(db, options.maxNoncesInMemory === undefined ? {} : { maxInMemory: options.maxNoncesInMemory });
  } catch (error) {
    // A file that is not a database, a failed migration: the open fails and leaves no handle.
    db.close();
    throw error;
  }

  // Checkpoints on their own thread (see the module comment); SQLite's own, inside commits, only
  // if that thread dies.
  let checkpointer: Checkpointer | undefined;
  let checkpointsOnThread = false;
  if (path !== ':memory:') {
    db.pragma('wal_autocheckpoint = 0');
    checkpointsOnThread = true;
    checkpointer = startCheckpointer(path, synchronous === 'OFF' ? 'OFF' : 'NORMAL', warn, () => {
      checkpointsOnThread = false;
      if (!closed) db.pragma('wal_autocheckpoint = 1000');
    });
  }

  const listeners = new Set<EventListener>();
  /** WebSocket presence (`setOnline`): "<channel>\n<member>" → live subscriptions in this process. */
  const online = new Map<string, number>();
  let closed = false;
  /** close() started: new writes still queue (in-flight requests finish), nothing new is refused yet. */
  let closing = false;

  const q = {
    getChannel: db.prepare<[string], ChannelRow>('SELECT * FROM channels WHERE id = ?'),
    insertChannel: db.prepare('INSERT INTO channels (id, kind, owner, created_ms, head_seq, first_seq, bytes) VALUES (?, ?, ?, ?, 0, 1, 0)'),
    bumpHead: db.prepare('UPDATE channels SET head_seq = head_seq + 1, bytes = bytes + ? WHERE id = ? RETURNING head_seq'),
    setLastLeft: db.prepare('UPDATE channels SET last_left_seq = ? WHERE id = ?'),
    setTrimmed: db.prepare('UPDATE channels SET first_seq = MAX(first_seq, ?), bytes = bytes - ? WHERE id = ?'),
    countMembers: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM members WHERE channel = ?'),
    getMember: db.prepare<[string, string], MemberRow>('SELECT key, joined_seq, cursor FROM members WHERE channel = ? AND key = ?'),
    listMembers: db.prepare<[string], MemberRow>('SELECT key, joined_seq, cursor FROM members WHERE channel = ? ORDER BY joined_seq'),
    insertMember: db.prepare('INSERT INTO members (channel, key, joined_seq, cursor) VALUES (?, ?, ?, ?)'),
    deleteMember: db.prepare('DELETE FROM members WHERE channel = ? AND key = ?'),
    setCursor: db.prepare('UPDATE members SET cursor = ? WHERE channel = ? AND key = ?'),
    isMember: db.prepare<[string, string], number>('SELECT 1 FROM members WHERE channel = ? AND key = ?').pluck(),
    /**
     * What retention needs to know about a channel, and whether it has push subscriptions, in ONE
     * statement (a post runs it after its append; it was four). min_cursor is NULL without members.
     */
    trimProbe: db.prepare<[string], TrimProbeRow>(
      'SELECT c.first_seq AS first_seq, c.head_seq AS head_seq, c.bytes AS bytes, ' +
        '(SELECT MIN(m.cursor) FROM members m WHERE m.channel = c.id) AS min_cursor, ' +
        '(SELECT e.time_ms FROM events e WHERE e.channel = c.id ORDER BY e.seq LIMIT 1) AS oldest_ms, ' +
        'EXISTS (SELECT 1 FROM push_subs p WHERE p.channel = c.id) AS has_push ' +
        'FROM channels c WHERE c.id = ?',
    ),
    insertEvent: db.prepare(
      'INSERT INTO events (channel, seq, time_ms, type, member, actor, packet, size, post_id, wake) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    findPost: db.prepare<[string, string, string], EventRow>(
      'SELECT seq, time_ms, type, member, actor, packet, wake FROM events WHERE channel = ? AND actor = ? AND post_id = ?',
    ),
    readEvents: db.prepare<[string, number, number], EventRow>(
      'SELECT seq, time_ms, type, member, actor, packet, size, wake FROM events WHERE channel = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    countEvents: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM events WHERE channel = ?'),
    deleteChannelEvents: db.prepare('DELETE FROM events WHERE channel = ?'),
    deleteChannelMembers: db.prepare('DELETE FROM members WHERE channel = ?'),
    deleteChannelCaps: db.prepare('DELETE FROM capabilities WHERE channel = ?'),
    deleteChannelFetchTokens: db.prepare('DELETE FROM fetch_tokens WHERE channel = ?'),
    deleteChannelPush: db.prepare('DELETE FROM push_subs WHERE channel = ?'),
    deleteChannelRow: db.prepare('DELETE FROM channels WHERE id = ?'),
    emptyChannels: db.prepare<[number], { id: string }>(
      'SELECT id FROM channels c WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.channel = c.id) LIMIT ?',
    ),
    countStats: db.prepare('UPDATE stats SET channels = channels + ?, events = events + ?, bytes = bytes + ? WHERE id = 1'),
    getStats: db.prepare<[], { channels: number; events: number; bytes: number }>('SELECT channels, events, bytes FROM stats WHERE id = 1'),
    lastOlderThan: db.prepare<[string, number], { s: number | null }>('SELECT MAX(seq) AS s FROM events WHERE channel = ? AND time_ms < ?'),
    sizesAfter: db.prepare<[string, number], { seq: number; size: number }>('SELECT seq, size FROM events WHERE channel = ? AND seq > ? ORDER BY seq'),
    sizeUpTo: db.prepare<[string, number], { b: number | null; n: number }>(
      'SELECT SUM(size) AS b, COUNT(*) AS n FROM events WHERE channel = ? AND seq <= ?',
    ),
    deleteUpTo: db.prepare('DELETE FROM events WHERE channel = ? AND seq <= ?'),
    channelIdsAfter: db.prepare<[string, number], { id: string }>('SELECT id FROM channels WHERE id > ? ORDER BY id LIMIT ?'),
    insertCap: db.prepare(
      'INSERT INTO capabilities (hash, channel, kind, expires_ms, uses_left, creator, creator_joined) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    useCap: db.prepare(`UPDATE capabilities SET uses_left = uses_left - 1 WHERE ${USABLE_CAPABILITY}`),
    checkCap: db.prepare<[string, string, string, number], { n: number }>(`SELECT COUNT(*) AS n FROM capabilities WHERE ${USABLE_CAPABILITY}`),
    revokeCap: db.prepare('DELETE FROM capabilities WHERE hash = ? AND channel = ?'),
    insertUpload: db.prepare('INSERT INTO uploads (id, channel, sha256, size, received, expires_ms) VALUES (?, ?, ?, ?, 0, ?)'),
    getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE id = ?'),
    setReceived: db.prepare('UPDATE uploads SET received = ? WHERE id = ?'),
    insertChunk: db.prepare('INSERT INTO upload_chunks (id, offset, data) VALUES (?, ?, ?)'),
    uploadChunkAt: db.prepare<[string, number], { offset: number; data: Buffer }>(
      'SELECT offset, data FROM upload_chunks WHERE id = ? AND offset <= ? ORDER BY offset DESC LIMIT 1',
    ),
    deleteUpload: db.prepare('DELETE FROM uploads WHERE id = ?'),
    deleteChunks: db.prepare('DELETE FROM upload_chunks WHERE id = ?'),
    getBlobFile: db.prepare<[string], { size: number; expires_ms: number }>('SELECT size, expires_ms FROM blob_files WHERE sha256 = ?'),
    insertBlobFile: db.prepare('INSERT INTO blob_files (sha256, size, expires_ms) VALUES (?, ?, ?)'),
    extendBlobFile: db.prepare('UPDATE blob_files SET expires_ms = MAX(expires_ms, ?) WHERE sha256 = ?'),
    moveUploadChunks: db.prepare('INSERT INTO blob_chunks (sha256, offset, data) SELECT ?, offset, data FROM upload_chunks WHERE id = ?'),
    insertBlobCap: db.prepare('INSERT INTO blob_caps (hash, sha256, expires_ms) VALUES (?, ?, ?)'),
    openBlob: db.prepare<[string, number], { sha256: string; size: number }>(
      'SELECT f.sha256 AS sha256, f.size AS size FROM blob_caps c JOIN blob_files f ON f.sha256 = c.sha256 WHERE c.hash = ? AND f.expires_ms > ?',
    ),
    blobChunkAt: db.prepare<[string, number], { offset: number; data: Buffer }>(
      'SELECT offset, data FROM blob_chunks WHERE sha256 = ? AND offset <= ? ORDER BY offset DESC LIMIT 1',
    ),
    expireCaps: db.prepare('DELETE FROM capabilities WHERE expires_ms <= ? OR uses_left <= 0'),
    expiredUploads: db.prepare<[number], { id: string }>('SELECT id FROM uploads WHERE expires_ms <= ?'),
    expireBlobChunks: db.prepare('DELETE FROM blob_chunks WHERE sha256 IN (SELECT sha256 FROM blob_files WHERE expires_ms <= ?)'),
    expireBlobs: db.prepare('DELETE FROM blob_files WHERE expires_ms <= ?'),
    expireBlobCaps: db.prepare('DELETE FROM blob_caps WHERE expires_ms <= ?'),
    insertFetchToken: db.prepare('INSERT INTO fetch_tokens (hash, channel, member, joined_seq, expires_ms) VALUES (?, ?, ?, ?, ?)'),
    getFetchToken: db.prepare<[string], { channel: string; member: string; joined_seq: number; expires_ms: number }>(
      'SELECT channel, member, joined_seq, expires_ms FROM fetch_tokens WHERE hash = ?',
    ),
    memberFetchTokens: db.prepare<[string, string], { hash: string; expires_ms: number }>(
      'SELECT hash, expires_ms FROM fetch_tokens WHERE channel = ? AND member = ? ORDER BY expires_ms DESC, hash DESC',
    ),
    deleteFetchToken: db.prepare('DELETE FROM fetch_tokens WHERE hash = ? AND channel = ? AND member = ?'),
    deleteMemberFetchTokens: db.prepare('DELETE FROM fetch_tokens WHERE channel = ? AND member = ?'),
    expireFetchTokens: db.prepare('DELETE FROM fetch_tokens WHERE expires_ms <= ?'),
    putPush: db.prepare(
      'INSERT INTO push_subs (channel, member, endpoint, p256dh, auth) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (channel, member) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth',
    ),
    deletePush: db.prepare('DELETE FROM push_subs WHERE channel = ? AND member = ?'),
    deletePushIfEndpoint: db.prepare('DELETE FROM push_subs WHERE channel = ? AND member = ? AND endpoint = ?'),
    pushTargets: db.prepare<[string], { member: string; endpoint: string; p256dh: string; auth: string }>(
      'SELECT member, endpoint, p256dh, auth FROM push_subs WHERE channel = ?',
    ),
    insertSetting: db.prepare('INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)'),
    getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE name = ?'),
  };

  function notify(channelId: ChannelId, event: RelayEvent): void {
    for (const listener of listeners) {
      try {
        listener(channelId, event);
      } catch {
        // Listeners must not throw (types.ts); one bad listener must not stop the others.
      }
    }
  }

  /** Appends inside the caller's transaction; returns the stored event. */
  function appendRow(channelId: ChannelId, event: NewEvent, nowMs: number, postId: string | null): RelayEvent {
    const size = eventSizeBytes(event);
    const bumped = q.bumpHead.get(size, channelId) as { head_seq: number } | undefined;
    if (bumped === undefined) throw new Error('appendRow: channel vanished inside a transaction');
    const seq = bumped.head_seq;
    let member: string | null = null;
    let actor: string | null = null;
    let packet: string | null = null;
    let wake: number | null = null;
    if (event.type === 'member-joined') member = event.member;
    else if (event.type === 'member-left') {
      member = event.member;
      actor = event.by;
    } else {
      actor = event.author;
      packet = event.packet;
      wake = event.wake === true ? 1 : null;
    }
    q.insertEvent.run(channelId, seq, nowMs, event.type, member, actor, packet, size, postId, wake);
    q.countStats.run(0, 1, size);
    return toEvent({ seq, time_ms: nowMs, type: event.type, member, actor, packet, wake });
  }

  const createTx = db.transaction((channelId: ChannelId, kind: ChannelKind, owner: MemberKey, nowMs: number): RelayEvent => {
    q.insertChannel.run(channelId, kind, owner, nowMs);
    q.countStats.run(1, 0, 0);
    const event = appendRow(channelId, { type: 'member-joined', member: owner }, nowMs, null);
    q.insertMember.run(channelId, owner, event.seq, event.seq - 1);
    return event;
  });

  const joinTx = db.transaction(
    (channelId: ChannelId, key: MemberKey, capHash: CapabilityHash, nowMs: number): StoreResult<{ member: MemberInfo; event: RelayEvent | null }> => {
      const existing = q.getMember.get(channelId, key);
      if (existing !== undefined) return { ok: true, value: { member: toMember(existing), event: null } };
      if (q.useCap.run(capHash, channelId, 'invite', nowMs).changes !== 1) return { ok: false, code: 'invalid-capability' };
      const event = appendRow(channelId, { type: 'member-joined', member: key }, nowMs, null);
      q.insertMember.run(channelId, key, event.seq, event.seq - 1);
      return { ok: true, value: { member: { key, joinedSeq: event.seq, cursor: event.seq - 1 }, event } };
    },
  );

  /** Deletes a channel and everything kept for it (uploads expire on their own). */
  const deleteChannelTx = db.transaction((channelId: string): void => {
    const channel = q.getChannel.get(channelId);
    if (channel === undefined) return;
    const events = q.countEvents.get(channelId)?.n ?? 0;
    q.deleteChannelEvents.run(channelId);
    q.deleteChannelMembers.run(channelId);
    q.deleteChannelCaps.run(channelId);
    q.deleteChannelFetchTokens.run(channelId);
    q.deleteChannelPush.run(channelId);
    q.deleteChannelRow.run(channelId);
    q.countStats.run(-1, -events, -channel.bytes);
  });

  const removeTx = db.transaction((channelId: ChannelId, actor: MemberKey, target: MemberKey, nowMs: number): StoreResult<RelayEvent> => {
    if (q.getMember.get(channelId, actor) === undefined) return { ok: false, code: 'not-member' };
    if (q.getMember.get(channelId, target) === undefined) return { ok: false, code: 'no-target' };
    q.deleteMember.run(channelId, target);
    q.deleteMemberFetchTokens.run(channelId, target);
    q.deletePush.run(channelId, target);
    const event = appendRow(channelId, { type: 'member-left', member: target, by: actor }, nowMs, null);
    q.setLastLeft.run(event.seq, channelId);
    if ((q.countMembers.get(channelId)?.n ?? 0) === 0) deleteChannelTx(channelId);
    return { ok: true, value: event };
  });

  type AppendOptions = Parameters<RelayStore['appendEvent']>[3];
  type AppendResult = StoreResult<{ event: RelayEvent; duplicate: boolean; hasPushSubscriptions: boolean }>;
  const appendTx = db.transaction((channelId: ChannelId, event: NewEvent, nowMs: number, options: AppendOptions = {}): AppendResult => {
    const { nonce, asMember, postId, ifNoLeaveAfter, capability, retention } = options;
    // The nonce first, whatever follows (as `useNonce` before the request's own checks).
    if (nonce !== undefined && !nonces.use(nonce.key, nonce.nonce, nonce.expiresAtMs, nowMs)) {
      return { ok: false, code: 'replayed-nonce' };
    }
    if (capability !== undefined && (q.checkCap.get(capability.hash, channelId, capability.kind, nowMs)?.n ?? 0) !== 1) {
      return { ok: false, code: 'invalid-capability' };
    }
    if (asMember !== undefined) {
      if (q.isMember.get(channelId, asMember) === undefined) return { ok: false, code: 'not-member' };
    } else if (q.getChannel.get(channelId) === undefined) {
      return { ok: false, code: 'not-member' };
    }
    const author = event.type === 'packet' ? event.author : null;
    if (postId !== undefined && author !== null) {
      const earlier = q.findPost.get(channelId, author, postId);
      if (earlier !== undefined) return { ok: true, value: { event: toEvent(earlier), duplicate: true, hasPushSubscriptions: false } };
    }
    if (ifNoLeaveAfter !== undefined && (q.getChannel.get(channelId)?.last_left_seq ?? 0) > ifNoLeaveAfter) {
      return { ok: false, code: 'membership-changed' };
    }
    if (capability !== undefined) q.useCap.run(capability.hash, channelId, capability.kind, nowMs);
    const appended = appendRow(channelId, event, nowMs, postId ?? null);
    // One statement tells retention what it needs and whether anyone has a push subscription.
    const probe = q.trimProbe.get(channelId);
    // Already inside this transaction: no savepoint of its own (two statements less per post).
    if (retention !== undefined && probe !== undefined) trimProbed(channelId, probe, retention, nowMs);
    const hasPushSubscriptions = probe?.has_push === 1;
    return { ok: true, value: { event: appended, duplicate: false, hasPushSubscriptions } };
  });

  const ackTx = db.transaction((channelId: ChannelId, key: MemberKey, seq: number): number | undefined => {
    const member = q.getMember.get(channelId, key);
    const channel = q.getChannel.get(channelId);
    if (member === undefined || channel === undefined) return undefined;
    const cursor = Math.max(member.cursor, Math.min(seq, channel.head_seq));
    if (cursor !== member.cursor) q.setCursor.run(cursor, channelId, key);
    return cursor;
  });

  /** Applies the retention policy to one channel inside the caller's transaction; returns events removed. */
  function trimRows(channelId: ChannelId, policy: RetentionPolicy, nowMs: number): number {
    const probe = q.trimProbe.get(channelId);
    return probe === undefined ? 0 : trimProbed(channelId, probe, policy, nowMs);
  }

  /** trimRows with the channel's trimProbe row already read (inside the same transaction). */
  function trimProbed(channelId: ChannelId, channel: TrimProbeRow, policy: RetentionPolicy, nowMs: number): number {
    let cut = channel.first_seq - 1;
    // Events every current member has read (DESIGN.md §3).
    if (channel.min_cursor !== null) cut = Math.max(cut, channel.min_cursor);
    // Maximum age. Looked for only when the oldest stored event is that old: the search reads the
    // channel's log, and a trim runs with every post.
    const cutoff = nowMs - policy.maxEventAgeMs;
    if (channel.oldest_ms !== null && channel.oldest_ms < cutoff) {
      const old = q.lastOlderThan.get(channelId, cutoff);
      if (old?.s != null) cut = Math.max(cut, old.s);
    }
    // Maximum bytes: drop the oldest until the rest fits. (The bytes up to the cut are summed only
    // when the whole channel is over: a trim runs with every post.)
    if (channel.bytes > policy.maxChannelBytes) {
      let remaining = channel.bytes - (q.sizeUpTo.get(channelId, cut)?.b ?? 0);
      if (remaining > policy.maxChannelBytes) {
        for (const row of q.sizesAfter.iterate(channelId, cut)) {
          if (remaining <= policy.maxChannelBytes) break;
          remaining -= row.size;
          cut = row.seq;
        }
      }
    }
    cut = Math.min(cut, channel.head_seq);
    if (cut < channel.first_seq) return 0;
    const removed = q.sizeUpTo.get(channelId, cut);
    const count = removed?.n ?? 0;
    q.deleteUpTo.run(channelId, cut);
    q.setTrimmed.run(cut + 1, removed?.b ?? 0, channelId);
    q.countStats.run(0, -count, -(removed?.b ?? 0));
    return count;
  }
  const trimTx = db.transaction(trimRows);

  const putFetchTokenTx = db.transaction((record: FetchTokenRecord, maxPerMember: number, nowMs: number): StoreResult<void> => {
    const member = q.getMember.get(record.channelId, record.member);
    if (member === undefined) return { ok: false, code: 'not-member' };
    q.insertFetchToken.run(record.hash, record.channelId, record.member, member.joined_seq, record.expiresAtMs);
    // Newest expiry first: keep the first maxPerMember live ones.
    q.memberFetchTokens.all(record.channelId, record.member).forEach((token, i) => {
      if (i >= maxPerMember || token.expires_ms <= nowMs) q.deleteFetchToken.run(token.hash, record.channelId, record.member);
    });
    return { ok: true, value: undefined };
  });

  const revokeFetchTokensTx = db.transaction((channelId: ChannelId, member: MemberKey, hash: CapabilityHash | undefined): number =>
    hash === undefined ? q.deleteMemberFetchTokens.run(channelId, member).changes : q.deleteFetchToken.run(hash, channelId, member).changes,
  );

  const chunkTx = db.transaction((id: CapabilityHash, offset: number, bytes: Uint8Array, nowMs: number): StoreResult<number> => {
    const upload = q.getUpload.get(id);
    if (upload === undefined || upload.expires_ms <= nowMs) return { ok: false, code: 'not-found' };
    if (offset !== upload.received) return { ok: false, code: 'offset-mismatch' };
    if (upload.received + bytes.length > upload.size) return { ok: false, code: 'too-large' };
    if (bytes.length > 0) {
      q.insertChunk.run(id, offset, bytes);
      q.setReceived.run(upload.received + bytes.length, id);
    }
    return { ok: true, value: upload.received + bytes.length };
  });

  const deleteUploadTx = db.transaction((id: string) => {
    q.deleteUpload.run(id);
    q.deleteChunks.run(id);
  });

  const finalizeTx = db.transaction((id: CapabilityHash, sha256: BlobHash, readCapHash: CapabilityHash, expiresAtMs: number): boolean => {
    const upload = q.getUpload.get(id);
    if (upload === undefined) return false;
    if (q.getBlobFile.get(sha256) === undefined) {
      q.insertBlobFile.run(sha256, upload.received, expiresAtMs);
      q.moveUploadChunks.run(sha256, id);
    } else {
      q.extendBlobFile.run(expiresAtMs, sha256);
    }
    q.insertBlobCap.run(readCapHash, sha256, expiresAtMs);
    deleteUploadTx(id);
    return true;
  });

  const putCapabilityTx = db.transaction((record: CapabilityRecord): StoreResult<void> => {
    const creator = q.getMember.get(record.channelId, record.creator);
    if (creator === undefined) return { ok: false, code: 'not-member' };
    q.insertCap.run(record.hash, record.channelId, record.kind, record.expiresAtMs, record.usesLeft, record.creator, creator.joined_seq);
    return { ok: true, value: undefined };
  });

  const expireTx = db.transaction((nowMs: number) => {
    nonces.expire(nowMs);
    q.expireFetchTokens.run(nowMs);
    q.expireCaps.run(nowMs);
    for (const { id } of q.expiredUploads.all(nowMs)) deleteUploadTx(id);
    q.expireBlobChunks.run(nowMs);
    q.expireBlobs.run(nowMs);
    q.expireBlobCaps.run(nowMs);
  });

  interface WriteJob {
    readonly run: () => unknown;
    readonly announce: (result: unknown) => readonly (readonly [ChannelId, RelayEvent])[];
    readonly resolve: (result: unknown) => void;
    readonly reject: (error: unknown) => void;
    /** False only for nonces: see `write`. */
    readonly durable: boolean;
  }
  interface Settled {
    readonly job: WriteJob;
    readonly value: unknown;
  }
  let pending: WriteJob[] = [];
  let flushScheduled = false;
  /** True while the fdatasync of the last group runs: the next group and every read wait. */
  let syncing = false;
  /** Reads (and close) waiting for the running fdatasync. */
  let afterSync: Array<() => void> = [];
  /** Set when an fdatasync failed: what was committed may not be on disk, so nothing goes on. */
  let broken: StoreUnavailableError | undefined;
  let walFd: number | undefined;
  let commits = 0;
  /** The server's idle check (`idleWhen`); none: every sync on the pool. */
  let serverIdle: (() => boolean) | undefined;
  const inlineSyncs = options.syncFile === undefined || options.syncFileSync !== undefined;
  /** After an inline sync slower than INLINE_SYNC_MAX_MS: syncs stay on the pool until then. */
  let inlineSyncPausedUntil = 0;

  /**
   * Runs every job in one transaction; a job that throws rolls back only its own savepoint (and
   * the nonces it added to memory: ./sqlite-nonces.ts).
   */
  const commitBatch = db.transaction((jobs: readonly WriteJob[]) => {
    const outcomes = jobs.map((job) => {
      const mark = nonces.mark();
      try {
        return { ok: true as const, value: job.run() };
      } catch (error) {
        nonces.rollBack(mark);
        return { ok: false as const, error };
      }
    });
    nonces.log();
    return outcomes;
  });

  function settle({ job, value }: Settled): void {
    for (const [channelId, event] of job.announce(value)) notify(channelId, event);
    job.resolve(value);
  }

  /** The WAL file, opened once it exists (the first commit in WAL mode creates it). */
  function wal(): number {
    walFd ??= openSync(`${path}-wal`, 'r');
    return walFd;
  }

  /** Makes the group's commit durable off the event loop, then resolves it (see the module comment). */
  function syncThenSettle(group: readonly Settled[]): void {
    syncing = true;
    const done = (error: Error | null): void => {
      syncing = false;
      if (error !== null) {
        broken = new StoreUnavailableError(`fdatasync of the SQLite WAL failed, the store stops: ${error.message}`);
        warn(broken.message);
        for (const { job } of group) job.reject(broken);
      } else {
        for (const settled of group) settle(settled);
      }
      const waiting = afterSync;
      afterSync = [];
      for (const resume of waiting) resume();
      // Not now: the reads just resumed (microtasks) run first, while everything is durable.
      if (pending.length > 0) scheduleFlush();
    };
    let fd: number;
    try {
      fd = wal();
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    // A lone write, nothing queued behind it, the server serving nothing else, the disk fast:
    // synced right here (see INLINE_SYNC_MAX_MS). The same sync, the same order: the write still
    // resolves, and its events are announced, only after it.
    if (inlineSyncs && group.length === 1 && pending.length === 0 && serverIdle?.() === true && performance.now() >= inlineSyncPausedUntil) {
      const started = performance.now();
      let failure: Error | null = null;
      try {
        (options.syncFileSync ?? fdatasyncSync)(fd);
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      const took = performance.now() - started;
      if (took > (options.inlineSyncMaxMs ?? INLINE_SYNC_MAX_MS)) inlineSyncPausedUntil = performance.now() + INLINE_SYNC_PAUSE_MS;
      done(failure);
      return;
    }
    (options.syncFile ?? fdatasync)(fd, done);
  }

  function flush(): void {
    flushScheduled = false;
    if (syncing || pending.length === 0) return;
    const jobs = pending.length <= MAX_WRITES_PER_COMMIT ? pending : pending.slice(0, MAX_WRITES_PER_COMMIT);
    pending = pending.length <= MAX_WRITES_PER_COMMIT ? [] : pending.slice(MAX_WRITES_PER_COMMIT);
    if (broken !== undefined) {
      for (const job of jobs) job.reject(broken);
      return;
    }
    let outcomes: ReturnType<typeof commitBatch>;
    try {
      outcomes = commitBatch(jobs);
      nonces.committed();
    } catch (error) {
      nonces.rollBack(0);
      for (const job of jobs) job.reject(error);
      if (pending.length > 0) scheduleFlush();
      return;
    }
    commits += 1;
    if (commits % COMMITS_PER_CHECKPOINT_POKE === 0) checkpointer?.poke();
    const group: Settled[] = [];
    jobs.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) return job.reject(new Error('sqlite batch lost a job'));
      if (!outcome.ok) return job.reject(outcome.error);
      // A nonce alone need not wait (see `write`); everything else is answered once durable.
      if (syncCommits && job.durable) group.push({ job, value: outcome.value });
      else settle({ job, value: outcome.value });
    });
    if (group.length > 0) syncThenSettle(group);
    else if (pending.length > 0) scheduleFlush();
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  /**
   * Queues a write (a transaction function or a single statement); resolves after its group is
   * committed and durable. `announce` lists the events to notify listeners of, once durable.
   *
   * `durable: false` (nonces only) resolves right after the commit, without waiting for the
   * fdatasync: the WAL is append-only, so the next durable group, which is the request's own write
   * if it has one, makes the nonce durable too. A nonce lost in a power cut (not a process crash:
   * the WAL is written either way) can only let a read be replayed.
   */
  function write<T>(
    run: () => T,
    announce: (result: T) => readonly (readonly [ChannelId, RelayEvent])[] = () => [],
    durable = true,
  ): Promise<T> {
    if (closed) return Promise.reject(new Error('sqlite store is closed'));
    if (broken !== undefined) return Promise.reject(broken);
    return new Promise<T>((resolve, reject) => {
      pending.push({
        run,
        announce: announce as (result: unknown) => readonly (readonly [ChannelId, RelayEvent])[],
        resolve: resolve as (result: unknown) => void,
        reject,
        durable,
      });
      scheduleFlush();
    });
  }

  /**
   * Runs a read when everything it can see is durable: at once, or after the running fdatasync
   * (and before the next group commits).
   */
  async function read<T>(query: () => T): Promise<T> {
    checkOpen();
    if (syncing) await new Promise<void>((resolve) => afterSync.push(resolve));
    checkOpen();
    return query();
  }

  function checkOpen(): void {
    if (closed) throw new Error('sqlite store is closed');
    if (broken !== undefined) throw broken;
  }

  const store: SqliteRelayStore = {
    name: 'sqlite',

    idleWhen(idle) {
      serverIdle = idle;
    },

    durability() {
      checkOpen();
      return {
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        synchronous: Number(db.pragma('synchronous', { simple: true })),
        commitSync: syncCommits ? 'fdatasync' : 'none',
        checkpoints: checkpointsOnThread ? 'thread' : 'inline',
      };
    },

    createChannel(channelId, kind, owner, nowMs) {
      return write(() => createTx(channelId, kind, owner, nowMs), (event) => [[channelId, event]]);
    },

    getChannel(channelId) {
      return read(() => {
        const row = q.getChannel.get(channelId);
        if (row === undefined) return undefined;
        const record: ChannelRecord = {
          channelId: row.id as ChannelId,
          kind: row.kind as ChannelKind,
          owner: row.owner as MemberKey,
          createdAtMs: row.created_ms,
          headSeq: row.head_seq,
          firstSeq: row.first_seq,
          storedBytes: row.bytes,
          memberCount: q.countMembers.get(channelId)?.n ?? 0,
          lastLeftSeq: row.last_left_seq,
        };
        return record;
      });
    },

    getMember(channelId, key) {
      return read(() => {
        const row = q.getMember.get(channelId, key);
        return row === undefined ? undefined : toMember(row);
      });
    },

    listMembers(channelId) {
      return read(() => q.listMembers.all(channelId).map(toMember));
    },

    joinWithCapability(channelId, key, capHash, nowMs) {
      return write(
        () => joinTx(channelId, key, capHash, nowMs),
        (result) => (result.ok && result.value.event !== null ? [[channelId, result.value.event]] : []),
      );
    },

    removeMember(channelId, actor, target, nowMs) {
      return write(
        () => removeTx(channelId, actor, target, nowMs),
        (result) => (result.ok ? [[channelId, result.value]] : []),
      );
    },

    appendEvent(channelId, event, nowMs, options) {
      return write(
        () => appendTx(channelId, event, nowMs, options),
        (result) => (result.ok && !result.value.duplicate ? [[channelId, result.value.event]] : []),
      );
    },

    readEvents(channelId, afterSeq, limit, maxBytes) {
      return read(() => {
        const events: RelayEvent[] = [];
        let bytes = 0;
        for (const row of q.readEvents.iterate(channelId, afterSeq, limit)) {
          bytes += row.size ?? 0;
          if (bytes > maxBytes && events.length > 0) break;
          events.push(toEvent(row));
        }
        return events;
      });
    },

    ackCursor(channelId, key, seq) {
      return write(() => ackTx(channelId, key, seq));
    },

    trim(channelId, policy, nowMs) {
      return write(() => trimTx(channelId, policy, nowMs));
    },

    putCapability(record: CapabilityRecord) {
      return write(() => putCapabilityTx(record));
    },

    checkCapability(capHash, channelId, kind: CapabilityKind, nowMs) {
      return read(() => (q.checkCap.get(capHash, channelId, kind, nowMs)?.n ?? 0) === 1);
    },

    revokeCapability(capHash, channelId) {
      return write(() => q.revokeCap.run(capHash, channelId).changes);
    },

    useNonce(key, nonce, expiresAtMs) {
      // The store's clock only decides where the nonce is kept (./sqlite-nonces.ts).
      return write(() => nonces.use(key, nonce, expiresAtMs, Date.now()), undefined, false);
    },

    putFetchToken(record, maxPerMember, nowMs) {
      return write(() => putFetchTokenTx(record, maxPerMember, nowMs));
    },

    useFetchToken(hash, channelId, nowMs) {
      return read(() => {
        const token = q.getFetchToken.get(hash);
        if (token === undefined || token.channel !== channelId || token.expires_ms <= nowMs) return undefined;
        const member = q.getMember.get(channelId, token.member);
        if (member === undefined || member.joined_seq !== token.joined_seq) return undefined;
        return toMember(member);
      });
    },

    revokeFetchTokens(channelId, member, hash) {
      return write(() => revokeFetchTokensTx(channelId, member, hash));
    },

    putPushSubscription(channelId, member, subscription) {
      return write(() => {
        if (q.getMember.get(channelId, member) === undefined) return false;
        q.putPush.run(channelId, member, subscription.endpoint, subscription.p256dh, subscription.auth);
        return true;
      });
    },

    async deletePushSubscription(channelId, member, endpoint) {
      await write(() =>
        endpoint === undefined ? q.deletePush.run(channelId, member) : q.deletePushIfEndpoint.run(channelId, member, endpoint),
      );
    },

    pushTargets(channelId) {
      return read(() =>
        q.pushTargets.all(channelId).map((row) => ({
          member: row.member as MemberKey,
          subscription: { endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth },
          online: (online.get(`${channelId}\n${row.member}`) ?? 0) > 0,
        })),
      );
    },

    async setOnline(channelId, member, delta) {
      const key = `${channelId}\n${member}`;
      const count = (online.get(key) ?? 0) + delta;
      if (count > 0) online.set(key, count);
      else online.delete(key);
    },

    async vapidKeys(candidate) {
      const stored = await write(() => {
        q.insertSetting.run(VAPID_SETTING, JSON.stringify(candidate));
        return q.getSetting.get(VAPID_SETTING)?.value;
      });
      if (stored === undefined) throw new Error('sqlite store lost its VAPID keys');
      return JSON.parse(stored) as VapidKeys;
    },

    async createUpload(record: UploadRecord) {
      await write(() => q.insertUpload.run(record.id, record.channelId, record.sha256, record.size, record.expiresAtMs));
    },

    getUpload(id, nowMs) {
      return read(() => {
        const row = q.getUpload.get(id);
        if (row === undefined || row.expires_ms <= nowMs) return undefined;
        return {
          id: row.id as CapabilityHash,
          channelId: row.channel as ChannelId,
          sha256: row.sha256 as BlobHash,
          size: row.size,
          received: row.received,
          expiresAtMs: row.expires_ms,
        };
      });
    },

    appendUploadChunk(id, offset, bytes, nowMs) {
      return write(() => chunkTx(id, offset, bytes, nowMs));
    },

    readUploadRange(id, offset, maxBytes) {
      return read(() => (q.getUpload.get(id) === undefined ? undefined : sliceChunk(q.uploadChunkAt.get(id, offset), offset, maxBytes)));
    },

    async deleteUpload(id) {
      await write(() => deleteUploadTx(id));
    },

    finalizeUpload(id, sha256, readCapHash, expiresAtMs) {
      return write(() => finalizeTx(id, sha256, readCapHash, expiresAtMs));
    },

    openBlob(_sha256, readCapHash, nowMs) {
      return read(() => {
        const row = q.openBlob.get(readCapHash, nowMs);
        return row === undefined ? undefined : { sha256: row.sha256 as BlobHash, size: row.size };
      });
    },

    readBlobRange(sha256, offset, maxBytes) {
      return read(() => sliceChunk(q.blobChunkAt.get(sha256, offset), offset, maxBytes));
    },

    async sweep(policy, nowMs) {
      checkOpen();
      let removed = 0;
      let after = '';
      for (;;) {
        const batch = q.channelIdsAfter.all(after, SWEEP_BATCH_CHANNELS);
        removed += await write(() => batch.reduce((sum, { id }) => sum + trimTx(id as ChannelId, policy, nowMs), 0));
        const last = batch.at(-1);
        if (last === undefined || batch.length < SWEEP_BATCH_CHANNELS) break;
        after = last.id;
      }
      // Channels without members (whose last member left before channels were deleted with it).
      for (;;) {
        const empty = q.emptyChannels.all(SWEEP_BATCH_EMPTY_CHANNELS);
        if (empty.length > 0) await write(() => empty.forEach(({ id }) => deleteChannelTx(id)));
        if (empty.length < SWEEP_BATCH_EMPTY_CHANNELS) break;
      }
      await write(() => expireTx(nowMs));
      return removed;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    stats() {
      return read(() => {
        const row = q.getStats.get();
        return { channels: row?.channels ?? 0, events: row?.events ?? 0, bytes: row?.bytes ?? 0 };
      });
    },

    async storageUsage() {
      checkOpen();
      if (options.dataDir === ':memory:') return {};
      const fs = await statfs(options.dataDir);
      return { freeBytes: fs.bavail * fs.bsize };
    },

    async close() {
      if (closed || closing) return;
      closing = true;
      // Writes already requested still commit and become durable (their callers wait for the
      // answer). Bounded: each round commits a group or waits for the running fdatasync.
      while (pending.length > 0 || syncing) {
        if (syncing) await new Promise<void>((resolve) => afterSync.push(resolve));
        else flush();
      }
      closed = true;
      listeners.clear();
      await checkpointer?.close();
      db.close();
      if (walFd !== undefined) closeSync(walFd);
      // Last: another store may open the directory once nothing of this one touches it.
      dirLock?.release();
    },
  };
  return store;
}
