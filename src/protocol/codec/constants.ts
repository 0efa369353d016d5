/**
 * Wire constants of mpENC (mpenc-wire.md "Constants"; mpENC §5.1–§5.4). Where the design document
 * and mpenc-wire.md disagree, mpenc-wire.md wins for version 1: it is what deployed peers send.
 *
 * Covey's own extensions use record types and greeting types that v1 does not define, and mark
 * their packets with PROTOCOL_VERSION_2 so that a v1 peer rejects them instead of misreading them.
 */

/** mpenc-wire.md: PROTOCOL_VERSION is 1, encoded in ONE byte (not 16 bits as mpENC §5.1 says). */
export const PROTOCOL_VERSION_1 = 1;
/** Reserved for Covey's extensions (authenticated metadata, chain-hash confirmation, abort, ...). */
export const PROTOCOL_VERSION_2 = 2;
export type ProtocolVersion = typeof PROTOCOL_VERSION_1 | typeof PROTOCOL_VERSION_2;
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [PROTOCOL_VERSION_1, PROTOCOL_VERSION_2];

/** Text prefix of every mpENC packet (mpENC §5.4; mpenc-wire.md "Framing"). */
export const MPENC_PREFIX = '?mpENC';
export const MPENC_PACKET_PREFIX = '?mpENC:';
export const MPENC_PACKET_SUFFIX = '.';

