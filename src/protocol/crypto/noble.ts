/**
 * Reference crypto provider on @noble/curves, @noble/ciphers and @noble/hashes (audited, pure
 * JS, runs in every runtime). Slower than WebCrypto for signatures, DH and bulk data (numbers in
 * select.ts), but always there, and the yardstick the WebCrypto provider is tested against.
 * Edge-case policies shared with webcrypto.ts live in checks.ts.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { gcm, unsafe as aesInternals } from '@noble/ciphers/aes.js';
import { _SHA256, sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { bytesEqual, concatBytes } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import type { CryptoProvider } from './provider.js';
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
 * AES-CTR with the key schedule kept per group key (issue 8 hot path: catch-up decrypts
 * thousands of small packets under one key, and noble's `ctr()` expands the key and copies the
 * input on every call). noble's own CTR core (`unsafe.ctrCounter`, the function `ctr()` runs;
 * version pinned by the lockfile, checked by the NIST and Wycheproof vectors) on an expanded key
 * cached by key object. The cache holds a copy of the key bytes and is used only while they
 * match (a key wiped or changed in place is expanded again); forgetKeys() wipes and drops it.
 */
const expandedKeys = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly xk: Uint32Array }>();

function expandedKey(key: Uint8Array): Uint32Array {
  const cached = expandedKeys.get(key);
  if (cached !== undefined && bytesEqual(cached.copy, key)) return cached.xk;
  if (cached !== undefined) cached.xk.fill(0);
  const xk = aesInternals.expandKeyLE(key);
  expandedKeys.set(key, { copy: Uint8Array.from(key), xk });
  return xk;
}

function forgetExpanded(keys: readonly Uint8Array[]): void {
  for (const key of keys) {
    const cached = expandedKeys.get(key);
    if (cached === undefined) continue;
    cached.xk.fill(0);
    cached.copy.fill(0);
    expandedKeys.delete(key);
  }
}

/**
 * One SHA-256 object reused for every one-shot hash (issue 8 hot path: a catch-up hashes three
 * small inputs per message, and `sha256()` allocates a hash object, its block buffer and a view
 * each time). Each call starts it from the pristine state (`_cloneInto`: noble's own way to
 * copy a hash state, version pinned by the lockfile; tests/protocol/crypto-noble-sha.test.ts
 * checks it against `sha256()` on every length across several blocks) and wipes it after
 * (`destroy`: state and block buffer zeroed), so no input or output stays behind. Synchronous
 * and single-threaded: no call can interleave with another.
 */
const SHA256_PRISTINE = new _SHA256();
const sha256Work = new _SHA256();
/** Its block buffer (protected in noble's types): digesting into it reuses the view noble holds. */
const sha256Block = (sha256Work as unknown as { readonly buffer: Uint8Array }).buffer;
if (!(sha256Block instanceof Uint8Array) || sha256Block.length !== 64) throw new Error('noble SHA-256 internals changed: see sha256Reused');

function sha256Reused(data: Uint8Array): Uint8Array {
  SHA256_PRISTINE._cloneInto(sha256Work);
  try {
    sha256Work.update(data).digestInto(sha256Block);
    return sha256Block.slice(0, 32);
  } finally {
    sha256Work.destroy();
  }
}

/**
 * SHA-256 now, not behind a promise: for hot paths whose small hashes run on noble whatever the
 * provider (the ratchet's chain steps, packets/ratchet.ts).
 */
export const sha256Now = (data: Uint8Array): Uint8Array => sha256Reused(data);

