/**
 * The verifier thread (src/worker/verify-thread.ts and verify-thread-server.ts), over a real
 * MessageChannel in Node: the server end runs the real server on Node's WebCrypto, the engine
 * end is a fake Worker that counts messages and can die. What must hold: the same answers as the
 * engine's own provider (valid, invalid, a platform refusal rechecked by noble), one message per
 * turn's calls, and every check answered in the engine when the thread fails or goes quiet.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { detectWebCrypto, type WebCryptoSupport } from '../../src/protocol/crypto/detect.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { createHybridProvider } from '../../src/protocol/crypto/select.js';
import { serveVerifyThread } from '../../src/worker/verify-thread-server.js';
import {
  MAX_BATCH_CHECKS,
  MAX_BATCHES_IN_FLIGHT,
  startVerifyThread,
  verifyThreadHelps,
  VERIFY_THREAD_TIMEOUT_MS,
  type VerifyThreadPort,
  type VerifyThreadTimers,
} from '../../src/worker/verify-thread.js';
import type { VerifyRequest } from '../../src/worker/verify-thread-wire.js';

const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

/** The engine's end: a MessagePort dressed as a Worker, counting batches; `die()` fires `error`. */
class FakeWorker implements VerifyThreadPort {
  readonly batches: number[] = [];
  terminated = false;
  private readonly errorListeners: ((event: { data?: unknown }) => void)[] = [];
  constructor(readonly port: MessagePort) {}
  postMessage(message: VerifyRequest, transfer: Transferable[]): void {
    this.batches.push(message.count);
    this.port.postMessage(message, transfer as never);
  }
  addEventListener(type: 'message' | 'messageerror' | 'error', listener: (event: { data?: unknown }) => void): void {
    if (type === 'error') this.errorListeners.push(listener);
    else this.port.addEventListener(type, listener as never);
  }
  start(): void {
    this.port.start();
  }
  terminate(): void {
    this.terminated = true;
    this.port.close();
  }
  die(): void {
    for (const l of this.errorListeners) l({ data: undefined });
  }
}

/** Timers the test fires by hand (no timing in the assertions). */
function manualTimers(): VerifyThreadTimers & { fire(): number; armed(): number[] } {
  const pending = new Map<number, { callback: () => void; ms: number }>();
  let next = 1;
  return {
    setTimeout: (callback, ms) => {
      pending.set(next, { callback, ms });
      return next++;
    },
    clearTimeout: (handle) => void pending.delete(handle as number),
    fire() {
      const all = [...pending.values()];
      pending.clear();
      for (const t of all) t.callback();
      return all.length;
    },
    armed: () => [...pending.values()].map((t) => t.ms),
  };
}

let support: WebCryptoSupport;
let base: CryptoProvider;
async function engineProvider(): Promise<CryptoProvider> {
  support ??= (await detectWebCrypto())!;
  base ??= createHybridProvider(support);
  return base;
}

/**
 * A channel with the real server at the far end (`serverProvider`: Node's WebCrypto unless
 * given; `serve: false` leaves the far end deaf), and the engine's provider over it.
 */
async function setUp(options: { serverProvider?: CryptoProvider; serve?: boolean } = {}) {
  const engine = await engineProvider();
  const channel = new MessageChannel();
  open.push(channel.port1, channel.port2);
  if (options.serve !== false) serveVerifyThread(channel.port2 as never, options.serverProvider ?? support.provider);
  const worker = new FakeWorker(channel.port1);
  const timers = manualTimers();
  const downs: string[] = [];
  const provider = startVerifyThread(engine, () => worker, timers, (reason) => downs.push(reason));
  return { provider, worker, timers, downs };
}

const SEED = new Uint8Array(32).fill(7);
async function signed(text: string) {
  const message = new TextEncoder().encode(text);
  return { publicKey: await nobleProvider.ed25519PublicKey(SEED), message, signature: await nobleProvider.ed25519Sign(SEED, message) };
}
async function checks(n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => signed(`message ${i}`)));
}

type Check = Awaited<ReturnType<typeof signed>>;
/** `ed25519Verify` during a burst: a look-ahead check goes first, in the same turn (so it joins the batch). */
async function verifyInBurst(provider: CryptoProvider, c: Check): Promise<boolean> {
  const lead = await signed('the burst');
  const [, verdict] = await Promise.all([provider.ed25519VerifyFirst!(lead.publicKey, lead.message, lead.signature), provider.ed25519Verify(c.publicKey, c.message, c.signature)]);
  return verdict;
}

