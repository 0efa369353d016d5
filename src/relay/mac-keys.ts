/**
 * The relay's side of request MACs (src/shared/relay-mac.ts, src/relay/README.md
 * "Authentication"): its X25519 auth key, derived from the stored secret every node shares, and
 * the check of a MAC with a bounded cache of members' MAC keys.
 *
 * Cost on the bench machine: a check with the member's MAC key cached is one HMAC-SHA256 (3.5 µs
 * measured); a miss adds the Montgomery form of the member key (~30 µs) and one X25519 with its
 * key import (~50 µs, node:crypto): 93 µs measured, still less than the ~150 µs of an Ed25519
 * check, so a stream of bad MACs under fresh keys costs the relay no more than bad signatures.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import type { MemberKey } from '../shared/relay-api.js';
import { RELAY_MAC_BYTES, relayMacKey } from '../shared/relay-mac.js';
import { decodeBase64UrlExact } from './ids.js';

/**
 * HKDF salt of the relay auth key's secret (RFC 5869): domain separation from the VAPID key the
 * input comes from, and a version, so a new scheme derives a new key from the same stored secret.
 */
export const RELAY_AUTH_KEY_SALT = 'covey-relay-auth-key-v1';

/** X25519 secret and public key bytes (RFC 7748 §5). */
const X25519_KEY_BYTES = 32;
/** DER prefix of an X25519 PKCS#8 private key (RFC 8410 §7); the 32 secret bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** The ed25519 base field (RFC 8032 §5.1): p = 2^255 - 19. */
const Fp = ed25519.Point.Fp;

/** The relay's X25519 key pair: the public half is what `GET /v1/auth-key` serves. */
export interface RelayAuthKey {
  /** Base64url of the 32-byte X25519 public key. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

/**
 * The relay auth key of the relay whose stored VAPID private key (base64url, 32 bytes) is
 * `vapidPrivateKey`: secret = HKDF-SHA256(ikm = those bytes, salt = RELAY_AUTH_KEY_SALT, no info,
 * 32 bytes), used as an X25519 secret (clamped by X25519 itself). Every node on one store reads
 * the same VAPID key, so every node has the same auth key, across restarts too, with nothing new
 * stored. VAPID signs (ECDSA P-256), this does X25519: HKDF keeps the two keys independent.
 */
export function relayAuthKeyFrom(vapidPrivateKey: string): RelayAuthKey {
  const ikm = Buffer.from(vapidPrivateKey, 'base64url');
  if (ikm.length !== X25519_KEY_BYTES) throw new RangeError(`stored VAPID private key must be ${X25519_KEY_BYTES} bytes, got ${ikm.length}`);
  const secret = Buffer.from(hkdfSync('sha256', ikm, RELAY_AUTH_KEY_SALT, new Uint8Array(0), X25519_KEY_BYTES));
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  secret.fill(0);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('X25519 public key export gave no x');
  return { publicKey: jwk.x, privateKey };
}

/**
 * The Montgomery u of an ed25519 public key (RFC 7748 §4.1: u = (1 + y) / (1 - y) mod p), from
 * its y alone: the sign bit of x does not change u, so the point need not be decompressed
 * (noble's toMontgomery does, ~200 µs; this is ~30 µs). Undefined for y ≥ p (non-canonical) and
 * y = 1 (the identity, u at infinity); parseMemberKey refuses both already, this does not rely on it.
 */
export function montgomeryU(edKey: Uint8Array): Uint8Array | undefined {
  if (edKey.length !== X25519_KEY_BYTES) return undefined;
  let y = 0n;
  for (let i = X25519_KEY_BYTES - 1; i >= 0; i--) y = (y << 8n) | BigInt(i === X25519_KEY_BYTES - 1 ? (edKey[i] ?? 0) & 0x7f : (edKey[i] ?? 0));
  if (y >= Fp.ORDER || y === 1n) return undefined;
  return Fp.toBytes(Fp.div(Fp.add(Fp.ONE, y), Fp.sub(Fp.ONE, y)));
}

/** True when every byte is zero (constant time over the bytes). */
function allZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const byte of bytes) acc |= byte;
  return acc === 0;
}

