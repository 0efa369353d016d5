/**
 * WAL checkpoints of the SQLite store on a worker thread (issue 13 "Scale-out": fsync must not be
 * what limits posts/s). A checkpoint copies the WAL's pages into the database file and fsyncs
 * both: milliseconds of blocking I/O every few hundred commits. SQLite would run it inside a
 * commit on the relay's event loop (`wal_autocheckpoint`); the store turns that off and this
 * thread, with its own connection to the same file, runs `wal_checkpoint(PASSIVE)` instead, which
 * never blocks the writer. The WAL is reused from its start once a checkpoint has copied all of
 * it; until then it grows.
 *
 * The worker's code is a string run with `eval: true`, so it needs no TypeScript loader in the
 * thread (the relay runs under tsx, the tests under vitest); it loads better-sqlite3 by the path
 * this module resolves.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints when not asked to. */
const CHECKPOINT_INTERVAL_MS = 1_000;
/** How long a stopping worker may take before it is terminated. */
const STOP_TIMEOUT_MS = 5_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('synchronous = ' + workerData.synchronous);
let timer;
let stopped = false;
const run = () => {
  clearTimeout(timer);
  if (stopped) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ type: 'error', message: String((error && error.message) || error) });
  }
  timer = setTimeout(run, workerData.intervalMs);
};
parentPort.on('message', (message) => {
  if (message === 'checkpoint') return run();
  if (message === 'stop') {
    stopped = true;
    clearTimeout(timer);
    db.close();
    parentPort.close();
  }
});
run();
`;

export interface Checkpointer {
  /** Asks for a checkpoint now (the WAL grew). */
  poke(): void;
  /** Stops the thread (after its checkpoint in progress) and closes its connection. */
  close(): Promise<void>;
}

/**
 * Starts the checkpoint thread for the database at `path`. `synchronous` is the thread's level
 * ('NORMAL' syncs the WAL before and the database after each checkpoint). `onFailure` is called
 * once if the thread dies: the store then lets SQLite checkpoint on its own again.
 */
export function startCheckpointer(
  path: string,
  synchronous: 'NORMAL' | 'OFF',
  warn: (message: string) => void,
  onFailure: () => void,
): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { driver, path, synchronous, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  let stopping = false;
  let failed = false;
  const fail = (reason: string): void => {
    if (failed || stopping) return;
    failed = true;
    warn(`WAL checkpoint thread stopped (${reason}); checkpoints now run on the main thread`);
    onFailure();
  };
  worker.on('message', (message: { type: string; message?: string }) => {
    if (message.type === 'error') warn(`WAL checkpoint failed: ${message.message ?? '?'}`);
  });
  worker.on('error', (error) => fail(error.message));
  worker.on('exit', (code) => fail(`exit code ${code}`));
  // The thread must not keep the process alive: the store's close() stops it.
  worker.unref();
  return {
    poke() {
      if (!failed && !stopping) worker.postMessage('checkpoint');
    },
    async close() {
      if (stopping) return;
      stopping = true;
      if (failed) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
