/**
 * mpENC packets as one tagged union (mpENC §5.1): decode any text into a `Packet` or a typed
 * ProtocolError, and encode a `Packet` back into the exact text. Decoding is strict (fixed record
 * order, exact value sizes, no leftovers), so encode(decode(text)) === text for every accepted
 * text and the `signed` region of a decoded packet equals the re-encoded region.
 */
import { ProtocolError } from '../errors.js';
import { MessageType, RecordType } from './constants.js';
import { decodeData, encodeData, type DataPacket } from './data.js';
import { decodeError, encodeError, type ErrorPacket } from './error-packet.js';
import { frame, unframe } from './framing.js';
import { decodeGreeting, encodeGreeting, type GreetingPacket } from './greeting.js';
import { MAX_PACKET_BYTES, MAX_RECORDS_PER_PACKET } from './limits.js';
import { decodeQuery, encodeQuery, type QueryPacket } from './query.js';
import { decodeExactly, recordList, type RawRecord } from './records.js';

export type Packet = QueryPacket | GreetingPacket | DataPacket | ErrorPacket;
export type PacketKind = Packet['kind'];

const decodeRecords = recordList(MAX_RECORDS_PER_PACKET);

/** Decodes packet text. Throws only ProtocolError (code 'not-mpenc' for plain text). */
export function decodePacket(text: string): Packet {
  return decodePacketBytes(unframe(text));
}

/** Decodes the record bytes of a packet (the base64-decoded body of its text). */
export function decodePacketBytes(bytes: Uint8Array): Packet {
  const records = decodeExactly(decodeRecords, bytes, MAX_PACKET_BYTES);
  switch (messageTypeOf(records)) {
    case MessageType.QUERY:
      return decodeQuery(records, bytes);
    case MessageType.GREET:
      return decodeGreeting(records, bytes);
    case MessageType.DATA:
      return decodeData(records, bytes);
    case MessageType.ERROR:
      return decodeError(records, bytes);
    default:
      throw new ProtocolError('bad-value', 'unknown MESSAGE_TYPE');
  }
}

export function encodePacket(packet: Packet): string {
  return frame(encodePacketBytes(packet));
}

export function encodePacketBytes(packet: Packet): Uint8Array {
  switch (packet.kind) {
    case 'query':
      return encodeQuery(packet);
    case 'greeting':
      return encodeGreeting(packet);
    case 'data':
      return encodeData(packet);
    case 'error':
      return encodeError(packet);
  }
}

/**
 * MESSAGE_TYPE sits after at most SIDKEY_HINT, MESSAGE_SIGNATURE and PROTOCOL_VERSION, so it is
 * among the first four records; the kind's decoder then checks the full order.
 */
function messageTypeOf(records: readonly RawRecord[]): number {
  const record = records.slice(0, 4).find((r) => r.type === RecordType.MESSAGE_TYPE);
  if (record === undefined) throw new ProtocolError('bad-record', 'no MESSAGE_TYPE record');
  if (record.value.length !== 1) throw new ProtocolError('bad-value', 'MESSAGE_TYPE must be 1 byte');
  return record.value[0]!;
}
