/**
 * Known-answer vectors from the standards (tests/vectors/README.md), run for every provider:
 * RFC 7748 (X25519), RFC 8032 (Ed25519), RFC 5869 (HKDF-SHA-256), NIST SP 800-38A (CTR-AES256).
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, hexEncode } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { allProviders as providers } from '../helpers/providers.js';
import { hex, rfc } from '../vectors/load.js';

/** The 1,000,000-iteration RFC 7748 case takes minutes: opt in with COVEY_SLOW_VECTORS=1. */
const SLOW = process.env['COVEY_SLOW_VECTORS'] === '1';

const x = rfc.x25519();
const ed = rfc.ed25519();
const hk = rfc.hkdfSha256();
const ctr = rfc.ctrAes256();

describe.each(providers)('RFC vectors: $name provider', (p) => {
  it('RFC 7748 §5.2: X25519 scalar multiplication (incl. u with the top bit set)', async () => {
    expect(x.scalarMult).toHaveLength(2);
    for (const v of x.scalarMult) {
      expect(hexEncode(await p.x25519(hex(v.scalar), hex(v.u)))).toBe(v.output);
    }
  });

  async function iterate(times: number): Promise<string> {
    // §5.2: k = u = 9; repeat: (k, u) = (X25519(k, u), k).
    let k = hex(x.iterated.start);
    let u = hex(x.iterated.start);
    for (let i = 0; i < times; i++) [k, u] = [await p.x25519(k, u), k];
    return hexEncode(k);
  }

  it('RFC 7748 §5.2: 1 and 1,000 iterations', async () => {
    expect(await iterate(1)).toBe(x.iterated.after['1']);
    expect(await iterate(1000)).toBe(x.iterated.after['1000']);
  });

  it.skipIf(!SLOW)('RFC 7748 §5.2: 1,000,000 iterations (COVEY_SLOW_VECTORS=1)', async () => {
    expect(await iterate(1_000_000)).toBe(x.iterated.after['1000000']);
  }, 3_600_000);

  it('RFC 7748 §6.1: Diffie-Hellman', async () => {
    const dh = x.diffieHellman;
    expect(hexEncode(await p.x25519PublicKey(hex(dh.alicePrivate)))).toBe(dh.alicePublic);
    expect(hexEncode(await p.x25519PublicKey(hex(dh.bobPrivate)))).toBe(dh.bobPublic);
    expect(hexEncode(await p.x25519(hex(dh.alicePrivate), hex(dh.bobPublic)))).toBe(dh.shared);
    expect(hexEncode(await p.x25519(hex(dh.bobPrivate), hex(dh.alicePublic)))).toBe(dh.shared);
  });

  it('X25519 rejects wrong key sizes with bad-key', async () => {
    const k = hex(x.diffieHellman.alicePrivate);
    await expect(p.x25519(k.subarray(1), k)).rejects.toMatchObject({ code: 'bad-key' });
    await expect(p.x25519(k, new Uint8Array(33))).rejects.toMatchObject({ code: 'bad-key' });
    await expect(p.x25519PublicKey(new Uint8Array(31))).rejects.toBeInstanceOf(ProtocolError);
  });

  it('RFC 8032 §7.1: Ed25519 TEST 1, 2, 3, 1024, SHA(abc): key, signature, verification', async () => {
    expect(ed.map((v) => v.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)']);
    for (const v of ed) {
      const seed = hex(v.secretKey);
      const msg = hex(v.message);
      expect(hexEncode(await p.ed25519PublicKey(seed)), v.name).toBe(v.publicKey);
      expect(hexEncode(await p.ed25519Sign(seed, msg)), v.name).toBe(v.signature);
      expect(await p.ed25519Verify(hex(v.publicKey), msg, hex(v.signature)), v.name).toBe(true);
      // The same signature over another message, or under another key, must not verify.
      const other = concatBytes(msg, new Uint8Array([0]));
      expect(await p.ed25519Verify(hex(v.publicKey), other, hex(v.signature)), v.name).toBe(false);
      expect(await p.ed25519Verify(hex(ed[(ed.indexOf(v) + 1) % ed.length]!.publicKey), msg, hex(v.signature))).toBe(
        false,
      );
    }
  });

  it('RFC 5869 A.1–A.3: HKDF-SHA-256 (and its extract step as HMAC, incl. the empty salt)', async () => {
    expect(hk).toHaveLength(3);
    for (const v of hk) {
      expect(hexEncode(await p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), v.length)), v.name).toBe(v.okm);
      // §2.2: PRK = HMAC-Hash(salt, IKM); an empty salt is HashLen zeros, i.e. the same HMAC key.
      expect(hexEncode(await p.hmacSha256(hex(v.salt), hex(v.ikm))), v.name).toBe(v.prk);
    }
  });

  it('HKDF output length is limited to 1..255×32 bytes', async () => {
    const ikm = new Uint8Array(16);
    expect(await p.hkdfSha256(ikm, ikm, ikm, 8160)).toHaveLength(8160);
    for (const bad of [0, -1, 8161, 1.5]) {
      await expect(p.hkdfSha256(ikm, ikm, ikm, bad)).rejects.toBeInstanceOf(RangeError);
    }
  });

  it('FIPS 180-2 B.1: SHA-256("abc")', async () => {
    expect(hexEncode(await p.sha256(new Uint8Array([0x61, 0x62, 0x63])))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('NIST SP 800-38A F.5.5 / F.5.6: CTR-AES256 encrypt and decrypt', async () => {
    const key = hex(ctr.key);
    const counter = hex(ctr.initialCounter);
    expect(hexEncode(await p.aesCtr(key, counter, hex(ctr.plaintext)))).toBe(ctr.ciphertext);
    expect(hexEncode(await p.aesCtr(key, counter, hex(ctr.ciphertext)))).toBe(ctr.plaintext);
    // A partial final block uses the leading bytes of the key stream (SP 800-38A §6.5).
    expect(hexEncode(await p.aesCtr(key, counter, hex(ctr.plaintext).subarray(0, 37)))).toBe(
      ctr.ciphertext.slice(0, 74),
    );
    expect(counter).toEqual(hex(ctr.initialCounter)); // the caller's counter is not advanced
  });

  it('AES-CTR increments the whole 16-byte block big-endian and wraps mod 2^128', async () => {
    // Zero key, counter ff…ff, three blocks: E(ff…ff) ‖ E(0) ‖ E(1). E_0(0) = dc95c078…2087 is
    // the well-known AES-256 all-zero answer; this pins WebCrypto `length: 128` against noble.
    const zeroKey = new Uint8Array(32);
    const wrap = await p.aesCtr(zeroKey, new Uint8Array(16).fill(0xff), new Uint8Array(48));
    expect(hexEncode(wrap)).toBe(
      'acdace8078a32b1a182bfa4987ca1347' + 'dc95c078a2408989ad48a21492842087' + '530f8afbc74536b9a963b4f1c4cb738b',
    );
    // A carry out of the low 64 bits must reach byte 7 (a 64-bit counter would wrap instead).
    const key = hex(ctr.key);
    const low64 = hex('0000000000000000ffffffffffffffff');
    const two = await p.aesCtr(key, low64, new Uint8Array(32));
    const next = await p.aesCtr(key, hex('00000000000000010000000000000000'), new Uint8Array(16));
    expect(bytesEqual(two.subarray(16), next)).toBe(true);
    // mpenc-wire.md "Data packets": counter = IV ‖ 00000000; the IV bytes stay fixed while it counts.
    const iv = hex('0102030405060708090a0b0c');
    const stream = await p.aesCtr(key, concatBytes(iv, hex('00000000')), new Uint8Array(48));
    const third = await p.aesCtr(key, concatBytes(iv, hex('00000002')), new Uint8Array(16));
    expect(bytesEqual(stream.subarray(32), third)).toBe(true);
  });

  it('AES-CTR rejects wrong key and counter sizes with bad-key', async () => {
    await expect(p.aesCtr(new Uint8Array(16), new Uint8Array(16), new Uint8Array(1))).rejects.toMatchObject({
      code: 'bad-key',
    });
    await expect(p.aesCtr(new Uint8Array(32), new Uint8Array(12), new Uint8Array(1))).rejects.toMatchObject({
      code: 'bad-key',
    });
    expect(await p.aesCtr(new Uint8Array(32), new Uint8Array(16), new Uint8Array(0))).toHaveLength(0);
  });
});
