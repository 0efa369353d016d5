/**
 * The relay's side of request MACs (src/relay/mac-keys.ts): the auth key derivation, the
 * Montgomery form of member keys, the MAC check and its cache, and that a MAC never goes to the
 * signature verifier. Member-side MACs are made here with noble, from the description in
 * src/shared/relay-mac.ts.
 */
import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { verifySigned } from '../../src/relay/auth.js';
import { MacChecker, montgomeryU, RELAY_AUTH_KEY_SALT, relayAuthKeyFrom } from '../../src/relay/mac-keys.js';
import type { SignatureVerifier } from '../../src/relay/signature-pool.js';
import { relaySigningText, type MemberKey } from '../../src/shared/relay-api.js';
import { relayMacKey } from '../../src/shared/relay-mac.js';

const P = 2n ** 255n - 19n;

/** Little-endian 32 bytes of `n` (with `signBit` in the top bit), base64url: an ed25519 key encoding. */
function edKeyOf(n: bigint, signBit = false): MemberKey {
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  if (signBit) bytes[31] = (bytes[31] ?? 0) | 0x80;
  return bytes.toString('base64url') as MemberKey;
}

interface Member {
  readonly key: MemberKey;
  /** The member's X25519 secret: its seed's SHA-512, first half (X25519 clamps it). */
  readonly scalar: Uint8Array;
}

function newMember(): Member {
  const seed = ed25519.utils.randomSecretKey();
  const key = Buffer.from(ed25519.getPublicKey(seed)).toString('base64url') as MemberKey;
  return { key, scalar: createHash('sha512').update(seed).digest().subarray(0, 32) };
}

/** A MAC of `text` by `member` for the relay whose auth key is `authKey`. */
function macOf(member: Member, authKey: string, text: string): Buffer {
  const shared = x25519.getSharedSecret(member.scalar, Buffer.from(authKey, 'base64url'));
  return createHmac('sha256', relayMacKey(shared, member.key, authKey)).update(text, 'utf8').digest();
}

const vapidPrivate = Buffer.alloc(32, 7).toString('base64url');

describe('relay auth key', () => {
  it('is X25519 of HKDF-SHA256(VAPID private key, salt covey-relay-auth-key-v1): the same for the same secret, another for another', () => {
    const key = relayAuthKeyFrom(vapidPrivate);
    const secret = hkdf(sha256, Buffer.alloc(32, 7), new TextEncoder().encode('covey-relay-auth-key-v1'), new Uint8Array(0), 32);
    expect(RELAY_AUTH_KEY_SALT).toBe('covey-relay-auth-key-v1');
    expect(key.publicKey).toBe(Buffer.from(x25519.getPublicKey(secret)).toString('base64url'));
    expect(relayAuthKeyFrom(vapidPrivate).publicKey).toBe(key.publicKey);
    expect(relayAuthKeyFrom(Buffer.alloc(32, 8).toString('base64url')).publicKey).not.toBe(key.publicKey);
    expect(() => relayAuthKeyFrom(Buffer.alloc(31).toString('base64url'))).toThrow(RangeError);
  });
});

describe('montgomeryU', () => {
  it("is noble's toMontgomery of the decompressed point, for random keys of either x sign", () => {
    for (let i = 0; i < 50; i++) {
      const key = Buffer.from(newMember().key, 'base64url');
      expect(Buffer.from(montgomeryU(key)!).toString('hex')).toBe(Buffer.from(ed25519.utils.toMontgomery(key)).toString('hex'));
    }
  });

  it('refuses y ≥ p (non-canonical) and y = 1 (the identity); gives u = 0 for y = p - 1', () => {
    for (const y of [P, P + 1n, P + 18n, 1n]) expect(montgomeryU(Buffer.from(edKeyOf(y), 'base64url'))).toBeUndefined();
    expect(montgomeryU(Buffer.from(edKeyOf(1n, true), 'base64url'))).toBeUndefined();
    expect(Buffer.from(montgomeryU(Buffer.from(edKeyOf(P - 1n), 'base64url'))!).every((b) => b === 0)).toBe(true);
    expect(montgomeryU(new Uint8Array(31))).toBeUndefined();
  });
});

