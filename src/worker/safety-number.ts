/**
 * Safety numbers (issue 10 §5), after Signal's numeric fingerprints: 60 digits that two people
 * compare to check they hold each other's real identity keys. Derivation (README "Safety
 * numbers"), the same on both sides:
 *
 *   half(ik) = first 30 bytes of H^5200, where H^0 = SHA-256("covey-safety-v1" ‖ ik) and
 *              H^(i+1) = SHA-256(H^i ‖ ik)
 *   each 5-byte chunk of a half, read big-endian, mod 100,000 → 5 digits (6 groups per half)
 *   safety number = half(lower key) ‖ half(higher key), keys compared byte by byte
 *
 * 5,200 iterations (Signal's count) make a targeted second key with 100 bits of matching digits
 * cost 2^100 × 5,200 hashes.
 */
import { base64UrlDecode, concatBytes, utf8Encode } from '../protocol/bytes.js';
import { sha256Now } from '../protocol/crypto/noble.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';

export const SAFETY_ITERATIONS = 5_200;
const GROUPS_PER_HALF = 6;
const CHUNK_BYTES = 5;
const cache = new Map<string, string[]>();
/** Halves kept (one per contact plus ours); beyond it the oldest is recomputed when needed. */
const MAX_CACHED_HALVES = 1_000;

/** Six 5-digit groups for one identity key (base64url). */
export async function safetyHalf(crypto: CryptoProvider, ik: string): Promise<string[]> {
  const hit = cache.get(ik);
  if (hit !== undefined) return hit;
  const key = base64UrlDecode(ik);
  let h = await crypto.sha256(concatBytes(utf8Encode('covey-safety-v1'), key));
  // H^(i+1) = SHA-256(H^i ‖ ik): 32 + |ik| bytes, below every provider's WebCrypto threshold,
  // so noble's SHA-256 synchronously (the same function) instead of a promise per iteration:
  // 5,200 awaits per key made the first app and contacts views cost ~0.1 s of a catch-up.
  const input = new Uint8Array(h.length + key.length);
  input.set(key, h.length);
  for (let i = 0; i < SAFETY_ITERATIONS; i++) {
    input.set(h);
    h = sha256Now(input);
  }
  input.fill(0);
  const groups: string[] = [];
  for (let g = 0; g < GROUPS_PER_HALF; g++) {
    let n = 0;
    for (let b = 0; b < CHUNK_BYTES; b++) n = n * 256 + h[g * CHUNK_BYTES + b]!;
    groups.push(String(n % 100_000).padStart(5, '0'));
  }
  if (cache.size >= MAX_CACHED_HALVES) cache.delete(cache.keys().next().value!);
  cache.set(ik, groups);
  return groups;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Whether `text` has the form of a fingerprint (six groups of five digits), e.g. one read back from the store. */
export function isFingerprint(text: unknown): text is string {
  return typeof text === 'string' && /^[0-9]{5}( [0-9]{5}){5}$/.test(text);
}

/** The 60-digit safety number of two identity keys, as 12 space-separated groups of 5. */
export async function safetyNumber(crypto: CryptoProvider, ikA: string, ikB: string): Promise<string> {
  const [first, second] = compareBytes(base64UrlDecode(ikA), base64UrlDecode(ikB)) <= 0 ? [ikA, ikB] : [ikB, ikA];
  return [...(await safetyHalf(crypto, first)), ...(await safetyHalf(crypto, second))].join(' ');
}

/** One's own half, shown as "your fingerprint". */
export async function fingerprint(crypto: CryptoProvider, ik: string): Promise<string> {
  return (await safetyHalf(crypto, ik)).join(' ');
}
