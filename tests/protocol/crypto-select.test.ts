/**
 * select.ts: the hybrid routes each call by capability and size, and falls back to noble.
 * (Its answers are checked against every vector in the other crypto suites, via allProviders.)
 */
import { describe, expect, it } from 'vitest';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { BROWSER_THRESHOLDS, createHybridProvider, MEASURED_THRESHOLDS, selectCryptoProvider, thresholdsFor, type HybridThresholds } from '../../src/protocol/crypto/select.js';
import { cryptoRuntimeOf, detectCryptoRuntime } from '../../src/protocol/crypto/detect.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { hex, rfc } from '../vectors/load.js';

/** webCryptoProvider, recording which methods were called. */
function recording(): { provider: CryptoProvider; calls: string[] } {
  const calls: string[] = [];
  const provider = Object.fromEntries(
    Object.entries(webCryptoProvider).map(([k, v]) => [
      k,
      typeof v === 'function'
        ? (...args: unknown[]) => {
            calls.push(k);
            return (v as (...a: unknown[]) => unknown)(...args);
          }
        : v,
    ]),
  ) as unknown as CryptoProvider;
  return { provider, calls };
}

describe('createHybridProvider', () => {
  const key = new Uint8Array(32).fill(1);
  const seed = hex(rfc.ed25519()[0]!.secretKey);

  it('sends signatures and DH to WebCrypto, small symmetric work to noble, bulk to WebCrypto', async () => {
    const web = recording();
    const h = createHybridProvider({ provider: web.provider, ed25519: true, x25519: true, symmetric: true });
    await h.ed25519Sign(seed, new Uint8Array(3));
    await h.x25519(key, hex(rfc.x25519().diffieHellman.bobPublic));
    await h.sha256(new Uint8Array(64));
    await h.aesCtr(key, new Uint8Array(16), new Uint8Array(128));
    await h.hkdfSha256(key, new Uint8Array(0), new Uint8Array(0), 32);
    expect(web.calls).toEqual(['ed25519Sign', 'x25519']);
    await h.sha256(new Uint8Array(MEASURED_THRESHOLDS.sha256MinBytes));
    await h.aesCtr(key, new Uint8Array(16), new Uint8Array(MEASURED_THRESHOLDS.aesCtrMinBytes));
    await h.aesGcmEncrypt(key, new Uint8Array(12), new Uint8Array(MEASURED_THRESHOLDS.aesGcmMinBytes));
    expect(web.calls.slice(2)).toEqual(['sha256', 'aesCtr', 'aesGcmEncrypt']);
  });

  it('uses noble for an algorithm the probe found missing, and entirely without WebCrypto', async () => {
    const web = recording();
    const h = createHybridProvider({ provider: web.provider, ed25519: false, x25519: true, symmetric: true });
    const t1 = rfc.ed25519()[0]!;
    expect(await h.ed25519Verify(hex(t1.publicKey), hex(t1.message), hex(t1.signature))).toBe(true);
    expect(web.calls).toEqual([]);
    const none = createHybridProvider(undefined);
    expect(await none.sha256(new Uint8Array(1 << 20))).toHaveLength(32);
    expect(none.randomBytes(5)).toHaveLength(5);
  });

  it('rejects bad arguments as a promise, like the providers', async () => {
    const h = createHybridProvider(undefined);
    await expect(h.x25519(new Uint8Array(3), new Uint8Array(32))).rejects.toMatchObject({ code: 'bad-key' });
  });
});

/**
 * webCryptoProvider behaving as WebKit's did (probe in tests/browser, 2026-12-02): a DataError
 * for a private key or seed whose first byte is 0, an OperationError for every derivation (which
 * webcrypto.ts reports as a low-order point), and "false" for a public key it will not import.
 */
function likeWebKit(): CryptoProvider {
  const dataError = () => Promise.reject(new DOMException('Data provided to an operation does not meet requirements', 'DataError'));
  return {
    ...webCryptoProvider,
    x25519PublicKey: (k) => (k[0] === 0 ? dataError() : webCryptoProvider.x25519PublicKey(k)),
    x25519: () => Promise.reject(Object.assign(new Error('x25519 result is all zero'), { code: 'low-order-point' })),
    ed25519PublicKey: (s) => (s[0] === 0 ? dataError() : webCryptoProvider.ed25519PublicKey(s)),
    ed25519Sign: (s, m) => (s[0] === 0 ? dataError() : webCryptoProvider.ed25519Sign(s, m)),
    ed25519Verify: (p, m, sig) => (p[0] === 0 ? Promise.resolve(false) : webCryptoProvider.ed25519Verify(p, m, sig)),
  };
}