describe('MacChecker', () => {
  const authKey = relayAuthKeyFrom(vapidPrivate);
  const text = relaySigningText('POST', '/v1/channels/x/events', 'h', 'nonce-nonce-nonce-1', 1);
  const message = Buffer.from(text, 'utf8');

  it("accepts the member's MAC and nothing else: not a flipped bit, another member's, another relay's, another length", () => {
    const checker = new MacChecker(authKey, 10);
    const [a, b] = [newMember(), newMember()];
    const mac = macOf(a, authKey.publicKey, text);
    expect(checker.verify(a.key, message, mac)).toBe(true);
    expect(checker.verify(a.key, message, mac)).toBe(true); // from the cache
    const flipped = Buffer.from(mac);
    flipped[31] = (flipped[31] ?? 0) ^ 0x80;
    expect(checker.verify(a.key, message, flipped)).toBe(false);
    expect(checker.verify(a.key, message, macOf(b, authKey.publicKey, text))).toBe(false);
    expect(checker.verify(b.key, message, macOf(b, relayAuthKeyFrom(Buffer.alloc(32, 9).toString('base64url')).publicKey, text))).toBe(false);
    expect(checker.verify(a.key, message, mac.subarray(0, 31))).toBe(false);
    expect(checker.verify(a.key, Buffer.from(`${text} `), mac)).toBe(false);
  });

  it('answers false, never throws, for small-order, non-canonical and identity keys whatever the MAC', () => {
    const checker = new MacChecker(authKey, 10);
    // HMAC under the all-zero X25519 output: what anyone could compute for a small-order key.
    const zeroMac = (key: MemberKey): Buffer => createHmac('sha256', relayMacKey(new Uint8Array(32), key, authKey.publicKey)).update(message).digest();
    const weak = [
      edKeyOf(0n), // order 4
      edKeyOf(P - 1n), // order 2: u = 0
      edKeyOf(P + 1n), // non-canonical 1: 1 - y = 0 mod p
      edKeyOf(P), // non-canonical 0
      edKeyOf(1n), // identity
      'JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU' as MemberKey, // order 8
      'xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA3o' as MemberKey, // order 8
    ];
    for (const key of weak) {
      expect(() => checker.verify(key, message, zeroMac(key))).not.toThrow();
      expect(checker.verify(key, message, zeroMac(key))).toBe(false);
    }
    expect(checker.cachedKeys).toBe(0);
  });

  it('caches a key only after a MAC under it verified, at most maxCachedKeys, the least recently verified out first', () => {
    const checker = new MacChecker(authKey, 2);
    // MACs under fresh keys that do not verify fill nothing.
    for (let i = 0; i < 5; i++) expect(checker.verify(newMember().key, message, Buffer.alloc(32))).toBe(false);
    expect(checker.cachedKeys).toBe(0);
    const [a, b, c] = [newMember(), newMember(), newMember()];
    expect(checker.verify(a.key, message, macOf(a, authKey.publicKey, text))).toBe(true);
    expect(checker.verify(b.key, message, macOf(b, authKey.publicKey, text))).toBe(true);
    // A wrong MAC under a cached key leaves it where it is; a right one makes it the most recent.
    expect(checker.verify(a.key, message, Buffer.alloc(32))).toBe(false);
    expect(checker.verify(a.key, message, macOf(a, authKey.publicKey, text))).toBe(true);
    expect(checker.verify(c.key, message, macOf(c, authKey.publicKey, text))).toBe(true);
    expect([checker.isCached(a.key), checker.isCached(b.key), checker.isCached(c.key)]).toEqual([true, false, true]);
    expect(checker.cachedKeys).toBe(2);
    expect(() => new MacChecker(authKey, 0)).toThrow(RangeError);
  });
  it('refuses as slowly with a cached key as without: a refusal derives the key again, an accepted MAC from the cache does not', () => {
    // The cache is looked up by the public member key, so a refusal at hit speed would tell
    // whoever knows the key (a removed co-member) that it authenticated here lately.
    const checker = new MacChecker(authKey, 10);
    const a = newMember();
    const mac = macOf(a, authKey.publicKey, text);
    expect(checker.verify(a.key, message, Buffer.alloc(32))).toBe(false);
    expect(checker.derivations).toBe(1);
    expect(checker.verify(a.key, message, mac)).toBe(true);
    expect(checker.derivations).toBe(2);
    expect(checker.verify(a.key, message, mac)).toBe(true);
    expect(checker.derivations).toBe(2);
    expect(checker.verify(a.key, message, Buffer.alloc(32))).toBe(false);
    expect(checker.derivations).toBe(3);
    expect(checker.isCached(a.key)).toBe(true);
  });
});

describe('verifySigned with a MAC', () => {
  it('checks the MAC on the event loop: the signature verifier is never asked', async () => {
    const authKey = relayAuthKeyFrom(vapidPrivate);
    const asked: string[] = [];
    const verifier: SignatureVerifier = {
      verify: (key) => {
        asked.push(key);
        return Promise.resolve(false);
      },
      close: () => Promise.resolve(),
    };
    const member = newMember();
    const nowMs = 1_800_000_000_000;
    const nonce = 'nonce-nonce-nonce-2';
    const text = relaySigningText('GET', '/v1/channels/x', createHash('sha256').update('').digest('base64url'), nonce, nowMs);
    const parts = { key: member.key, nonce, time: String(nowMs), signature: undefined, mac: macOf(member, authKey.publicKey, text).toString('base64url') };
    const check = { nowMs, maxClockSkewMs: 60_000, verifier, macs: new MacChecker(authKey, 10) };
    expect(await verifySigned(parts, 'GET', '/v1/channels/x', new Uint8Array(0), check)).toEqual({
      key: member.key,
      nonce: { key: member.key, nonce, expiresAtMs: nowMs + 60_001 },
    });
    expect(asked).toEqual([]);
    // A signature does go to the verifier (here: refused), and both at once are refused before either check.
    const signer = generateKeyPairSync('ed25519');
    const signerKey = signer.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');
    await expect(verifySigned({ ...parts, key: signerKey, mac: undefined, signature: 'A'.repeat(86) }, 'GET', '/v1/channels/x', new Uint8Array(0), check)).rejects.toMatchObject({ code: 'bad-signature' });
    expect(asked).toEqual([signerKey]);
    await expect(verifySigned({ ...parts, signature: 'A'.repeat(86) }, 'GET', '/v1/channels/x', new Uint8Array(0), check)).rejects.toMatchObject({ code: 'bad-signature' });
    await expect(verifySigned({ ...parts, mac: undefined }, 'GET', '/v1/channels/x', new Uint8Array(0), check)).rejects.toMatchObject({ code: 'bad-signature' });
    expect(asked).toEqual([signerKey]);
  });
});
