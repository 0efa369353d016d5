/**
 * The SQLite store on its own thread, as the event loop sees it (issue 13: a SQLite relay's event
 * loop is what bounds its posts/s; better-sqlite3's statements and each group's BEGIN/COMMIT were
 * ~51 µs of the loop's ~185 µs per post). The store itself is ./sqlite.ts, unchanged, run by
 * ./sqlite-thread.ts; this side only hands calls over and answers come back. Opt-in
 * (RELAY_SQLITE_THREAD=on, ./select.ts): the event loop's CPU per post drops, the process's rises
 * a little (the hand-off, two wake-ups per batch), so it pays on a host with a core to spare; on
 * the 2-core bench machine, CPU-bound, it did not raise the peak (src/relay/README.md). ':memory:'
 * stores always stay in-process.
 *
 * - The calls made in one event-loop turn go to the thread as ONE message (at most
 *   MAX_CALLS_PER_MESSAGE), and the thread answers a group commit with one: the loop pays a
 *   structured clone per batch and a few µs per call, not a wake-up per call. The thread also
 *   makes each event's WebSocket frame JSON (EventListener's `frame`), which the fan-out sends as is.
 * - Same semantics: the thread's store resolves a write only once its group is durable, reads
 *   only durable data, and announces events in commit order after that; the thread reports events
 *   and answers in the order they happened and this side replays them in that order (listeners
 *   hear a write's event before its caller gets the answer, as in-process).
 * - Errors keep their class across (sqlite-thread-wire.ts): StoreUnavailableError stays a 503.
 * - A thread that dies (crash, out of memory, terminated) fails every call in flight and every
 *   later one with StoreUnavailableError (503, nothing acknowledged) and is logged once; it is not
 *   restarted (as after a failed fdatasync: restart the relay).
 */
import { Worker } from 'node:worker_threads';
import type { ChannelId, RelayEvent } from '../../shared/relay-api.js';
import type { SqliteRelayStore } from './sqlite.js';
import {
  fromWireError,
  ownedCopy,
  type FromThread,
  type ThreadCall,
  type ThreadItem,
  type ThreadMethod,
  type ThreadStoreOptions,
  type ToThread,
} from './sqlite-thread-wire.js';
import { StoreUnavailableError, type EventListener, type RelayStore } from './types.js';

/** Calls in one message at most: bounds one structured clone, a stall of either loop. */
const MAX_CALLS_PER_MESSAGE = 512;
/**
 * How long the thread may take to open the database. Its first start transpiles the store's
 * TypeScript (tsx): seconds on a loaded 2-core machine (tests/relay/helpers/process.ts saw a whole
 * relay take over 30 s at a load average of 30).
 */
const THREAD_START_TIMEOUT_MS = 120_000;
/** How long a closing thread may take to commit what it has and stop before it is terminated. */
const THREAD_STOP_TIMEOUT_MS = 30_000;

export interface SqliteThreadStoreOptions extends ThreadStoreOptions {
  /** Operational warnings (the thread died, the checkpoint thread stopped, an fsync failed). Default console.warn. */
  readonly warn?: (message: string) => void;
}

type Durability = ReturnType<SqliteRelayStore['durability']>;

export interface SqliteThreadStore extends RelayStore {
  /** As SqliteRelayStore.durability, asked of the thread. */
  durability(): Promise<Durability>;
  /** Tests: ends the thread at once, as a crash of the thread would. */
  terminateThread(): Promise<void>;
}

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Forwarded<M extends ThreadMethod> = (
  ...args: Parameters<SqliteRelayStore[M]>
) => Promise<Awaited<ReturnType<SqliteRelayStore[M]>>>;