describe('createHybridProvider on a platform that refuses some keys (WebKit)', () => {
  const h = createHybridProvider({ provider: likeWebKit(), ed25519: true, x25519: true, symmetric: true });
  /** A key with the given first byte, else random. */
  const keyStartingWith = (first: number) => {
    const k = nobleProvider.randomBytes(32);
    k[0] = first;
    return k;
  };

  it('answers what the platform refuses with noble: same results as noble', async () => {
    for (const first of [0, 0, 0, 8, 0x40]) {
      const priv = keyStartingWith(first);
      const peer = await nobleProvider.x25519PublicKey(keyStartingWith(first));
      expect(await h.x25519PublicKey(priv)).toEqual(await nobleProvider.x25519PublicKey(priv));
      expect(await h.x25519(priv, peer)).toEqual(await nobleProvider.x25519(priv, peer));
      const seed = keyStartingWith(first);
      const message = nobleProvider.randomBytes(40);
      expect(await h.ed25519PublicKey(seed)).toEqual(await nobleProvider.ed25519PublicKey(seed));
      expect(await h.ed25519Sign(seed, message)).toEqual(await nobleProvider.ed25519Sign(seed, message));
    }
  });

  it('accepts a valid signature whose key the platform would not import, and still refuses forgeries', async () => {
    let seed: Uint8Array;
    let publicKey: Uint8Array;
    do {
      seed = nobleProvider.randomBytes(32);
      publicKey = await nobleProvider.ed25519PublicKey(seed);
    } while (publicKey[0] !== 0); // about 256 tries
    const message = new Uint8Array([1, 2, 3]);
    const signature = await nobleProvider.ed25519Sign(seed, message);
    expect(await h.ed25519Verify(publicKey, message, signature)).toBe(true);
    expect(await h.ed25519Verify(publicKey, new Uint8Array([1, 2, 4]), signature)).toBe(false);
    // Its first answer alone (the receive look-ahead's, checked again in order when false): the platform's.
    expect(await h.ed25519VerifyFirst!(publicKey, message, signature)).toBe(false);
    expect(await createHybridProvider(undefined).ed25519VerifyFirst!(publicKey, message, signature)).toBe(true);
  });

  it("keeps noble's verdict on a real low-order point", async () => {
    const zero = new Uint8Array(32); // u = 0: order 1 (RFC 7748 §6.1)
    await expect(h.x25519(keyStartingWith(0x40), zero)).rejects.toMatchObject({ code: 'low-order-point' });
  });
});

