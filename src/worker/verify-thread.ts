/**
 * Ed25519 checks on a second thread (issue 12: catch-up of 10,000 messages in < 2 s).
 *
 * Why: Chromium's WebCrypto verifies Ed25519 synchronously on the calling thread (config.ts
 * `verifyAhead`: 2,000 checks issued at once took 162 ms of the worker's own time), so in a
 * catch-up the engine's worker spent ~800 ms of its ~1,450 ms CPU in `ed25519Verify` while the
 * machine's other core was mostly idle. Here the engine's checks (all of receiveAll's look-ahead
 * checks, and any other check made during such a burst: withVerifyThread) go to a verifier worker
 * (verify-thread-server.ts, started by main.ts in Chromium only: Firefox and WebKit already
 * verify off the calling thread), which answers with WebCrypto's first answer, in parallel with
 * the engine's own work. receiveAll issues its checks VERIFY_THREAD_AHEAD events ahead, so the
 * round trip is hidden.
 *
 * The answers are the same as without the thread: the verifier runs webcrypto.ts `ed25519Verify`
 * itself, and a `false` of `ed25519Verify` is checked again by noble here exactly as the hybrid
 * provider does (select.ts: a platform refusal must not look like a bad signature). If the
 * thread cannot start, errors, says it cannot verify, or stops answering (VERIFY_THREAD_TIMEOUT_MS),
 * every check waiting on it and every later one is answered in the engine's worker, as before.
 *
 * Calls made in one turn go as one message (a postMessage per check would cost about what the
 * check does), and at most MAX_BATCHES_IN_FLIGHT batches are out at once: while the thread works,
 * new calls gather into the next batch.
 */
import { nobleProvider } from '../protocol/crypto/noble.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import type { CryptoRuntime, WebCryptoSupport } from '../protocol/crypto/detect.js';
import { packChecks, packedBytes, travels, type VerifyAnswer, type VerifyCheck, type VerifyRequest } from './verify-thread-wire.js';

/**
 * Checks per message to the thread. A batch is answered whole, so its first check waits for its
 * last: 64 checks are ~4–5 ms of the thread's time (~65 µs each in bench:catchup), short against
 * the engine's ~85 µs per message, so a page's first answers come soon. Also bounds the bytes
 * copied into one message. (bench:catchup, 2026-12-04, load 1.5–5: 32, 64 and 128 checks per
 * batch, 2 or 4 in flight, 256 or 512 ahead: 64 / 2 / 256 was the best, 128 / 512 the worst.)
 */
export const MAX_BATCH_CHECKS = 64;

/**
 * Session.receiveAll's look-ahead (SessionConfig.verifyAhead) with the thread, instead of
 * VERIFY_AHEAD (32). The engine waits for each message's verdict in order, so at most this many
 * checks are out: with 32 the round trip through two threads (each woken by a message, on a
 * loaded 2-core machine) bounded the rate, and a catch-up was slower than without the thread
 * (2,021 ms against main's 1,646, one run). 256 is four batches: two at the thread, two gathering.
 * Same results and effects for any value (config.ts); a page's memory grows by 256 decoded packets.
 */
export const VERIFY_THREAD_AHEAD = 256;

/** Bytes per message to the thread (data packets are < 1 KiB, but a message may be 16,000 characters). */
export const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Batches out at once: two, so that the thread has the next batch while its answer to the last
 * one travels back; more would only make batches smaller (calls gather while these are out).
 */
export const MAX_BATCHES_IN_FLIGHT = 2;

/**
 * How long the thread may owe an answer before the engine stops using it. A batch takes ~25 ms
 * (MAX_BATCH_CHECKS), and a cold start loads one small chunk: 5 s is far past an honest delay
 * even on a loaded machine, and short enough that a dead thread stalls a catch-up once, briefly.
 * A false alarm costs speed only (the engine verifies itself from then on).
 */
export const VERIFY_THREAD_TIMEOUT_MS = 5000;

