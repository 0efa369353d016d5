/**
 * Ids, tokens and their validation. Channel ids and capability tokens are random bytes from the
 * OS (node:crypto), base64url; the relay stores tokens only as SHA-256 (store/types.ts).
 * Parsers accept only the canonical base64url form, so one key or id has exactly one spelling.
 */
import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BlobHash, CapabilityToken, ChannelId, MemberKey } from '../shared/relay-api.js';
import { RELAY_MAC_BYTES } from '../shared/relay-mac.js';
import type { CapabilityHash } from './store/types.js';

/** 128 bits: unguessable, and short enough for links (DESIGN.md §3). */
const CHANNEL_ID_BYTES = 16;
/** 256 bits: a bearer secret. */
const TOKEN_BYTES = 32;
const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/**
 * Whether `text` is canonical unpadded base64url of exactly `length` bytes, without decoding it:
 * the length that many bytes encode to, the alphabet, and zero spare bits in the last character
 * (`isCanonicalBase64Url`): then decoding gives `length` bytes that encode back to `text`.
 */
function isBase64UrlOf(text: unknown, length: number): text is string {
  return typeof text === 'string' && text.length === Math.ceil((length * 4) / 3) && BASE64URL.test(text) && isCanonicalBase64Url(text);
}

/** Decodes canonical unpadded base64url of exactly `length` bytes, else undefined. */
export function decodeBase64UrlExact(text: unknown, length: number): Buffer | undefined {
  return isBase64UrlOf(text, length) ? Buffer.from(text, 'base64url') : undefined;
}

/** The 6-bit value of a base64url character (the caller checked the alphabet). */
function base64UrlValue(code: number): number {
  if (code >= 65 && code <= 90) return code - 65; // A-Z
  if (code >= 97 && code <= 122) return code - 71; // a-z
  if (code >= 48 && code <= 57) return code + 4; // 0-9
  return code === 45 ? 62 : 63; // '-' or '_'
}

/**
 * Whether unpadded base64url text of the base64url alphabet is canonical (decoding and encoding
 * again gives the same text), without decoding it: its length is not 1 mod 4, and the bits of the
 * last character that encode nothing are zero. A packet is checked on every post; this allocates
 * nothing.
 */
export function isCanonicalBase64Url(text: string): boolean {
  const tail = text.length % 4;
  if (tail === 1) return false;
  if (tail === 0) return true;
  const last = base64UrlValue(text.charCodeAt(text.length - 1));
  return tail === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

export function newChannelId(): ChannelId {
  return randomBytes(CHANNEL_ID_BYTES).toString('base64url') as ChannelId;
}

export function newToken(): CapabilityToken {
  return randomBytes(TOKEN_BYTES).toString('base64url') as CapabilityToken;
}

export function parseChannelId(text: unknown): ChannelId | undefined {
  return isBase64UrlOf(text, CHANNEL_ID_BYTES) ? (text as ChannelId) : undefined;
}

/**
 * Encodings of the ed25519 points of small order (libsodium's blocklist, sign bit ignored): with
 * such a key, "signatures" that verify can be made without any private key, so a member key
 * must not be one (the signature would prove nothing).
 */
const SMALL_ORDER_KEYS = [
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0100000000000000000000000000000000000000000000000000000000000000', // order 1 (identity)
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2 (y = p - 1)
].map((hex) => Buffer.from(hex, 'hex'));

/** True for a key encoding a small-order point, or a y coordinate >= p (non-canonical). */
function isWeakEd25519Key(key: Buffer): boolean {
  const masked = Buffer.from(key);
  masked[31] = (masked[31] ?? 0) & 0x7f;
  if (SMALL_ORDER_KEYS.some((weak) => weak.equals(masked))) return true;
  // y >= p = 2^255 - 19: top byte 0x7f, bytes 30..1 all 0xff, byte 0 >= 0xed.
  return masked[31] === 0x7f && masked.subarray(1, 31).every((b) => b === 0xff) && (masked[0] ?? 0) >= 0xed;
}

/** Member keys that passed `parseMemberKey` lately (a key is checked on every request it signs); bounded, oldest first out. */
const acceptedKeys = new Set<string>();
const ACCEPTED_KEYS_MAX = 10_000;

export function parseMemberKey(text: unknown): MemberKey | undefined {
  if (typeof text === 'string' && acceptedKeys.has(text)) return text as MemberKey;
  const bytes = decodeBase64UrlExact(text, ED25519_PUBLIC_KEY_BYTES);
  if (bytes === undefined || isWeakEd25519Key(bytes)) return undefined;
  if (acceptedKeys.size >= ACCEPTED_KEYS_MAX) {
    const oldest = acceptedKeys.values().next();
    if (oldest.done !== true) acceptedKeys.delete(oldest.value);
  }
  acceptedKeys.add(text as string);
  return text as MemberKey;
}

export function parseSignature(text: unknown): Buffer | undefined {
  return decodeBase64UrlExact(text, ED25519_SIGNATURE_BYTES);
}

/** A request MAC (src/shared/relay-mac.ts): HMAC-SHA256, 32 bytes, canonical base64url. */
export function parseMac(text: unknown): Buffer | undefined {
  return decodeBase64UrlExact(text, RELAY_MAC_BYTES);
}

export function parseToken(text: unknown): CapabilityToken | undefined {
  return isBase64UrlOf(text, TOKEN_BYTES) ? (text as CapabilityToken) : undefined;
}

export function parseBlobHash(text: unknown): BlobHash | undefined {
  return typeof text === 'string' && HEX_SHA256.test(text) ? (text as BlobHash) : undefined;
}

/**
 * The stored form of a token. An invalid or missing token hashes a fixed dummy instead, so the
 * lookup that follows does the same work whether or not the token was well formed (issue 5 §3).
 */
export function hashToken(token: string | undefined): CapabilityHash {
  return createHash('sha256').update(token ?? 'covey-no-token', 'utf8').digest('hex') as CapabilityHash;
}

export function sha256Hex(bytes: Uint8Array): BlobHash {
  return createHash('sha256').update(bytes).digest('hex') as BlobHash;
}

/** SHA-256 in base64url; one-shot (crypto.hash: no Hash object per call, this runs on every signed request). */
export function sha256Base64Url(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'base64url');
}

/** Constant-time equality of two ASCII strings (different lengths: false, after equal work). */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}