export const nobleProvider: CryptoProvider = {
  name: 'noble',

  forgetKeys(keys) {
    // Only the AES key schedules above are kept per key.
    forgetExpanded(keys);
  },

  randomBytes(length) {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`randomBytes: bad length ${length}`);
    // noble draws from crypto.getRandomValues, which refuses more than 65536 bytes per call.
    const out = new Uint8Array(length);
    for (let off = 0; off < length; off += MAX_RANDOM_BYTES_PER_CALL) {
      out.set(randomBytes(Math.min(MAX_RANDOM_BYTES_PER_CALL, length - off)), off);
    }
    return out;
  },

  async sha256(data) {
    checkBytes(data, 'sha256 input');
    return sha256Reused(data);
  },

  async hmacSha256(key, data) {
    checkBytes(key, 'HMAC key');
    checkBytes(data, 'HMAC input');
    return hmac(sha256, key, data);
  },

  async hkdfSha256(ikm, salt, info, length) {
    checkBytes(ikm, 'HKDF ikm');
    checkBytes(salt, 'HKDF salt');
    checkBytes(info, 'HKDF info');
    checkHkdfLength(length);
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
      shared = x25519.getSharedSecret(privateKey, maskX25519PublicKey(publicKey));
    } catch {
      // Inputs are well-formed here; noble throws only on the all-zero result of a small-order u.
      throw new ProtocolError('low-order-point', 'x25519 result is all zero');
    }
    // RFC 7748 §6.1: reject the all-zero output (mpenc-wire.md "CLIQUES"; mpenc_js did not).
    if (isAllZero(shared)) throw new ProtocolError('low-order-point', 'x25519 result is all zero');
    return shared;
  },

  async ed25519PublicKey(seed) {
    checkKey(seed, 32, 'ed25519 seed');
    return ed25519.getPublicKey(seed);
  },

  async ed25519Sign(seed, message) {
    checkKey(seed, 32, 'ed25519 seed');
    checkBytes(message, 'ed25519 message');
    return ed25519.sign(message, seed);
  },

  async ed25519Verify(publicKey, message, signature) {
    if (!(message instanceof Uint8Array)) return false;
    if (!ed25519PassesStrictPrechecks(publicKey, signature)) return false;
    try {
      return verifyCofactorless(publicKey, message, signature);
    } catch {
      return false; // A is not a point on the curve
    }
  },

  async aesCtr(key, counterBlock, data, oneUse) {
    checkKey(key, 32, 'AES-256 key');
    checkKey(counterBlock, 16, 'AES-CTR counter block');
    checkBytes(data, 'AES-CTR input');
    // noble increments the whole 16-byte block big-endian, wrapping mod 2^128 (as webcrypto.ts).
    // Fresh, 4-byte-aligned buffers: the counter block advances in place, and the output is
    // computed in place over a copy of the input.
    const counter = Uint8Array.from(counterBlock);
    const out = new Uint8Array(data.length);
    out.set(data);
    if (oneUse !== true) {
      aesInternals.ctrCounter(expandedKey(key), counter, out, out);
      return out;
    }
    // A key used once: its schedule is made, used and wiped here (nothing cached).
    const xk = aesInternals.expandKeyLE(key);
    try {
      aesInternals.ctrCounter(xk, counter, out, out);
    } finally {
      xk.fill(0);
    }
    return out;
  },

  async aesGcmEncrypt(key, nonce, plaintext, aad) {
    checkGcmInputs(key, nonce, aad);
    checkBytes(plaintext, 'AES-GCM plaintext');
    return gcm(key, nonce, aad).encrypt(plaintext);
  },

  async aesGcmDecrypt(key, nonce, ciphertext, aad) {
    checkGcmInputs(key, nonce, aad);
    checkBytes(ciphertext, 'AES-GCM ciphertext');
    try {
      return gcm(key, nonce, aad).decrypt(ciphertext);
    } catch {
      throw new ProtocolError('decrypt-failed', 'AES-GCM tag does not verify');
    }
  },
};

const { Point } = ed25519;

/**
 * RFC 8032 §5.1.7 step 3 in its cofactorless form, [S]B − [k]A' = R, compared as encodings (as
 * OpenSSL and BoringSSL, hence Node's and Chromium's WebCrypto, do). noble's own `verify` checks
 * the cofactored equation, which also accepts R or A with a small-order component; a signer could
 * then make a signature that verifies for noble users and not for WebCrypto users, splitting a
 * group's view of the transcript. tests/vectors/covey/ed25519-edge.json holds such signatures.
 * Only public values are involved, so variable-time arithmetic is fine.
 */
function verifyCofactorless(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const A = Point.fromBytes(publicKey, false); // strict decoding; throws when not on the curve
  const R = signature.subarray(0, 32);
  const s = bytesToNumberLE(signature.subarray(32)); // < L: checked by the prechecks
  const k = bytesToNumberLE(sha512(concatBytes(R, publicKey, message))) % Point.Fn.ORDER;
  const expectedR = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
  return bytesEqual(expectedR.toBytes(), R);
}
