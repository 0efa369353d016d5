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
 *
 * Asynchronous groups (shared/spec/async-groups.md; src/protocol/README.md has the argument):
 * - Contributor binding (rule 2): the packets of the members who contribute to an operation
 *   (the initiator, and each newcomer in turn) carry a MESSAGE_SIGNATURE made with the sender's
 *   STATIC key over "coveygreet2" ‖ S. S holds OP_REF (the initial packet: PREV_PF, CHAIN_HASH
 *   and LATEST_PM, whose hash OP_REF covers), the sender's ephemeral key and nonce in its slot,
 *   and every other byte of the packet, so the signature binds the contribution to the sender.
 *   These packets carry no SESSION_SIGNATURE: the static signature is that binding.
 * - Session id (rule 3): SHA-256("covey sid v2" ‖ u16 n ‖ (u8 len ‖ id)×n ‖ nonce×n ‖ OP_REF),
 *   members sorted, every initiator's nonce fresh (refresh included).
 * - Key confirmation (rule 4): the final packet carries HMAC(K, …) with K = HKDF(secret,
 *   "covey key confirmation"), over the sid (over H(sid input) ‖ metadata hash when the final
 *   packet is the initial one, whose OP_REF it cannot know); a confirmation carries the
 *   confirmer's HMAC(K, "covey confirm v2" ‖ member ‖ sid).
 * - Confirmations by reference (rule 5): a member that contributed nothing confirms later with a
 *   small packet naming the operation (OP_REF), signed with its ephemeral key (authenticated in an
 *   earlier subsession), with its key confirmation and its last word in its previous subsession
 *   (FIN_PM); no member or nonce lists.
 * - Key renewal (issue 9 §3, deniability): the confirmation may carry one PUB_KEY, the member's
 *   fresh signing key for the subsession it confirms; its KEY_CONFIRMATION then also binds that
 *   key. Its presence is the version flag of this change: a confirmation without it renews
 *   nothing (as before), and v1 (mpenc_js) is untouched. Data of the member in that subsession
 *   is signed with the new key (rule 5 holds it back until the confirmation), so its old key can
 *   be published once the subsessions it signed in are over.
 * - REJOIN_DOWN (rule 11): a member that was away longer than the relay keeps events asks, with
 *   its static key, to be excluded and included again; a newcomer that was asleep says, the same
 *   way, that it is back (rule 10). Its OP_REF field holds a fresh random value.
 */
import { concatBytes, latin1Encode } from '../bytes.js';
import { CONTRIBUTOR_SIGNATURE_CONTEXT, GreetType, PROTOCOL_VERSION_2, SESSION_SIGNATURE_CONTEXT } from '../codec/constants.js';
import { encodeGreetingRegion, type GreetingFields, type GreetingMetadata, type GreetingPacket } from '../codec/greeting.js';
import { encodePacket } from '../codec/packet.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import { sessionId, type ChainHash, type MemberId, type SessionId } from '../ids.js';
import { deriveGroupKey } from '../packets/group-key.js';
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
  /**
   * The initiator's own include was refused by the relay's order (made from a stale view): its
   * newcomers, who cannot tell, learn that it is void (issue 8; rule 8's "decided by the order").
   */
  REFUSED: 5,
} as const;
export type AbortReason = (typeof AbortReason)[keyof typeof AbortReason];

export function isAbortReason(value: number): value is AbortReason {
  return value >= 1 && value <= 5;
}

export function isAlarmingAbort(reason: AbortReason): boolean {
  return reason === AbortReason.SECURITY || reason === AbortReason.INCONSISTENT;
}

const ABORT_CONTEXT = latin1Encode('abortmsgsig');
const REJOIN_CONTEXT = latin1Encode('rejoinmsgsig');
const CONTRIBUTOR_CONTEXT = latin1Encode(CONTRIBUTOR_SIGNATURE_CONTEXT);
const SID_V2_CONTEXT = latin1Encode('covey sid v2');
const CONFIRM_KEY_INFO = latin1Encode('covey key confirmation');
const FINAL_MAC_CONTEXT = latin1Encode('covey final v2');
const MEMBER_MAC_CONTEXT = latin1Encode('covey confirm v2');
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

