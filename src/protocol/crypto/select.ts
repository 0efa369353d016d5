/**
 * The provider the engine actually uses: WebCrypto where the platform has it and it is faster,
 * noble everywhere else (DESIGN.md §1: "chosen by measurement"). Both give identical results on
 * every input (tests/protocol/crypto-*.test.ts run the hybrid too), so routing is only speed.
 *
 * Measured with `npm run bench:crypto` (Node 20.20, x64, 2 cores shared with other jobs, so
 * ±30%; ops/s; "no cache" = webcrypto.ts with `cacheKeys: false`):
 *
 *   primitive               noble    webcrypto  no cache   hybrid
 *   ed25519 sign (64 B)     1,535    14,939      1,539    16,569  ← PKCS#8 import = a scalar mult
 *   ed25519 verify (64 B)     698     6,024      4,947     5,407
 *   x25519                    534     6,463      1,165     4,284  (private key cached)
 *   AES-CTR 128 B         163,540    14,378     19,826   172,889  ← a WebCrypto call costs ~50 µs
 *   AES-CTR 1 MiB             55.6      916        493     1,129
 *   AES-GCM seal 1 KiB     13,539    27,609     12,341    23,215
 *   SHA-256 64 B          340,301    41,536     40,865   249,894
 *   SHA-256 1 MiB             68.3      826      1,277     1,296
 *   HKDF-SHA256 (32 B)     66,892     9,562      9,106    63,485
 *   data packet seal        1,018     5,039      1,222     7,673
 *   data packet open          486     1,093      2,283     3,803
 *
 * A size sweep (64 B … 16 KiB) put the crossovers near 1.5 KiB for AES-CTR, 512 B for AES-GCM
 * (noble's GHASH is slow) and 4–8 KiB for SHA-256 and HMAC; MEASURED_THRESHOLDS sit at those
 * points. So: signatures and DH always go to WebCrypto (10x), and so does bulk data (10–16x);
 * data packets (128–512 B padded), ids, chain hashes and key derivations stay in noble.
 *
 * Browsers differ from Node, and from each other: `npm run bench:crypto-browser` (2026-12-04
 * 15:33–15:35 UTC, the same 2-core AMD EPYC shared with two other engineers, load average 2.0–2.5;
 * median µs per call of 5 alternating rounds, awaited one by one, in a dedicated worker as the
 * engine is; README.md "bench:crypto-browser" has the in-flight and cache-cold columns):
 *
 *                          Chromium 156          Firefox ESR 153
 *   primitive              noble   webcrypto     noble   webcrypto
 *   AES-CTR 256 B            5.6     8.0           7.8    33.1
 *   AES-CTR 512 B            9.8     8.9          28.3    45.9
 *   AES-CTR 1 KiB           17.6     9.0          22.3    30.7
 *   AES-CTR 2 KiB           40.2    10.8          45.9    33.0
 *   one-use key 512 B       12.4    15.7          12.3    30.5   ← v2 data packets: WebCrypto
 *   one-use key 1 KiB       22.2    16.8          22.9    31.3     imports the key first
 *   AES-GCM seal 32 B       23.6    12.4          32.5    44.1
 *   AES-GCM seal 256 B      42.0    11.2          42.6    27.6
 *   SHA-256 256 B            5.4     4.6           8.7    27.0
 *   SHA-256 512 B            8.3     3.9          15.6    23.3
 *   SHA-256 2 KiB           32.4     6.8          48.7    30.2
 *   HMAC-SHA256 64 B         8.3     5.0          14.9    40.7
 *
 * Chromium's WebCrypto call costs ~4–16 µs whatever the size, and as much in flight as awaited
 * (it does not overlap: it runs on the calling thread). Firefox runs it on another thread:
 * ~25–45 µs awaited (~100 µs at load 3.8), and many in flight overlap (the engine awaits its
 * hashes and decryptions in order, so the awaited column decides). Runs at 15:39 and 15:45 put
 * each crossover at the same size or the next, except Firefox's GCM (below). Hence
 * BROWSER_THRESHOLDS; WebKit and any other runtime keep Node's (thresholdsFor).
 */
