/**
 * The SQLite store's own thread (issue 13: at its peak a SQLite relay's event loop is 0.9 busy,
 * and better-sqlite3's statements and the group's BEGIN/COMMIT were ~51 µs of each post's ~185).
 * It runs the in-process store of ./sqlite.ts unchanged (group commit, durability, reads that wait
 * for it, announcements after it) and serves the calls ./sqlite-proxy.ts sends; started through
 * ./sqlite-thread-entry.mjs, which gives the thread a TypeScript loader.
 *
 * The group's fdatasync runs right here, blocking this thread only: nothing else waits for this
 * thread's loop in the meantime (the next group and every read wait for the sync anyway), and it
 * saves the trip to libuv's pool and back that the in-process store makes to keep its event loop
 * free.
 */
import { fdatasyncSync } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { ServerFrame } from '../../shared/relay-api.js';
import { openSqliteStore, type SqliteRelayStore } from './sqlite.js';
import {
  THREAD_METHODS,
  ownedCopy,
  toWireError,
  type FromThread,
  type ThreadCall,
  type ThreadItem,
  type ThreadStoreOptions,
  type ToThread,
} from './sqlite-thread-wire.js';

/**
 * Microtask turns to wait before sending what a group produced. A group's events are reported
 * while it settles, its answers one to three promise steps later (the `.then` below, behind the
 * store's own `async` methods that await a write); waiting this long sends them in one message.
 * Not a macrotask: the store's next group commit is already queued as one and would hold this
 * group's answers back by a whole commit and fdatasync.
 */
const MICROTASKS_BEFORE_SEND = 4;

function threadPort(): MessagePort {
  if (parentPort === null) throw new Error('sqlite-thread.ts runs as a worker thread (./sqlite-proxy.ts starts it)');
  return parentPort;
}
const port = threadPort();
const options = workerData as ThreadStoreOptions;
const methods: ReadonlySet<string> = new Set(THREAD_METHODS);

let items: ThreadItem[] = [];
let transfer: ArrayBuffer[] = [];
let sendScheduled = false;

function send(): void {
  sendScheduled = false;
  if (items.length === 0) return;
  const message: FromThread = { kind: 'items', items };
  const moved = transfer;
  items = [];
  transfer = [];
  port.postMessage(message, moved);
}

function report(item: ThreadItem): void {
  items.push(item);
  if (sendScheduled) return;
  sendScheduled = true;
  let turns = 0;
  const wait = (): void => {
    turns += 1;
    if (turns < MICROTASKS_BEFORE_SEND) queueMicrotask(wait);
    else send();
  };
  queueMicrotask(wait);
}

/** The group's fdatasync, on this thread (see the module comment). */
function syncHere(fd: number, done: (error: Error | null) => void): void {
  if (options.syncFailure !== undefined) return done(new Error(options.syncFailure));
  try {
    fdatasyncSync(fd);
  } catch (error) {
    return done(error instanceof Error ? error : new Error(String(error)));
  }
  done(null);
}

function serve(store: SqliteRelayStore, call: ThreadCall): void {
  // A method the proxy should never send is a bug: crash the thread (the proxy answers 503 and logs it).
  if (!methods.has(call.method)) throw new Error(`sqlite thread: unknown method ${String(call.method)}`);
  let result: Promise<unknown>;
  try {
    const method = store[call.method] as (...args: unknown[]) => unknown;
    result = Promise.resolve(method.apply(store, call.args as unknown[]));
  } catch (error) {
    result = Promise.reject(error);
  }
  result.then(
    (value) => {
      if (value instanceof Uint8Array) {
        const bytes = ownedCopy(value);
        transfer.push(bytes.buffer);
        report({ kind: 'value', id: call.id, value: bytes });
      } else {
        report({ kind: 'value', id: call.id, value });
      }
    },
    (error: unknown) => report({ kind: 'error', id: call.id, error: toWireError(error) }),
  );
}

function start(): void {
  let store: SqliteRelayStore;
  try {
    store = openSqliteStore({
      dataDir: options.dataDir,
      ...(options.durability === undefined ? {} : { durability: options.durability }),
      warn: (message) => report({ kind: 'warn', message }),
      syncFile: syncHere,
    });
  } catch (error) {
    port.postMessage({ kind: 'open-failed', error: toWireError(error) } satisfies FromThread);
    port.close();
    return;
  }
  // The frame's JSON is made here, off the event loop, as the Redis store publishes it whole.
  store.subscribe((channelId, event) =>
    report({ kind: 'event', channelId, event, frame: JSON.stringify({ type: 'event', channel: channelId, event } satisfies ServerFrame) }),
  );
  let closing = false;
  port.on('message', (message: ToThread) => {
    if (message.kind === 'calls') {
      for (const call of message.calls) serve(store, call);
      return;
    }
    if (closing) return;
    closing = true;
    // Calls that came before the close are in the store already: close() commits and syncs them.
    // A close that fails is a bug: its rejection stays unhandled and ends the thread.
    void store.close().then(() => {
      send();
      port.postMessage({ kind: 'closed' } satisfies FromThread);
      port.close();
    });
  });
  port.postMessage({ kind: 'ready' } satisfies FromThread);
}

start();
