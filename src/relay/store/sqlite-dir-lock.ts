/**
 * One relay process per SQLite data directory, enforced (issue 13, relay hardening). The store
 * keeps what only its own process writes in memory (the nonces of the last minutes:
 * ./sqlite-nonces.ts); a second relay on the same directory would not see them and would accept
 * the first one's replays. So the store holds a lock on the directory while it is open, and a
 * second store, in another process or in this one, fails at once with DataDirInUseError.
 *
 * How: a write lock held on the side file `relay.lock` by SQLite itself (a better-sqlite3
 * connection with a `BEGIN EXCLUSIVE` transaction that stays open; nothing is ever written, the
 * file stays empty, and its journal is in memory). Why this way:
 * - The OS holds it: SQLite's unix VFS takes POSIX `fcntl` locks, which the kernel drops when the
 *   process ends, SIGKILL and power cuts included. No stale lock after a crash, unlike a PID file
 *   (whose PID may also belong to another program by then). Node has no `flock()`, and this needs
 *   no native code of our own: better-sqlite3 is already the store's driver.
 * - It also works inside one process, where `fcntl` locks never conflict: SQLite keeps one lock
 *   record per file for the whole process (shared by every connection and worker thread), so a
 *   second store in the same process is refused the same way. It must be: two stores on one
 *   directory would each keep their own nonces even in one process.
 * - A side file, not relay.sqlite: the store's two connections (the event loop's and the WAL
 *   checkpoint thread's, ./sqlite-checkpointer.ts) share the database file in WAL mode, which
 *   `locking_mode=EXCLUSIVE` on it would forbid.
 * - Released by close() (the connection ends its transaction), and when a store thread ends
 *   (better-sqlite3 closes a thread's connections when the thread stops), so a process can reopen.
 *
 * The file is never deleted: a process that opened it before a delete would lock the old inode and
 * the next process a new one, and both would run. For the same reason operators must leave it in
 * place, and nothing else in the relay may open it (POSIX drops a process's locks on a file when
 * that process closes ANY descriptor of it). Needs a file system with working `fcntl` locks (any
 * local one; not some network file systems), as SQLite itself does.
 */
import Database from 'better-sqlite3';
import { join, resolve } from 'node:path';

/** The lock's file inside the data directory. */
export const DATA_DIR_LOCK_FILE_NAME = 'relay.lock';

/**
 * The directory's lock is held by another relay process, or by another store in this one. Its
 * `name` crosses from the store's thread (./sqlite-thread-wire.ts keeps it: `isDataDirInUse`);
 * main.ts prints only the message (an operator error, not a bug).
 */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
}

/** Whether `error` is a DataDirInUseError, one from the store's thread too (its name crosses, not its class). */
export function isDataDirInUse(error: unknown): error is Error {
  return error instanceof Error && error.name === 'DataDirInUseError';
}

export interface DataDirLock {
  /** Releases the lock (idempotent). */
  release(): void;
}

/** Takes the data directory's lock (the directory exists), or throws DataDirInUseError at once. */
export function lockDataDir(dataDir: string): DataDirLock {
  // timeout 0: a held lock fails now (better-sqlite3 would wait 5 s by default).
  const db = new Database(join(dataDir, DATA_DIR_LOCK_FILE_NAME), { timeout: 0 });
  try {
    // No journal file beside it (never written anyway; one on disk would outlive a SIGKILL).
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
    throw new DataDirInUseError(
      `the data directory ${resolve(dataDir)} is in use by another relay process (it holds ${DATA_DIR_LOCK_FILE_NAME}); ` +
        'stop that relay, or give this one another RELAY_DATA_DIR',
    );
  }
  return {
    release() {
      if (db.open) db.close();
    },
  };
}
