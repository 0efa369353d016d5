/**
 * Greeting packets (mpENC §5.2.3; mpenc-wire.md "Greeting packets"). Record order:
 *   MESSAGE_SIGNATURE, PROTOCOL_VERSION, MESSAGE_TYPE (GREET), GREET_TYPE, SOURCE, DEST,
 *   MEMBER × n, INT_KEY × k, NONCE × k, PUB_KEY × k,
 *   [initial packets] PREV_PF, CHAIN_HASH, LATEST_PM × m,
 *   [optional] SESSION_SIGNATURE, [optional] SIGNING_KEY.
 * The signed region S is everything after MESSAGE_SIGNATURE.
 *
 * then Covey v2 only: [optional] OP_REF, [optional] ABORT_REASON, [optional] KEY_CONFIRMATION,
 * FIN_PM × f.
 *
 * To add a Covey extension record: give it a RecordType, an optional field in GreetingFields,
 * one line in `encodeGreetingRegion` and one in `decodeGreeting` at the same position (after
 * the last one), the v1 check below, and a case in the round-trip arbitrary
 * (tests/protocol/codec-arbitraries.ts).
 */
import { concatBytes } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { chainHash, messageId, packetId, type ChainHash, type MemberId, type MessageId, type PacketId } from '../ids.js';
import { isGreetType, MessageType, PROTOCOL_VERSION_1, RecordType, V2_ONLY_GREET_TYPES, type GreetType, type ProtocolVersion } from './constants.js';
import { decodeHeader, decodeMemberId, encodeHeader, encodeMemberId, KEY_BYTES, SIGNATURE_BYTES } from './fields.js';
import { MAX_GROUP_MEMBERS, MAX_LATEST_PM } from './limits.js';
import { encodeRecord, fixedBytes, RecordReader, type RawRecord } from './records.js';

/** PREV_PF, CHAIN_HASH, LATEST_PM: only on an operation's initial packet (mpENC §5.2.3 [b]). */
export interface GreetingMetadata {
  /** Packet id of the previous operation's final packet (or the random genesis packet id). */
  readonly prevPf: PacketId;
  /** Chain hash at prevPf as the initiator computed it. */
  readonly chainHash: ChainHash;
  /** Latest data messages of the previous subsession that the initiator had seen. */
  readonly latestPms: readonly MessageId[];
}

export interface GreetingFields {
  readonly version: ProtocolVersion;
  readonly greetType: GreetType;
  readonly source: MemberId;
  /** null: broadcast (DEST is always present; an empty value means broadcast). */
  readonly dest: MemberId | null;
  /** Members of the subsession this operation would create, in upflow order. */
  readonly members: readonly MemberId[];
  /** CLIQUES intermediate keys; null stands for an empty slot (the base point). */
  readonly intKeys: readonly (Uint8Array | null)[];
  readonly nonces: readonly Uint8Array[];
  /** Ephemeral ed25519 public signing keys, one per member slot filled so far. */
  readonly pubKeys: readonly Uint8Array[];
  readonly metadata?: GreetingMetadata;
  /** ASKE confirmation, signed with the author's static identity key. */
  readonly sessionSignature?: Uint8Array;
  /** Published ephemeral signing key (seed), sent when leaving. */
  readonly signingKey?: Uint8Array;
  // Covey v2 extension records (src/protocol/greeting), after SIGNING_KEY:
  /** OP_REF: the operation this non-initial v2 packet belongs to (chain hash after its initial packet). */
  readonly opRef?: ChainHash;
  /** ABORT_REASON: one byte, on ABORT_DOWN packets. */
  readonly abortReason?: number;
  /** KEY_CONFIRMATION: 32-byte HMAC on final packets and confirmations (async-groups rule 4). */
  readonly keyConfirmation?: Uint8Array;
  /** FIN_PM: on confirmations, the sender's last messages in its previous subsession. */
  readonly finPms?: readonly MessageId[];
}

