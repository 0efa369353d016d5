/**
 * Covey's v2 greeting wire rules (closing mpENC §6.1.1), on top of the v1 packet functions in
 * src/protocol/packets:
 *
 * - Authenticated metadata: a v2 SESSION_SIGNATURE also covers a binding of the operation: its
 *   OP_REF (below), which hashes the initial packet (so PREV_PF, CHAIN_HASH, LATEST_PM) and the
 *   chain before it; the initiator's own signature inside the initial packet binds `metaHash` =
 *   SHA-256(PREV_PF ‖ CHAIN_HASH ‖ LATEST_PM…). Every member's static key thus vouches for the
 *   parent and chain it accepted the operation on (v1 leaves them unauthenticated: a joiner
 *   could be fed a forged history).
 * - Chain-hash confirmation: every non-initial v2 packet carries OP_REF, the chain hash right
 *   after the operation's initial packet, under the sender's ephemeral signature. A member shown
 *   a different order has a different chain hash, so its packets name an operation the others
 *   never accepted, and the first one they see raises the alarm.
 * - ABORT_DOWN: an explicit abort of the ongoing operation, resolved by ServerOrder like a final
 *   packet; signed with the sender's STATIC key ("abortmsgsig" ‖ S), since a member may abort
 *   before it has an authenticated ephemeral key in this operation.
 */
import { concatBytes, latin1Encode } from '../bytes.js';
import { GreetType, PROTOCOL_VERSION_2, SESSION_SIGNATURE_CONTEXT } from '../codec/constants.js';
import { encodeGreetingRegion, type GreetingFields, type GreetingMetadata, type GreetingPacket } from '../codec/greeting.js';
import { encodePacket } from '../codec/packet.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { ChainHash, MemberId } from '../ids.js';
import { sessionAckDigest, signSessionAck, verifySessionAck, type SessionAck } from '../packets/aske.js';
import { signGreeting } from '../packets/greeting-signature.js';

/** Why an ABORT_DOWN packet aborts. 'security' and 'inconsistent' raise a warning at everyone. */
export const AbortReason = {
  /** The operation did not finish within OPERATION_TIMEOUT_MS. */
  TIMEOUT: 1,
  /** The user cancelled it. */
  USER: 2,
  /** The sender saw a packet of this operation fail verification. */
  SECURITY: 3,
  /** The sender's chain of operations disagrees with this operation's (a forked order). */
  INCONSISTENT: 4,
} as const;
export type AbortReason = (typeof AbortReason)[keyof typeof AbortReason];

export function isAbortReason(value: number): value is AbortReason {
  return value >= 1 && value <= 4;
}

export function isAlarmingAbort(reason: AbortReason): boolean {
  return reason === AbortReason.SECURITY || reason === AbortReason.INCONSISTENT;
}

const ABORT_CONTEXT = latin1Encode('abortmsgsig');
/** v2 session signatures use their own context, so a v1 signature never verifies as v2. */
const SESSION_SIGNATURE_V2_CONTEXT = latin1Encode(SESSION_SIGNATURE_CONTEXT + '2');

/** SHA-256(PREV_PF ‖ CHAIN_HASH ‖ LATEST_PM…): the initial packet's metadata, to sign. */
export async function metadataHash(crypto: CryptoProvider, metadata: GreetingMetadata): Promise<Uint8Array> {
  return crypto.sha256(concatBytes(metadata.prevPf, metadata.chainHash, ...metadata.latestPms));
}

/** v1: SHA-256("acksig" ‖ …) as mpenc_js; v2: SHA-256("acksig2" ‖ v1 digest ‖ binding). */
async function ackDigest(crypto: CryptoProvider, ack: SessionAck, binding: Uint8Array | null): Promise<Uint8Array> {
  const v1 = await sessionAckDigest(crypto, ack);
  return binding === null ? v1 : crypto.sha256(concatBytes(SESSION_SIGNATURE_V2_CONTEXT, v1, binding));
}

export async function signAck(crypto: CryptoProvider, staticSeed: Uint8Array, ack: SessionAck, binding: Uint8Array | null): Promise<Uint8Array> {
  if (binding === null) return signSessionAck(crypto, staticSeed, ack);
  return crypto.ed25519Sign(staticSeed, await ackDigest(crypto, ack, binding));
}

export async function verifyAck(crypto: CryptoProvider, staticPub: Uint8Array, signature: Uint8Array, ack: SessionAck, binding: Uint8Array | null): Promise<boolean> {
  if (binding === null) return verifySessionAck(crypto, staticPub, signature, ack);
  if (signature.length !== 64) return false;
  return crypto.ed25519Verify(staticPub, await ackDigest(crypto, ack, binding), signature);
}

/** Signs and encodes a greeting with the sender's ephemeral key: the packet text to post. */
export async function greetingText(crypto: CryptoProvider, ephemeralSeed: Uint8Array, fields: GreetingFields): Promise<string> {
  return encodePacket(await signGreeting(crypto, ephemeralSeed, fields));
}

/** An ABORT_DOWN packet for operation `opRef`, signed with the sender's static key. */
export async function abortText(crypto: CryptoProvider, staticSeed: Uint8Array, source: MemberId, opRef: ChainHash, reason: AbortReason): Promise<string> {
  const fields: GreetingFields = {
    version: PROTOCOL_VERSION_2,
    greetType: GreetType.ABORT_DOWN,
    source,
    dest: null,
    members: [],
    intKeys: [],
    nonces: [],
    pubKeys: [],
    opRef,
    abortReason: reason,
  };
  const signed = encodeGreetingRegion(fields);
  const signature = await crypto.ed25519Sign(staticSeed, concatBytes(ABORT_CONTEXT, signed));
  return encodePacket({ ...fields, kind: 'greeting', signature, signed });
}

export async function verifyAbort(crypto: CryptoProvider, packet: GreetingPacket, staticPub: Uint8Array): Promise<boolean> {
  return crypto.ed25519Verify(staticPub, concatBytes(ABORT_CONTEXT, packet.signed), packet.signature);
}
