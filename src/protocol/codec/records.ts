/**
 * TLV records (mpENC §5.4; mpenc-wire.md "Framing"): type u16be ‖ length u16be ‖ value.
 *
 * Decoders are small and composable in the ts-mls manner, `(bytes, offset) => [value, used]`,
 * but report failure as a typed ProtocolError instead of `undefined`, so that every rejection
 * carries its cause ('truncated', 'trailing-bytes', 'too-long', 'bad-record', 'bad-value').
 */
import { concatBytes } from '../bytes.js';
import { assert, ProtocolError } from '../errors.js';
import { MAX_RECORD_VALUE_BYTES } from './limits.js';

/** Reads a value at `offset`; returns it with the number of bytes used. Throws ProtocolError. */
export type Decoder<T> = (bytes: Uint8Array, offset: number) => [value: T, used: number];

export interface WireRecord {
  readonly type: number;
  readonly value: Uint8Array;
}

/** A decoded record with its byte range in the input (signatures cover byte ranges). */
export interface RawRecord extends WireRecord {
  readonly start: number;
  readonly end: number;
}

const HEADER_BYTES = 4;

export function encodeRecord(type: number, value: Uint8Array): Uint8Array {
  assert(Number.isInteger(type) && type >= 0 && type <= 0xffff, `record type out of range: ${type}`);
  assert(value.length <= MAX_RECORD_VALUE_BYTES, `record value too long: ${value.length}`);
  const out = new Uint8Array(HEADER_BYTES + value.length);
  out[0] = type >> 8;
  out[1] = type & 0xff;
  out[2] = value.length >> 8;
  out[3] = value.length & 0xff;
  out.set(value, HEADER_BYTES);
  return out;
}

export function encodeRecords(records: readonly WireRecord[]): Uint8Array {
  return concatBytes(...records.map((r) => encodeRecord(r.type, r.value)));
}

/**
 * One record. The value is a view into `bytes` (no copy: every packet is decoded on the hot
 * path); decoded packets alias their input, which the codec's callers never modify.
 */
export const decodeRecord: Decoder<RawRecord> = (bytes, offset) => {
  if (offset + HEADER_BYTES > bytes.length) throw new ProtocolError('truncated', `record header at ${offset}`);
  const type = (bytes[offset]! << 8) | bytes[offset + 1]!;
  const length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  const end = offset + HEADER_BYTES + length;
  if (end > bytes.length) {
    throw new ProtocolError('truncated', `record 0x${type.toString(16)} at ${offset} claims ${length} bytes`);
  }
  return [{ type, value: bytes.subarray(offset + HEADER_BYTES, end), start: offset, end }, end - offset];
};

/**
 * Applies `decoder` to the whole of `bytes`: input longer than `maxBytes` is 'too-long', bytes
 * left after the value are 'trailing-bytes'.
 */
export function decodeExactly<T>(decoder: Decoder<T>, bytes: Uint8Array, maxBytes: number): T {
  if (bytes.length > maxBytes) throw new ProtocolError('too-long', `input of ${bytes.length} bytes exceeds ${maxBytes}`);
  const [value, used] = decoder(bytes, 0);
  if (used !== bytes.length) throw new ProtocolError('trailing-bytes', `${bytes.length - used} bytes after the value`);
  return value;
}

/** A sequence of records filling the input to its end, at most `maxRecords` of them. */
export function recordList(maxRecords: number): Decoder<RawRecord[]> {
  return (bytes, offset) => {
    const out: RawRecord[] = [];
    let at = offset;
    while (at < bytes.length) {
      if (out.length === maxRecords) throw new ProtocolError('too-long', `more than ${maxRecords} records`);
      const [record, used] = decodeRecord(bytes, at);
      out.push(record);
      at += used;
    }
    return [out, at - offset];
  };
}

/**
 * Reads records in the fixed order a packet kind prescribes. Every record must be consumed:
 * `end()` rejects leftovers, so an unexpected or misplaced record is never silently skipped.
 */
export class RecordReader {
  private index = 0;

  constructor(
    private readonly records: readonly RawRecord[],
    private readonly inputLength: number,
  ) {}

  /** Byte offset where the next record starts (the input length when all are consumed). */
  get offset(): number {
    return this.records[this.index]?.start ?? this.inputLength;
  }

  peekType(): number | undefined {
    return this.records[this.index]?.type;
  }

  /** The next record, which must have `type`. */
  take(type: number, what: string): Uint8Array {
    const record = this.records[this.index];
    if (record === undefined) throw new ProtocolError('bad-record', `missing ${what}`);
    if (record.type !== type) {
      throw new ProtocolError('bad-record', `expected ${what} (0x${type.toString(16)}), got 0x${record.type.toString(16)}`);
    }
    this.index++;
    return record.value;
  }

  /** The next record if it has `type`, else undefined (nothing consumed). */
  maybe(type: number): Uint8Array | undefined {
    const record = this.records[this.index];
    if (record === undefined || record.type !== type) return undefined;
    this.index++;
    return record.value;
  }

  /** All consecutive records of `type`, at most `max` of them. */
  many(type: number, max: number, what: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let value = this.maybe(type); value !== undefined; value = this.maybe(type)) {
      if (out.length === max) throw new ProtocolError('too-long', `more than ${max} ${what} records`);
      out.push(value);
    }
    return out;
  }

  end(what: string): void {
    const record = this.records[this.index];
    if (record !== undefined) {
      throw new ProtocolError('trailing-bytes', `unexpected record 0x${record.type.toString(16)} after the ${what}`);
    }
  }
}

// Value decoders: a record's value must have exactly the expected shape.

export function fixedBytes(value: Uint8Array, length: number, what: string): Uint8Array {
  if (value.length !== length) throw new ProtocolError('bad-value', `${what} must be ${length} bytes, got ${value.length}`);
  return value;
}

export function u8(value: Uint8Array, what: string): number {
  return fixedBytes(value, 1, what)[0]!;
}

export function boundedBytes(value: Uint8Array, maxLength: number, what: string): Uint8Array {
  if (value.length > maxLength) throw new ProtocolError('too-long', `${what} of ${value.length} bytes exceeds ${maxLength}`);
  return value;
}
