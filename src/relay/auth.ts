/**
 * Request proofs (issue 5 §3, README "Authentication"): every member request is proven by the
 * member's per-channel ed25519 key over method, path, body hash, nonce and time: an Ed25519
 * signature, or a request MAC (src/shared/relay-mac.ts, checked by ./mac-keys.ts), exactly one
 * of the two. The proof is verified FIRST and always, before anything looks at the channel, so the
 * work done is the same whether or not the channel exists or the key is a member; only then the
 * time window and the nonce (replay) are checked, the same for both proofs (one nonce store: a
 * nonce used under one proof is used for the other too). node:crypto's ed25519 is used because
 * it is fast (OpenSSL); MACs are cheaper still (~4 µs) and always checked on the event loop.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { relaySigningText, type ChannelId, type MemberKey } from '../shared/relay-api.js';
import { RelayError } from './http/errors.js';
import { decodeBase64UrlExact, parseMac, parseMemberKey, parseSignature, sha256Base64Url } from './ids.js';
import type { MacChecker } from './mac-keys.js';
import type { SignatureVerifier } from './signature-pool.js';
import type { NonceUse, RelayStore } from './store/types.js';

/** DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410 §4); the 32 key bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** Parsed public keys kept (parsing costs more than a lookup); bounded, oldest evicted first. */
const KEY_CACHE_MAX = 10_000;
/** Nonce length bounds, characters of base64url: at least 96 bits, at most a small header. */
const NONCE_MIN_CHARS = 16;
const NONCE_MAX_CHARS = 64;
const NONCE_PATTERN = /^[A-Za-z0-9_-]+$/;
/** A decimal time in ms: at most 15 digits (year 33658). */
const TIME_PATTERN = /^\d{1,15}$/;

const keyCache = new Map<string, KeyObject | null>();

function publicKeyObject(key: MemberKey): KeyObject | null {
  const cached = keyCache.get(key);
  if (cached !== undefined) return cached;
  const raw = decodeBase64UrlExact(key, 32);
  let object: KeyObject | null = null;
  if (raw !== undefined) {
    try {
      object = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    } catch {
      object = null;
    }
  }
  if (keyCache.size >= KEY_CACHE_MAX) {
    const oldest = keyCache.keys().next();
    if (oldest.done !== true) keyCache.delete(oldest.value);
  }
  keyCache.set(key, object);
  return object;
}

/**
 * The relay's default (RELAY_VERIFY_THREADS unset): a check runs right here on the event loop when
 * the relay has nothing else to do, and on `offLoop` (a worker thread, ./signature-pool.ts) otherwise.
 *
 * Off the loop a check costs the event loop a few µs instead of about 150 µs, which is what
 * lets one loop take more posts a second under load. But the trip there and back wakes a thread
 * and then the loop again: on an idle relay that adds more than the check itself (a lone
 * post on the 2-core bench machine: 0.3 ms quiet for the wait on the pool, over 3 ms at p90 when
 * the cores are busy with other processes, against about 0.15 ms inline; src/relay/README.md
 * "Latency of a post"). So inline only when the loop has nothing else waiting: `busy()` says
 * whether other requests are being served, no other check is on the pool, and at most one check
 * per event-loop turn runs inline (a burst of requests read in one turn goes to the pool after
 * its first). Under load nothing changes. The answers are the same either way (verifyEd25519).
 */
export function idleInlineVerifier(offLoop: SignatureVerifier, busy: () => boolean): SignatureVerifier {
  let onPool = 0;
  let inlineThisTurn = false;
  const endTurn = (): void => {
    inlineThisTurn = false;
  };
  return {
    verify(key, message, signature) {
      if (onPool === 0 && !inlineThisTurn && !busy()) {
        inlineThisTurn = true;
        setImmediate(endTurn);
        return Promise.resolve(verifyEd25519(key, message, signature));
      }
      onPool += 1;
      return offLoop.verify(key, message, signature).finally(() => {
        onPool -= 1;
      });
    },
    close: () => offLoop.close(),
  };
}

/** True when `signature` is a valid ed25519 signature of `message` by `key`. Never throws. */
export function verifyEd25519(key: MemberKey, message: Uint8Array, signature: Uint8Array): boolean {
  const object = publicKeyObject(key);
  if (object === null || signature.length !== 64) return false;
  try {
    return verify(null, message, object, signature);
  } catch {
    return false;
  }
}

/** Where verifySigned counts the proofs it checked. */
export interface ProofTally {
  recordProof(proof: 'mac' | 'signature', valid: boolean): void;
}

/** A request's proof as sent (headers or frame fields): `signature` or `mac`, exactly one. */
export interface SignedParts {
  readonly key: unknown;
  readonly nonce: unknown;
  readonly time: unknown;
  readonly signature: unknown;
  readonly mac: unknown;
}

