/**
 * Signature checks on a helper worker (src/worker/verify-pool.ts): the same verdicts as the
 * engine's own provider, batched; nothing waits for a helper that is not ready, fails, answers
 * nothing usable or hangs (its checks are done by the engine, each exactly once).
 */
import { describe, expect, it } from 'vitest';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { withVerifyWorker, HELPER_TIMEOUT_MS, type VerifyPort, type VerifyRequest, type VerifyResponse } from '../../src/worker/verify-pool.js';

type Listener = (event: { readonly data: VerifyResponse }) => void;

/** A helper in this thread: answers with noble after a macrotask (or as a test says). */
class FakeHelper implements VerifyPort {
  readonly requests: VerifyRequest[] = [];
  private readonly listeners = new Map<string, ((event: { readonly data: VerifyResponse }) => void)[]>();
  terminated = false;
  /** How it answers a request; default: correctly. */
  answer: (request: VerifyRequest) => Promise<VerifyResponse | undefined> = async (request) => ({
    id: request.id,
    results: await Promise.all(request.checks.map((c) => nobleProvider.ed25519Verify(...c))),
  });

  postMessage(message: VerifyRequest): void {
    this.requests.push(message);
    setTimeout(() => {
      void this.answer(message).then((response) => {
        if (response !== undefined && !this.terminated) this.emit('message', response);
      });
    }, 0);
  }
  addEventListener(type: string, listener: Listener | (() => void)): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener as Listener]);
  }
  terminate(): void {
    this.terminated = true;
  }
  emit(type: string, data?: VerifyResponse): void {
    for (const l of this.listeners.get(type) ?? []) l({ data: data! });
  }
  ready(): void {
    this.emit('message', { ready: true });
  }
}

/** Counts the engine's own checks. */
function countingLocal() {
  const counter = { checks: 0 };
  const local = { ...nobleProvider, ed25519Verify: (...args: Parameters<typeof nobleProvider.ed25519Verify>) => (counter.checks++, nobleProvider.ed25519Verify(...args)) };
  return { local, counter };
}

const timers = () => {
  const pending = new Set<ReturnType<typeof setTimeout>>();
  return {
    later: (fn: () => void) => void setTimeout(fn, 0),
    setTimeout: (fn: () => void, ms: number) => {
      const t = setTimeout(() => {
        pending.delete(t);
        fn();
      }, ms);
      pending.add(t);
      return t;
    },
    clearTimeout: (handle: unknown) => {
      clearTimeout(handle as ReturnType<typeof setTimeout>);
      pending.delete(handle as ReturnType<typeof setTimeout>);
    },
  };
};

/** n signed messages, every third with a damaged signature, and the verdicts they must get. */
async function checks(n: number) {
  const seed = new Uint8Array(32).fill(7);
  const publicKey = await nobleProvider.ed25519PublicKey(seed);
  const out: { args: [Uint8Array, Uint8Array, Uint8Array]; valid: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const message = new TextEncoder().encode(`packet ${i}`);
    const signature = await nobleProvider.ed25519Sign(seed, message);
    const valid = i % 3 !== 2;
    if (!valid) signature[5]! ^= 1;
    out.push({ args: [publicKey, message, signature], valid });
  }
  return out;
}

