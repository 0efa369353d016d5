/**
 * Where Ed25519 request signatures are checked (issue 13 "Scale-out": one check per post is the
 * floor of the post path's CPU; "signature checks may move to a worker thread if measured
 * faster").
 * Places (RELAY_VERIFY_THREADS):
 *
 * - the default (unset): DEFAULT_VERIFY_THREADS worker thread(s), except that an idle relay checks
 *   inline (auth.ts `idleInlineVerifier`). The checks asked for in one event-loop turn go to a
 *   thread as ONE message and come back as one: the event loop spends a few µs per check instead
 *   of the whole check (about 150 µs on the 2-core bench machine), and a busy turn's checks cost
 *   one wake-up of the thread, not one per check. (libuv's thread pool, the default until the
 *   seventh session, wakes a pool thread and then the loop for every check: in alternating A/B
 *   runs the relay's CPU per post was 60-260 µs higher and its event loop's 70-130 µs; README.)
 * - inline, on the event loop (RELAY_VERIFY_THREADS=0): no hand-off at all, for a relay that runs
 *   one process per core anyway.
 * - `threads` worker threads (RELAY_VERIFY_THREADS=n), never inline.
 * Threads start with the first check that goes to them (a relay that is never busy has none).
 *
 * The checks are the same either way (auth.ts `verifyEd25519`): node:crypto (OpenSSL) Ed25519
 * with the key's DER wrapping, a cache of parsed keys, and false for anything malformed. The
 * caller has already refused small-order and non-canonical keys (ids.ts `parseMemberKey`).
 * The worker's code is a string run with `eval: true` (no TypeScript loader needed in the thread).
 */
import { Worker } from 'node:worker_threads';
import type { MemberKey } from '../shared/relay-api.js';

/** Checks sent to one thread in one message at most (bounds a message's size and a thread's turn). */
const MAX_BATCH = 256;
/** How long a stopping thread may take before it is terminated. */
const STOP_TIMEOUT_MS = 5_000;
/**
 * Worker threads of the default: one thread takes the checks of a busy event loop (it checks
 * faster than the loop can parse, store and fan out the posts they belong to), and on a machine
 * with few cores a second one only adds switching. More: RELAY_VERIFY_THREADS.
 */
export const DEFAULT_VERIFY_THREADS = 1;
/** Most threads an operator may ask for: more than the cores only adds switching. */
export const MAX_VERIFY_THREADS = 16;

