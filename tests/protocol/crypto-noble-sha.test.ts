import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { hexEncode } from '../../src/protocol/bytes.js';
import { nobleProvider, sha256Now } from '../../src/protocol/crypto/noble.js';

// noble.ts reuses one SHA-256 object for every one-shot hash: each call must start from the
// initial state, whatever the previous call hashed (a length that left a partial block, one
// that ended on a block boundary, one that needed an extra padding block).
describe('the reused SHA-256 of noble.ts', () => {
  it('equals a fresh sha256() on every length up to three blocks, in any order of calls', async () => {
    const data = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff);
    const lengths = [...Array(200).keys()];
    // Longest first, then shortest first: each call follows one of a different length.
    for (const order of [lengths.slice().reverse(), lengths]) {
      for (const n of order) {
        const input = data.subarray(0, n);
        const want = hexEncode(sha256(input));
        expect(hexEncode(sha256Now(input))).toBe(want);
        expect(hexEncode(await nobleProvider.sha256(input))).toBe(want);
      }
    }
  });

  it('gives the FIPS 180-2 vectors, and a fresh array each call', async () => {
    const abc = new TextEncoder().encode('abc');
    const a = sha256Now(abc);
    expect(hexEncode(a)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hexEncode(sha256Now(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const b = sha256Now(abc);
    expect(b).not.toBe(a);
    b.fill(0);
    expect(hexEncode(a)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const two = new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
    expect(hexEncode(await nobleProvider.sha256(two))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('still refuses what is not bytes', async () => {
    await expect(nobleProvider.sha256('abc' as unknown as Uint8Array)).rejects.toThrow();
  });
});