/** The engine's end of the channel to the verifier: a Worker, or a MessagePort in tests. */
export interface VerifyThreadPort {
  postMessage(message: VerifyRequest, transfer: Transferable[]): void;
  addEventListener(type: 'message' | 'messageerror' | 'error', listener: (event: { data?: unknown }) => void): void;
  start?(): void;
  /** Worker: stops the thread. */
  terminate?(): void;
  /** MessagePort: closes the channel. */
  close?(): void;
}

export interface VerifyThreadTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface Waiting {
  readonly check: VerifyCheck;
  readonly resolve: (verdict: boolean | Promise<boolean>) => void;
}

/** The engine's client of the verifier thread: `verify` answers as webcrypto.ts `ed25519Verify` does. */
export class VerifyThread {
  #queue: Waiting[] = [];
  #queuedBytes = 0;
  readonly #inFlight = new Map<number, Waiting[]>();
  #nextId = 1;
  #pumpScheduled = false;
  #timer: unknown = undefined;
  /** Why the thread is no longer used; undefined while it is. */
  #down: string | undefined = undefined;

  constructor(
    private readonly port: VerifyThreadPort,
    /** The same first answer, computed here: for checks that do not travel, and after a failure. */
    readonly local: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>,
    private readonly timers: VerifyThreadTimers,
    private readonly onDown: (reason: string) => void = () => {},
  ) {
    port.addEventListener('message', (event) => this.#answer(event.data as VerifyAnswer));
    port.addEventListener('messageerror', () => this.#fail('an answer could not be read'));
    port.addEventListener('error', (event) => this.#fail(`the thread failed: ${String((event as { message?: unknown }).message ?? 'error')}`));
    port.start?.();
  }

  /** Whether the thread has checks out or gathering (a burst is under way). */
  get busy(): boolean {
    return this.#queue.length > 0 || this.#inFlight.size > 0;
  }

  /** Why the thread is not used (it failed), or undefined while it is. */
  get down(): string | undefined {
    return this.#down;
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const check = { publicKey, message, signature };
    if (this.#down !== undefined || !travels(check)) return this.local(publicKey, message, signature);
    return new Promise<boolean>((resolve) => {
      this.#queue.push({ check, resolve });
      this.#queuedBytes += packedBytes(check);
      if (this.#queue.length >= MAX_BATCH_CHECKS || this.#queuedBytes >= MAX_BATCH_BYTES) this.#pump();
      else if (!this.#pumpScheduled) {
        // The rest of this turn's calls join the batch.
        this.#pumpScheduled = true;
        queueMicrotask(() => {
          this.#pumpScheduled = false;
          this.#pump();
        });
      }
    });
  }

  /** Posts batches from the queue while fewer than MAX_BATCHES_IN_FLIGHT are out. */
  #pump(): void {
    while (this.#down === undefined && this.#queue.length > 0 && this.#inFlight.size < MAX_BATCHES_IN_FLIGHT) {
      let count = 0;
      let bytes = 0;
      // At least one check per batch, however long its message.
      while (count < this.#queue.length && count < MAX_BATCH_CHECKS && (count === 0 || bytes + packedBytes(this.#queue[count]!.check) <= MAX_BATCH_BYTES)) {
        bytes += packedBytes(this.#queue[count]!.check);
        count += 1;
      }
      const batch = this.#queue.splice(0, count);
      this.#queuedBytes -= bytes;
      const id = this.#nextId++;
      const data = packChecks(batch.map((w) => w.check));
      this.#inFlight.set(id, batch);
      try {
        this.port.postMessage({ t: 'verify', id, count: batch.length, data }, [data]);
      } catch (error) {
        this.#fail(`a batch could not be posted: ${String(error)}`);
        return;
      }
      this.#arm();
    }
  }

  #arm(): void {
    if (this.#timer === undefined && this.#inFlight.size > 0) {
      this.#timer = this.timers.setTimeout(() => {
        this.#timer = undefined;
        this.#fail(`no answer in ${VERIFY_THREAD_TIMEOUT_MS} ms`);
      }, VERIFY_THREAD_TIMEOUT_MS);
    }
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #answer(answer: VerifyAnswer): void {
    if (this.#down !== undefined) return;
    if (answer?.t === 'unavailable') {
      this.#fail(`the thread cannot verify: ${answer.reason}`);
      return;
    }
    const batch = answer?.t === 'verified' ? this.#inFlight.get(answer.id) : undefined;
    if (batch === undefined || !(answer.ok instanceof Uint8Array) || answer.ok.length !== batch.length) {
      this.#fail('an answer matched no batch');
      return;
    }
    this.#inFlight.delete(answer.id);
    // The clock restarts at every answer: it measures how long the thread owes one.
    this.#disarm();
    this.#arm();
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(answer.ok[i] === 1);
    this.#pump();
  }

  /** Stops using the thread: everything waiting on it, and everything later, is verified here. */
  #fail(reason: string): void {
    if (this.#down !== undefined) return;
    this.#down = reason;
    this.#disarm();
    const waiting = [...[...this.#inFlight.values()].flat(), ...this.#queue];
    this.#inFlight.clear();
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      this.port.terminate?.();
      this.port.close?.();
    } catch {
      // Already gone.
    }
    for (const w of waiting) w.resolve(this.local(w.check.publicKey, w.check.message, w.check.signature));
    this.onDown(reason);
  }
}

/**
 * `base` with its Ed25519 checks on the thread: `ed25519VerifyFirst` (receiveAll's look-ahead,
 * where the engine has other work meanwhile) is the thread's answer; `ed25519Verify` (awaited at
 * once: the in-order check, greetings, cards) takes the thread's answer during a burst, where it
 * joins the batch gathering anyway, and computes a lone check here: a round trip through an idle
 * thread costs more than the check (bench:client in Chromium, 3 alternating pairs with every
 * check on the thread: p50 8.5 / 8.7 / 11.6 ms against main's 8.0 / 8.1 / 10.3). Either way a
 * `false` is checked again with `recheck` (noble), as select.ts's hybrid does with WebCrypto's.
 * Everything else is `base`'s.
 */
export function withVerifyThread(base: CryptoProvider, thread: VerifyThread, recheck: CryptoProvider = nobleProvider): CryptoProvider {
  return {
    ...base, // (select.ts builds its providers as object literals of arrow functions)
    ed25519VerifyFirst: (publicKey, message, signature) => thread.verify(publicKey, message, signature),
    ed25519Verify: async (publicKey, message, signature) =>
      (await (thread.busy ? thread.verify(publicKey, message, signature) : thread.local(publicKey, message, signature))) ||
      recheck.ed25519Verify(publicKey, message, signature),
  };
}

/**
 * Whether a verifier thread helps: in Chromium (the only engine whose WebCrypto verifies on the
 * calling thread, select.ts), when WebCrypto's Ed25519 passed the probe (else noble verifies,
 * and the thread would answer with a refusal every time) and a worker can start workers.
 */
export function verifyThreadHelps(runtime: CryptoRuntime, support: WebCryptoSupport | undefined, canStartWorkers: boolean): boolean {
  return runtime === 'chromium' && support?.ed25519 === true && canStartWorkers;
}

/**
 * `base` with a verifier thread from `start`, or `base` itself when the thread cannot be started
 * (`start` throws). The thread's local fallback is `base`'s own first answer.
 */
export function startVerifyThread(
  base: CryptoProvider,
  start: () => VerifyThreadPort,
  timers: VerifyThreadTimers,
  onDown?: (reason: string) => void,
): CryptoProvider {
  let port: VerifyThreadPort;
  try {
    port = start();
  } catch (error) {
    onDown?.(`the thread did not start: ${String(error)}`);
    return base;
  }
  const local = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
    base.ed25519VerifyFirst !== undefined ? base.ed25519VerifyFirst(publicKey, message, signature) : base.ed25519Verify(publicKey, message, signature);
  return withVerifyThread(base, new VerifyThread(port, local, timers, onDown));
}