describe('the verifier thread', () => {
  it('answers valid and invalid signatures as the engine would', async () => {
    const { provider, worker, downs } = await setUp();
    const good = await signed('hello');
    const tampered = { ...good, message: new TextEncoder().encode('hellO') };
    expect(await verifyInBurst(provider, good)).toBe(true);
    expect(await provider.ed25519VerifyFirst!(good.publicKey, good.message, good.signature)).toBe(true);
    expect(await verifyInBurst(provider, tampered)).toBe(false);
    expect(await provider.ed25519VerifyFirst!(tampered.publicKey, tampered.message, tampered.signature)).toBe(false);
    // Each went to the thread (none answered in the engine), and the thread stayed up.
    expect(worker.batches).toEqual([2, 1, 2, 1]);
    expect(downs).toEqual([]);
  });

  it('checks a `false` of the thread again with noble: a platform refusal is not a bad signature', async () => {
    // A platform that refuses every key (as WebKit refuses some: select.ts orNoble).
    const refusing: CryptoProvider = { ...(await engineProvider()), ed25519Verify: async () => false };
    const { provider, worker } = await setUp({ serverProvider: refusing });
    const good = await signed('refused by the platform');
    expect(await verifyInBurst(provider, good)).toBe(true);
    // The first answer alone stays the platform's (the look-ahead checks a false again in order).
    expect(await provider.ed25519VerifyFirst!(good.publicKey, good.message, good.signature)).toBe(false);
    expect(worker.batches).toEqual([2, 1]);
  });

  it('sends the checks of one turn as one message, in batches of at most MAX_BATCH_CHECKS', async () => {
    const { provider, worker } = await setUp();
    const few = await checks(40);
    const verdicts = await Promise.all(few.map((c) => provider.ed25519VerifyFirst!(c.publicKey, c.message, c.signature)));
    expect(verdicts).toEqual(few.map(() => true));
    expect(worker.batches).toEqual([40]);

    const many = await checks(MAX_BATCH_CHECKS * 3 + 5);
    many[100] = { ...many[100]!, signature: many[101]!.signature }; // one bad one, mid-batch
    worker.batches.length = 0;
    const answers = await Promise.all(many.map((c, i) => (i === 0 ? provider.ed25519VerifyFirst! : provider.ed25519Verify)(c.publicKey, c.message, c.signature)));
    expect(answers).toEqual(many.map((_, i) => i !== 100));
    expect(worker.batches).toEqual([MAX_BATCH_CHECKS, MAX_BATCH_CHECKS, MAX_BATCH_CHECKS, 5]);
  });

  it('answers a lone `ed25519Verify` in the engine (a round trip through an idle thread costs more than the check)', async () => {
    const { provider, worker } = await setUp();
    const good = await signed('alone');
    expect(await provider.ed25519Verify(good.publicKey, good.message, good.signature)).toBe(true);
    expect(await provider.ed25519Verify(good.publicKey, good.message, good.signature.map((b, i) => (i === 0 ? b ^ 1 : b)))).toBe(false);
    expect(worker.batches).toEqual([]);
  });

  it('holds new calls while MAX_BATCHES_IN_FLIGHT batches are out, then sends them together', async () => {
    const { provider, worker } = await setUp();
    const all = await checks(MAX_BATCHES_IN_FLIGHT + 6);
    const answers: Promise<boolean>[] = [];
    // One call per turn: the first MAX_BATCHES_IN_FLIGHT go alone, the rest wait for an answer.
    for (const c of all) {
      answers.push(provider.ed25519VerifyFirst!(c.publicKey, c.message, c.signature));
      await Promise.resolve();
      await Promise.resolve();
    }
    expect(worker.batches).toEqual(Array.from({ length: MAX_BATCHES_IN_FLIGHT }, () => 1));
    expect(await Promise.all(answers)).toEqual(all.map(() => true));
    expect(worker.batches.reduce((a, b) => a + b, 0)).toBe(all.length);
    expect(worker.batches.length).toBeLessThan(all.length);
  });

  it('answers in the engine what does not travel (not a 32-byte key and a 64-byte signature)', async () => {
    const { provider, worker } = await setUp();
    const good = await signed('short key');
    expect(await provider.ed25519Verify(good.publicKey.subarray(1), good.message, good.signature)).toBe(false);
    expect(await provider.ed25519Verify(good.publicKey, good.message, good.signature.subarray(0, 63))).toBe(false);
    expect(worker.batches).toEqual([]);
  });

  it('falls back to the engine when the thread dies: nothing waiting is lost or wrongly refused', async () => {
    const { provider, worker, downs } = await setUp({ serve: false });
    const some = await checks(5);
    const bad = { ...some[0]!, message: new TextEncoder().encode('tampered') };
    const answers = Promise.all([...some, bad].map((c, i) => (i === 0 ? provider.ed25519VerifyFirst! : provider.ed25519Verify)(c.publicKey, c.message, c.signature)));
    await Promise.resolve();
    expect(worker.batches).toEqual([6]);
    worker.die();
    expect(await answers).toEqual([true, true, true, true, true, false]);
    expect(worker.terminated).toBe(true);
    expect(downs).toHaveLength(1);
    // Later checks stay in the engine.
    expect(await provider.ed25519VerifyFirst!(some[1]!.publicKey, some[1]!.message, some[1]!.signature)).toBe(true);
    expect(worker.batches).toEqual([6]);
  });

  it(`falls back to the engine when the thread owes an answer for VERIFY_THREAD_TIMEOUT_MS`, async () => {
    const { provider, worker, timers, downs } = await setUp({ serve: false });
    const some = await checks(3);
    const answers = Promise.all(some.map((c) => provider.ed25519VerifyFirst!(c.publicKey, c.message, c.signature)));
    await Promise.resolve();
    expect(worker.batches).toEqual([3]);
    expect(timers.armed()).toEqual([VERIFY_THREAD_TIMEOUT_MS]);
    expect(timers.fire()).toBe(1);
    expect(await answers).toEqual([true, true, true]);
    expect(downs[0]).toMatch(/no answer/);
    expect(worker.terminated).toBe(true);
  });

  it('disarms the clock once the thread has answered everything', async () => {
    const { provider, timers } = await setUp();
    const c = await signed('one');
    expect(await provider.ed25519VerifyFirst!(c.publicKey, c.message, c.signature)).toBe(true);
    expect(timers.armed()).toEqual([]);
  });

  it('falls back when the thread says it cannot verify (no WebCrypto there)', async () => {
    const engine = await engineProvider();
    const channel = new MessageChannel();
    open.push(channel.port1, channel.port2);
    serveVerifyThread(channel.port2 as never, undefined);
    const worker = new FakeWorker(channel.port1);
    const downs: string[] = [];
    const provider = startVerifyThread(engine, () => worker, manualTimers(), (r) => downs.push(r));
    const c = await signed('no webcrypto there');
    expect(await verifyInBurst(provider, c)).toBe(true);
    expect(downs[0]).toMatch(/cannot verify/);
  });

  it('falls back at once when a check throws in the thread (a bug there), without waiting for the timeout', async () => {
    const throwing: CryptoProvider = { ...(await engineProvider()), ed25519Verify: async () => Promise.reject(new Error('boom')) };
    const { provider, timers, downs } = await setUp({ serverProvider: throwing });
    const c = await signed('a bug in the thread');
    expect(await verifyInBurst(provider, c)).toBe(true);
    expect(downs[0]).toMatch(/a check threw/);
    expect(timers.armed()).toEqual([]);
  });

  it('is the engine provider itself when the thread cannot start', async () => {
    const engine = await engineProvider();
    const downs: string[] = [];
    const provider = startVerifyThread(engine, () => {
      throw new ReferenceError('Worker is not defined');
    }, manualTimers(), (r) => downs.push(r));
    expect(provider).toBe(engine);
    expect(downs[0]).toMatch(/did not start/);
  });

  it('is started in Chromium only, with WebCrypto Ed25519, where a worker can start workers', async () => {
    const s = (await engineProvider()) && support;
    expect(verifyThreadHelps('chromium', s, true)).toBe(true);
    expect(verifyThreadHelps('chromium', s, false)).toBe(false);
    expect(verifyThreadHelps('chromium', { ...s, ed25519: false }, true)).toBe(false);
    expect(verifyThreadHelps('chromium', undefined, true)).toBe(false);
    for (const runtime of ['firefox', 'webkit', 'other'] as const) expect(verifyThreadHelps(runtime, s, true)).toBe(false);
  });
});