/**
 * Checks request MACs for one relay auth key. Members' MAC keys are cached (most recently
 * verified last, the oldest evicted past `maxCachedKeys`), and a key enters the cache only after
 * a MAC under it verified: MACs under random keys cost their sender a miss each but cannot push
 * real members out.
 *
 * Timing: a hit is ~25x faster than a miss, and the cache is looked up by the member key alone,
 * which co-members (present and past) know. Were a wrong MAC under a cached key refused at hit
 * speed, a removed member could tell, by sending garbage under a former co-member's key, whether
 * that key still authenticates at this node. So a refusal under a cached key derives the key
 * again (the miss's work) before answering: every refusal costs a miss whatever the cache holds,
 * and only an accepted MAC, which needs the member's secret, is fast.
 */
export class MacChecker {
  private readonly keys = new Map<MemberKey, Buffer>();
  private derived = 0;

  constructor(
    private readonly authKey: RelayAuthKey,
    private readonly maxCachedKeys: number,
  ) {
    if (!Number.isSafeInteger(maxCachedKeys) || maxCachedKeys < 1) throw new RangeError(`maxCachedKeys must be a positive integer, got ${maxCachedKeys}`);
  }

  /** The relay auth key's public half, base64url (RelayAuthKeyResponse.key). */
  get publicKey(): string {
    return this.authKey.publicKey;
  }

  /** Members' MAC keys cached now (tests). */
  get cachedKeys(): number {
    return this.keys.size;
  }

  /** MAC keys derived so far, cached or not (tests: a refusal costs a derivation). */
  get derivations(): number {
    return this.derived;
  }

  /** Whether `key`'s MAC key is cached (tests). */
  isCached(key: MemberKey): boolean {
    return this.keys.has(key);
  }

  /**
   * True when `mac` is HMAC-SHA256 of `message` under `key`'s MAC key at this relay. Never
   * throws: a malformed or small-order key is false like a wrong MAC.
   */
  verify(key: MemberKey, message: Uint8Array, mac: Uint8Array): boolean {
    if (mac.length !== RELAY_MAC_BYTES) return false;
    const cached = this.keys.get(key);
    const macKey = cached ?? this.derive(key);
    if (macKey === undefined) return false;
    const expected = createHmac('sha256', macKey).update(message).digest();
    if (!timingSafeEqual(expected, mac)) {
      // A refusal takes a miss's time, cached or not (see the class comment).
      if (cached !== undefined) this.derive(key);
      return false;
    }
    // Verified: (re)insert as the most recent, evicting the oldest past the bound.
    if (cached !== undefined) this.keys.delete(key);
    else if (this.keys.size >= this.maxCachedKeys) {
      const oldest = this.keys.keys().next();
      if (oldest.done !== true) this.keys.delete(oldest.value);
    }
    this.keys.set(key, macKey);
    return true;
  }

  /** `key`'s MAC key (relay-mac.ts relayMacKey), or undefined when no X25519 with it is safe. */
  private derive(key: MemberKey): Buffer | undefined {
    const edKey = decodeBase64UrlExact(key, X25519_KEY_BYTES);
    const u = edKey === undefined ? undefined : montgomeryU(edKey);
    if (u === undefined) return undefined;
    this.derived++;
    let shared: Buffer;
    try {
      const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(u).toString('base64url') }, format: 'jwk' });
      shared = diffieHellman({ privateKey: this.authKey.privateKey, publicKey });
    } catch {
      // OpenSSL refuses an all-zero output (a small-order u: RFC 7748 §6.1).
      return undefined;
    }
    // RFC 7748 §6.1: a small-order member key gives an all-zero secret anyone could compute.
    if (allZero(shared)) return undefined;
    const macKey = Buffer.from(relayMacKey(shared, key, this.authKey.publicKey));
    shared.fill(0);
    return macKey;
  }
}
