/**
 * The SQLite store's replay protection (store/types.ts `useNonce`; issue 13 "Scale-out": less
 * relay CPU per post). Each (key, nonce) is accepted once until it expires, across restarts and
 * crashes, exactly as before; what changed is where a check looks and what a use writes.
 *
 * Before, every nonce was a row of `nonces`, clustered by (key, nonce), plus an expiry index: a
 * random (key, nonce) lands on a random leaf, so every post dirtied a page of its own (a group of
 * 60 posts: 77 WAL frames against 25 without nonces; ~15 µs of CPU per post in a store-only
 * loop). Now the nonces of ordinary requests are checked in a Set in memory (the file has one
 * owner, a single relay process: ./sqlite.ts) and logged to `nonce_log`, ONE row per group commit
 * (the group's entries, one a line, and their latest expiry), written at the end of the group's
 * transaction: a nonce is exactly as durable as the request's own write (a post: its append) was
 * before, and a group adds one row at the table's end (60 posts: 28 frames). The log is read back
 * into memory when the store opens; the sweep deletes the rows whose latest expiry has passed (by
 * their expiry index, one entry a group) and forgets their entries.
 *
 * `nonces` keeps its form and its role for what should not sit in memory: nonces that live longer
 * than NONCE_MEMORY_MAX_LIFETIME_MS (deferred posts: 14 days) and every nonce once
 * MAX_NONCES_IN_MEMORY are held. A file from a released relay has its recent nonces there; they
 * are read where they are. A check reads `nonces` only for a key that has rows there (those keys
 * are kept in memory too, and rebuilt by each sweep), so a post normally reads no page at all.
 *
 * Every function here runs inside the store's write transaction. Memory follows the file: what a
 * job added is taken back when its savepoint or the group's commit rolls back (`mark`, `rollBack`,
 * `committed`), so memory never holds a nonce the file lost (a retry of the same request would
 * then be refused by this relay but accepted by the same relay restarted).
 */
import type Database from 'better-sqlite3';

/**
 * Nonces kept in memory at most: ~150 bytes each (a 43-character key and a 22-character nonce in
 * a V8 Set, measured), so at most ~150 MiB; that holds every ordinary nonce of 10 minutes (their
 * lifetime, 2 × maxClockSkewMs) at 1,600 requests a second. Beyond it nonces go to the `nonces`
 * table as before: correct, about 20 µs more per post.
 */
export const MAX_NONCES_IN_MEMORY = 1_000_000;

/**
 * Longest lifetime of a nonce kept in memory. Ordinary requests' nonces live 2 × maxClockSkewMs
 * + 1 ms at most (10 minutes by default: auth.ts); a deferred post's lives 14 days
 * (DEFERRED_POST_MAX_AGE_MS) and goes to the `nonces` table, so memory holds minutes of traffic,
 * not weeks. Only placement depends on it: a check consults both places.
 */
export const NONCE_MEMORY_MAX_LIFETIME_MS = 60 * 60 * 1000;