/** MESSAGE_TYPE record value, one byte. 0x00 (plain text) is never sent. */
export const MessageType = {
  QUERY: 0x01,
  GREET: 0x02,
  DATA: 0x03,
  ERROR: 0x04,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Record types: u16 big-endian (mpenc-wire.md record table). */
export const RecordType = {
  PROTOCOL_VERSION: 0x0001,
  MESSAGE_TYPE: 0x0002,
  MESSAGE_SIGNATURE: 0x0003,
  MESSAGE_PAYLOAD: 0x0010,
  MESSAGE_IV: 0x0011,
  SIDKEY_HINT: 0x0012,
  MESSAGE_PARENT: 0x0013,
  MESSAGE_BODY: 0x0014,
  SOURCE: 0x0100,
  DEST: 0x0101,
  MEMBER: 0x0102,
  INT_KEY: 0x0103,
  NONCE: 0x0104,
  PUB_KEY: 0x0105,
  SESSION_SIGNATURE: 0x0106,
  SIGNING_KEY: 0x0107,
  GREET_TYPE: 0x01ff,
  SEVERITY: 0x0201,
  PREV_PF: 0x0301,
  CHAIN_HASH: 0x0302,
  LATEST_PM: 0x0303,
  // Covey v2 (src/protocol/greeting; closes mpENC §6.1.1), on PROTOCOL_VERSION_2 packets only:
  /** Chain hash right after the operation's initial packet: names the operation in its later packets. */
  OP_REF: 0x0304,
  /** One byte, why an ABORT packet aborts (AbortReason in src/protocol/greeting/wire.ts). */
  ABORT_REASON: 0x0305,
  /**
   * 32 bytes, HMAC under a key derived from the new group secret (async-groups rule 4): on an
   * operation's final packet, the contributor's proof of the key; on a confirmation, the
   * confirmer's.
   */
  KEY_CONFIRMATION: 0x0306,
  /**
   * Message ids (20 bytes each) on a confirmation: the sender's last messages in the
   * subsession it confirmed before this one (its last word there, since it never seals there
   * again: async-groups rule 7).
   */
  FIN_PM: 0x0307,
  /**
   * u32 big-endian, on v2 data packets only (issue 9 §3, mpENC §6.2.1): the index of the packet
   * in its author's hash chain, which names its message key (src/protocol/packets/ratchet.ts).
   */
  CHAIN_INDEX: 0x0308,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Error packet severities (mpenc_js codec.ERROR). */
export const Severity = {
  INFO: 0x00,
  WARNING: 0x01,
  TERMINAL: 0x02,
} as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

/**
 * GREET_TYPE is two bytes: 0x00 then this flag byte (mpenc-wire.md). Bits 4–6 hold the operation.
 * INIT marks a packet sent by the operation's initiator (not "initial packet": that is decided by
 * the greeting state machine from the operation's progress).
 */
export const GreetFlag = {
  AUX: 0x01,
  DOWN: 0x02,
  GKA: 0x04,
  SKE: 0x08,
  INIT: 0x80,
} as const;

export const GreetOperation = {
  DATA: 0,
  START: 1,
  INCLUDE: 2,
  EXCLUDE: 3,
  REFRESH: 4,
  QUIT: 5,
  /** Covey v2: abort the ongoing operation (mpENC §6.1.1 "Error and abort messages"). */
  ABORT: 6,
  /** Covey v2: a member who lost its state asks to be included again (async-groups rule 11). */
  REJOIN: 7,
} as const;
export type GreetOperation = (typeof GreetOperation)[keyof typeof GreetOperation];

/** The greeting types mpENC v1 sends (mpenc-wire.md greeting table). */
export const GreetType = {
  INIT_INITIATOR_UP: 0x9c,
  INIT_PARTICIPANT_UP: 0x1c,
  INIT_PARTICIPANT_DOWN: 0x1e,
  INIT_PARTICIPANT_CONFIRM_DOWN: 0x1a,
  INCLUDE_AUX_INITIATOR_UP: 0xad,
  INCLUDE_AUX_PARTICIPANT_UP: 0x2d,
  INCLUDE_AUX_PARTICIPANT_DOWN: 0x2f,
  INCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN: 0x2b,
  EXCLUDE_AUX_INITIATOR_DOWN: 0xbf,
  EXCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN: 0x3b,
  REFRESH_AUX_INITIATOR_DOWN: 0xc7,
  QUIT_DOWN: 0xd3,
  // Covey v2 extensions (PROTOCOL_VERSION_2 only; added by the membership layer):
  /** Every other member's confirmation of a refresh (v2 refreshes are confirmed like excludes). */
  REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN: 0x4b,
  /** Abort of the ongoing operation, signed with the sender's static identity key. */
  ABORT_DOWN: 0x62,
  /** "I was away longer than the relay keeps events: include me again" (static key). */
  REJOIN_DOWN: 0x72,
} as const;
export type GreetType = (typeof GreetType)[keyof typeof GreetType];

/**
 * Greeting types the codec accepts. A Covey extension greeting type is added here (and to
 * `GreetType`); anything else is rejected at decode time as 'bad-value'.
 */
export const KNOWN_GREET_TYPES: ReadonlySet<number> = new Set<number>(Object.values(GreetType));

/** Greeting types that only PROTOCOL_VERSION_2 packets may carry (a v1 peer does not know them). */
export const V2_ONLY_GREET_TYPES: ReadonlySet<number> = new Set<number>([
  GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN,
  GreetType.ABORT_DOWN,
  GreetType.REJOIN_DOWN,
]);

export function isGreetType(byte: number): byte is GreetType {
  return KNOWN_GREET_TYPES.has(byte);
}

export interface GreetTypeFlags {
  readonly initiator: boolean;
  readonly operation: number;
  readonly aux: boolean;
  readonly down: boolean;
  readonly gka: boolean;
  readonly ske: boolean;
}

/** Splits a greeting type byte into its flags (mpenc-wire.md GREET_TYPE bit layout). */
export function greetTypeFlags(greetType: GreetType): GreetTypeFlags {
  return {
    initiator: (greetType & GreetFlag.INIT) !== 0,
    operation: (greetType >> 4) & 0x07,
    aux: (greetType & GreetFlag.AUX) !== 0,
    down: (greetType & GreetFlag.DOWN) !== 0,
    gka: (greetType & GreetFlag.GKA) !== 0,
    ske: (greetType & GreetFlag.SKE) !== 0,
  };
}

/** Context prefixes of MESSAGE_SIGNATURE (mpENC §5.2.3, §5.3; mpenc_js _MAGIC_NUMBERS). */
export const GREETING_SIGNATURE_CONTEXT = 'greetmsgsig';
export const DATA_SIGNATURE_CONTEXT = 'datamsgsig';
export const ERROR_SIGNATURE_CONTEXT = 'errormsgsig';
/**
 * Covey v2: context of a contributor's packet, whose MESSAGE_SIGNATURE is made with its STATIC
 * key (async-groups rule 2), so that no ephemeral signature is ever confused with it.
 */
export const CONTRIBUTOR_SIGNATURE_CONTEXT = 'coveygreet2';
/**
 * Covey v2: context of a QUIT_DOWN packet that publishes the sender's ephemeral signing key
 * (mpENC §6.1.1 "Publish signature keys", issue 9 §3 deniability). Its MESSAGE_SIGNATURE is made
 * with the sender's STATIC key: the ephemeral one it publishes proves nothing once public.
 */
export const PUBLISHED_KEY_SIGNATURE_CONTEXT = 'coveyquit2';
/** Context of the ASKE session signature (mpenc-wire.md "ASKE"). */
export const SESSION_SIGNATURE_CONTEXT = 'acksig';
/** HKDF info of the group key (mpenc-wire.md "CLIQUES"). */
export const GROUP_KEY_INFO = 'mpenc group key';
