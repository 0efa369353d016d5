/**
 * WebCrypto-specific behaviour: capability probing (detect.ts), the key cache (key-cache.ts),
 * and inputs WebCrypto handles differently from noble (shared buffers, reused key arrays).
 */
import { describe, expect, it } from 'vitest';
import { detectWebCrypto, probeWebCrypto } from '../../src/protocol/crypto/detect.js';
import { KeyCache } from '../../src/protocol/crypto/key-cache.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { SubtleCryptoSubset, WebCryptoAlgorithm } from '../../src/protocol/crypto/subtle.js';
import { createWebCryptoProvider } from '../../src/protocol/crypto/webcrypto.js';
import { hex, rfc } from '../vectors/load.js';

const subtle = globalThis.crypto.subtle as unknown as SubtleCryptoSubset;
const getRandomValues = (a: Uint8Array<ArrayBuffer>) => globalThis.crypto.getRandomValues(a);
const algName = (a: WebCryptoAlgorithm) => (typeof a === 'string' ? a : a.name);

/** Node's subtle, with the named algorithms failing as on a browser that lacks them. */
function subtleWithout(missing: readonly string[]): SubtleCryptoSubset {
  const refuse = () => Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'));
  return {
    importKey: (f, d, a, e, u) => (missing.includes(algName(a)) ? refuse() : subtle.importKey(f, d, a, e, u)),
    exportKey: (f, k) => subtle.exportKey(f, k),
    sign: (a, k, d) => subtle.sign(a, k, d),
    verify: (a, k, s, d) => subtle.verify(a, k, s, d),
    deriveBits: (a, k, l) => subtle.deriveBits(a, k, l),
    encrypt: (a, k, d) => subtle.encrypt(a, k, d),
    decrypt: (a, k, d) => subtle.decrypt(a, k, d),
    digest: (a, d) => subtle.digest(a, d),
  };
}

describe('detectWebCrypto / probeWebCrypto', () => {
  it("finds Node's WebCrypto with Ed25519, X25519 and the symmetric primitives", async () => {
    const support = await detectWebCrypto();
    expect(support).toBeDefined();
    expect(support).toMatchObject({ ed25519: true, x25519: true, symmetric: true });
    expect(support!.provider.name).toBe('webcrypto');
  });

  it('reports an algorithm the platform lacks as unsupported, the others still usable', async () => {
    const support = await probeWebCrypto(createWebCryptoProvider(subtleWithout(['Ed25519']), getRandomValues));
    expect(support).toMatchObject({ ed25519: false, x25519: true, symmetric: true });
    const noDh = await probeWebCrypto(createWebCryptoProvider(subtleWithout(['X25519']), getRandomValues));
    expect(noDh).toMatchObject({ ed25519: true, x25519: false, symmetric: true });
  });

  it('reports Ed25519 unsupported when the platform verifies cofactored (disagrees with noble)', async () => {
    // Simulate a cofactored platform: verification answered by noble's own `verify`.
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const exported = new Map<unknown, Uint8Array>();
    const cofactored: SubtleCryptoSubset = {
      ...subtleWithout([]),
      importKey: async (f, d, a, e, u) => {
        const key = await subtle.importKey(f, d, a, e, u);
        if (algName(a) === 'Ed25519' && f === 'raw') exported.set(key, d.slice());
        return key;
      },
      verify: async (a, k, s, d) =>
        algName(a) === 'Ed25519' ? ed25519.verify(s, d, exported.get(k)!, { zip215: false }) : subtle.verify(a, k, s, d),
    };
    const support = await probeWebCrypto(createWebCryptoProvider(cofactored, getRandomValues, { cacheKeys: false }));
    expect(support.ed25519).toBe(false);
    expect(support.x25519).toBe(true);
  });
});