export interface ClockCheck {
  readonly nowMs: number;
  readonly maxClockSkewMs: number;
  /** Where the Ed25519 check runs (./signature-pool.ts); inline on this thread when absent. */
  readonly verifier?: SignatureVerifier;
  /** Checks request MACs under this relay's auth key (./mac-keys.ts). */
  readonly macs: MacChecker;
  /** Counts each proof checked by kind and verdict (the relay's /metrics: how many clients MAC). */
  readonly proofs?: ProofTally;
  /**
   * How old a signature may be, when a route allows more than the clock skew (deferred posts,
   * README "Deferred posts"); the nonce is then remembered that long. Default: maxClockSkewMs.
   */
  readonly maxAgeMs?: number;
}

export interface AuthCheck extends ClockCheck {
  readonly store: RelayStore;
  /** The channel the request is about (the store may keep its nonce with the channel). */
  readonly channelId?: ChannelId;
}

/** The proof of a request: a well-formed signature or MAC, exactly one; else undefined. */
function parseProof(parts: SignedParts): { readonly signature: Buffer } | { readonly mac: Buffer } | undefined {
  if (parts.signature !== undefined && parts.mac === undefined) {
    const signature = parseSignature(parts.signature);
    return signature === undefined ? undefined : { signature };
  }
  if (parts.mac !== undefined && parts.signature === undefined) {
    const mac = parseMac(parts.mac);
    return mac === undefined ? undefined : { mac };
  }
  return undefined;
}

/**
 * Verifies a signed (or MAC'd) request or subscription: the proof, then the time window. Returns
 * the signer's key and the nonce to record (the caller must record it before acting:
 * `authenticate` does, a post records it in its own append). Every failing proof, signature or
 * MAC, malformed or wrong or both sent, is the same 'bad-signature'. Throws RelayError
 * 'bad-signature' | 'stale-timestamp'.
 */
export async function verifySigned(
  parts: SignedParts,
  method: string,
  pathWithQuery: string,
  body: Uint8Array,
  check: ClockCheck,
): Promise<{ readonly key: MemberKey; readonly nonce: NonceUse }> {
  const key = parseMemberKey(parts.key);
  const proof = parseProof(parts);
  const nonce = parts.nonce;
  const timeText = typeof parts.time === 'number' ? String(parts.time) : parts.time;
  if (
    key === undefined ||
    proof === undefined ||
    typeof nonce !== 'string' ||
    nonce.length < NONCE_MIN_CHARS ||
    nonce.length > NONCE_MAX_CHARS ||
    !NONCE_PATTERN.test(nonce) ||
    typeof timeText !== 'string' ||
    !TIME_PATTERN.test(timeText)
  ) {
    throw new RelayError('bad-signature', 'missing or malformed signature headers');
  }
  const timeMs = Number(timeText);
  const message = Buffer.from(relaySigningText(method, pathWithQuery, sha256Base64Url(body), nonce, timeMs), 'utf8');
  const valid =
    'mac' in proof
      ? check.macs.verify(key, message, proof.mac)
      : check.verifier === undefined
        ? verifyEd25519(key, message, proof.signature)
        : await check.verifier.verify(key, message, proof.signature);
  check.proofs?.recordProof('mac' in proof ? 'mac' : 'signature', valid);
  if (!valid) {
    throw new RelayError('bad-signature', 'signature does not verify');
  }
  const maxAgeMs = Math.max(check.maxAgeMs ?? check.maxClockSkewMs, check.maxClockSkewMs);
  if (timeMs - check.nowMs > check.maxClockSkewMs || check.nowMs - timeMs > maxAgeMs) {
    throw new RelayError('stale-timestamp', 'request time is too far from the relay clock');
  }
  // The nonce is remembered until no request carrying it could pass the time check again.
  return { key, nonce: { key, nonce, expiresAtMs: timeMs + maxAgeMs + 1 } };
}

/**
 * Verifies a signed request or subscription and consumes its nonce. Returns the signer's key;
 * throws RelayError 'bad-signature' | 'stale-timestamp' | 'replayed-nonce'.
 */
export async function authenticate(
  parts: SignedParts,
  method: string,
  pathWithQuery: string,
  body: Uint8Array,
  check: AuthCheck,
): Promise<MemberKey> {
  const { key, nonce } = await verifySigned(parts, method, pathWithQuery, body, check);
  if (!(await check.store.useNonce(nonce.key, nonce.nonce, nonce.expiresAtMs, check.channelId))) {
    throw new RelayError('replayed-nonce', 'this nonce was already used');
  }
  return key;
}