describe('verify-pool', () => {
  it('sends a page of checks to the ready helper in a few batches, with the verdicts the engine would give', async () => {
    const helper = new FakeHelper();
    const { local, counter } = countingLocal();
    const crypto = withVerifyWorker(local, () => helper, timers());
    helper.ready();
    const all = await checks(40);
    const verdicts = await Promise.all(all.map((c) => crypto.ed25519Verify(...c.args)));
    expect(verdicts).toEqual(all.map((c) => c.valid));
    expect(verdicts.filter((v) => !v).length).toBe(13);
    expect(counter.checks).toBe(0);
    expect(helper.requests.length).toBe(1);
    expect(helper.requests[0]!.checks.length).toBe(40);
    // Every other call is the engine's own provider's.
    expect(crypto.sha256).toBe(local.sha256);
  });

  it('checks here before the helper is ready, and a lone check with nothing under way', async () => {
    const helper = new FakeHelper();
    const { local, counter } = countingLocal();
    const crypto = withVerifyWorker(local, () => helper, timers());
    const [a, b] = await checks(2);
    expect(await Promise.all([crypto.ed25519Verify(...a!.args), crypto.ed25519Verify(...b!.args)])).toEqual([true, true]);
    expect(counter.checks).toBe(2);
    helper.ready();
    expect(await crypto.ed25519Verify(...a!.args)).toBe(true);
    expect(counter.checks).toBe(3);
    expect(helper.requests.length).toBe(0);
  });

  it('a helper that fails mid-batch: its checks are done here, once each, and so is everything after', async () => {
    const helper = new FakeHelper();
    helper.answer = () => new Promise(() => undefined); // never answers
    const { local, counter } = countingLocal();
    const crypto = withVerifyWorker(local, () => helper, timers());
    helper.ready();
    const all = await checks(9);
    const verdicts = Promise.all(all.map((c) => crypto.ed25519Verify(...c.args)));
    await new Promise((r) => setTimeout(r, 5));
    expect(helper.requests.length).toBe(1);
    helper.emit('error');
    expect(await verdicts).toEqual(all.map((c) => c.valid));
    expect(counter.checks).toBe(9);
    expect(helper.terminated).toBe(true);
    expect(await crypto.ed25519Verify(...all[2]!.args)).toBe(false);
    expect(helper.requests.length).toBe(1);
  });

  it('a helper that cannot check (null) or answers the wrong count: checked here', async () => {
    for (const answer of [(r: VerifyRequest) => ({ id: r.id, results: null }), (r: VerifyRequest) => ({ id: r.id, results: [true] })]) {
      const helper = new FakeHelper();
      helper.answer = async (r) => answer(r);
      const { local, counter } = countingLocal();
      const crypto = withVerifyWorker(local, () => helper, timers());
      helper.ready();
      const all = await checks(6);
      expect(await Promise.all(all.map((c) => crypto.ed25519Verify(...c.args)))).toEqual(all.map((c) => c.valid));
      expect(counter.checks).toBe(6);
    }
  });

  it('a helper that hangs is given up after HELPER_TIMEOUT_MS; its late answer changes nothing', async () => {
    const helper = new FakeHelper();
    let release: () => void = () => undefined;
    const late = new Promise<void>((r) => (release = r));
    helper.answer = async (r) => {
      await late;
      return { id: r.id, results: r.checks.map(() => true) }; // wrong on purpose: must be ignored
    };
    const t = timers();
    let fire: (() => void) | undefined;
    const { local } = countingLocal();
    const crypto = withVerifyWorker(local, () => helper, { ...t, setTimeout: (fn, ms) => (expect(ms).toBe(HELPER_TIMEOUT_MS), (fire = fn), 1), clearTimeout: () => undefined });
    helper.ready();
    const all = await checks(3);
    const verdicts = Promise.all(all.map((c) => crypto.ed25519Verify(...c.args)));
    await new Promise((r) => setTimeout(r, 5));
    fire!();
    expect(await verdicts).toEqual([true, true, false]);
    release();
    await new Promise((r) => setTimeout(r, 5));
    expect(await crypto.ed25519Verify(...all[2]!.args)).toBe(false);
  });

  it('no helper (no Worker, or it throws at start): the provider itself', () => {
    expect(withVerifyWorker(nobleProvider, () => undefined, timers())).toBe(nobleProvider);
    expect(
      withVerifyWorker(
        nobleProvider,
        () => {
          throw new Error('no nested workers');
        },
        timers(),
      ),
    ).toBe(nobleProvider);
  });
});
