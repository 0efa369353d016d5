/**
 * Data packets (mpENC §5.3; mpenc-wire.md "Data packets"). Record order:
 *   SIDKEY_HINT (not signed), MESSAGE_SIGNATURE, PROTOCOL_VERSION, MESSAGE_TYPE (DATA),
 *   MESSAGE_IV (12 bytes), MESSAGE_PAYLOAD (ciphertext).
 * The signed region S is everything after MESSAGE_SIGNATURE. Sealing and opening (padding,
 * AES-256-CTR, signatures) live in src/protocol/packets/data.ts; this file only moves bytes.
 */
import { concatBytes } from '../bytes.js';
import { MessageType, RecordType, type ProtocolVersion } from './constants.js';
import { decodeHeader, encodeHeader, SIGNATURE_BYTES } from './fields.js';
import { MAX_PADDED_PLAINTEXT_BYTES } from './limits.js';
import { boundedBytes, encodeRecord, fixedBytes, RecordReader, u8, type RawRecord } from './records.js';

/** mpenc-wire.md: 12-byte IV; the AES-CTR counter block is IV ‖ 00 00 00 00. */
export const DATA_IV_BYTES = 12;

export interface DataFields {
  readonly version: ProtocolVersion;
  readonly iv: Uint8Array;
  /** AES-256-CTR ciphertext of the padded plaintext. */
  readonly payload: Uint8Array;
}

export interface DataPacket extends DataFields {
  readonly kind: 'data';
  /** First byte of SHA-256(sid ‖ groupKey): picks the candidate key (mpENC §5.3). */
  readonly sidkeyHint: number;
  /** ed25519 by the author's ephemeral key over "datamsgsig" ‖ SHA-256(sid ‖ gk) ‖ signed. */
  readonly signature: Uint8Array;
  /** S: the bytes the signature covers (from PROTOCOL_VERSION on). */
  readonly signed: Uint8Array;
}

export function encodeDataRegion(f: DataFields): Uint8Array {
  return concatBytes(
    ...encodeHeader(f.version, MessageType.DATA),
    encodeRecord(RecordType.MESSAGE_IV, f.iv),
    encodeRecord(RecordType.MESSAGE_PAYLOAD, f.payload),
  );
}

export function encodeData(p: DataPacket): Uint8Array {
  return concatBytes(
    encodeRecord(RecordType.SIDKEY_HINT, Uint8Array.of(p.sidkeyHint)),
    encodeRecord(RecordType.MESSAGE_SIGNATURE, p.signature),
    encodeDataRegion(p),
  );
}

export function decodeData(records: readonly RawRecord[], bytes: Uint8Array): DataPacket {
  const r = new RecordReader(records, bytes.length);
  const sidkeyHint = u8(r.take(RecordType.SIDKEY_HINT, 'SIDKEY_HINT'), 'SIDKEY_HINT');
  const signature = fixedBytes(r.take(RecordType.MESSAGE_SIGNATURE, 'MESSAGE_SIGNATURE'), SIGNATURE_BYTES, 'MESSAGE_SIGNATURE');
  const signedStart = r.offset;
  const version = decodeHeader(r, MessageType.DATA);
  const iv = fixedBytes(r.take(RecordType.MESSAGE_IV, 'MESSAGE_IV'), DATA_IV_BYTES, 'MESSAGE_IV');
  const payload = boundedBytes(r.take(RecordType.MESSAGE_PAYLOAD, 'MESSAGE_PAYLOAD'), MAX_PADDED_PLAINTEXT_BYTES, 'MESSAGE_PAYLOAD');
  r.end('data packet');
  return { kind: 'data', sidkeyHint, signature, signed: bytes.subarray(signedStart), version, iv, payload };
}
