/**
 * Branded id types of the engine (STYLE.md §4): each is made by exactly one constructor below,
 * which checks its shape, so a `PacketId` can never be passed where a `MessageId` is meant.
 *
 * Byte ids are Uint8Array views; `idKey` gives the hex text to use as a Map/Set key.
 */
import { hexEncode } from './bytes.js';
import { ProtocolError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A member's id: ASCII text (DESIGN.md §3: the base64url of its channel key). */
export type MemberId = Brand<string, 'MemberId'>;
/** mpenc-wire.md "Ids": SHA-256(signature ‖ S)[0..20]; MESSAGE_PARENT and LATEST_PM carry these. */
export type MessageId = Brand<Uint8Array, 'MessageId'>;
/** mpenc-wire.md "Ids": SHA-256 over sender, channel members and packet text (32 bytes). */
export type PacketId = Brand<Uint8Array, 'PacketId'>;
/** mpenc-wire.md "ASKE": SHA-256 of the sorted member ids and their nonces (32 bytes). */
export type SessionId = Brand<Uint8Array, 'SessionId'>;
/** mpenc-wire.md "chain hash": SHA-256(prevCH ‖ packetId ‖ ptype) (32 bytes). */
export type ChainHash = Brand<Uint8Array, 'ChainHash'>;

export const MESSAGE_ID_BYTES = 20;
export const PACKET_ID_BYTES = 32;
export const SESSION_ID_BYTES = 32;
export const CHAIN_HASH_BYTES = 32;
/**
 * Longest member id we accept. Covey ids are 43 characters (base64url of a 32-byte key); mpENC v1
 * ids were short user/resource strings. 128 leaves room and bounds greeting packets.
 */
export const MAX_MEMBER_ID_CHARS = 128;

/**
 * Member ids are printable ASCII without space (0x21..0x7E): packet ids join member ids with
 * "\n" and leave pseudo packets join them with "," (mpenc-wire.md "Ids"), so control characters
 * would make those joins ambiguous; non-ASCII would make Latin-1 and UTF-8 views disagree.
 */
export function memberId(text: string): MemberId {
  if (text.length === 0 || text.length > MAX_MEMBER_ID_CHARS) {
    throw new ProtocolError('bad-value', `member id must be 1..${MAX_MEMBER_ID_CHARS} characters, got ${text.length}`);
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) throw new ProtocolError('bad-value', `member id holds a non-printable character at ${i}`);
  }
  return text as MemberId;
}

function fixedId(bytes: Uint8Array, length: number, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what}: expected Uint8Array`);
  if (bytes.length !== length) throw new ProtocolError('bad-value', `${what} must be ${length} bytes, got ${bytes.length}`);
  return bytes;
}

export function messageId(bytes: Uint8Array): MessageId {
  return fixedId(bytes, MESSAGE_ID_BYTES, 'message id') as MessageId;
}

export function packetId(bytes: Uint8Array): PacketId {
  return fixedId(bytes, PACKET_ID_BYTES, 'packet id') as PacketId;
}

export function sessionId(bytes: Uint8Array): SessionId {
  return fixedId(bytes, SESSION_ID_BYTES, 'session id') as SessionId;
}

export function chainHash(bytes: Uint8Array): ChainHash {
  return fixedId(bytes, CHAIN_HASH_BYTES, 'chain hash') as ChainHash;
}

/** Hex text of a byte id, for Map and Set keys (byte arrays compare by identity there). */
export function idKey(id: MessageId | PacketId | SessionId | ChainHash): string {
  return hexEncode(id);
}
