/**
 * Request MACs: a member's request proven with an HMAC instead of an Ed25519 signature.
 *
 * Why: the relay's Ed25519 check is ~150 µs of CPU per post on the 2-core machine we measure on,
 * more than the rest of the post path together (src/relay/README.md "Why the ramp and the CPU
 * estimate disagreed"). An HMAC-SHA256 over the same signing text costs ~4 µs.
 *
 * The key is static Diffie-Hellman between the member's channel key and the relay's auth key, so
 * no session state is needed and every relay node (they share the relay's stored secret) checks
 * every request:
 *
 *   shared = X25519(member's key as X25519, relay auth key)      (RFC 7748; RFC 8032 §5.1.5 seed)
 *   macKey = HKDF-SHA256(ikm = shared, salt = RELAY_MAC_SALT,
 *                        info = "<memberKey>\n<relayAuthKey>", 32 bytes)          (RFC 5869)
 *   mac    = HMAC-SHA256(macKey, UTF-8 of relaySigningText(...))                  (RFC 2104)
 *
 * The member's X25519 secret is its Ed25519 seed's clamped SHA-512 half (the scalar Ed25519 signs
 * with) and its X25519 public key the Montgomery form of its Ed25519 key (u = (1 + y) / (1 - y)):
 * the relay needs nothing registered beyond the member key it already knows. What it proves: the
 * sender holds the member's secret or the relay's (a relay can forge requests to itself, which it
 * could always act out anyway). Only the relay can check it, which is all a request needs. Time
 * window and single-use nonce apply exactly as for a signature.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { MemberKey } from './relay-api.js';

/** HKDF salt: domain separation from every other key derived from the same secrets. */
export const RELAY_MAC_SALT = 'covey-relay-mac-v1';

/** Bytes of the HMAC key and of the MAC (HMAC-SHA256, untruncated). */
export const RELAY_MAC_BYTES = 32;

/** GET this path (unauthenticated) for the relay's auth key: `RelayAuthKeyResponse`. */
export const RELAY_AUTH_KEY_PATH = '/v1/auth-key';

export interface RelayAuthKeyResponse {
  /** The relay's X25519 public key, base64url (32 bytes, 43 characters). */
  readonly key: string;
}

/** The HMAC key of `memberKey` at the relay whose auth key is `relayAuthKey`, from their X25519 output. */
export function relayMacKey(shared: Uint8Array, memberKey: MemberKey, relayAuthKey: string): Uint8Array {
  const encoder = new TextEncoder();
  return hkdf(sha256, shared, encoder.encode(RELAY_MAC_SALT), encoder.encode(`${memberKey}\n${relayAuthKey}`), RELAY_MAC_BYTES);
}
