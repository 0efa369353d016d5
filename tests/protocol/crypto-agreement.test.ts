/**
 * The providers agree on random inputs, not only on the vectors (fast-check). Every provider in
 * tests/helpers/providers.ts is compared with the first one (noble, the reference), results and
 * errors alike. Run counts are modest: each case costs a few curve operations.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/protocol/bytes.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { allProviders as providers } from '../helpers/providers.js';

const [reference, ...others] = providers as [CryptoProvider, ...CryptoProvider[]];
const RUNS = Number(process.env['COVEY_FC_RUNS'] ?? 60);

/** A comparable outcome: hex of the bytes, or the error's class and code. */
async function outcome(run: () => Promise<Uint8Array | boolean>): Promise<string> {
  try {
    const r = await run();
    return typeof r === 'boolean' ? String(r) : hexEncode(r);
  } catch (e) {
    const code = (e as { code?: string }).code;
    return `${(e as Error).name}:${code ?? ''}`;
  }
}

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const key32 = bytes(32, 32);
/** Counter blocks whose low n bytes are 0xff, so that a carry (or a 2^128 wrap) comes soon. */
const counterBlock = fc.tuple(bytes(16, 16), fc.integer({ min: 0, max: 16 })).map(([block, n]) => {
  const c = block.slice();
  c.fill(0xff, 16 - n);
  return c;
});

describe.each(others)('$name agrees with the reference provider', (p) => {
  const same = async (run: (q: CryptoProvider) => Promise<Uint8Array | boolean>) => {
    expect(await outcome(() => run(p))).toBe(await outcome(() => run(reference)));
  };

  it('x25519 and x25519PublicKey on random keys, including low-order-looking u', async () => {
    const u = fc.oneof(key32, fc.constantFrom(...[0, 1].map((b) => Uint8Array.from([b, ...new Array<number>(31).fill(0)]))));
    await fc.assert(
      fc.asyncProperty(key32, u, async (k, pub) => {
        await same((q) => q.x25519PublicKey(k));
        await same((q) => q.x25519(k, pub));
      }),
      { numRuns: RUNS },
    );
  });

  it('ed25519: public key, deterministic signature, verification of good and mutated signatures', async () => {
    await fc.assert(
      fc.asyncProperty(key32, bytes(0, 300), fc.nat(), fc.integer({ min: 0, max: 7 }), async (seed, msg, at, bit) => {
        const pk = await reference.ed25519PublicKey(seed);
        const sig = await reference.ed25519Sign(seed, msg);
        await same((q) => q.ed25519PublicKey(seed));
        await same((q) => q.ed25519Sign(seed, msg));
        expect(await p.ed25519Verify(pk, msg, sig)).toBe(true);
        // Flip one bit of the signature, the key or the (non-empty) message: both say false.
        const flip = (b: Uint8Array) => {
          const c = b.slice();
          c[at % c.length]! ^= 1 << bit;
          return c;
        };
        const which = msg.length === 0 ? at % 2 : at % 3;
        const [s2, pk2, m2] = [which === 0 ? flip(sig) : sig, which === 1 ? flip(pk) : pk, which === 2 ? flip(msg) : msg];
        await same((q) => q.ed25519Verify(pk2, m2, s2));
        expect(await p.ed25519Verify(pk2, m2, s2)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('ed25519Verify on random garbage keys and signatures', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(30, 34), bytes(0, 8), bytes(62, 66), async (pk, msg, sig) => {
        await same((q) => q.ed25519Verify(pk, msg, sig));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('AES-256-CTR on random keys, counters near a wrap and lengths across block edges', async () => {
    await fc.assert(
      fc.asyncProperty(key32, counterBlock, bytes(0, 200), async (k, ctr, data) => {
        await same((q) => q.aesCtr(k, ctr, data));
        // A one-use key (no schedule or imported key kept): the same bytes, and still the same
        // when the key is used again with the cache.
        await same((q) => q.aesCtr(k, ctr, data, true));
        await same((q) => q.aesCtr(k, ctr, data));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('AES-GCM seal and open, with tampering', async () => {
    const key = fc.oneof(bytes(16, 16), bytes(24, 24), bytes(32, 32));
    await fc.assert(
      fc.asyncProperty(key, bytes(12, 16), bytes(0, 100), bytes(0, 20), fc.nat(), async (k, n, pt, aad, at) => {
        await same((q) => q.aesGcmEncrypt(k, n, pt, aad));
        const sealed = await reference.aesGcmEncrypt(k, n, pt, aad);
        await same((q) => q.aesGcmDecrypt(k, n, sealed, aad));
        const bad = sealed.slice();
        bad[at % bad.length]! ^= 0x80;
        await same((q) => q.aesGcmDecrypt(k, n, bad, aad));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('SHA-256, HMAC (any key length, incl. empty) and HKDF (any length 1..8160)', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(0, 150), bytes(0, 200), bytes(0, 40), fc.integer({ min: 1, max: 8160 }), async (k, d, info, n) => {
        await same((q) => q.sha256(d));
        await same((q) => q.hmacSha256(k, d));
        await same((q) => q.hkdfSha256(d, k, info, n));
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