/**
 * A greeting signed with the sender's static key under its own context (abort, contributor,
 * rejoin): the context keeps one kind's signature from standing for another's.
 */
async function staticSigned(crypto: CryptoProvider, staticSeed: Uint8Array, context: Uint8Array, fields: GreetingFields): Promise<string> {
  const signed = encodeGreetingRegion(fields);
  const signature = await crypto.ed25519Sign(staticSeed, concatBytes(context, signed));
  return encodePacket({ ...fields, kind: 'greeting', signature, signed });
}

function staticSignatureValid(crypto: CryptoProvider, context: Uint8Array, packet: GreetingPacket, staticPub: Uint8Array): Promise<boolean> {
  return crypto.ed25519Verify(staticPub, concatBytes(context, packet.signed), packet.signature);
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
  return staticSigned(crypto, staticSeed, ABORT_CONTEXT, fields);
}

export async function verifyAbort(crypto: CryptoProvider, packet: GreetingPacket, staticPub: Uint8Array): Promise<boolean> {
  return staticSignatureValid(crypto, ABORT_CONTEXT, packet, staticPub);
}

// ---------------------------------------------------------------------------------------------
// Asynchronous groups (async-groups rules 2, 3, 4, 5, 11)
// ---------------------------------------------------------------------------------------------

/**
 * u16 n ‖ (u8 len ‖ id) for each member in sorted order ‖ their nonces in the same order: the
 * members and nonces of a subsession, each id length-prefixed, so that no two member lists
 * give the same bytes (v1 joins ids without lengths: ["ab","c"] = ["a","bc"]).
 */
export function sessionIdInput(members: readonly MemberId[], nonces: readonly Uint8Array[]): Uint8Array {
  if (members.length !== nonces.length || members.length === 0) {
    throw new ProtocolError('bad-value', `${members.length} members but ${nonces.length} nonces`);
  }
  if (new Set(members).size !== members.length) throw new ProtocolError('bad-value', 'duplicate member');
  const order = members.map((_, i) => i).sort((a, b) => (members[a]! < members[b]! ? -1 : 1));
  const parts: Uint8Array[] = [Uint8Array.of(members.length >> 8, members.length & 0xff)];
  for (const i of order) {
    const id = latin1Encode(members[i]!);
    parts.push(Uint8Array.of(id.length), id);
  }
  for (const i of order) {
    if (nonces[i]!.length !== 32) throw new ProtocolError('bad-value', 'nonce must be 32 bytes');
    parts.push(nonces[i]!);
  }
  return concatBytes(...parts);
}

/** v2 session id (rule 3): SHA-256("covey sid v2" ‖ sessionIdInput ‖ OP_REF). */
export async function sessionIdV2(crypto: CryptoProvider, members: readonly MemberId[], nonces: readonly Uint8Array[], opRef: ChainHash): Promise<SessionId> {
  return sessionId(await crypto.sha256(concatBytes(SID_V2_CONTEXT, sessionIdInput(members, nonces), opRef)));
}

/** The keys of a new subsession from the CLIQUES secret: the group key and the key-confirmation key. */
export interface SubsessionSecrets {
  readonly groupKey: Uint8Array;
  readonly confirmKey: Uint8Array;
}

export async function deriveSubsessionSecrets(crypto: CryptoProvider, secret: Uint8Array): Promise<SubsessionSecrets> {
  const groupKey = await deriveGroupKey(crypto, secret); // checks the secret (length, all-zero)
  const confirmKey = await crypto.hkdfSha256(secret, new Uint8Array(0), CONFIRM_KEY_INFO, 32);
  return { groupKey, confirmKey };
}

/**
 * KEY_CONFIRMATION of a final packet (rule 4). `binding` is the sid, or for a final packet that
 * is also the initial packet (exclude, refresh), SHA-256(sessionIdInput) ‖ metadata hash.
 */
export async function finalKeyConfirmation(crypto: CryptoProvider, confirmKey: Uint8Array, binding: Uint8Array): Promise<Uint8Array> {
  return crypto.hmacSha256(confirmKey, concatBytes(FINAL_MAC_CONTEXT, binding));
}

