/**
 * Error packets (mpenc_js codec.encodeErrorMessage; mpENC §6.1.1 "Error and abort messages").
 * Record order: [MESSAGE_SIGNATURE], PROTOCOL_VERSION, MESSAGE_TYPE (ERROR), SOURCE, SEVERITY,
 * MESSAGE_PAYLOAD (the reason as text). The signature, when present, covers "errormsgsig" ‖ S.
 * mpenc_js could send them unsigned (before it had a signing key); Covey always signs its own.
 */
import { concatBytes, utf8Decode, utf8Encode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import type { MemberId } from '../ids.js';
import { MessageType, RecordType, Severity, type ProtocolVersion } from './constants.js';
import { decodeHeader, decodeMemberId, encodeHeader, encodeMemberId, SIGNATURE_BYTES } from './fields.js';
import { MAX_ERROR_TEXT_BYTES } from './limits.js';
import { boundedBytes, encodeRecord, fixedBytes, RecordReader, u8, type RawRecord } from './records.js';

export interface ErrorFields {
  readonly version: ProtocolVersion;
  readonly source: MemberId;
  readonly severity: Severity;
  /** Human-readable reason, UTF-8 on the wire, at most MAX_ERROR_TEXT_BYTES. */
  readonly message: string;
}

export interface ErrorPacket extends ErrorFields {
  readonly kind: 'error';
  /** null: an unsigned error packet (mpenc_js sends these before it has keys). */
  readonly signature: Uint8Array | null;
  /** S: the bytes the signature covers (from PROTOCOL_VERSION on). */
  readonly signed: Uint8Array;
}

const SEVERITIES: ReadonlySet<number> = new Set<number>(Object.values(Severity));

export function encodeErrorRegion(f: ErrorFields): Uint8Array {
  return concatBytes(
    ...encodeHeader(f.version, MessageType.ERROR),
    encodeRecord(RecordType.SOURCE, encodeMemberId(f.source)),
    encodeRecord(RecordType.SEVERITY, Uint8Array.of(f.severity)),
    encodeRecord(RecordType.MESSAGE_PAYLOAD, encodeErrorText(f.message)),
  );
}

export function encodeError(p: ErrorPacket): Uint8Array {
  const region = encodeErrorRegion(p);
  return p.signature === null ? region : concatBytes(encodeRecord(RecordType.MESSAGE_SIGNATURE, p.signature), region);
}

export function decodeError(records: readonly RawRecord[], bytes: Uint8Array): ErrorPacket {
  const r = new RecordReader(records, bytes.length);
  const sig = r.maybe(RecordType.MESSAGE_SIGNATURE);
  const signature = sig === undefined ? null : fixedBytes(sig, SIGNATURE_BYTES, 'MESSAGE_SIGNATURE');
  const signedStart = r.offset;
  const version = decodeHeader(r, MessageType.ERROR);
  const source = decodeMemberId(r.take(RecordType.SOURCE, 'SOURCE'));
  const severity = u8(r.take(RecordType.SEVERITY, 'SEVERITY'), 'SEVERITY');
  if (!SEVERITIES.has(severity)) throw new ProtocolError('bad-value', `unknown SEVERITY ${severity}`);
  const text = boundedBytes(r.take(RecordType.MESSAGE_PAYLOAD, 'MESSAGE_PAYLOAD'), MAX_ERROR_TEXT_BYTES, 'error text');
  r.end('error packet');
  return {
    kind: 'error',
    signature,
    signed: bytes.subarray(signedStart),
    version,
    source,
    severity: severity as Severity,
    message: utf8Decode(text),
  };
}

function encodeErrorText(message: string): Uint8Array {
  const bytes = utf8Encode(message);
  if (bytes.length > MAX_ERROR_TEXT_BYTES) throw new ProtocolError('too-long', `error text of ${bytes.length} bytes`);
  return bytes;
}