import type { CryptoProvider } from './provider.js';
import { nobleProvider } from './noble.js';
import { detectCryptoRuntime, detectWebCrypto, type CryptoRuntime, type WebCryptoSupport } from './detect.js';

export interface HybridThresholds {
  /** Inputs at least this long go to WebCrypto AES-CTR; shorter ones to noble. */
  readonly aesCtrMinBytes: number;
  readonly aesGcmMinBytes: number;
  /** For SHA-256, HMAC (message length) and HKDF (ikm length). */
  readonly sha256MinBytes: number;
}

/** The crossovers measured above in Node; also for any runtime not measured. */
export const MEASURED_THRESHOLDS: HybridThresholds = {
  aesCtrMinBytes: 2048,
  aesGcmMinBytes: 512,
  sha256MinBytes: 8192,
};

/** The crossovers measured above in a browser's dedicated worker, per engine. */
export const BROWSER_THRESHOLDS: Readonly<Record<'chromium' | 'firefox', HybridThresholds>> = {
  chromium: {
    // 512 B with a kept key (v1 packets), 1 KiB with a one-use key (v2, what Covey sends: an
    // import and an encryption): data packets (128–512 B padded) stay in noble.
    aesCtrMinBytes: 1024,
    // WebCrypto at every size measured (32 B up): noble's GHASH costs ~20 µs before any data.
    aesGcmMinBytes: 0,
    // WebCrypto ~1 µs faster at 256 B in each of five runs, twice as fast from 512 B: a data
    // packet's message id (SHA-256 of ~230–620 bytes) goes to WebCrypto from 256 B. (HMAC is
    // faster on WebCrypto from 32 B, but ~4 µs per call and never on the message path.)
    sha256MinBytes: 256,
  },
  firefox: {
    // Awaited WebCrypto costs ~25–45 µs: AES-CTR and SHA-256 cross at 2 KiB (kept and one-use keys).
    aesCtrMinBytes: 2048,
    // Noble's GCM costs ~20–40 µs at any small size; awaited WebCrypto crossed it at 64–256 B at
    // load 2–3 and at 512 B–1 KiB at load 3.8 (its thread must be scheduled too): Node's 512 B.
    aesGcmMinBytes: 512,
    sha256MinBytes: 2048,
  },
};

/** Which thresholds a runtime gets (pure; the runtime comes from detect.ts `detectCryptoRuntime`). */
export function thresholdsFor(runtime: CryptoRuntime): HybridThresholds {
  switch (runtime) {
    case 'chromium':
    case 'firefox':
      return BROWSER_THRESHOLDS[runtime];
    // WebKitGTK 2.50 (bench:crypto-browser -- --browsers webkit, 15:42, load 3.1–3.6): off-thread
    // like Firefox, ~20–100 µs awaited; awaited crossovers AES-CTR 2–4 KiB, SHA-256 4 KiB, HMAC
    // past 8 KiB, GCM seal 256 B / open 2 KiB: Node's fit. (Safari's own crypto is not measured.)
    case 'webkit':
    case 'other': // Node (tests, benches), or a browser we cannot name
      return MEASURED_THRESHOLDS;
  }
}

/**
 * Routes each call to `web.provider` when the probe found that algorithm working and the input
 * is past the threshold, else to noble. With `web` undefined this is noble with another name.
 */