export interface GreetingPacket extends GreetingFields {
  readonly kind: 'greeting';
  /** ed25519 by the sender's ephemeral key over "greetmsgsig" ‖ signed. */
  readonly signature: Uint8Array;
  /** S: the bytes the signature covers (from PROTOCOL_VERSION on). */
  readonly signed: Uint8Array;
}

/** The signed region S of a greeting. */
export function encodeGreetingRegion(f: GreetingFields): Uint8Array {
  const parts = [
    ...encodeHeader(f.version, MessageType.GREET),
    encodeRecord(RecordType.GREET_TYPE, Uint8Array.of(0, f.greetType)),
    encodeRecord(RecordType.SOURCE, encodeMemberId(f.source)),
    encodeRecord(RecordType.DEST, f.dest === null ? new Uint8Array(0) : encodeMemberId(f.dest)),
    ...f.members.map((m) => encodeRecord(RecordType.MEMBER, encodeMemberId(m))),
    ...f.intKeys.map((k) => encodeRecord(RecordType.INT_KEY, k ?? new Uint8Array(0))),
    ...f.nonces.map((n) => encodeRecord(RecordType.NONCE, n)),
    ...f.pubKeys.map((k) => encodeRecord(RecordType.PUB_KEY, k)),
  ];
  if (f.metadata !== undefined) {
    parts.push(
      encodeRecord(RecordType.PREV_PF, f.metadata.prevPf),
      encodeRecord(RecordType.CHAIN_HASH, f.metadata.chainHash),
      ...f.metadata.latestPms.map((id) => encodeRecord(RecordType.LATEST_PM, id)),
    );
  }
  if (f.sessionSignature !== undefined) parts.push(encodeRecord(RecordType.SESSION_SIGNATURE, f.sessionSignature));
  if (f.signingKey !== undefined) parts.push(encodeRecord(RecordType.SIGNING_KEY, f.signingKey));
  if (f.opRef !== undefined) parts.push(encodeRecord(RecordType.OP_REF, f.opRef));
  if (f.abortReason !== undefined) parts.push(encodeRecord(RecordType.ABORT_REASON, Uint8Array.of(f.abortReason)));
  if (f.keyConfirmation !== undefined) parts.push(encodeRecord(RecordType.KEY_CONFIRMATION, f.keyConfirmation));
  for (const id of f.finPms ?? []) parts.push(encodeRecord(RecordType.FIN_PM, id));
  return concatBytes(...parts);
}

export function encodeGreeting(p: GreetingPacket): Uint8Array {
  return concatBytes(encodeRecord(RecordType.MESSAGE_SIGNATURE, p.signature), encodeGreetingRegion(p));
}

