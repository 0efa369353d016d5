/**
 * Data packets (mpENC §5.3; mpenc-wire.md "Data packets"). Record order:
 *   SIDKEY_HINT (not signed), MESSAGE_SIGNATURE, PROTOCOL_VERSION, MESSAGE_TYPE (DATA),
 *   MESSAGE_IV (12 bytes), [v2: CHAIN_INDEX (u32)], MESSAGE_PAYLOAD (ciphertext).
 * The signed region S is everything after MESSAGE_SIGNATURE. Sealing and opening (padding,
 * AES-256-CTR, signatures) live in src/protocol/packets/data.ts; this file only moves bytes.
 */
import { concatBytes } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { MessageType, PROTOCOL_VERSION_2, RecordType, type ProtocolVersion } from './constants.js';
import { decodeHeader, encodeHeader, SIGNATURE_BYTES } from './fields.js';
import { MAX_PADDED_PLAINTEXT_BYTES } from './limits.js';
import { boundedBytes, encodeRecord, fixedBytes, RecordReader, u8, type RawRecord } from './records.js';

/** mpenc-wire.md: 12-byte IV; the AES-CTR counter block is IV ‖ 00 00 00 00. */
export const DATA_IV_BYTES = 12;

export interface DataFields {
  readonly version: ProtocolVersion;
  readonly iv: Uint8Array;
  /**
   * v2 only (issue 9 §3): the packet's index in its author's hash chain (packets/ratchet.ts),
   * which names its message key. Absent in v1.
   */
  readonly chainIndex?: number;
  /** AES-256-CTR ciphertext of the padded plaintext. */
  readonly payload: Uint8Array;
}

/** CHAIN_INDEX is a u32. */
export const MAX_CHAIN_INDEX = 0xffff_ffff;

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
  if ((f.version === PROTOCOL_VERSION_2) !== (f.chainIndex !== undefined)) throw new ProtocolError('bad-value', 'CHAIN_INDEX is on v2 data packets, and only there');
  return concatBytes(
    ...encodeHeader(f.version, MessageType.DATA),
    encodeRecord(RecordType.MESSAGE_IV, f.iv),
    ...(f.chainIndex === undefined ? [] : [encodeRecord(RecordType.CHAIN_INDEX, u32Bytes(f.chainIndex))]),
    encodeRecord(RecordType.MESSAGE_PAYLOAD, f.payload),
  );
}

function u32Bytes(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > MAX_CHAIN_INDEX) throw new ProtocolError('bad-value', `CHAIN_INDEX ${n}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
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
  let chainIndex: number | undefined;
  if (version === PROTOCOL_VERSION_2) {
    const value = fixedBytes(r.take(RecordType.CHAIN_INDEX, 'CHAIN_INDEX'), 4, 'CHAIN_INDEX');
    chainIndex = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
  }
  const payload = boundedBytes(r.take(RecordType.MESSAGE_PAYLOAD, 'MESSAGE_PAYLOAD'), MAX_PADDED_PLAINTEXT_BYTES, 'MESSAGE_PAYLOAD');
  r.end('data packet');
  return { kind: 'data', sidkeyHint, signature, signed: bytes.subarray(signedStart), version, iv, ...(chainIndex !== undefined && { chainIndex }), payload };
}
