/**
 * Sealed inbox messages (src/worker/sealed-message.ts): RFC 9180 keys and packets, the same bytes
 * as every earlier version sealed and opened (a stored inbox seed keeps its key; links and
 * deposits made before still open), and the same results on a platform whose WebCrypto refuses
 * some X25519 keys as WebKit's does.
 *
 * The platform here is Node's WebCrypto behind a wrapper that, while `platform.likeWebKit` is set,
 * refuses what WebKitGTK's WebCrypto refused in the probe of 2026-12-02 (tests/browser/
 * sealed-message.test.ts runs the real code in the real engines).
 */
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256 as PlatformKem, HkdfSha256 } from '@hpke/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { base64UrlDecode, base64UrlEncode, hexDecode, utf8Encode } from '../../src/protocol/bytes.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { hpkePrivateKey, hpkePublicKey as expectedPublicKey, seedWhere } from '../helpers/hpke-keys.js';
import type { CapabilityToken, ChannelId } from '../../src/shared/relay-api.js';
import { makeCard, type Card } from '../../src/worker/cards.js';
import { inboxKeyPair, openInboxMessage, sealInboxMessage, type InboxMessage } from '../../src/worker/sealed-message.js';

// ── the platform ────────────────────────────────────────────────────────────────────────────
const realCrypto = globalThis.crypto;
const platform = { likeWebKit: false, generateFails: false, refused: 0 };
const bytesOf = (data: BufferSource): Uint8Array =>
  data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
const algorithmName = (algorithm: AlgorithmIdentifier): string => (typeof algorithm === 'string' ? algorithm : algorithm.name);
const isCurve = (algorithm: AlgorithmIdentifier) => ['X25519', 'Ed25519'].includes(algorithmName(algorithm));
const refuse = (name: 'DataError' | 'OperationError') => {
  platform.refused++;
  return Promise.reject(new DOMException(name === 'DataError' ? 'Data provided to an operation does not meet requirements' : 'The operation failed for an operation-specific reason', name));
};
const real = realCrypto.subtle;
/**
 * Node's SubtleCrypto, refusing (while likeWebKit) what WebKitGTK's refused in the probe: every
 * PKCS#8 X25519/Ed25519 private key whose first byte is 0 (DataError, 100 of 100; no other key
 * was refused, and public keys and X25519 results beginning with 0 were fine, 30 of 30 each), and
 * (while generateFails) X25519/Ed25519 key generation (OperationError, 6 of 1,500 there).
 */
const subtle = {
  encrypt: real.encrypt.bind(real),
  decrypt: real.decrypt.bind(real),
  sign: real.sign.bind(real),
  verify: real.verify.bind(real),
  digest: real.digest.bind(real),
  deriveBits: real.deriveBits.bind(real),
  deriveKey: real.deriveKey.bind(real),
  exportKey: real.exportKey.bind(real),
  wrapKey: real.wrapKey.bind(real),
  unwrapKey: real.unwrapKey.bind(real),
  importKey(format: KeyFormat, data: BufferSource | JsonWebKey, algorithm: AlgorithmIdentifier, extractable: boolean, usages: KeyUsage[]) {
    // The key is the last 32 bytes of the PKCS#8 structure.
    if (platform.likeWebKit && format === 'pkcs8' && isCurve(algorithm) && bytesOf(data as BufferSource).at(-32) === 0) return refuse('DataError');
    return format === 'jwk'
      ? real.importKey(format, data as JsonWebKey, algorithm, extractable, usages)
      : real.importKey(format, data as BufferSource, algorithm, extractable, usages);
  },
  generateKey(algorithm: AlgorithmIdentifier, extractable: boolean, usages: KeyUsage[]) {
    if (platform.likeWebKit && platform.generateFails && isCurve(algorithm)) return refuse('OperationError');
    return real.generateKey(algorithm, extractable, usages);
  },
};
vi.stubGlobal('crypto', { getRandomValues: realCrypto.getRandomValues.bind(realCrypto), randomUUID: realCrypto.randomUUID.bind(realCrypto), subtle });
afterAll(() => {
  vi.unstubAllGlobals();
});

// ── a sender ─────────────────────────────────────────────────────────────────────────────────
const identitySeed = new Uint8Array(32).map((_, i) => 0x80 + i);
const AT = 1_764_000_000_000;
async function cardFor(hk: string): Promise<Card> {
  return makeCard(nobleProvider, identitySeed, {
    name: 'Ada',
    hk,
    relay: 'https://relay.example',
    inbox: 'A'.repeat(22) as ChannelId,
    deposit: 'B'.repeat(43) as CapabilityToken,
    exp: 1_800_000_000_000,
  });
}
async function messageTo(hk: string, body: unknown): Promise<InboxMessage> {
  const card = await cardFor(hk);
  return { v: 1, type: 'contact-request', mid: base64UrlEncode(new Uint8Array(16).fill(7)), at: AT, to: card.ik, from: card, body };
}

