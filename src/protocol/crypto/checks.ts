/**
 * Input checks and policies shared by both crypto providers.
 *
 * The providers wrap libraries that disagree at the edges (noble is stricter than OpenSSL's
 * Ed25519, WebCrypto refuses IVs that noble takes). Every such edge is decided once here and
 * applied by both providers, so that they return the same answer on every input.
 */
import { hexDecode } from '../bytes.js';
import { ProtocolError } from '../errors.js';

/** Web Crypto's getRandomValues refuses more than 65536 bytes in one call (Web Crypto §10.1.1). */
export const MAX_RANDOM_BYTES_PER_CALL = 65536;

/** RFC 5869 §2.3: L ≤ 255 × HashLen. */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/**
 * AES-GCM nonce sizes both providers accept. Covey only ever uses 12 bytes (NIST SP 800-38D
 * §8.2 recommends 96-bit IVs); the wider range is what Node's WebCrypto (OpenSSL) takes, 12..128
 * bytes, so noble is held to the same range instead of accepting shorter, weaker IVs.
 */
export const GCM_NONCE_MIN_BYTES = 12;
export const GCM_NONCE_MAX_BYTES = 128;
export const GCM_TAG_BYTES = 16;

export function checkKey(key: Uint8Array, length: number, what: string): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${what}: expected Uint8Array`);
  if (key.length !== length) {
    throw new ProtocolError('bad-key', `${what}: expected ${length} bytes, got ${key.length}`);
  }
}

export function checkBytes(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what}: expected Uint8Array`);
}

export function checkHkdfLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw new RangeError(`hkdfSha256: length ${length} outside 1..${HKDF_SHA256_MAX_LENGTH}`);
  }
}

/** AES-GCM key (AES-128/192/256) and nonce checks, identical for both providers. */
export function checkGcmInputs(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array | undefined): void {
  if (!(key instanceof Uint8Array)) throw new TypeError('AES-GCM key: expected Uint8Array');
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new ProtocolError('bad-key', `AES-GCM key: expected 16, 24 or 32 bytes, got ${key.length}`);
  }
  checkBytes(nonce, 'AES-GCM nonce');
  if (nonce.length < GCM_NONCE_MIN_BYTES || nonce.length > GCM_NONCE_MAX_BYTES) {
    throw new ProtocolError(
      'bad-value',
      `AES-GCM nonce: expected ${GCM_NONCE_MIN_BYTES}..${GCM_NONCE_MAX_BYTES} bytes, got ${nonce.length}`,
    );
  }
  if (aad !== undefined) checkBytes(aad, 'AES-GCM additional data');
}

/** Constant-time with respect to the contents (every byte is read). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/**
 * RFC 7748 §5: "implementations of X25519 MUST mask the most significant bit in the final byte"
 * of u. Done here, before either library sees the key, so that both agree on every 32-byte input
 * (non-canonical u ≥ 2^255 − 19 is then accepted and reduced, as the RFC says).
 */
export function maskX25519PublicKey(publicKey: Uint8Array): Uint8Array {
  const u = publicKey.slice();
  u[31]! &= 0x7f;
  return u;
}

// --- Ed25519 strict verification policy --------------------------------------------------------

/** Field prime p = 2^255 − 19, little-endian. */
const P_LE = littleEndian(2n ** 255n - 19n);
/** Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L_LE = littleEndian(2n ** 252n + 27742317777372353535851937790883648493n);
/** p − 1 (y = −1) and 1 (y = 1) are the only y with x = 0, little-endian. */
const P_MINUS_1_LE = littleEndian(2n ** 255n - 20n);

/**
 * The canonical encodings of the eight points of small order (the torsion subgroup E[8]),
 * computed with noble as [L]P for random points P. A public key among them makes a "signature"
 * that verifies for every message (e.g. A = R = identity, S = 0), so strict verifiers (noble's
 * default, libsodium) reject them. OpenSSL does not; we do it for both providers.
 */
const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hexDecode);

/**
 * RFC 8032 §5.1.7 strict checks that need no curve arithmetic, applied by both providers before
 * verifying: correct lengths, S < L (§5.1.7 step 1, malleability), canonical encodings of A and R
 * (§5.1.3: y < p, and no "negative zero" x), and A not of small order. A `false` here is final;
 * `true` means the library still has to decode the points and check the equation.
 * (Byte comparisons in place, no copies or strings: this runs before every signature check, one
 * per message of a catch-up.)
 */
export function ed25519PassesStrictPrechecks(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (!lessThanLE(signature, 32, L_LE, 0xff)) return false;
  if (!isCanonicalPointEncoding(publicKey, 0) || !isCanonicalPointEncoding(signature, 0)) return false;
  return !isSmallOrderEncoding(publicKey);
}

/**
 * RFC 8032 §5.1.3, for the 32-byte point at `bytes[at…]`: y (its low 255 bits) < p, and the
 * sign bit may not be set when x = 0 (y = ±1).
 */
function isCanonicalPointEncoding(bytes: Uint8Array, at: number): boolean {
  if (!lessThanLE(bytes, at, P_LE, 0x7f)) return false;
  if (bytes[at + 31]! >> 7 === 1 && (isOneLE(bytes, at) || equalLE(bytes, at, P_MINUS_1_LE, 0x7f))) return false;
  return true;
}

function isSmallOrderEncoding(point: Uint8Array): boolean {
  for (const encoding of SMALL_ORDER_ENCODINGS) if (equalLE(point, 0, encoding, 0xff)) return true;
  return false;
}

function littleEndian(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

/**
 * a < b for the 32-byte little-endian number at `a[at…]` (its top byte masked with `topMask`)
 * and `b` (public values only: not constant-time).
 */
function lessThanLE(a: Uint8Array, at: number, b: Uint8Array, topMask: number): boolean {
  const top = a[at + 31]! & topMask;
  if (top !== b[31]!) return top < b[31]!;
  for (let i = 30; i >= 0; i--) {
    if (a[at + i]! !== b[i]!) return a[at + i]! < b[i]!;
  }
  return false;
}

/** a = b, as `lessThanLE` reads them. */
function equalLE(a: Uint8Array, at: number, b: Uint8Array, topMask: number): boolean {
  if ((a[at + 31]! & topMask) !== b[31]!) return false;
  for (let i = 0; i < 31; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

/** The 255-bit y at `a[at…]` (sign bit masked) is 1. */
function isOneLE(a: Uint8Array, at: number): boolean {
  if (a[at] !== 1 || (a[at + 31]! & 0x7f) !== 0) return false;
  for (let i = 1; i < 31; i++) if (a[at + i] !== 0) return false;
  return true;
}
