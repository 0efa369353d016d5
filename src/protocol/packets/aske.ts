/**
 * ASKE: session id and session signatures (mpENC §5.2.2; mpenc-wire.md "ASKE").
 * The session id binds the members and their fresh nonces; each member confirms it, with its
 * ephemeral signing key and nonce, by a signature made with its static identity key.
 */
import { concatBytes, latin1Encode } from '../bytes.js';
import { SESSION_SIGNATURE_CONTEXT } from '../codec/constants.js';
import { KEY_BYTES, SIGNATURE_BYTES } from '../codec/fields.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import { sessionId, type MemberId, type SessionId } from '../ids.js';
import type { RandomSource } from '../random.js';

/** mpenc-wire.md "ASKE": nonces are 32 random bytes. */
export const NONCE_BYTES = 32;

export function makeNonce(random: RandomSource): Uint8Array {
  return random(NONCE_BYTES);
}

/**
 * Session id = SHA-256(concat(member ids sorted) ‖ concat(nonces in that same order)).
 * `nonces[i]` belongs to `members[i]`.
 */
export async function makeSessionId(
  crypto: CryptoProvider,
  members: readonly MemberId[],
  nonces: readonly Uint8Array[],
): Promise<SessionId> {
  if (members.length !== nonces.length || members.length === 0) {
    throw new ProtocolError('bad-value', `${members.length} members but ${nonces.length} nonces`);
  }
  if (new Set(members).size !== members.length) throw new ProtocolError('bad-value', 'duplicate member');
  for (const n of nonces) checkLength(n, NONCE_BYTES, 'nonce');
  const order = members.map((_, i) => i).sort((a, b) => (members[a]! < members[b]! ? -1 : 1));
  const ids = order.map((i) => latin1Encode(members[i]!));
  const sortedNonces = order.map((i) => nonces[i]!);
  return sessionId(await crypto.sha256(concatBytes(...ids, ...sortedNonces)));
}

/** What one member's SESSION_SIGNATURE confirms. */
export interface SessionAck {
  readonly member: MemberId;
  /** The member's ephemeral ed25519 public signing key. */
  readonly ephemeralPubKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly sessionId: SessionId;
}

/** SHA-256("acksig" ‖ memberId ‖ ephemeralPub ‖ nonce ‖ sid): the message the static key signs. */
export async function sessionAckDigest(crypto: CryptoProvider, ack: SessionAck): Promise<Uint8Array> {
  checkLength(ack.ephemeralPubKey, KEY_BYTES, 'ephemeral public key');
  checkLength(ack.nonce, NONCE_BYTES, 'nonce');
  return crypto.sha256(
    concatBytes(latin1Encode(SESSION_SIGNATURE_CONTEXT), latin1Encode(ack.member), ack.ephemeralPubKey, ack.nonce, ack.sessionId),
  );
}

/** SESSION_SIGNATURE, made with the member's static identity key (32-byte ed25519 seed). */
export async function signSessionAck(crypto: CryptoProvider, staticSeed: Uint8Array, ack: SessionAck): Promise<Uint8Array> {
  return crypto.ed25519Sign(staticSeed, await sessionAckDigest(crypto, ack));
}

/** Verifies a SESSION_SIGNATURE with the member's static public key; false on any mismatch. */
export async function verifySessionAck(
  crypto: CryptoProvider,
  staticPubKey: Uint8Array,
  signature: Uint8Array,
  ack: SessionAck,
): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES) return false;
  return crypto.ed25519Verify(staticPubKey, await sessionAckDigest(crypto, ack), signature);
}

function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw new ProtocolError('bad-value', `${what} must be ${length} bytes, got ${bytes.length}`);
}
