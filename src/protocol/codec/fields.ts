/**
 * Record values shared by several packet kinds: the PROTOCOL_VERSION ‖ MESSAGE_TYPE header that
 * starts every signed region (mpENC §5.1), member ids, and the message signature.
 */
import { latin1Decode, latin1Encode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { memberId, type MemberId } from '../ids.js';
import { RecordType, SUPPORTED_PROTOCOL_VERSIONS, type MessageType, type ProtocolVersion } from './constants.js';
import { encodeRecord, u8, type RecordReader } from './records.js';

/** ed25519 signature (RFC 8032). */
export const SIGNATURE_BYTES = 64;
/** ed25519 / x25519 keys, nonces, ids (mpenc-wire.md "ASKE", "CLIQUES"). */
export const KEY_BYTES = 32;

export function encodeHeader(version: ProtocolVersion, type: MessageType): Uint8Array[] {
  return [
    encodeRecord(RecordType.PROTOCOL_VERSION, Uint8Array.of(version)),
    encodeRecord(RecordType.MESSAGE_TYPE, Uint8Array.of(type)),
  ];
}

/** PROTOCOL_VERSION (one byte, mpenc-wire.md) then MESSAGE_TYPE, which must be `type`. */
export function decodeHeader(reader: RecordReader, type: MessageType): ProtocolVersion {
  const version = u8(reader.take(RecordType.PROTOCOL_VERSION, 'PROTOCOL_VERSION'), 'PROTOCOL_VERSION');
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    throw new ProtocolError('unsupported-version', `protocol version ${version}`);
  }
  const got = u8(reader.take(RecordType.MESSAGE_TYPE, 'MESSAGE_TYPE'), 'MESSAGE_TYPE');
  if (got !== type) throw new ProtocolError('bad-record', `MESSAGE_TYPE ${got} where ${type} was expected`);
  return version as ProtocolVersion;
}

/** Member ids travel as byte strings (Latin-1 in mpenc_js; ASCII in Covey). */
export function decodeMemberId(value: Uint8Array): MemberId {
  return memberId(latin1Decode(value));
}

export function encodeMemberId(id: MemberId): Uint8Array {
  return latin1Encode(id);
}
