/**
 * Reference crypto provider on @noble/curves, @noble/ciphers and @noble/hashes (audited, pure
 * JS, runs in every runtime). Slower than WebCrypto for signatures and DH, but always there.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { ctr, gcm } from '@noble/ciphers/aes.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ProtocolError } from '../errors.js';
import type { CryptoProvider } from './provider.js';
import { checkKey, isAllZero, MAX_RANDOM_BYTES_PER_CALL } from './checks.js';

export const nobleProvider: CryptoProvider = {
  name: 'noble',

  randomBytes(length) {
    // getRandomValues refuses more than 65536 bytes per call (Web Crypto §10.1.1).
    const out = new Uint8Array(length);
    for (let off = 0; off < length; off += MAX_RANDOM_BYTES_PER_CALL) {
      out.set(randomBytes(Math.min(MAX_RANDOM_BYTES_PER_CALL, length - off)), off);
    }
    return out;
  },

  async sha256(data) {
    return sha256(data);
  },

  async hmacSha256(key, data) {
    return hmac(sha256, key, data);
  },

  async hkdfSha256(ikm, salt, info, length) {
    if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
      throw new RangeError(`hkdfSha256: length ${length} outside 1..8160`);
    }
    return hkdf(sha256, ikm, salt, info, length);
  },

  async x25519PublicKey(privateKey) {
    checkKey(privateKey, 32, 'x25519 private key');
    return x25519.getPublicKey(privateKey);
  },

  async x25519(privateKey, publicKey) {
    checkKey(privateKey, 32, 'x25519 private key');
    checkKey(publicKey, 32, 'x25519 public key');
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(privateKey, publicKey);
    } catch {
      // noble throws when the result is zero, i.e. the peer sent a small-order point.
      throw new ProtocolError('low-order-point', 'x25519 result is all zero');
    }
    if (isAllZero(shared)) throw new ProtocolError('low-order-point', 'x25519 result is all zero');
    return shared;
  },

  async ed25519PublicKey(seed) {
    checkKey(seed, 32, 'ed25519 seed');
    return ed25519.getPublicKey(seed);
  },

  async ed25519Sign(seed, message) {
    checkKey(seed, 32, 'ed25519 seed');
    return ed25519.sign(message, seed);
  },

  async ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      // zip215: false = strict RFC 8032 (canonical encodings, S < L), as WebCrypto does.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },

  async aesCtr(key, counterBlock, data) {
    checkKey(key, 32, 'AES-256 key');
    checkKey(counterBlock, 16, 'AES-CTR counter block');
    return ctr(key, counterBlock).encrypt(data);
  },

  async aesGcmEncrypt(key, nonce, plaintext, aad) {
    return gcm(key, nonce, aad).encrypt(plaintext);
  },

  async aesGcmDecrypt(key, nonce, ciphertext, aad) {
    try {
      return gcm(key, nonce, aad).decrypt(ciphertext);
    } catch {
      throw new ProtocolError('decrypt-failed', 'AES-GCM tag does not verify');
    }
  },
};
