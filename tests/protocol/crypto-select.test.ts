/**
 * select.ts: the hybrid routes each call by capability and size, and falls back to noble.
 * (Its answers are checked against every vector in the other crypto suites, via allProviders.)
 */
import { describe, expect, it } from 'vitest';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { createHybridProvider, MEASURED_THRESHOLDS, selectCryptoProvider } from '../../src/protocol/crypto/select.js';
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

describe('selectCryptoProvider', () => {
  it('in Node: the hybrid, with RFC 8032 TEST 1 right', async () => {
    const p = await selectCryptoProvider();
    expect(p.name).toBe('hybrid');
    const t1 = rfc.ed25519()[0]!;
    expect(await p.ed25519Sign(hex(t1.secretKey), hex(t1.message))).toEqual(hex(t1.signature));
  });
});
