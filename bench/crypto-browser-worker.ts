/**
 * The part of `npm run bench:crypto-browser` that runs in the browser: a dedicated worker (as the
 * engine is, src/worker/main.ts), bundled with the repo's own providers (noble.ts, webcrypto.ts),
 * answers one message per primitive with the median time per call of each provider at each size.
 *
 * One cell = one primitive at one size. Per round it times, for each provider, `calls` calls
 * awaited one after another ("sequential": what a chain of awaits pays) and `calls` calls started
 * together and awaited together ("in flight": what a catch-up that issues many at once pays per
 * call), and one by one with a cache scrub before each call ("cold", crypto-browser-cells.ts).
Providers alternate which goes first from round to round, so that a load change on the
 * shared machine hits both; the median of the rounds is reported. `calls` is set per cell so
 * that one timed batch lasts about `batchMs` (timer precision: 5 µs in Chromium, 20 µs in Firefox
 * when cross-origin isolated, which the driver's headers make the page).
 */
import { detectCryptoRuntime, detectWebCrypto } from '../src/protocol/crypto/detect.js';
import { createHybridProvider } from '../src/protocol/crypto/select.js';
import { sessionId } from '../src/protocol/ids.js';
import { makeMessageId } from '../src/protocol/packets/ids.js';
import { bindKeys, decryptDataPacketWith, sealDataPacket, verifyDataPacket } from '../src/protocol/packets/data.js';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import { createWebCryptoProvider } from '../src/protocol/crypto/webcrypto.js';
import { MODES, type CellRequest, type CellTimes, type Mode, type PacketAnswer, type PacketRequest, type Primitive, type ProviderName, type WorkerAnswer } from './crypto-browser-cells.js';

/** Fewest and most calls per timed batch. */
const MIN_CALLS = 16;
const MAX_CALLS = 4096;
/**
 * Calls per provider before a cell is timed. 100 calls were too few: the first cells of a run
 * came out slower than larger sizes after them (noble AES-CTR 64 B 13.9 µs, 256 B 7.7 µs).
 */
const WARM_UP_MS = 40;

const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const key = fill(32, 1);
const counter = fill(16, 2);
const nonce = fill(12, 3);

const providers: Record<ProviderName, CryptoProvider> = {
  noble: nobleProvider,
  webcrypto: createWebCryptoProvider(crypto.subtle, (a) => crypto.getRandomValues(a)),
};

/** One call of `primitive` on `size` bytes with provider `p` (inputs made once, outside the timing). */
async function prepare(primitive: Primitive, size: number, p: CryptoProvider): Promise<() => Promise<unknown>> {
  const data = fill(size, size & 0xff);
  switch (primitive) {
    case 'aes-ctr':
      return () => p.aesCtr(key, counter, data);
    case 'aes-ctr-one-use':
      // The same key bytes each time, but `oneUse`: neither provider keeps anything for it.
      return () => p.aesCtr(key, counter, data, true);
    case 'aes-gcm-seal':
      return () => p.aesGcmEncrypt(key, nonce, data);
    case 'aes-gcm-open': {
      // `size` is the ciphertext's length, as the hybrid routes it (16 of it is the tag).
      const sealed = await nobleProvider.aesGcmEncrypt(key, nonce, data.subarray(0, Math.max(0, size - 16)));
      return () => p.aesGcmDecrypt(key, nonce, sealed);
    }
    case 'sha256':
      return () => p.sha256(data);
    case 'hmac-sha256':
      return () => p.hmacSha256(key, data);
    case 'hkdf-sha256':
      return () => p.hkdfSha256(data, new Uint8Array(0), key, 32);
  }
}

async function timeSequential(op: () => Promise<unknown>, calls: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < calls; i++) await op();
  return ((performance.now() - start) * 1000) / calls;
}

async function timeInFlight(op: () => Promise<unknown>, calls: number): Promise<number> {
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < calls; i++) pending.push(op());
  await Promise.all(pending);
  return ((performance.now() - start) * 1000) / calls;
}

/** More than the 32 KiB L1 data cache of this machine's cores (AMD EPYC), well under its 1 MiB L2. */
const SCRUB_BYTES = 256 * 1024;
const scrubArea = new Int32Array(SCRUB_BYTES / 4);
let scrubSink = 0;

/** Touches one word per 64-byte cache line of the scrub area. */
function scrub(): void {
  let sum = scrubSink;
  for (let i = 0; i < scrubArea.length; i += 16) sum = (sum + (scrubArea[i] = scrubArea[i]! + 1)) | 0;
  scrubSink = sum;
}

