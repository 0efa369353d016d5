/**
 * Query packets (mpenc_js codec.MPENC_QUERY_MESSAGE): PROTOCOL_VERSION ‖ MESSAGE_TYPE (QUERY),
 * unsigned: "I speak mpENC at this version; start a session with me".
 */
import { concatBytes } from '../bytes.js';
import { MessageType, type ProtocolVersion } from './constants.js';
import { decodeHeader, encodeHeader } from './fields.js';
import { RecordReader, type RawRecord } from './records.js';

export interface QueryPacket {
  readonly kind: 'query';
  readonly version: ProtocolVersion;
}

export function encodeQuery(p: QueryPacket): Uint8Array {
  return concatBytes(...encodeHeader(p.version, MessageType.QUERY));
}

export function decodeQuery(records: readonly RawRecord[], bytes: Uint8Array): QueryPacket {
  const r = new RecordReader(records, bytes.length);
  const version = decodeHeader(r, MessageType.QUERY);
  r.end('query packet');
  return { kind: 'query', version };
}