/** The suite of every earlier version: @hpke/core's KEM, X25519 in the platform's WebCrypto. */
const earlier = new CipherSuite({ kem: new PlatformKem(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
const INFO = utf8Encode('covey-inbox-v1');

describe('sealed inbox messages', () => {
  it('derive the RFC 9180 A.1 key pair (and the helper here agrees)', async () => {
    const ikmR = hexDecode('6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037');
    const pkRm = hexDecode('3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d');
    expect(await hpkePrivateKey(ikmR)).toEqual(hexDecode('4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8'));
    expect((await inboxKeyPair(ikmR)).publicKey).toBe(base64UrlEncode(pkRm));
    expect(await expectedPublicKey(ikmR)).toBe(base64UrlEncode(pkRm));
  });

  it('keep the inbox key of a stored seed and open a packet sealed by the earlier version (fixed vector)', async () => {
    // Made at 9bd5033 (@hpke/core's WebCrypto KEM) by sealInboxMessage to inboxKeyPair(seed).
    const seed = new Uint8Array(32).map((_, i) => i + 1);
    const { keyPair, publicKey } = await inboxKeyPair(seed);
    expect(publicKey).toBe(FIXED.publicKey);
    const message = await messageTo(publicKey, { hello: 'Bob' });
    expect(await openInboxMessage(nobleProvider, keyPair, message.to, base64UrlDecode(FIXED.packet), AT)).toEqual(message);
  });

  it('seal packets that the earlier version opens', async () => {
    const seed = nobleProvider.randomBytes(32);
    const { publicKey } = await inboxKeyPair(seed);
    const message = await messageTo(publicKey, { n: 1 });
    const packet = await sealInboxMessage(nobleProvider, identitySeed, publicKey, message);
    const keyPair = await earlier.kem.deriveKeyPair(seed as Uint8Array<ArrayBuffer>);
    const recipient = await earlier.createRecipientContext({ recipientKey: keyPair, enc: packet.slice(0, 32).buffer, info: INFO as Uint8Array<ArrayBuffer> });
    const inner = JSON.parse(new TextDecoder().decode(await recipient.open(packet.slice(32) as Uint8Array<ArrayBuffer>))) as { s: string };
    expect(JSON.parse(inner.s)).toEqual(message);
  });

  it('refuse a packet sealed to another key or altered', async () => {
    const mine = await inboxKeyPair(nobleProvider.randomBytes(32));
    const other = await inboxKeyPair(nobleProvider.randomBytes(32));
    const message = await messageTo(mine.publicKey, null);
    const packet = await sealInboxMessage(nobleProvider, identitySeed, other.publicKey, message);
    await expect(openInboxMessage(nobleProvider, mine.keyPair, message.to, packet, AT)).rejects.toThrow(/does not decrypt/);
    const altered = await sealInboxMessage(nobleProvider, identitySeed, mine.publicKey, message);
    altered[40]! ^= 1;
    await expect(openInboxMessage(nobleProvider, mine.keyPair, message.to, altered, AT)).rejects.toThrow(/does not decrypt/);
  });
});

describe('sealed inbox messages on a platform that refuses some X25519 keys (WebKit)', () => {
  beforeAll(() => {
    platform.likeWebKit = true;
  });
  afterAll(() => {
    platform.likeWebKit = false;
  });

  it('derive the inbox key of a seed whose private key begins with 0 (1 in 256 seeds)', async () => {
    const seed = await seedWhere('sk0', (sk) => sk[0] === 0);
    expect((await inboxKeyPair(seed)).publicKey).toBe(await expectedPublicKey(seed));
  });

  it('seal to and open for such a key, and for a public key that begins with 0', async () => {
    for (const seed of [await seedWhere('sk0', (sk) => sk[0] === 0), await seedWhere('pk0', (_, pk) => pk[0] === 0)]) {
      const { keyPair, publicKey } = await inboxKeyPair(seed);
      const message = await messageTo(publicKey, { seed: base64UrlEncode(seed) });
      const packet = await sealInboxMessage(nobleProvider, identitySeed, publicKey, message);
      expect(await openInboxMessage(nobleProvider, keyPair, message.to, packet, AT)).toEqual(message);
    }
  });

  it('seal when the platform fails to generate an X25519 key', async () => {
    const { keyPair, publicKey } = await inboxKeyPair(await seedWhere('recipient', () => true));
    const message = await messageTo(publicKey, 'generate');
    platform.generateFails = true;
    try {
      const packet = await sealInboxMessage(nobleProvider, identitySeed, publicKey, message);
      expect(await openInboxMessage(nobleProvider, keyPair, message.to, packet, AT)).toEqual(message);
    } finally {
      platform.generateFails = false;
    }
  });

  it('open packets whose ephemeral key or shared secret begins with 0', async () => {
    const { keyPair, publicKey } = await inboxKeyPair(await seedWhere('recipient', () => true));
    const recipient = base64UrlDecode(publicKey);
    for (const ephemeralSeed of [
      await seedWhere('enc0', (_, pk) => pk[0] === 0),
      await seedWhere('dh0', async (sk) => (await nobleProvider.x25519(sk, recipient))[0] === 0),
    ]) {
      const message = await messageTo(publicKey, base64UrlEncode(ephemeralSeed));
      const packet = await sealInboxMessage(nobleProvider, identitySeed, publicKey, message, { ephemeralSeed });
      expect(await openInboxMessage(nobleProvider, keyPair, message.to, packet, AT)).toEqual(message);
    }
  });

  it('the platform here does refuse those keys (the wrapper is in use)', async () => {
    const before = platform.refused;
    await expect(earlier.kem.deriveKeyPair((await seedWhere('sk0', (sk) => sk[0] === 0)) as Uint8Array<ArrayBuffer>)).rejects.toThrow();
    expect(platform.refused).toBe(before + 1);
    platform.generateFails = true;
    try {
      await expect(earlier.kem.generateKeyPair()).rejects.toThrow();
    } finally {
      platform.generateFails = false;
    }
    expect(platform.refused).toBe(before + 2);
  });
});

/** Made at 9bd5033 (@hpke/core's WebCrypto KEM, in Node). */
const FIXED = {
  publicKey: 'SeSHTiX-OJ7Tyfov0J0HeQfsxYCchhniEnEotqcsfHo',
  packet:
    '9AKOWh57gfaLm9gJQ89U6XyqHBy3aX7TLE55qZwa4WfF84fGq7l6J1kdgZ7yi5MlSdCRi0e9wweC3hzDJxMSx3lGe9' +
    'ikAtZUJWimboVP7f_gYJAgTLgedKs0JbeXzHiwzV3LfzCk08byTO-FYMzUudiI7vN3ihSlkb0D2enmABXr0InrZTX_' +
    '60gpg1SmsxF3O8eU5w-x_KxgQhGzvVyXtNEWapSu_nTsdWGGA1jiiOEdT5zERri9YPSBjBp8JYU2_KHWix4l3rBxEx' +
    'SPWIphfY1nODPbZcVmc9DKhociaU-TYKFpCvmfj8hsQdang2LyGpxpxrDmDYlZE6TLn6wd8M2lLHg6w3nIu09MhR3d' +
    'ED9sxQEABpemM4GSOubef0a4th4zeaXgcNeHXCgA_NJ8adsipNww5EFgtBlEYYvyXkZSR1lvmdNnbPkHjmjomw-OEQ' +
    'M_FuWQbt-PwLNldjuPoGahYbFd7Io0aGpiZaM5UPd4fl6da9E-ZOJ4ZxPqaDKTEEjC-5mYunywwq5Ky4H7Zo1KMH8A' +
    'acB1G2umSYMxMAoFHddAqv8dzD_5VKFtRl2N6b5129EthCuHNcBtVbQ9I5_5tVDBQB1-VFMuP1Wp2unMh6SmTKIaxm' +
    'pr0mxkbW8xN55U4UE1PotnqF86pjogyPE0p3s8_hKBtsqvmxgK_7f_xmwIXRqKxCQ8kA_ykxOuabrr_gVlXY83UY6E' +
    'ZfvtRLe8q0hr1NCf2ql5SrAJ9RnK82R0m5_aNlko5UT2SLjMOfkaP6mvnZ7HHAmJS3iVx0ZFiJ3IhTkOZ6t9-d2rmn' +
    '1jOoW_PnXZNGaf_zbmsWqlUkkTLO_XuVlIAHjKfuUjLdE9mZg843yovEONsd1OF4l_nCdeQV9SuTyzXge8CMNpH-uL' +
    '5XmmJ3EWN52r-_AdoIeKBOMYeFVHnFellQTfUX0w9IgaeKkyTzv--Tmz-C3_6COICM0BDrsC',
};
