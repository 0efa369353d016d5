/**
 * Signature checks beside the engine thread (issue 12, bench:catchup). Chromium runs
 * `crypto.subtle.verify` synchronously on the calling thread, so the 10,000 Ed25519 checks of a
 * catch-up took the engine worker's thread as long as everything else it did; the Session's
 * receiveAll already starts the checks of the next packets ahead (SessionConfig.verifyAhead)
 * expecting them to run elsewhere. This provider sends them to a helper worker
 * (verify-worker.ts), which checks them with the same provider, and answers every other call
 * itself.
 *
 * - Batched: checks asked for while the engine runs are sent together when it next yields (a
 *   macrotask), so a page's look-ahead goes as a few messages, not one per packet.
 * - A lone check with nothing else under way (a live message) is done here: a round trip to the
 *   helper would only add to its latency. So is everything asked before the helper said it is
 *   ready (loading it must not hold up the engine's start).
 * - Same answers: the helper runs the same provider selection; if it cannot start, fails, answers
 *   `null`, or has not answered a batch within HELPER_TIMEOUT_MS, that batch and every later one
 *   are checked here. A verification never rejects (CryptoProvider: false on any invalid input).
 */
import type { CryptoProvider } from '../protocol/crypto/provider.js';

/** [public key, message, signature] */
export type VerifyCheck = readonly [Uint8Array, Uint8Array, Uint8Array];
export interface VerifyRequest {
  readonly id: number;
  readonly checks: readonly VerifyCheck[];
}
/** The helper's answer to a request, or its first message: ready (its provider is selected). */
export type VerifyResponse =
  | {
      readonly id: number;
      /** null: the helper could not check them (the engine does). */
      readonly results: readonly boolean[] | null;
    }
  | { readonly ready: true };

/** The helper worker as this file uses it (a Worker, or a fake in tests). */
export interface VerifyPort {
  postMessage(message: VerifyRequest): void;
  addEventListener(type: 'message', listener: (event: { readonly data: VerifyResponse }) => void): void;
  addEventListener(type: 'error' | 'messageerror', listener: () => void): void;
  terminate(): void;
}

/**
 * A helper that has not answered a batch within this long is given up (its batches are checked
 * here): longer than any batch takes on a loaded phone (a batch is at most a page's look-ahead,
 * a few ms of work), short enough that a helper that hangs costs one pause, not a stuck engine.
 */
export const HELPER_TIMEOUT_MS = 10_000;

interface Pending {
  readonly check: VerifyCheck;
  readonly resolve: (ok: boolean) => void;
}

export interface VerifyPoolOptions {
  /** Runs `fn` as a macrotask (after the engine's current run of microtasks). */
  readonly later: (fn: () => void) => void;
  readonly setTimeout: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
}

/**
 * `local` with its `ed25519Verify` sent to the helper `start()` makes (undefined: no helper, so
 * `local` itself).
 */
export function withVerifyWorker(local: CryptoProvider, start: () => VerifyPort | undefined, options: VerifyPoolOptions): CryptoProvider {
  let helper: VerifyPort | undefined;
  try {
    helper = start();
  } catch {
    helper = undefined;
  }
  if (helper === undefined) return local;
  const port = helper;
  let broken = false;
  let ready = false;
  let nextId = 1;
  let queued: Pending[] = [];
  let flushScheduled = false;
  const inFlight = new Map<number, { readonly batch: Pending[]; readonly timer: unknown }>();

  const checkHere = (batch: readonly Pending[]) => {
    for (const p of batch) void local.ed25519Verify(...p.check).then(p.resolve, () => p.resolve(false));
  };
  const giveUp = () => {
    if (broken) return;
    broken = true;
    const stranded = [...inFlight.values()];
    inFlight.clear();
    for (const { batch, timer } of stranded) {
      options.clearTimeout(timer);
      checkHere(batch);
    }
    try {
      port.terminate();
    } catch {
      // already gone
    }
  };
  port.addEventListener('error', giveUp);
  port.addEventListener('messageerror', giveUp);
  port.addEventListener('message', ({ data }) => {
    if ('ready' in data) {
      ready = true;
      return;
    }
    const sent = inFlight.get(data.id);
    if (sent === undefined) return; // answered here already (timeout)
    inFlight.delete(data.id);
    options.clearTimeout(sent.timer);
    if (data.results === null || data.results.length !== sent.batch.length) {
      giveUp();
      checkHere(sent.batch);
      return;
    }
    sent.batch.forEach((p, i) => p.resolve(data.results![i] === true));
  });

  const flush = () => {
    flushScheduled = false;
    const batch = queued;
    queued = [];
    if (batch.length === 0) return;
    if (broken || !ready || (batch.length === 1 && inFlight.size === 0)) {
      checkHere(batch);
      return;
    }
    const id = nextId++;
    const timer = options.setTimeout(giveUp, HELPER_TIMEOUT_MS);
    inFlight.set(id, { batch, timer });
    try {
      port.postMessage({ id, checks: batch.map((p) => p.check) });
    } catch {
      giveUp();
    }
  };

  return {
    ...local,
    name: local.name,
    ed25519Verify(publicKey, message, signature) {
      if (broken || !ready) return local.ed25519Verify(publicKey, message, signature);
      // Inputs the helper could not receive (not bytes) are the local provider's to refuse.
      if (!(publicKey instanceof Uint8Array && message instanceof Uint8Array && signature instanceof Uint8Array)) return local.ed25519Verify(publicKey, message, signature);
      return new Promise<boolean>((resolve) => {
        queued.push({ check: [publicKey, message, signature], resolve });
        if (!flushScheduled) {
          flushScheduled = true;
          options.later(flush);
        }
      });
    },
  };
}

/** A macrotask without a timer's clamping: a message to ourselves. */
export function messageChannelLater(): (fn: () => void) => void {
  const channel = new MessageChannel();
  const waiting: (() => void)[] = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  return (fn) => {
    waiting.push(fn);
    channel.port2.postMessage(null);
  };
}