async function timeCold(op: () => Promise<unknown>, calls: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    scrub();
    await op();
  }
  const withScrub = performance.now() - start;
  const scrubStart = performance.now();
  for (let i = 0; i < calls; i++) {
    scrub();
    await undefined;
  }
  return ((withScrub - (performance.now() - scrubStart)) * 1000) / calls;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measureCell(primitive: Primitive, size: number, rounds: number, batchMs: number): Promise<Record<ProviderName, Record<Mode, number>>> {
  const names: ProviderName[] = ['noble', 'webcrypto'];
  const ops = { noble: await prepare(primitive, size, providers.noble), webcrypto: await prepare(primitive, size, providers.webcrypto) };
  // Warm-up (the JIT's top tier, key caches): WARM_UP_MS of calls each, then the batch size from the slower of the two.
  let slowestUs = 0;
  for (const name of names) {
    const until = performance.now() + WARM_UP_MS;
    while (performance.now() < until) await timeSequential(ops[name], 16);
    slowestUs = Math.max(slowestUs, await timeSequential(ops[name], 50));
  }
  const calls = Math.min(MAX_CALLS, Math.max(MIN_CALLS, Math.round((batchMs * 1000) / Math.max(slowestUs, 0.1))));
  const timers: Record<Mode, (op: () => Promise<unknown>, calls: number) => Promise<number>> = { sequential: timeSequential, inFlight: timeInFlight, cold: timeCold };
  const samples = { noble: { sequential: [] as number[], inFlight: [] as number[], cold: [] as number[] }, webcrypto: { sequential: [] as number[], inFlight: [] as number[], cold: [] as number[] } };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const mode of MODES) for (const name of order) samples[name][mode].push(await timers[mode](ops[name], calls));
  }
  const medians = (name: ProviderName) => ({ sequential: median(samples[name].sequential), inFlight: median(samples[name].inFlight), cold: median(samples[name].cold) });
  return { noble: medians('noble'), webcrypto: medians('webcrypto') };
}

/** The receive path of one v2 packet of `paddedSize` bytes (crypto-browser-cells.ts PacketRequest), per hybrid. */
async function measurePackets(request: PacketRequest): Promise<PacketAnswer> {
  const support = await detectWebCrypto();
  const names = Object.keys(request.hybrids);
  const hybrids = Object.fromEntries(names.map((name) => [name, createHybridProvider(support, request.hybrids[name])]));
  const keys = await bindKeys(nobleProvider, { sessionId: sessionId(fill(32, 10)), groupKey: key });
  const seed = fill(32, 11);
  const authorKey = await nobleProvider.ed25519PublicKey(seed);
  const messageKey = fill(32, 12);
  const times: PacketAnswer['times'] = {};
  for (const paddedSize of request.paddedSizes) {
    // Text whose records (~10 bytes of framing) and length prefix pad to exactly paddedSize.
    const text = 'x'.repeat(paddedSize / 2 + 8);
    const packet = await sealDataPacket(nobleProvider, (n) => nobleProvider.randomBytes(n), {
      keys,
      chain: { index: 7, messageKey },
      ephemeralSeed: seed,
      content: { parents: [], body: { type: 'payload', text } },
    });
    if (packet.payload.length !== paddedSize) throw new Error(`padded to ${packet.payload.length}, not ${paddedSize}`);
    const ops = Object.fromEntries(names.map((name) => [name, async () => {
      const p = hybrids[name]!;
      await makeMessageId(p, packet);
      if (!(await verifyDataPacket(p, packet, keys, authorKey, true))) throw new Error('bad signature');
      return decryptDataPacketWith(p, packet, messageKey, true);
    }]));
    let slowestUs = 0;
    for (const name of names) {
      const until = performance.now() + WARM_UP_MS;
      while (performance.now() < until) await timeSequential(ops[name]!, 8);
      slowestUs = Math.max(slowestUs, await timeSequential(ops[name]!, 20));
    }
    const calls = Math.min(MAX_CALLS, Math.max(MIN_CALLS, Math.round((request.batchMs * 1000) / Math.max(slowestUs, 0.1))));
    const samples = Object.fromEntries(names.map((name) => [name, { sequential: [] as number[], inFlight: [] as number[] }]));
    for (let r = 0; r < request.rounds; r++) {
      const order = r % 2 === 0 ? names : [...names].reverse();
      for (const name of order) samples[name]!.sequential.push(await timeSequential(ops[name]!, calls));
      for (const name of order) samples[name]!.inFlight.push(await timeInFlight(ops[name]!, calls));
    }
    times[String(paddedSize)] = Object.fromEntries(names.map((name) => [name, { sequential: median(samples[name]!.sequential), inFlight: median(samples[name]!.inFlight) }]));
  }
  return { times };
}

self.onmessage = async (event: MessageEvent<CellRequest | PacketRequest>) => {
  if ('kind' in event.data) {
    try {
      self.postMessage(await measurePackets(event.data));
    } catch (error) {
      self.postMessage({ error: String(error instanceof Error ? (error.stack ?? error.message) : error) });
    }
    return;
  }
  const { primitive, sizes, rounds, batchMs } = event.data;
  try {
    const times: CellTimes = {};
    for (const size of sizes) times[String(size)] = await measureCell(primitive, size, rounds, batchMs);
    const answer: WorkerAnswer = { primitive, times, userAgent: navigator.userAgent, runtime: detectCryptoRuntime(), crossOriginIsolated: self.crossOriginIsolated };
    self.postMessage(answer);
  } catch (error) {
    self.postMessage({ error: String(error instanceof Error ? (error.stack ?? error.message) : error) });
  }
};
