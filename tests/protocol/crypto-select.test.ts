/**
 * select.ts: the hybrid routes each call by capability and size, and falls back to noble.
 * (Its answers are checked against every vector in the other crypto suites, via allProviders.)
 */
import { describe, expect, it } from 'vitest';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { createHybridProvider, MEASURED_THRESHOLDS, selectCryptoProvider } from '../../src/protocol/crypto/select.js';
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

describe('selectCryptoProvider', () => {
  it('in Node: the hybrid, with RFC 8032 TEST 1 right', async () => {
    const p = await selectCryptoProvider();
    expect(p.name).toBe('hybrid');
    const t1 = rfc.ed25519()[0]!;
    expect(await p.ed25519Sign(hex(t1.secretKey), hex(t1.message))).toEqual(hex(t1.signature));
  });
});