export interface SignatureVerifier {
  /** True when `signature` is a valid Ed25519 signature of `message` by `key`. Never rejects. */
  verify(key: MemberKey, message: Buffer, signature: Buffer): Promise<boolean>;
  close(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const KEY_CACHE_MAX = 10000;
const keys = new Map();
const keyObject = (key) => {
  let object = keys.get(key);
  if (object !== undefined) return object;
  try {
    object = createPublicKey({ key: Buffer.concat([PREFIX, Buffer.from(key, 'base64url')]), format: 'der', type: 'spki' });
  } catch {
    object = null;
  }
  if (keys.size >= KEY_CACHE_MAX) keys.delete(keys.keys().next().value);
  keys.set(key, object);
  return object;
};
parentPort.on('message', ({ id, keys: batchKeys, messages, signatures }) => {
  const results = new Uint8Array(batchKeys.length);
  for (let i = 0; i < batchKeys.length; i++) {
    const object = keyObject(batchKeys[i]);
    const signature = signatures[i];
    if (object === null || signature.length !== 64) continue;
    try {
      results[i] = verify(null, messages[i], object, signature) ? 1 : 0;
    } catch {
      results[i] = 0;
    }
  }
  parentPort.postMessage({ id, results }, [results.buffer]);
});
`;

interface Pending {
  readonly key: MemberKey;
  readonly message: Buffer;
  readonly signature: Buffer;
  readonly resolve: (valid: boolean) => void;
}

interface Thread {
  readonly worker: Worker;
  /** Batches sent and not answered: the least busy thread gets the next one. */
  inFlight: number;
  readonly waiting: Map<number, readonly Pending[]>;
}

/**
 * RELAY_VERIFY_THREADS: unset or '' → undefined (the default: DEFAULT_VERIFY_THREADS threads, inline when idle); 0 → the event loop; else
 * worker threads, an integer 1..MAX_VERIFY_THREADS (anything else stops the relay).
 */
export function verifyThreadsFromEnv(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const threads = Number(text);
  if (!Number.isInteger(threads) || threads < 0 || threads > MAX_VERIFY_THREADS) {
    throw new Error(`RELAY_VERIFY_THREADS must be an integer 0..${MAX_VERIFY_THREADS}, got ${text}`);
  }
  return threads;
}

/**
 * Checks on `threads` worker threads. A thread that dies fails its batch closed (every
 * signature in it counts as invalid: the client gets 401 and retries) and is replaced.
 */
export function startVerifierPool(threads: number, warn: (message: string) => void): SignatureVerifier {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_VERIFY_THREADS) {
    throw new RangeError(`verify threads must be 1..${MAX_VERIFY_THREADS}, got ${threads}`);
  }
  let queue: Pending[] = [];
  let flushScheduled = false;
  let nextId = 0;
  let closed = false;

  const spawnThread = (): Thread => {
    const thread: Thread = { worker: new Worker(WORKER_SOURCE, { eval: true }), inFlight: 0, waiting: new Map() };
    thread.worker.unref();
    thread.worker.on('message', ({ id, results }: { id: number; results: Uint8Array }) => {
      const batch = thread.waiting.get(id);
      if (batch === undefined) return;
      thread.waiting.delete(id);
      thread.inFlight -= 1;
      batch.forEach((pending, i) => pending.resolve(results[i] === 1));
    });
    const fail = (reason: string): void => {
      if (closed) return;
      warn(`signature thread stopped (${reason}); its checks failed closed, starting another`);
      for (const batch of thread.waiting.values()) for (const pending of batch) pending.resolve(false);
      thread.waiting.clear();
      const index = pool?.indexOf(thread) ?? -1;
      if (pool !== undefined && index >= 0) pool[index] = spawnThread();
    };
    thread.worker.on('error', (error) => fail(error.message));
    thread.worker.on('exit', (code) => fail(`exit code ${code}`));
    return thread;
  };
  /** Started with the first batch (an idle relay, or a test's, never needs them). */
  let pool: Thread[] | undefined;

  const flush = (): void => {
    flushScheduled = false;
    // Bounded: each round sends up to MAX_BATCH checks.
    while (queue.length > 0) {
      const batch = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH);
      queue = queue.length <= MAX_BATCH ? [] : queue.slice(MAX_BATCH);
      pool ??= Array.from({ length: threads }, spawnThread);
      const thread = pool.reduce((best, candidate) => (candidate.inFlight < best.inFlight ? candidate : best));
      const id = nextId++;
      thread.waiting.set(id, batch);
      thread.inFlight += 1;
      thread.worker.postMessage({
        id,
        keys: batch.map((pending) => pending.key),
        messages: batch.map((pending) => pending.message),
        signatures: batch.map((pending) => pending.signature),
      });
    }
  };

  return {
    verify(key, message, signature) {
      if (closed) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        queue.push({ key, message, signature, resolve });
        if (!flushScheduled) {
          flushScheduled = true;
          // After this turn's other requests have queued theirs: one message for all of them.
          setImmediate(flush);
        }
      });
    },
    async close() {
      closed = true;
      for (const pending of queue) pending.resolve(false);
      queue = [];
      await Promise.all(
        (pool ?? []).map(async (thread) => {
          for (const batch of thread.waiting.values()) for (const pending of batch) pending.resolve(false);
          const timer = setTimeout(() => void thread.worker.terminate(), STOP_TIMEOUT_MS);
          await thread.worker.terminate();
          clearTimeout(timer);
        }),
      );
    },
  };
}
