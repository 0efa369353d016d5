/**
 * Safety numbers (src/worker/safety-number.ts) against their definition, computed here with
 * node:crypto: half(ik) = the first 30 bytes of H^5200, H^0 = SHA-256("covey-safety-v1" ‖ ik),
 * H^(i+1) = SHA-256(H^i ‖ ik); 5-byte chunks mod 100,000; the lower key's half first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, SAFETY_ITERATIONS, safetyNumber } from '../../src/worker/safety-number.js';
import { testCrypto } from './helpers/client-harness.js';

function referenceHalf(ik: Buffer): string[] {
  let h = createHash('sha256').update(Buffer.concat([Buffer.from('covey-safety-v1'), ik])).digest();
  for (let i = 0; i < SAFETY_ITERATIONS; i++) h = createHash('sha256').update(Buffer.concat([h, ik])).digest();
  const groups: string[] = [];
  for (let g = 0; g < 6; g++) groups.push(String(h.readUIntBE(g * 5, 5) % 100_000).padStart(5, '0'));
  return groups;
}

describe('safety numbers', () => {
  it('match their definition, for either order of the two keys', async () => {
    const crypto = await testCrypto();
    for (let run = 0; run < 3; run++) {
      const a = randomBytes(32);
      const b = randomBytes(32);
      const [low, high] = Buffer.compare(a, b) <= 0 ? [a, b] : [b, a];
      const expected = [...referenceHalf(low), ...referenceHalf(high)].join(' ');
      expect(await safetyNumber(crypto, a.toString('base64url'), b.toString('base64url'))).toBe(expected);
      expect(await safetyNumber(crypto, b.toString('base64url'), a.toString('base64url'))).toBe(expected);
      expect(await fingerprint(crypto, a.toString('base64url'))).toBe(referenceHalf(a).join(' '));
    }
  });
});
