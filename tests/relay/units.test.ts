/** Unit tests of the relay's small parts: rate limiter, env limits, id parsing, ed25519 verify. */
import { describe, expect, it } from 'vitest';
import { verifyEd25519 } from '../../src/relay/auth.js';
import { constantTimeEqual, decodeBase64UrlExact, isCanonicalBase64Url, parseBlobHash, parseChannelId, parseMemberKey } from '../../src/relay/ids.js';
import { DEFAULT_RELAY_LIMITS, limitEnvName, limitsFromEnv } from '../../src/relay/limits.js';
import { RateLimiter } from '../../src/relay/rate-limit.js';
import type { MemberKey } from '../../src/shared/relay-api.js';
import { makeMember } from './helpers/relay-harness.js';

describe('rate limiter', () => {
  it('allows a burst, then refills at the configured rate, per client', () => {
    const limiter = new RateLimiter(2, 3, 10);
    expect([0, 1, 2, 3].map(() => limiter.take('a', 0))).toEqual([0, 0, 0, 1]);
    expect(limiter.take('b', 0)).toBe(0);
    expect(limiter.take('a', 499)).toBeGreaterThan(0);
    expect(limiter.take('a', 1000)).toBe(0);
  });

  it('forgets the least recently seen client when full (memory stays bounded)', () => {
    const limiter = new RateLimiter(0.001, 1, 2);
    expect(limiter.take('a', 0)).toBe(0);
    expect(limiter.take('b', 0)).toBe(0);
    expect(limiter.take('c', 0)).toBe(0); // evicts a
    expect(limiter.take('b', 0)).toBeGreaterThan(0);
    expect(limiter.take('a', 0)).toBe(0); // a got a fresh bucket
  });
});

describe('limits from the environment', () => {
  it('maps every limit to RELAY_LIMIT_<NAME> and parses positive numbers', () => {
    expect(limitEnvName('maxPacketBytes')).toBe('RELAY_LIMIT_MAX_PACKET_BYTES');
    expect(limitsFromEnv({ RELAY_LIMIT_RATE_BURST: '1000', RELAY_LIMIT_MAX_EVENT_AGE_MS: '60000', OTHER: 'x' })).toEqual({
      rateBurst: 1000,
      maxEventAgeMs: 60000,
    });
    expect(() => limitsFromEnv({ RELAY_LIMIT_RATE_BURST: '-1' })).toThrow(/RELAY_LIMIT_RATE_BURST/);
    expect(() => limitsFromEnv({ RELAY_LIMIT_MAX_BLOB_BYTES: 'lots' })).toThrow();
    for (const name of Object.keys(DEFAULT_RELAY_LIMITS) as (keyof typeof DEFAULT_RELAY_LIMITS)[]) {
      expect(limitsFromEnv({ [limitEnvName(name)]: '7' })).toEqual({ [name]: 7 });
    }
  });
});

