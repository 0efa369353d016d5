/**
 * Edge cases where the libraries behind the providers disagree unless checks.ts decides: the
 * constructed Ed25519 vectors (tests/vectors/covey), strict encodings, X25519 masking and
 * low-order inputs, AES-GCM sizes. Every case runs for every provider.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, hexEncode } from '../../src/protocol/bytes.js';
import { ed25519PassesStrictPrechecks } from '../../src/protocol/crypto/checks.js';
import { allProviders as providers } from '../helpers/providers.js';
import { hex, loadJson, rfc } from '../vectors/load.js';

interface EdgeFile {
  tests: { name: string; publicKey: string; message: string; signature: string; valid: boolean }[];
}
const edge = loadJson<EdgeFile>('covey/ed25519-edge.json');
const test1 = rfc.ed25519()[0]!;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function leBytes(n: bigint): Uint8Array {
  return hex(n.toString(16).padStart(64, '0')).reverse();
}
function leNumber(b: Uint8Array): bigint {
  return BigInt('0x' + hexEncode(b.slice().reverse()));
}

describe.each(providers)('crypto edge cases: $name provider', (p) => {
  it('ed25519-edge.json: small-order A and cofactored-only signatures are rejected, the control passes', async () => {
    expect(edge.tests).toHaveLength(7);
    for (const t of edge.tests) {
      expect(await p.ed25519Verify(hex(t.publicKey), hex(t.message), hex(t.signature)), t.name).toBe(t.valid);
    }
  });

  it('Ed25519: S + L (malleated), S = L, wrong lengths and non-canonical R all fail', async () => {
    const pk = hex(test1.publicKey);
    const msg = hex(test1.message);
    const sig = hex(test1.signature);
    const R = sig.subarray(0, 32);
    const S = leNumber(sig.subarray(32));
    expect(await p.ed25519Verify(pk, msg, sig)).toBe(true);
    expect(await p.ed25519Verify(pk, msg, concatBytes(R, leBytes(S + L)))).toBe(false);
    expect(await p.ed25519Verify(pk, msg, concatBytes(R, leBytes(L)))).toBe(false);
    for (const n of [0, 32, 63, 65]) {
      expect(await p.ed25519Verify(pk, msg, concatBytes(sig, new Uint8Array(1)).subarray(0, n))).toBe(false);
    }
    expect(await p.ed25519Verify(pk.subarray(0, 31), msg, sig)).toBe(false);
    expect(await p.ed25519Verify(concatBytes(pk, new Uint8Array(1)), msg, sig)).toBe(false);
    // R = identity written as y = p + 1 (non-canonical), with S = 0 and A = the identity's
    // canonical twin would "verify"; with a real A it must simply be false, never throw.
    const nonCanonicalR = hex('ee' + 'ff'.repeat(30) + '7f');
    expect(await p.ed25519Verify(pk, msg, concatBytes(nonCanonicalR, new Uint8Array(32)))).toBe(false);
    // A public key that is not on the curve (y = 2 has no x on edwards25519).
    expect(await p.ed25519Verify(hex('02' + '00'.repeat(31)), msg, sig)).toBe(false);
  });

  it('X25519: the top bit of u is masked (RFC 7748 §5), so both encodings give one result', async () => {
    const k = hex(rfc.x25519().diffieHellman.alicePrivate);
    const u = hex(rfc.x25519().diffieHellman.bobPublic);
    const high = u.slice();
    high[31]! |= 0x80;
    expect(hexEncode(await p.x25519(k, high))).toBe(hexEncode(await p.x25519(k, u)));
    expect(u[31]! & 0x80).toBe(0); // the caller's array is not modified
  });

  it('X25519: low-order u, in canonical, non-canonical and top-bit-set forms, is low-order-point', async () => {
    const k = hex(rfc.x25519().diffieHellman.alicePrivate);
    const lowOrder = [
      '00'.repeat(32), // u = 0
      '01' + '00'.repeat(31), // u = 1
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p − 1
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p ≡ 0
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p + 1 ≡ 1
      '00'.repeat(31) + '80', // u = 0 with the top bit set
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
    ];
    for (const u of lowOrder) {
      await expect(p.x25519(k, hex(u)), u).rejects.toMatchObject({ code: 'low-order-point' });
    }
  });

  it('AES-GCM: key and nonce sizes, truncated or altered input, aad', async () => {
    const key = new Uint8Array(32).fill(1);
    const nonce = new Uint8Array(12).fill(2);
    const pt = new Uint8Array([1, 2, 3]);
    await expect(p.aesGcmEncrypt(new Uint8Array(20), nonce, pt)).rejects.toMatchObject({ code: 'bad-key' });
    await expect(p.aesGcmEncrypt(key, new Uint8Array(11), pt)).rejects.toMatchObject({ code: 'bad-value' });
    await expect(p.aesGcmEncrypt(key, new Uint8Array(129), pt)).rejects.toMatchObject({ code: 'bad-value' });
    const sealed = await p.aesGcmEncrypt(key, nonce, pt, new Uint8Array([9]));
    expect(sealed).toHaveLength(3 + 16);
    expect(await p.aesGcmDecrypt(key, nonce, sealed, new Uint8Array([9]))).toEqual(pt);
    for (const bad of [sealed.subarray(0, 15), sealed.subarray(0, 18), new Uint8Array(0)]) {
      await expect(p.aesGcmDecrypt(key, nonce, bad, new Uint8Array([9]))).rejects.toMatchObject({
        code: 'decrypt-failed',
      });
    }
    await expect(p.aesGcmDecrypt(key, nonce, sealed)).rejects.toMatchObject({ code: 'decrypt-failed' });
    // No aad and an empty aad are the same thing (NIST SP 800-38D: A may be empty).
    expect(await p.aesGcmEncrypt(key, nonce, pt)).toEqual(await p.aesGcmEncrypt(key, nonce, pt, new Uint8Array(0)));
  });

  it('HMAC: an empty key is the zero-padded block key (RFC 2104 §2), a long key is hashed', async () => {
    const data = new Uint8Array([1, 2, 3]);
    expect(await p.hmacSha256(new Uint8Array(0), data)).toEqual(await p.hmacSha256(new Uint8Array(64), data));
    const longKey = new Uint8Array(100).fill(5);
    expect(await p.hmacSha256(longKey, data)).toEqual(await p.hmacSha256(await p.sha256(longKey), data));
  });

  it('randomBytes: lengths above the 65536-byte getRandomValues limit, and 0', () => {
    const big = p.randomBytes(200_000);
    expect(big).toHaveLength(200_000);
    expect(big.subarray(150_000, 150_032).some((b) => b !== 0)).toBe(true);
    expect(p.randomBytes(0)).toHaveLength(0);
    expect(() => p.randomBytes(-1)).toThrow(RangeError);
  });
});

describe('ed25519PassesStrictPrechecks', () => {
  it('accepts a real signature and refuses each violated rule', () => {
    const pk = hex(test1.publicKey);
    const sig = hex(test1.signature);
    expect(ed25519PassesStrictPrechecks(pk, sig)).toBe(true);
    const withS = (s: bigint) => concatBytes(sig.subarray(0, 32), leBytes(s));
    expect(ed25519PassesStrictPrechecks(pk, withS(L - 1n))).toBe(true);
    expect(ed25519PassesStrictPrechecks(pk, withS(L))).toBe(false);
    const p = 2n ** 255n - 19n;
    for (const y of [p, p + 1n, 2n ** 255n - 1n]) {
      expect(ed25519PassesStrictPrechecks(leBytes(y), sig), `A y=${y}`).toBe(false);
      expect(ed25519PassesStrictPrechecks(pk, concatBytes(leBytes(y), sig.subarray(32))), `R y=${y}`).toBe(false);
    }
    // y = p − 2 is canonical (whether it is on the curve is the library's question).
    expect(ed25519PassesStrictPrechecks(pk, concatBytes(leBytes(p - 2n), sig.subarray(32)))).toBe(true);
    // x = 0 with the sign bit set: y = 1 and y = p − 1.
    const signed = (y: bigint) => leBytes(y | (1n << 255n));
    expect(ed25519PassesStrictPrechecks(pk, concatBytes(signed(1n), sig.subarray(32)))).toBe(false);
    expect(ed25519PassesStrictPrechecks(pk, concatBytes(signed(p - 1n), sig.subarray(32)))).toBe(false);
    expect(ed25519PassesStrictPrechecks(pk, concatBytes(leBytes(1n), sig.subarray(32)))).toBe(true);
  });

  it('agrees with a BigInt reading of RFC 8032 §5.1.3 / §5.1.7 on random and boundary encodings', () => {
    const p = 2n ** 255n - 19n;
    const smallOrder = new Set([
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000080',
      '0100000000000000000000000000000000000000000000000000000000000000',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ]);
    const canonical = (point: Uint8Array) => {
      const n = leNumber(point);
      const y = n & ((1n << 255n) - 1n);
      return y < p && !(n >> 255n === 1n && (y === 1n || y === p - 1n));
    };
    const reference = (pk: Uint8Array, sig: Uint8Array) =>
      pk.length === 32 && sig.length === 64 && leNumber(sig.subarray(32)) < L && canonical(pk) && canonical(sig.subarray(0, 32)) && !smallOrder.has(hexEncode(pk));
    // Numbers at the edges of each rule, with or without the sign bit, and the small-order points.
    const edges = [0n, 1n, 2n, 1n + (1n << 248n), L - 1n, L, L + 1n, p - 2n, p - 1n, p - 1n - (1n << 248n), p, p + 1n, 2n ** 255n - 1n];
    const edgeBytes = fc.tuple(fc.constantFrom(...edges), fc.boolean()).map(([n, sign]) => leBytes(n | (sign ? 1n << 255n : 0n)));
    const point = fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), edgeBytes, fc.constantFrom(...smallOrder).map(hex));
    const scalar = fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(L - 1n, L, L + 1n, 0n, 2n ** 256n - 1n).map(leBytes));
    fc.assert(
      fc.property(point, point, scalar, (pk, r, s) => {
        expect(ed25519PassesStrictPrechecks(pk, concatBytes(r, s))).toBe(reference(pk, concatBytes(r, s)));
      }),
      { numRuns: 2000 },
    );
    expect(ed25519PassesStrictPrechecks(new Uint8Array(31), new Uint8Array(64))).toBe(false);
    expect(ed25519PassesStrictPrechecks(hex(test1.publicKey), new Uint8Array(63))).toBe(false);
  });
});