/** The binding of an initial-and-final packet's key confirmation (its OP_REF is not known yet). */
export async function initialFinalBinding(crypto: CryptoProvider, members: readonly MemberId[], nonces: readonly Uint8Array[], metaHash: Uint8Array): Promise<Uint8Array> {
  return concatBytes(await crypto.sha256(sessionIdInput(members, nonces)), metaHash);
}

/** What a member's confirmation vouches for: the subsession as the member holds it. */
export interface ConfirmedView {
  readonly sid: SessionId;
  /** Chain hash at the operation's final packet: the order of operations up to it. */
  readonly chainHash: ChainHash;
  readonly ephemeralPubKeys: readonly Uint8Array[];
}

/**
 * KEY_CONFIRMATION of a member's confirmation (rules 4, 5): HMAC(K, "covey confirm v2" ‖ member
 * ‖ sid ‖ chain hash ‖ SHA-256(ephemeral keys)). Beyond the key, it vouches for the order and for
 * every member's signing key, so that a member shown another copy of some contribution (another
 * ephemeral key, another final packet) disagrees with the others at its first confirmation.
 * (The member id is followed by fixed-length fields only.)
 */
export async function memberKeyConfirmation(crypto: CryptoProvider, confirmKey: Uint8Array, member: MemberId, view: ConfirmedView, renewedKey?: Uint8Array): Promise<Uint8Array> {
  const keys = await keysDigest(crypto, view.ephemeralPubKeys);
  // Issue 9 §3: a confirmation that renews the member's signing key binds the new key too (32
  // more bytes at the end: a renewing MAC never equals a plain one).
  const renewed = renewedKey ?? new Uint8Array(0);
  return crypto.hmacSha256(confirmKey, concatBytes(MEMBER_MAC_CONTEXT, latin1Encode(member), view.sid, view.chainHash, keys, renewed));
}

/**
 * SHA-256 of a subsession's ephemeral keys, once per list: the list is immutable state that
 * every confirmation of the subsession shares (issue 8: it was hashed again for each of the n
 * confirmations each member checks, n² hashes of 32·n bytes per operation). The digest is
 * copied out, so no caller can alter the cached one.
 */
const keysDigests = new WeakMap<readonly Uint8Array[], Uint8Array>();

async function keysDigest(crypto: CryptoProvider, keys: readonly Uint8Array[]): Promise<Uint8Array> {
  let digest = keysDigests.get(keys);
  if (digest === undefined) {
    digest = await crypto.sha256(concatBytes(...keys));
    keysDigests.set(keys, digest);
  }
  return digest.slice();
}

/** A contributor's packet (rule 2): MESSAGE_SIGNATURE by its static key over "coveygreet2" ‖ S. */
export async function contributorText(crypto: CryptoProvider, staticSeed: Uint8Array, fields: GreetingFields): Promise<string> {
  return staticSigned(crypto, staticSeed, CONTRIBUTOR_CONTEXT, fields);
}

export async function verifyContributor(crypto: CryptoProvider, packet: GreetingPacket, staticPub: Uint8Array): Promise<boolean> {
  return staticSignatureValid(crypto, CONTRIBUTOR_CONTEXT, packet, staticPub);
}

/** A REJOIN_DOWN packet (rules 10, 11), signed with the sender's static key; `fresh`: random. */
export async function rejoinText(crypto: CryptoProvider, staticSeed: Uint8Array, source: MemberId, fresh: ChainHash): Promise<string> {
  const fields: GreetingFields = {
    version: PROTOCOL_VERSION_2,
    greetType: GreetType.REJOIN_DOWN,
    source,
    dest: null,
    members: [],
    intKeys: [],
    nonces: [],
    pubKeys: [],
    opRef: fresh,
  };
  return staticSigned(crypto, staticSeed, REJOIN_CONTEXT, fields);
}

export async function verifyRejoin(crypto: CryptoProvider, packet: GreetingPacket, staticPub: Uint8Array): Promise<boolean> {
  return staticSignatureValid(crypto, REJOIN_CONTEXT, packet, staticPub);
}