describe('ids', () => {
  it('accepts only canonical unpadded base64url of the right length', () => {
    const key = makeMember().publicKey;
    expect(parseMemberKey(key)).toBe(key);
    expect(parseMemberKey(`${key}=`)).toBeUndefined();
    expect(parseMemberKey(key.slice(1))).toBeUndefined();
    expect(parseMemberKey(key.replace(/.$/, '/'))).toBeUndefined();
    // The last character carries 4 spare bits: a non-zero spare bit is a second spelling.
    const nonCanonical = `${'A'.repeat(42)}B`;
    expect(decodeBase64UrlExact(nonCanonical, 32)).toBeUndefined();
    expect(parseChannelId('AAAAAAAAAAAAAAAAAAAAAA')).toBe('AAAAAAAAAAAAAAAAAAAAAA');
    expect(parseChannelId('AAAAAAAAAAAAAAAAAAAAAB')).toBeUndefined();
    expect(parseChannelId(42)).toBeUndefined();
    expect(parseBlobHash('a'.repeat(64))).toBe('a'.repeat(64));
    // Small-order points (either sign bit) and y >= p are refused as member keys.
    const hexKey = (hex: string): string => Buffer.from(hex, 'hex').toString('base64url');
    for (const weak of [
      '00'.repeat(32),
      `01${'00'.repeat(31)}`,
      `01${'00'.repeat(30)}80`,
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      `ec${'ff'.repeat(30)}7f`,
      `ed${'ff'.repeat(30)}7f`,
      `ff${'ff'.repeat(30)}ff`,
    ]) {
      expect(parseMemberKey(hexKey(weak))).toBeUndefined();
    }
    expect(parseMemberKey(hexKey(`02${'00'.repeat(31)}`))).toBe(hexKey(`02${'00'.repeat(31)}`));
    expect(parseBlobHash('A'.repeat(64))).toBeUndefined();
  });

  it('decodes exactly the texts that decode to the length and encode back to themselves', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // The definition: decode, then check the byte length and that encoding gives the text back.
    const byDefinition = (text: string, length: number): string | undefined => {
      if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
      const bytes = Buffer.from(text, 'base64url');
      return bytes.length === length && bytes.toString('base64url') === text ? bytes.toString('hex') : undefined;
    };
    let random = 7;
    const next = (n: number): number => {
      random = (random * 1103515245 + 12345) % 2 ** 31;
      return (random >>> 12) % n;
    };
    let accepted = 0;
    for (const length of [16, 32, 64]) {
      const chars = Math.ceil((length * 4) / 3);
      for (let i = 0; i < 400; i++) {
        const size = chars + next(3) - 1;
        // Half encode random bytes (canonical, then perhaps one character changed), half are any characters.
        let text =
          next(2) === 0
            ? Buffer.from(Array.from({ length }, () => next(256))).toString('base64url')
            : Array.from({ length: size }, () => alphabet[next(64)]).join('');
        if (next(4) === 0) {
          const at = next(text.length);
          text = text.slice(0, at) + (alphabet[next(64)] ?? 'A') + text.slice(at + 1);
        }
        if (next(8) === 0) text = text.slice(0, -1) + ['=', '+', '/', '.'][next(4)];
        const expected = byDefinition(text, length);
        if (expected !== undefined) accepted += 1;
        expect([text, decodeBase64UrlExact(text, length)?.toString('hex')]).toEqual([text, expected]);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('answers the same for a member key seen before (its check is remembered)', () => {
    const key = makeMember().publicKey;
    const weak = Buffer.alloc(32).toString('base64url');
    for (let i = 0; i < 3; i++) {
      expect(parseMemberKey(key)).toBe(key);
      expect(parseMemberKey(weak)).toBeUndefined();
      expect(parseMemberKey(`${key}=`)).toBeUndefined();
    }
  });

  it('compares strings in constant time and gets the answer right', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('ed25519 verification', () => {
  it('verifies real signatures and never throws on junk keys or signatures', () => {
    const member = makeMember();
    const message = new Uint8Array([1, 2, 3]);
    const signature = member.signNow(message);
    expect(verifyEd25519(member.publicKey, message, signature)).toBe(true);
    expect(verifyEd25519(member.publicKey, new Uint8Array([1, 2, 4]), signature)).toBe(false);
    expect(verifyEd25519(makeMember().publicKey, message, signature)).toBe(false);
    expect(verifyEd25519(member.publicKey, message, signature.subarray(1))).toBe(false);
    // A y coordinate that is not on the curve, and the all-zero key.
    expect(verifyEd25519(Buffer.alloc(32, 0xff).toString('base64url') as MemberKey, message, signature)).toBe(false);
    expect(verifyEd25519('A'.repeat(43) as MemberKey, message, new Uint8Array(64))).toBe(false);
    expect(verifyEd25519('junk' as MemberKey, message, signature)).toBe(false);
  });
});

describe('canonical base64url', () => {
  it('agrees with decoding and encoding again, for every length up to 12 and every last character', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let length = 1; length <= 12; length++) {
      for (const last of alphabet) {
        const text = 'Qk'.repeat(6).slice(0, length - 1) + last;
        const roundTrip = Buffer.from(text, 'base64url').toString('base64url') === text;
        expect([text, isCanonicalBase64Url(text)]).toEqual([text, roundTrip]);
      }
    }
  });
});
