/**
 * MESSAGE_BODY values (mpenc-wire.md "Data packets"; mpenc_js message.DefaultMessageCodec):
 * UTF-8 of one type character followed by the JSON array of the body's fields.
 *   0x00 payload `["text"]` (non-empty), 0x01 explicit ack `[manual]`, 0x02 heartbeat `[]`,
 *   0x03 consistency `[close]` (close = true is FIN, mpENC §3.5).
 * Decoding is canonical: the bytes must be exactly what `encodeMessageBody` makes of the result.
 */
import { utf8Decode, utf8Encode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { MAX_UNPADDED_BYTES } from './padding.js';

export type MessageBody =
  | { readonly type: 'payload'; readonly text: string }
  | { readonly type: 'explicit-ack'; readonly manual: boolean }
  | { readonly type: 'heartbeat' }
  | { readonly type: 'consistency'; readonly close: boolean };

export const MessageBodyType = {
  PAYLOAD: 0x00,
  EXPLICIT_ACK: 0x01,
  HEARTBEAT: 0x02,
  CONSISTENCY: 0x03,
} as const;

/**
 * Encoded body bytes: the MESSAGE_BODY record (4-byte header + body) must pad into one
 * MESSAGE_PAYLOAD record; sealing checks the total with the parents. A decoder refuses more
 * before parsing any JSON.
 */
export const MAX_MESSAGE_BODY_BYTES = MAX_UNPADDED_BYTES - 4;

export function encodeMessageBody(body: MessageBody): Uint8Array {
  let typeByte: number;
  let fields: unknown[];
  switch (body.type) {
    case 'payload':
      if (body.text.length === 0) throw new ProtocolError('bad-value', 'a payload must not be empty');
      [typeByte, fields] = [MessageBodyType.PAYLOAD, [body.text]];
      break;
    case 'explicit-ack':
      [typeByte, fields] = [MessageBodyType.EXPLICIT_ACK, [body.manual]];
      break;
    case 'heartbeat':
      [typeByte, fields] = [MessageBodyType.HEARTBEAT, []];
      break;
    case 'consistency':
      [typeByte, fields] = [MessageBodyType.CONSISTENCY, [body.close]];
      break;
  }
  const bytes = utf8Encode(String.fromCharCode(typeByte) + JSON.stringify(fields));
  if (bytes.length > MAX_MESSAGE_BODY_BYTES) throw new ProtocolError('too-long', `message body of ${bytes.length} bytes`);
  return bytes;
}

export function decodeMessageBody(bytes: Uint8Array): MessageBody {
  if (bytes.length > MAX_MESSAGE_BODY_BYTES) throw new ProtocolError('too-long', `message body of ${bytes.length} bytes`);
  if (bytes.length < 3) throw new ProtocolError('bad-value', 'message body too short');
  const typeByte = bytes[0]!;
  const text = utf8Decode(bytes.subarray(1));
  const fields = parseJsonArray(text);
  const body = bodyOf(typeByte, fields);
  // Canonical form only: one body, one encoding (message ids hash these bytes). bodyOf accepted
  // exactly the fields encodeMessageBody writes for `body`, its type byte is one byte, and
  // utf8Decode is strict (one string per byte sequence): so comparing the JSON text is comparing
  // encodeMessageBody(body) with `bytes`, without encoding again (issue 8: once per message).
  if (JSON.stringify(fields) !== text) throw new ProtocolError('bad-value', 'message body is not canonical');
  return body;
}

function bodyOf(typeByte: number, fields: unknown[]): MessageBody {
  const [first] = fields;
  switch (typeByte) {
    case MessageBodyType.PAYLOAD:
      if (fields.length === 1 && typeof first === 'string' && first.length > 0) return { type: 'payload', text: first };
      break;
    case MessageBodyType.EXPLICIT_ACK:
      if (fields.length === 1 && typeof first === 'boolean') return { type: 'explicit-ack', manual: first };
      break;
    case MessageBodyType.HEARTBEAT:
      if (fields.length === 0) return { type: 'heartbeat' };
      break;
    case MessageBodyType.CONSISTENCY:
      if (fields.length === 1 && typeof first === 'boolean') return { type: 'consistency', close: first };
      break;
    default:
      throw new ProtocolError('bad-value', `unknown message body type ${typeByte}`);
  }
  throw new ProtocolError('bad-value', `bad fields for message body type ${typeByte}`);
}

function parseJsonArray(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('bad-value', 'message body is not JSON');
  }
  if (!Array.isArray(value)) throw new ProtocolError('bad-value', 'message body is not a JSON array');
  return value as unknown[];
}