export function decodeGreeting(records: readonly RawRecord[], bytes: Uint8Array): GreetingPacket {
  const r = new RecordReader(records, bytes.length);
  const signature = fixedBytes(r.take(RecordType.MESSAGE_SIGNATURE, 'MESSAGE_SIGNATURE'), SIGNATURE_BYTES, 'MESSAGE_SIGNATURE');
  const signedStart = r.offset;
  const version = decodeHeader(r, MessageType.GREET);
  const greetType = decodeGreetType(r.take(RecordType.GREET_TYPE, 'GREET_TYPE'));
  const source = decodeMemberId(r.take(RecordType.SOURCE, 'SOURCE'));
  const destValue = r.take(RecordType.DEST, 'DEST');
  const dest = destValue.length === 0 ? null : decodeMemberId(destValue);

  const members = r.many(RecordType.MEMBER, MAX_GROUP_MEMBERS, 'MEMBER').map(decodeMemberId);
  if (new Set(members).size !== members.length) throw new ProtocolError('bad-value', 'duplicate MEMBER');
  // mpENC §5.2.3: these lists fill up to one entry per member during the upflow. A Covey v2
  // contribution names its operation instead of listing the members (by reference), so without
  // a member list the group's limit bounds them.
  const listMax = members.length > 0 ? members.length : MAX_GROUP_MEMBERS;
  const intKeys = r.many(RecordType.INT_KEY, listMax, 'INT_KEY').map((v) => (v.length === 0 ? null : fixedBytes(v, KEY_BYTES, 'INT_KEY')));
  const nonces = r.many(RecordType.NONCE, listMax, 'NONCE').map((v) => fixedBytes(v, KEY_BYTES, 'NONCE'));
  const pubKeys = r.many(RecordType.PUB_KEY, listMax, 'PUB_KEY').map((v) => fixedBytes(v, KEY_BYTES, 'PUB_KEY'));

  let metadata: GreetingMetadata | undefined;
  const prevPf = r.maybe(RecordType.PREV_PF);
  if (prevPf !== undefined) {
    metadata = {
      prevPf: packetId(prevPf),
      chainHash: chainHash(r.take(RecordType.CHAIN_HASH, 'CHAIN_HASH')),
      latestPms: r.many(RecordType.LATEST_PM, MAX_LATEST_PM, 'LATEST_PM').map(messageId),
    };
  }
  const sessionSignature = r.maybe(RecordType.SESSION_SIGNATURE);
  const signingKey = r.maybe(RecordType.SIGNING_KEY);
  const opRef = r.maybe(RecordType.OP_REF);
  const abortReason = r.maybe(RecordType.ABORT_REASON);
  const keyConfirmation = r.maybe(RecordType.KEY_CONFIRMATION);
  const finPms = r.many(RecordType.FIN_PM, MAX_LATEST_PM, 'FIN_PM');
  r.end('greeting');
  // Covey's extensions live on v2 packets only, so a v1 packet always means what mpenc_js meant.
  const v2Only = opRef !== undefined || abortReason !== undefined || keyConfirmation !== undefined || finPms.length > 0;
  if (version === PROTOCOL_VERSION_1 && (v2Only || V2_ONLY_GREET_TYPES.has(greetType))) {
    throw new ProtocolError('bad-record', 'Covey v2 record or greeting type in a v1 packet');
  }

  return {
    kind: 'greeting',
    signature,
    signed: bytes.subarray(signedStart),
    version,
    greetType,
    source,
    dest,
    members,
    intKeys,
    nonces,
    pubKeys,
    ...(metadata !== undefined && { metadata }),
    ...(sessionSignature !== undefined && { sessionSignature: fixedBytes(sessionSignature, SIGNATURE_BYTES, 'SESSION_SIGNATURE') }),
    ...(signingKey !== undefined && { signingKey: fixedBytes(signingKey, KEY_BYTES, 'SIGNING_KEY') }),
    ...(opRef !== undefined && { opRef: chainHash(opRef) }),
    ...(abortReason !== undefined && { abortReason: fixedBytes(abortReason, 1, 'ABORT_REASON')[0]! }),
    ...(keyConfirmation !== undefined && { keyConfirmation: fixedBytes(keyConfirmation, KEY_CONFIRMATION_BYTES, 'KEY_CONFIRMATION') }),
    ...(finPms.length > 0 && { finPms: finPms.map(messageId) }),
  };
}

/** HMAC-SHA-256 output. */
export const KEY_CONFIRMATION_BYTES = 32;

/** GREET_TYPE is 0x00 then the flag byte (mpenc-wire.md). */
function decodeGreetType(value: Uint8Array): GreetType {
  const bytes = fixedBytes(value, 2, 'GREET_TYPE');
  const type = bytes[1]!;
  if (bytes[0] !== 0 || !isGreetType(type)) {
    throw new ProtocolError('bad-value', `unknown GREET_TYPE 0x${bytes[0]!.toString(16)}${type.toString(16).padStart(2, '0')}`);
  }
  return type;
}
