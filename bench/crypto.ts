/**
 * `npm run bench:crypto`: ops/s per primitive for every crypto provider, then one JSON line.
 *
 * Providers: noble (pure JS), webcrypto (Node's WebCrypto with the key cache), webcrypto without
 * the key cache (to show what the cache buys), and the hybrid of select.ts. Each row uses fixed inputs; keys are reused across
 * calls as Covey reuses them (one group key per subsession, one signing key per member).
 * BENCH_BUDGET_MS sets the time per cell (default 400 ms; the whole run stays under a minute).
 */
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import { createWebCryptoProvider } from '../src/protocol/crypto/webcrypto.js';
import { detectWebCrypto } from '../src/protocol/crypto/detect.js';
import { createHybridProvider } from '../src/protocol/crypto/select.js';
import { sessionId } from '../src/protocol/ids.js';
import { openDataPacket, sealDataPacket, type DataContent, type SubsessionKeys } from '../src/protocol/packets/data.js';
import { formatOps, measure, printJsonLine, printTable, round } from './harness.js';

const MIB = 1024 * 1024;
const getRandomValues = (a: Uint8Array<ArrayBuffer>) => globalThis.crypto.getRandomValues(a);

const providers: Record<string, CryptoProvider> = {
  noble: nobleProvider,
  webcrypto: createWebCryptoProvider(globalThis.crypto.subtle, getRandomValues),
  'webcrypto-nocache': createWebCryptoProvider(globalThis.crypto.subtle, getRandomValues, { cacheKeys: false }),
  /** What the engine uses (select.ts): per-primitive routing by the numbers below. */
  hybrid: createHybridProvider(await detectWebCrypto()),
};

const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const key = fill(32, 1);
const seed = fill(32, 2);
const peerPrivate = fill(32, 3);
const counter = fill(16, 4);
const msg64 = fill(64, 5);
const bytes128 = fill(128, 6);
const bytes1k = fill(1024, 7);
const bytes1m = fill(MIB, 8);
const nonce = fill(12, 9);
const keys: SubsessionKeys = { sessionId: sessionId(fill(32, 10)), groupKey: key };
const content: DataContent = {
  parents: [],
  body: { type: 'payload', text: 'Hello, Covey! A message of a typical chat length, around a hundred characters.' },
};

/** One row: a name and, per provider, a prepared operation. */
interface Row {
  readonly name: string;
  readonly prepare: (p: CryptoProvider) => Promise<() => Promise<unknown>>;
}

const rows: Row[] = [
  {
    name: 'ed25519 sign (64 B)',
    prepare: async (p) => () => p.ed25519Sign(seed, msg64),
  },
  {
    name: 'ed25519 verify (64 B)',
    prepare: async (p) => {
      const pk = await p.ed25519PublicKey(seed);
      const sig = await p.ed25519Sign(seed, msg64);
      return () => p.ed25519Verify(pk, msg64, sig);
    },
  },
  {
    name: 'x25519',
    prepare: async (p) => {
      const peer = await p.x25519PublicKey(peerPrivate);
      return () => p.x25519(key, peer);
    },
  },
  { name: 'AES-CTR 128 B', prepare: async (p) => () => p.aesCtr(key, counter, bytes128) },
  { name: 'AES-CTR 1 MiB', prepare: async (p) => () => p.aesCtr(key, counter, bytes1m) },
  { name: 'AES-GCM seal 1 KiB', prepare: async (p) => () => p.aesGcmEncrypt(key, nonce, bytes1k) },
  { name: 'SHA-256 64 B', prepare: async (p) => () => p.sha256(msg64) },
  { name: 'SHA-256 1 MiB', prepare: async (p) => () => p.sha256(bytes1m) },
  { name: 'HKDF-SHA256 (32 B out)', prepare: async (p) => () => p.hkdfSha256(key, new Uint8Array(0), msg64, 32) },
  {
    name: 'data packet seal',
    prepare: async (p) => () => sealDataPacket(p, (n) => p.randomBytes(n), { keys, ephemeralSeed: seed, content }),
  },
  {
    name: 'data packet open',
    prepare: async (p) => {
      const packet = await sealDataPacket(p, (n) => p.randomBytes(n), { keys, ephemeralSeed: seed, content });
      const pk = await p.ed25519PublicKey(seed);
      return () => openDataPacket(p, packet, keys, pk);
    },
  },
];

async function main(): Promise<void> {
  const started = performance.now();
  const names = Object.keys(providers);
  const results: Record<string, Record<string, number>> = Object.fromEntries(names.map((n) => [n, {}]));
  for (const row of rows) {
    for (const name of names) {
      const op = await row.prepare(providers[name]!);
      const bulk = row.name.includes('MiB');
      const m = await measure(op, bulk ? { minOps: 3 } : {});
      results[name]![row.name] = round(m.opsPerSec);
    }
  }
  const ratios: Record<string, Record<string, number>> = { 'webcrypto/noble': {}, 'hybrid/noble': {} };
  const tableRows = rows.map((row) => {
    const noble = results['noble']![row.name]!;
    const cells = [row.name, ...names.map((name) => formatOps(results[name]![row.name]))];
    for (const [ratio, name] of [['webcrypto/noble', 'webcrypto'], ['hybrid/noble', 'hybrid']] as const) {
      const r = round(results[name]![row.name]! / noble);
      ratios[ratio]![row.name] = r;
      cells.push(`${round(r, 2)}x`);
    }
    return cells;
  });
  console.log(`Crypto providers, ops/s (Node ${process.version}, ${process.platform}/${process.arch})\n`);
  printTable(['primitive', ...names, 'webcrypto/noble', 'hybrid/noble'], tableRows);
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  printJsonLine('crypto', { unit: 'ops/s', node: process.version, results, ratios });
}

await main();