describe('WebCrypto provider inputs', () => {
  const web = createWebCryptoProvider(subtle, getRandomValues);

  it('a reused key array mutated in place gets the new key, not a cached one', async () => {
    const key = new Uint8Array(32).fill(1);
    const counter = new Uint8Array(16);
    const data = new Uint8Array(40).fill(3);
    expect(await web.aesCtr(key, counter, data)).toEqual(await nobleProvider.aesCtr(key, counter, data));
    key[0] = 2;
    expect(await web.aesCtr(key, counter, data)).toEqual(await nobleProvider.aesCtr(key, counter, data));
    const seed = hex(rfc.ed25519()[0]!.secretKey);
    const msg = new Uint8Array([1]);
    expect(await web.ed25519Sign(seed, msg)).toEqual(await nobleProvider.ed25519Sign(seed, msg));
    seed[5]! ^= 1;
    expect(await web.ed25519Sign(seed, msg)).toEqual(await nobleProvider.ed25519Sign(seed, msg));
    expect(await web.ed25519PublicKey(seed)).toEqual(await nobleProvider.ed25519PublicKey(seed));
  });

  it('a one-use AES-CTR key is imported for that call and never cached', async () => {
    let imports = 0;
    const counting = new Proxy(subtle, {
      get(target, name) {
        const value = Reflect.get(target, name, target) as unknown;
        if (name === 'importKey') {
          return (...args: unknown[]) => ((imports += 1), (target.importKey as (...a: unknown[]) => Promise<CryptoKey>)(...args));
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const p = createWebCryptoProvider(counting, getRandomValues);
    const key = new Uint8Array(32).fill(5);
    const counter = new Uint8Array(16);
    const data = new Uint8Array(40).fill(6);
    const want = await nobleProvider.aesCtr(key, counter, data);
    expect(await p.aesCtr(key, counter, data, true)).toEqual(want);
    expect(await p.aesCtr(key, counter, data, true)).toEqual(want);
    expect(imports).toBe(2);
    // Nothing was cached by those: the first cached use imports, the next does not.
    expect(await p.aesCtr(key, counter, data)).toEqual(want);
    expect(imports).toBe(3);
    expect(await p.aesCtr(key, counter, data)).toEqual(want);
    expect(imports).toBe(3);
  });

  it('the uncached provider gives the same answers as the cached one', async () => {
    const uncached = createWebCryptoProvider(subtle, getRandomValues, { cacheKeys: false });
    const seed = hex(rfc.ed25519()[1]!.secretKey);
    const msg = new Uint8Array([7, 7]);
    const sig = await web.ed25519Sign(seed, msg);
    expect(await uncached.ed25519Sign(seed, msg)).toEqual(sig);
    expect(await uncached.ed25519Verify(await web.ed25519PublicKey(seed), msg, sig)).toBe(true);
    const key = new Uint8Array(32).fill(9);
    const iv = new Uint8Array(12);
    expect(await uncached.aesGcmEncrypt(key, iv, msg)).toEqual(await web.aesGcmEncrypt(key, iv, msg));
  });

  it('views of a SharedArrayBuffer, which WebCrypto refuses, are copied first', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(64));
    shared.fill(4);
    const data = shared.subarray(8, 40);
    expect(await web.sha256(data)).toEqual(await nobleProvider.sha256(data));
    expect(await web.aesCtr(shared.subarray(0, 32), shared.subarray(32, 48), data)).toEqual(
      await nobleProvider.aesCtr(shared.subarray(0, 32), shared.subarray(32, 48), data),
    );
  });
});

describe('KeyCache', () => {
  it('shares one load per key, evicts the least recently used, and retries a failed load', async () => {
    const cache = new KeyCache<number>(2);
    let loads = 0;
    const load = (v: number) => () => {
      loads++;
      return Promise.resolve(v);
    };
    const a = new Uint8Array([1]);
    const b = new Uint8Array([2]);
    const c = new Uint8Array([3]);
    expect(await Promise.all([cache.get('k', a, load(1)), cache.get('k', a, load(99))])).toEqual([1, 1]);
    expect(loads).toBe(1);
    await cache.get('other-kind', a, load(5)); // kinds never share an entry
    expect(loads).toBe(2);
    await cache.get('k', a, load(1)); // order, oldest first: other-kind:a, k:a
    await cache.get('k', b, load(2)); // evicts other-kind:a → k:a, k:b
    await cache.get('k', c, load(3)); // evicts k:a → k:b, k:c
    expect(cache.size).toBe(2);
    loads = 0;
    await cache.get('k', b, load(2));
    await cache.get('k', c, load(3));
    expect(loads).toBe(0);
    await cache.get('k', a, load(1));
    expect(loads).toBe(1);
    const long = new Uint8Array(65);
    await cache.get('k', long, load(6));
    await cache.get('k', long, load(6));
    expect(loads).toBe(3); // keys over 64 bytes are never cached
    await expect(cache.get('k', new Uint8Array([4]), () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await Promise.resolve();
    expect(await cache.get('k', new Uint8Array([4]), load(4))).toBe(4);
  });

  it('forget drops the entries of those key bytes under every kind, and nothing else', async () => {
    const cache = new KeyCache<number>(8);
    const a = new Uint8Array([1, 2]);
    const b = new Uint8Array([2]);
    for (const kind of ['x', 'y', 'z:w']) {
      await cache.get(kind, a, () => Promise.resolve(1));
      await cache.get(kind, b, () => Promise.resolve(2));
    }
    expect(cache.size).toBe(6);
    cache.forget(Uint8Array.from(a)); // equal bytes, another array
    expect(cache.size).toBe(3);
    let loads = 0;
    for (const kind of ['x', 'y', 'z:w']) {
      await cache.get(kind, b, () => Promise.resolve(++loads));
      expect(await cache.get(kind, a, () => Promise.resolve(7))).toBe(7); // loaded again
    }
    expect(loads).toBe(0);
  });
});
