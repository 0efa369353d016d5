/**
 * WebCrypto crypto provider: the platform's native code (OpenSSL/BoringSSL/NSS) behind the
 * `CryptoProvider` interface, for Ed25519, X25519, AES-CTR, AES-GCM, SHA-256, HMAC and HKDF.
 *
 * The engine never touches globals: the caller passes `crypto.subtle` and
 * `crypto.getRandomValues` (see `detect.ts`). Results are identical to `noble.ts` on every
 * vector in tests/vectors; where the platform is laxer or stricter than noble, the shared
 * policies in `checks.ts` run first. Platform failures map onto the same ProtocolErrors as
 * noble: an all-zero X25519 result → 'low-order-point', a bad GCM tag → 'decrypt-failed';
 * Ed25519 verification never throws.
 */
import { base64UrlDecode, concatBytes, hexDecode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import type { CryptoProvider } from './provider.js';
import type { Bytes, GetRandomValues, SubtleCryptoSubset, WebCryptoKey } from './subtle.js';
import { KeyCache } from './key-cache.js';
import {
  checkBytes,
  checkGcmInputs,
  checkHkdfLength,
  checkKey,
  ed25519PassesStrictPrechecks,
  isAllZero,
  maskX25519PublicKey,
  MAX_RANDOM_BYTES_PER_CALL,
} from './checks.js';

/**
 * PKCS#8 wrappings of a raw 32-byte private key (RFC 8410 §7): SEQUENCE { version 0,
 * AlgorithmIdentifier { OID 1.3.101.112 (Ed25519) or 1.3.101.110 (X25519) }, OCTET STRING {
 * OCTET STRING (32 bytes) } }. WebCrypto imports private OKP keys only as PKCS#8 or JWK.
 */
const ED25519_PKCS8_PREFIX = hexDecode('302e020100300506032b657004220420');
const X25519_PKCS8_PREFIX = hexDecode('302e020100300506032b656e04220420');

/** RFC 2104 §2: a key shorter than the block (64 bytes for SHA-256) is zero-padded, so an empty
 * HMAC key is the same key as 64 zero bytes; WebCrypto refuses zero-length HMAC keys. */
const HMAC_SHA256_EMPTY_KEY = new Uint8Array(64);

/**
 * WebCrypto AES-CTR `length` = how many low bits of the counter block form the counter. 128
 * makes the whole 16-byte block one big-endian counter that wraps mod 2^128, which is what
 * noble's `ctr` and NIST SP 800-38A §B.1 "standard incrementing function" over the full block
 * do (tests/protocol/crypto-rfc-vectors.test.ts checks a wrap across 2^128).
 */
const AES_CTR_COUNTER_BITS = 128;

export interface WebCryptoProviderOptions {
  /** Reuse imported CryptoKeys (default true); see key-cache.ts and the numbers in select.ts. */
  readonly cacheKeys?: boolean;
}

export function createWebCryptoProvider(
  subtle: SubtleCryptoSubset,
  getRandomValues: GetRandomValues,
  options: WebCryptoProviderOptions = {},
): CryptoProvider {
  const cache = options.cacheKeys === false ? undefined : new KeyCache<WebCryptoKey>();
  const cached = (kind: string, bytes: Uint8Array, load: () => Promise<WebCryptoKey>) =>
    cache === undefined ? load() : cache.get(kind, bytes, load);

  const edPrivate = (seed: Uint8Array) =>
    cached('ed-priv', seed, () =>
      subtle.importKey('pkcs8', buf(concatBytes(ED25519_PKCS8_PREFIX, seed)), 'Ed25519', true, ['sign']),
    );
  const edPublic = (publicKey: Uint8Array) =>
    cached('ed-pub', publicKey, () => subtle.importKey('raw', buf(publicKey), 'Ed25519', false, ['verify']));
  const aesKey = (name: 'AES-CTR' | 'AES-GCM', key: Uint8Array) =>
    cached(name, key, () => subtle.importKey('raw', buf(key), name, false, ['encrypt', 'decrypt']));
  const hmacKey = (key: Uint8Array) =>
    cached('hmac', key, () =>
      subtle.importKey('raw', key.length === 0 ? HMAC_SHA256_EMPTY_KEY : buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, [
        'sign',
      ]),
    );
  // CLIQUES applies one private key to every other member's slot (mpenc-wire.md "CLIQUES"), and
  // a PKCS#8 import costs a scalar multiplication (the platform derives the public key): cache.
  // Extractable, because x25519PublicKey exports the public half from the same key.
  const x25519Private = (privateKey: Uint8Array) =>
    cached('x-priv', privateKey, () =>
      subtle.importKey('pkcs8', buf(concatBytes(X25519_PKCS8_PREFIX, privateKey)), 'X25519', true, ['deriveBits']),
    );
  // HKDF inputs are one-off secrets and peers' DH public keys change per step: no cache.

  /** The public key of an OKP private key, from its JWK export (`x`, RFC 8037 §2). */
  async function okpPublicKey(key: WebCryptoKey): Promise<Uint8Array> {
    const jwk = await subtle.exportKey('jwk', key);
    if (typeof jwk.x !== 'string') throw new Error('WebCrypto: JWK export has no public key');
    return base64UrlDecode(jwk.x);
  }

  return {
    name: 'webcrypto',

    forgetKeys(keys) {
      for (const k of keys) cache?.forget(k);
    },

    randomBytes(length) {
      if (!Number.isInteger(length) || length < 0) throw new RangeError(`randomBytes: bad length ${length}`);
      const out = new Uint8Array(length);
      for (let off = 0; off < length; off += MAX_RANDOM_BYTES_PER_CALL) {
        getRandomValues(out.subarray(off, Math.min(length, off + MAX_RANDOM_BYTES_PER_CALL)));
      }
      return out;
    },

    async sha256(data) {
      checkBytes(data, 'sha256 input');
      return new Uint8Array(await subtle.digest('SHA-256', buf(data)));
    },

    async hmacSha256(key, data) {
      checkBytes(key, 'HMAC key');
      checkBytes(data, 'HMAC input');
      return new Uint8Array(await subtle.sign('HMAC', await hmacKey(key), buf(data)));
    },

    async hkdfSha256(ikm, salt, info, length) {
      checkBytes(ikm, 'HKDF ikm');
      checkBytes(salt, 'HKDF salt');
      checkBytes(info, 'HKDF info');
      checkHkdfLength(length);
      const key = await subtle.importKey('raw', buf(ikm), 'HKDF', false, ['deriveBits']);
      const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: buf(salt), info: buf(info) }, key, length * 8);
      return new Uint8Array(bits);
    },

    async x25519PublicKey(privateKey) {
      checkKey(privateKey, 32, 'x25519 private key');
      return okpPublicKey(await x25519Private(privateKey));
    },

    async x25519(privateKey, publicKey) {
      checkKey(privateKey, 32, 'x25519 private key');
      checkKey(publicKey, 32, 'x25519 public key');
      const [priv, pub] = await Promise.all([
        x25519Private(privateKey),
        // Every 32-byte string is a u-coordinate (RFC 7748 §5), so no platform should refuse one;
        // if one does, the peer's input still ends as a ProtocolError.
        subtle.importKey('raw', buf(maskX25519PublicKey(publicKey)), 'X25519', false, []).catch(() => {
          throw new ProtocolError('bad-key', 'the platform refused the x25519 public key');
        }),
      ]);
      let shared: Uint8Array;
      try {
        shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, priv, 256));
      } catch {
        // Inputs are well-formed here, so the only failure left is the all-zero result of a
        // small-order u, which WebCrypto refuses (Web Crypto "X25519" deriveBits step 8).
        throw new ProtocolError('low-order-point', 'x25519 result is all zero');
      }
      // Not every platform refuses it: check, as noble.ts does (RFC 7748 §6.1).
      if (isAllZero(shared)) throw new ProtocolError('low-order-point', 'x25519 result is all zero');
      return shared;
    },

    async ed25519PublicKey(seed) {
      checkKey(seed, 32, 'ed25519 seed');
      return okpPublicKey(await edPrivate(seed));
    },

    async ed25519Sign(seed, message) {
      checkKey(seed, 32, 'ed25519 seed');
      checkBytes(message, 'ed25519 message');
      return new Uint8Array(await subtle.sign('Ed25519', await edPrivate(seed), buf(message)));
    },

    async ed25519Verify(publicKey, message, signature) {
      if (!(message instanceof Uint8Array)) return false;
      if (!ed25519PassesStrictPrechecks(publicKey, signature)) return false;
      try {
        return await subtle.verify('Ed25519', await edPublic(publicKey), buf(signature), buf(message));
      } catch {
        // Not a point on the curve (import fails), or any other platform refusal.
        return false;
      }
    },

    async aesCtr(key, counterBlock, data, oneUse) {
      checkKey(key, 32, 'AES-256 key');
      checkKey(counterBlock, 16, 'AES-CTR counter block');
      checkBytes(data, 'AES-CTR input');
      const params = { name: 'AES-CTR', counter: buf(counterBlock), length: AES_CTR_COUNTER_BITS };
      const aes = oneUse === true ? await subtle.importKey('raw', buf(key), 'AES-CTR', false, ['encrypt', 'decrypt']) : await aesKey('AES-CTR', key);
      return new Uint8Array(await subtle.encrypt(params, aes, buf(data)));
    },

    async aesGcmEncrypt(key, nonce, plaintext, aad) {
      checkGcmInputs(key, nonce, aad);
      checkBytes(plaintext, 'AES-GCM plaintext');
      const params = { name: 'AES-GCM', iv: buf(nonce), additionalData: buf(aad ?? new Uint8Array(0)), tagLength: 128 };
      return new Uint8Array(await subtle.encrypt(params, await aesKey('AES-GCM', key), buf(plaintext)));
    },

    async aesGcmDecrypt(key, nonce, ciphertext, aad) {
      checkGcmInputs(key, nonce, aad);
      checkBytes(ciphertext, 'AES-GCM ciphertext');
      const params = { name: 'AES-GCM', iv: buf(nonce), additionalData: buf(aad ?? new Uint8Array(0)), tagLength: 128 };
      const aes = await aesKey('AES-GCM', key);
      try {
        return new Uint8Array(await subtle.decrypt(params, aes, buf(ciphertext)));
      } catch {
        throw new ProtocolError('decrypt-failed', 'AES-GCM tag does not verify');
      }
    },
  };
}

/** WebCrypto refuses views of SharedArrayBuffers: copy those (rare); pass the rest as they are. */
function buf(bytes: Uint8Array): Bytes {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Bytes) : new Uint8Array(bytes);
}