describe('createHybridProvider at the browser thresholds', () => {
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(12);
  type Call = (h: CryptoProvider) => Promise<unknown>;
  /** Which provider answered each call, each on its own hybrid: 'web' or 'noble'. */
  async function routes(thresholds: HybridThresholds, calls: readonly Call[]): Promise<string[]> {
    const answered: string[] = [];
    for (const call of calls) {
      const web = recording();
      await call(createHybridProvider({ provider: web.provider, ed25519: true, x25519: true, symmetric: true }, thresholds));
      answered.push(web.calls.length === 0 ? 'noble' : 'web');
    }
    return answered;
  }
  const ctr = (n: number): Call => (h) => h.aesCtr(key, new Uint8Array(16), new Uint8Array(n));
  const oneUse = (n: number): Call => (h) => h.aesCtr(key, new Uint8Array(16), new Uint8Array(n), true);
  const sha = (n: number): Call => (h) => h.sha256(new Uint8Array(n));
  const mac = (n: number): Call => (h) => h.hmacSha256(key, new Uint8Array(n));
  const kdf = (n: number): Call => (h) => h.hkdfSha256(new Uint8Array(n), new Uint8Array(0), new Uint8Array(0), 32);
  const seal = (n: number): Call => (h) => h.aesGcmEncrypt(key, nonce, new Uint8Array(n));
  /** Opens a ciphertext (tag included) of exactly `n` bytes. */
  const open = (n: number): Call => async (h) => h.aesGcmDecrypt(key, nonce, await nobleProvider.aesGcmEncrypt(key, nonce, new Uint8Array(n - 16)));

  /**
   * `call` one byte short of `min` and at `min`: noble, then WebCrypto. A threshold of 0 (or at
   * most `smallest`, the least input the call takes) means every input: WebCrypto at `smallest`.
   */
  async function edge(t: HybridThresholds, min: number, call: (n: number) => Call, smallest = 0): Promise<void> {
    if (min <= smallest) expect(await routes(t, [call(smallest)])).toEqual(['web']);
    else expect(await routes(t, [call(min - 1), call(min)])).toEqual(['noble', 'web']);
  }

  for (const engine of ['chromium', 'firefox'] as const) {
    const t = BROWSER_THRESHOLDS[engine];
    it(`${engine}: one byte short of each threshold goes to noble, the threshold itself to WebCrypto`, async () => {
      for (const call of [ctr, oneUse]) await edge(t, t.aesCtrMinBytes, call);
      for (const call of [sha, mac, kdf]) await edge(t, t.sha256MinBytes, call);
      await edge(t, t.aesGcmMinBytes, seal);
      // Decryption is routed by the ciphertext's length, the 16-byte tag at least.
      await edge(t, t.aesGcmMinBytes, open, 16);
    });
  }

  it("chromium sends what Firefox's slower WebCrypto (and Node's) leaves to noble: a 512 B hash, a 1 KiB packet, a 32 B GCM seal", async () => {
    const calls = [sha(512), oneUse(1024), seal(32)];
    expect(await routes(BROWSER_THRESHOLDS.chromium, calls)).toEqual(['web', 'web', 'web']);
    expect(await routes(BROWSER_THRESHOLDS.firefox, calls)).toEqual(['noble', 'noble', 'noble']);
    expect(await routes(MEASURED_THRESHOLDS, calls)).toEqual(['noble', 'noble', 'noble']);
    // And Firefox's own: a 2 KiB hash goes to WebCrypto there, not in Node.
    expect(await routes(BROWSER_THRESHOLDS.firefox, [sha(2048)])).toEqual(['web']);
    expect(await routes(MEASURED_THRESHOLDS, [sha(2048)])).toEqual(['noble']);
  });
});

describe('thresholds per runtime', () => {
  it('gives each measured browser engine its own, and Node, WebKit or an unknown runtime the Node ones', () => {
    expect(thresholdsFor('chromium')).toBe(BROWSER_THRESHOLDS.chromium);
    expect(thresholdsFor('firefox')).toBe(BROWSER_THRESHOLDS.firefox);
    expect(thresholdsFor('webkit')).toBe(MEASURED_THRESHOLDS);
    expect(thresholdsFor('other')).toBe(MEASURED_THRESHOLDS);
  });

  it("names the engine from real user agents, iOS's Chrome and Firefox (WebKit) included", () => {
    const cases: [string | undefined, string][] = [
      // Seen by bench:crypto-browser in this repo's browsers' dedicated workers.
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36', 'chromium'],
      ['Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0', 'firefox'],
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'chromium'],
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0', 'chromium'],
      ['Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36', 'chromium'],
      ['Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0', 'firefox'],
      ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', 'webkit'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1', 'webkit'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15', 'webkit'],
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15', 'webkit'],
      ['Node.js/22', 'other'],
      ['', 'other'],
      [undefined, 'other'],
    ];
    for (const [userAgent, runtime] of cases) expect([userAgent, cryptoRuntimeOf(userAgent)]).toEqual([userAgent, runtime]);
  });

  it('in Node (no navigator in Node 20): other', () => {
    expect(detectCryptoRuntime()).toBe('other');
  });
});

describe('selectCryptoProvider', () => {
  it('in Node: the hybrid, with RFC 8032 TEST 1 right', async () => {
    const p = await selectCryptoProvider();
    expect(p.name).toBe('hybrid');
    const t1 = rfc.ed25519()[0]!;
    expect(await p.ed25519Sign(hex(t1.secretKey), hex(t1.message))).toEqual(hex(t1.signature));
  });

  it("routes by the runtime's thresholds: a 512 B hash goes to WebCrypto in Chromium only, with the same answer", async () => {
    const data = new Uint8Array(512).fill(3);
    for (const [runtime, route] of [['chromium', 'web'], ['firefox', 'noble'], ['webkit', 'noble'], ['other', 'noble']] as const) {
      const web = recording();
      const p = await selectCryptoProvider(runtime, async () => ({ provider: web.provider, ed25519: true, x25519: true, symmetric: true }));
      expect(await p.sha256(data)).toEqual(await nobleProvider.sha256(data));
      expect([runtime, web.calls.length === 0 ? 'noble' : 'web']).toEqual([runtime, route]);
    }
  });
});