export function createHybridProvider(
  web: WebCryptoSupport | undefined,
  thresholds: HybridThresholds = MEASURED_THRESHOLDS,
): CryptoProvider {
  const fast = web?.provider;
  const sym = web?.symmetric === true && fast !== undefined ? fast : undefined;
  const ed = web?.ed25519 === true && fast !== undefined ? fast : nobleProvider;
  const dh = web?.x25519 === true && fast !== undefined ? fast : nobleProvider;
  const bySize = (length: number, min: number) => (sym !== undefined && length >= min ? sym : nobleProvider);

  // async, so that bad arguments reject (as in the two providers) rather than throw.
  return {
    name: 'hybrid',
    forgetKeys: (keys) => {
      fast?.forgetKeys(keys);
      nobleProvider.forgetKeys(keys); // its AES key schedules
    },
    randomBytes: (length) => (sym ?? nobleProvider).randomBytes(length),
    // (Not async, as aesCtr below: three hashes per received message.)
    sha256: (data) => (data instanceof Uint8Array ? bySize(data.length, thresholds.sha256MinBytes) : nobleProvider).sha256(data),
    hmacSha256: async (key, data) => bySize(data.length, thresholds.sha256MinBytes).hmacSha256(key, data),
    hkdfSha256: async (ikm, salt, info, length) =>
      bySize(ikm.length, thresholds.sha256MinBytes).hkdfSha256(ikm, salt, info, length),
    // Public-key calls that the platform refuses are answered by noble (see orNoble).
    x25519PublicKey: async (privateKey) => orNoble(dh, (p) => p.x25519PublicKey(privateKey)),
    x25519: async (privateKey, publicKey) => orNoble(dh, (p) => p.x25519(privateKey, publicKey)),
    ed25519PublicKey: async (seed) => orNoble(ed, (p) => p.ed25519PublicKey(seed)),
    ed25519Sign: async (seed, message) => orNoble(ed, (p) => p.ed25519Sign(seed, message)),
    // webcrypto.ts answers false for a key the platform will not import, so a refusal by the
    // platform looks like a bad signature: noble checks again. A valid signature costs nothing
    // more; an invalid one (only ever a fault or an attack) costs one noble verification.
    ed25519Verify: async (publicKey, message, signature) =>
      (await ed.ed25519Verify(publicKey, message, signature)) ||
      (ed !== nobleProvider && nobleProvider.ed25519Verify(publicKey, message, signature)),
    // Without that second check (provider.ts): a look-ahead check's `false` is checked again in order.
    ed25519VerifyFirst: (publicKey, message, signature) => ed.ed25519Verify(publicKey, message, signature),
    // (Not async: the provider's own promise, one less per data packet. A non-byte `data` still
    // rejects rather than throws.)
    aesCtr: (key, counterBlock, data, oneUse) =>
      data instanceof Uint8Array ? bySize(data.length, thresholds.aesCtrMinBytes).aesCtr(key, counterBlock, data, oneUse) : nobleProvider.aesCtr(key, counterBlock, data, oneUse),
    aesGcmEncrypt: async (key, nonce, plaintext, aad) =>
      bySize(plaintext.length, thresholds.aesGcmMinBytes).aesGcmEncrypt(key, nonce, plaintext, aad),
    aesGcmDecrypt: async (key, nonce, ciphertext, aad) =>
      bySize(ciphertext.length, thresholds.aesGcmMinBytes).aesGcmDecrypt(key, nonce, ciphertext, aad),
  };
}

/**
 * A platform call that fails is made again with noble, whose answer (a result, or its own
 * ProtocolError) stands. Both providers compute the same function (tests/vectors), so this only
 * changes who computes. Why: WebKit (Safari's engine; measured in WebKitGTK 2.50 MiniBrowser,
 * 2026-12-02, 900 keys of each kind; test: crypto-select "on a platform that refuses some keys")
 * refuses with a DataError a PKCS#8 X25519 or Ed25519 private key whose
 * first byte is 0 (1 in 32 clamped X25519 contributions, 1 in 256 seeds) and failed some X25519
 * derivations with an OperationError that webcrypto.ts would read as a low-order point: an
 * include or exclude then failed at random there ("Data provided to an operation does not meet
 * requirements"). Failures are rare, so the cost is nil on the fast path.
 */
function orNoble<T>(fast: CryptoProvider, call: (provider: CryptoProvider) => Promise<T>): Promise<T> {
  if (fast === nobleProvider) return call(nobleProvider);
  return call(fast).catch(() => call(nobleProvider));
}

/**
 * What the worker calls once at start: probe the platform, route by the measurements for the
 * runtime it runs in. (Both arguments are for tests.)
 */
export async function selectCryptoProvider(
  runtime: CryptoRuntime = detectCryptoRuntime(),
  probe: () => Promise<WebCryptoSupport | undefined> = detectWebCrypto,
): Promise<CryptoProvider> {
  return createHybridProvider(await probe(), thresholdsFor(runtime));
}