export async function openSqliteThreadStore(options: SqliteThreadStoreOptions): Promise<SqliteThreadStore> {
  if (options.dataDir === ':memory:') throw new RangeError('the SQLite thread needs a data directory (use openSqliteStore for :memory:)');
  const warn = options.warn ?? ((message: string) => console.warn(`[relay sqlite] ${message}`));
  const workerData: ThreadStoreOptions = {
    dataDir: options.dataDir,
    ...(options.durability === undefined ? {} : { durability: options.durability }),
    ...(options.syncFailure === undefined ? {} : { syncFailure: options.syncFailure }),
  };
  const worker = new Worker(new URL('./sqlite-thread-entry.mjs', import.meta.url), { workerData });

  const waiting = new Map<number, Waiting>();
  const listeners = new Set<EventListener>();
  let nextId = 0;
  let outgoing: ThreadCall[] = [];
  /** Buffers to transfer, by the id of the call whose arguments hold them (few calls have one). */
  const transfer = new Map<number, ArrayBuffer>();
  let sendScheduled = false;
  /** Set when the thread died: every call fails with it. */
  let dead: StoreUnavailableError | undefined;
  let closing: Promise<void> | undefined;
  let closed = false;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));

  const notify = (channelId: ChannelId, event: RelayEvent, frame: string): void => {
    for (const listener of listeners) {
      try {
        listener(channelId, event, frame);
      } catch {
        // Listeners must not throw (types.ts); one bad listener must not stop the others.
      }
    }
  };

  /** The call `id` answers. Keeps the process alive only while calls wait for the thread or it closes. */
  const settled = (id: number): Waiting => {
    const entry = waiting.get(id);
    // Each call is answered once, and a dead thread answers nothing: anything else is a bug.
    if (entry === undefined) throw new Error(`the SQLite store thread answered call ${id}, which is not waiting`);
    waiting.delete(id);
    if (waiting.size === 0 && closing === undefined) worker.unref();
    return entry;
  };

  const play = (item: ThreadItem): void => {
    switch (item.kind) {
      case 'event':
        notify(item.channelId, item.event, item.frame);
        return;
      case 'value':
        settled(item.id).resolve(item.value);
        return;
      case 'error':
        settled(item.id).reject(fromWireError(item.error));
        return;
      case 'warn':
        warn(item.message);
        return;
    }
  };

  const fail = (reason: string): void => {
    if (dead !== undefined || closed) return;
    dead = new StoreUnavailableError(`the SQLite store thread stopped (${reason}); the store is unavailable until the relay restarts`);
    warn(dead.message);
    outgoing = [];
    transfer.clear();
    for (const entry of waiting.values()) entry.reject(dead);
    waiting.clear();
    worker.unref();
  };

  const send = (): void => {
    sendScheduled = false;
    while (outgoing.length > 0 && dead === undefined) {
      const calls = outgoing.length <= MAX_CALLS_PER_MESSAGE ? outgoing : outgoing.slice(0, MAX_CALLS_PER_MESSAGE);
      outgoing = outgoing.length <= MAX_CALLS_PER_MESSAGE ? [] : outgoing.slice(MAX_CALLS_PER_MESSAGE);
      // A buffer goes in the message that holds its call (one listed in another would arrive detached).
      const moved: ArrayBuffer[] = [];
      if (transfer.size > 0) {
        for (const { id } of calls) {
          const buffer = transfer.get(id);
          if (buffer === undefined) continue;
          moved.push(buffer);
          transfer.delete(id);
        }
      }
      worker.postMessage({ kind: 'calls', calls } satisfies ToThread, moved);
    }
  };

  const call = (method: ThreadMethod, args: readonly unknown[], moved?: ArrayBuffer): Promise<unknown> => {
    if (dead !== undefined) return Promise.reject(dead);
    if (closed) return Promise.reject(new Error('sqlite store is closed'));
    return new Promise((resolve, reject) => {
      const id = nextId++;
      if (waiting.size === 0) worker.ref();
      waiting.set(id, { resolve, reject });
      outgoing.push({ id, method, args });
      if (moved !== undefined) transfer.set(id, moved);
      if (sendScheduled) return;
      sendScheduled = true;
      // After this turn's other requests have made theirs: one message for all of them.
      setImmediate(send);
    });
  };
  const forward =
    <M extends ThreadMethod>(method: M): Forwarded<M> =>
    (...args) =>
      call(method, args) as ReturnType<Forwarded<M>>;

  /** While opening: what the thread's first message settles. */
  let opening: { resolve: () => void; reject: (error: Error) => void } | undefined;
  let closedByThread: (() => void) | undefined;
  worker.on('message', (message: FromThread) => {
    // What a dying thread had sent still arrives: its calls were failed already.
    if (dead !== undefined) return;
    switch (message.kind) {
      case 'items':
        for (const item of message.items) play(item);
        return;
      case 'ready':
        return opening?.resolve();
      case 'open-failed':
        return opening?.reject(fromWireError(message.error));
      case 'closed':
        closed = true;
        return closedByThread?.();
    }
  });
  worker.on('error', (error) => {
    opening?.reject(error);
    fail(error.stack ?? error.message);
  });
  worker.on('exit', (code) => {
    opening?.reject(new Error(`the SQLite store thread exited while opening (exit code ${code})`));
    fail(`exit code ${code}`);
    // Calls made after close() that the closed thread never answered.
    for (const entry of waiting.values()) entry.reject(new Error('sqlite store is closed'));
    waiting.clear();
  });
  worker.on('messageerror', (error) => {
    fail(`a message could not be read: ${error.message}`);
    void worker.terminate();
  });

  // Open: the thread says it is ready, or why it could not open the database.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`the SQLite store thread did not start within ${THREAD_START_TIMEOUT_MS} ms`));
    }, THREAD_START_TIMEOUT_MS);
    opening = {
      resolve: () => {
        clearTimeout(timer);
        opening = undefined;
        resolve();
      },
      reject: (error) => {
        clearTimeout(timer);
        opening = undefined;
        // Not a death to report: the caller gets the error.
        closed = true;
        reject(error);
      },
    };
  });
  worker.unref();

  const store: SqliteThreadStore = {
    name: 'sqlite',
    createChannel: forward('createChannel'),
    getChannel: forward('getChannel'),
    getMember: forward('getMember'),
    listMembers: forward('listMembers'),
    joinWithCapability: forward('joinWithCapability'),
    removeMember: forward('removeMember'),
    appendEvent: forward('appendEvent'),
    readEvents: forward('readEvents'),
    ackCursor: forward('ackCursor'),
    trim: forward('trim'),
    putCapability: forward('putCapability'),
    checkCapability: forward('checkCapability'),
    revokeCapability: forward('revokeCapability'),
    useNonce: forward('useNonce'),
    putFetchToken: forward('putFetchToken'),
    useFetchToken: forward('useFetchToken'),
    revokeFetchTokens: forward('revokeFetchTokens'),
    putPushSubscription: forward('putPushSubscription'),
    deletePushSubscription: forward('deletePushSubscription'),
    pushTargets: forward('pushTargets'),
    setOnline: forward('setOnline'),
    vapidKeys: forward('vapidKeys'),
    createUpload: forward('createUpload'),
    getUpload: forward('getUpload'),
    appendUploadChunk(id, offset, bytes, nowMs) {
      const copy = ownedCopy(bytes);
      return call('appendUploadChunk', [id, offset, copy, nowMs], copy.buffer) as ReturnType<RelayStore['appendUploadChunk']>;
    },
    readUploadRange: forward('readUploadRange'),
    deleteUpload: forward('deleteUpload'),
    finalizeUpload: forward('finalizeUpload'),
    openBlob: forward('openBlob'),
    readBlobRange: forward('readBlobRange'),
    sweep: forward('sweep'),
    stats: forward('stats'),
    storageUsage: forward('storageUsage'),
    durability: forward('durability'),

    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    async terminateThread() {
      await worker.terminate();
    },

    close() {
      closing ??= (async () => {
        if (dead !== undefined) return;
        // Calls already made go first; the thread's close commits and syncs them before it stops.
        send();
        worker.ref();
        const done = new Promise<void>((resolve) => {
          closedByThread = resolve;
        });
        worker.postMessage({ kind: 'close' } satisfies ToThread);
        const timer = setTimeout(() => {
          warn(`the SQLite store thread did not stop within ${THREAD_STOP_TIMEOUT_MS} ms; terminated`);
          void worker.terminate();
        }, THREAD_STOP_TIMEOUT_MS);
        await Promise.race([done, exited]);
        closed = true;
        clearTimeout(timer);
        listeners.clear();
        await exited;
      })();
      return closing;
    },
  };
  return store;
}