/** The log's schema (./sqlite.ts runs it with the rest); `nonces` is in ./sqlite.ts unchanged. */
export const NONCE_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS nonce_log (id INTEGER PRIMARY KEY, expires_ms INTEGER NOT NULL, nonces TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS nonce_log_expiry ON nonce_log (expires_ms);
`;

export interface NonceStoreOptions {
  /** Tests: MAX_NONCES_IN_MEMORY. */
  readonly maxInMemory?: number;
}

export interface NonceStore {
  /**
   * Records (key, nonce) until expiresAtMs; true if it was new, false if already recorded (a
   * replay). `nowMs` only decides where it is kept. Inside a write transaction.
   */
  use(key: string, nonce: string, expiresAtMs: number, nowMs: number): boolean;
  /** Deletes nonces expired at nowMs from the file and from memory. Inside a write transaction. */
  expire(nowMs: number): void;
  /** A point to roll back to (before a job runs). */
  mark(): number;
  /** Forgets the memory entries added since `mark` (their savepoint or transaction rolled back). */
  rollBack(mark: number): void;
  /**
   * Writes the log row of the nonces the running transaction kept in memory: at its end, inside
   * it (after every job, so only what the jobs that succeeded added).
   */
  log(): void;
  /** The transaction committed: what it added stays. */
  committed(): void;
  /** Nonces held in memory (tests). */
  inMemory(): number;
}

/**
 * What the memory's names and the log's rows cannot hold: a name is "<key> <nonce>" and a row's
 * names are its lines. Keys and nonces are base64url (auth.ts checks both before any store call).
 */
const SEPARATORS = /[ \n]/;

/** The memory's name for a (key, nonce). */
function entry(key: string, nonce: string): string {
  return `${key} ${nonce}`;
}

/** The entries of one log row (`nonces`: names, one a line). */
function entriesOf(text: string): string[] {
  return text.split('\n');
}

export function openNonceStore(db: Database.Database, options: NonceStoreOptions = {}): NonceStore {
  const maxInMemory = options.maxInMemory ?? MAX_NONCES_IN_MEMORY;
  const q = {
    log: db.prepare('INSERT INTO nonce_log (expires_ms, nonces) VALUES (?, ?)'),
    logged: db.prepare<[], string>('SELECT nonces FROM nonce_log').pluck(),
    expiredLogged: db.prepare<[number], string>('SELECT nonces FROM nonce_log WHERE expires_ms <= ?').pluck(),
    expireLog: db.prepare('DELETE FROM nonce_log WHERE expires_ms <= ?'),
    insertTable: db.prepare('INSERT OR IGNORE INTO nonces (key, nonce, expires_ms) VALUES (?, ?, ?)'),
    inTable: db.prepare<[string, string], number>('SELECT 1 FROM nonces WHERE key = ? AND nonce = ?').pluck(),
    tableKeys: db.prepare<[], string>('SELECT DISTINCT key FROM nonces').pluck(),
    expireTable: db.prepare('DELETE FROM nonces WHERE expires_ms <= ?'),
  };
  /** Every (key, nonce) of `nonce_log`, and entries of the running transaction. */
  const recent = new Set<string>();
  for (const text of q.logged.iterate()) for (const name of entriesOf(text)) recent.add(name);
  /** Keys with rows in `nonces` (a superset: a rolled-back insert leaves its key until the next sweep). */
  let tableKeys = new Set(q.tableKeys.all());
  /** Entries added to `recent` by the running transaction, in order (see `rollBack`). */
  let added: string[] = [];
  /** The latest expiry among them (a rolled-back one may stay: its row is then kept a little longer). */
  let addedExpiresMs = 0;

  return {
    use(key, nonce, expiresAtMs, nowMs) {
      // A bug, not a peer's input: its entry would read back as another one after a restart.
      if (SEPARATORS.test(key) || SEPARATORS.test(nonce)) throw new TypeError('nonce store: a key or nonce holds a space or a line break');
      const name = entry(key, nonce);
      if (recent.has(name) || (tableKeys.has(key) && q.inTable.get(key, nonce) !== undefined)) return false;
      if (expiresAtMs - nowMs <= NONCE_MEMORY_MAX_LIFETIME_MS && recent.size < maxInMemory) {
        recent.add(name);
        added.push(name);
        if (expiresAtMs > addedExpiresMs) addedExpiresMs = expiresAtMs;
        return true;
      }
      tableKeys.add(key);
      return q.insertTable.run(key, nonce, expiresAtMs).changes === 1;
    },

    expire(nowMs) {
      // Forgetting an expired entry is safe even if this transaction rolls back: no request
      // carrying it passes the time check any more (auth.ts: it expires when its window ends).
      for (const text of q.expiredLogged.iterate(nowMs)) for (const name of entriesOf(text)) recent.delete(name);
      q.expireLog.run(nowMs);
      q.expireTable.run(nowMs);
      // Rows this delete brings back if it rolls back are expired: they need no key here.
      tableKeys = new Set(q.tableKeys.all());
    },

    mark() {
      return added.length;
    },

    rollBack(mark) {
      for (let i = mark; i < added.length; i += 1) recent.delete(added[i]!);
      added.length = mark;
      if (mark === 0) addedExpiresMs = 0;
    },

    log() {
      if (added.length > 0) q.log.run(addedExpiresMs, added.join('\n'));
    },

    committed() {
      added = [];
      addedExpiresMs = 0;
    },

    inMemory() {
      return recent.size;
    },
  };
}
