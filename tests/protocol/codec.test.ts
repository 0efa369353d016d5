/** Unit tests of the codec: records, framing, each packet kind, and every rejection path. */
import { describe, expect, it } from 'vitest';
import { base64Encode, concatBytes, utf8Encode } from '../../src/protocol/bytes.js';
import {
  GreetOperation,
  GreetType,
  greetTypeFlags,
  MessageType,
  PROTOCOL_VERSION_1,
  RecordType,
  Severity,
} from '../../src/protocol/codec/constants.js';
import { encodeDataRegion, type DataPacket } from '../../src/protocol/codec/data.js';
import { encodeErrorRegion } from '../../src/protocol/codec/error-packet.js';
import { frame, isMpencText, unframe } from '../../src/protocol/codec/framing.js';
import { encodeGreetingRegion, type GreetingFields } from '../../src/protocol/codec/greeting.js';
import {
  MAX_ERROR_TEXT_BYTES,
  MAX_GROUP_MEMBERS,
  MAX_LATEST_PM,
  MAX_MEMBER_ID_CHARS,
  MAX_PACKET_BYTES,
  MAX_PACKET_TEXT_CHARS,
  MAX_PADDED_PLAINTEXT_BYTES,
  MAX_RECORDS_PER_PACKET,
} from '../../src/protocol/codec/limits.js';
import { decodePacket, decodePacketBytes, encodePacket, encodePacketBytes } from '../../src/protocol/codec/packet.js';
import { decodeExactly, decodeRecord, encodeRecord, encodeRecords, recordList, type WireRecord } from '../../src/protocol/codec/records.js';
import { isProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { chainHash, memberId, messageId, packetId } from '../../src/protocol/ids.js';

function codeOf(f: () => unknown): ProtocolErrorCode | 'no error' {
  try {
    f();
    return 'no error';
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    throw e;
  }
}

const T = RecordType;
const b = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const ascii = (s: string) => utf8Encode(s);
const rec = (type: number, value: Uint8Array): WireRecord => ({ type, value });

/** Records of a valid 3-member upflow greeting with metadata; tests edit the list. */
function greetingRecords(): WireRecord[] {
  return [
    rec(T.MESSAGE_SIGNATURE, b(64)),
    rec(T.PROTOCOL_VERSION, Uint8Array.of(1)),
    rec(T.MESSAGE_TYPE, Uint8Array.of(MessageType.GREET)),
    rec(T.GREET_TYPE, Uint8Array.of(0, GreetType.INIT_INITIATOR_UP)),
    rec(T.SOURCE, ascii('alice')),
    rec(T.DEST, ascii('bob')),
    rec(T.MEMBER, ascii('alice')),
    rec(T.MEMBER, ascii('bob')),
    rec(T.MEMBER, ascii('carol')),
    rec(T.INT_KEY, new Uint8Array(0)),
    rec(T.INT_KEY, b(32, 2)),
    rec(T.NONCE, b(32, 3)),
    rec(T.PUB_KEY, b(32, 4)),
    rec(T.PREV_PF, b(32, 5)),
    rec(T.CHAIN_HASH, b(32, 6)),
    rec(T.LATEST_PM, b(20, 7)),
  ];
}

function dataRecords(): WireRecord[] {
  return [
    rec(T.SIDKEY_HINT, Uint8Array.of(7)),
    rec(T.MESSAGE_SIGNATURE, b(64)),
    rec(T.PROTOCOL_VERSION, Uint8Array.of(1)),
    rec(T.MESSAGE_TYPE, Uint8Array.of(MessageType.DATA)),
    rec(T.MESSAGE_IV, b(12)),
    rec(T.MESSAGE_PAYLOAD, b(128)),
  ];
}

function errorRecords(): WireRecord[] {
  return [
    rec(T.MESSAGE_SIGNATURE, b(64)),
    rec(T.PROTOCOL_VERSION, Uint8Array.of(1)),
    rec(T.MESSAGE_TYPE, Uint8Array.of(MessageType.ERROR)),
    rec(T.SOURCE, ascii('alice')),
    rec(T.SEVERITY, Uint8Array.of(Severity.TERMINAL)),
    rec(T.MESSAGE_PAYLOAD, ascii('inconsistent history')),
  ];
}

const decodeRecs = (records: WireRecord[]) => decodePacketBytes(encodeRecords(records));
const edit = (records: WireRecord[], i: number, deleteCount: number, ...insert: WireRecord[]) => {
  const copy = [...records];
  copy.splice(i, deleteCount, ...insert);
  return copy;
};

describe('records', () => {
  it('encodes type and length big-endian', () => {
    expect([...encodeRecord(0x01ff, Uint8Array.of(0, 0x9c))]).toEqual([0x01, 0xff, 0x00, 0x02, 0x00, 0x9c]);
    const big = encodeRecord(0x0010, new Uint8Array(0x1234));
    expect([...big.subarray(0, 4)]).toEqual([0x00, 0x10, 0x12, 0x34]);
  });

  it('decodes a record with its byte range, the value a view of the input (no copy)', () => {
    const bytes = concatBytes(encodeRecord(1, Uint8Array.of(9)), encodeRecord(2, Uint8Array.of(8, 7)));
    const [r, used] = decodeRecord(bytes, 5);
    expect(r).toEqual({ type: 2, value: Uint8Array.of(8, 7), start: 5, end: 11 });
    expect(used).toBe(6);
    expect(r.value.buffer).toBe(bytes.buffer);
    expect(r.value.byteOffset).toBe(9);
  });

  it('rejects a truncated header or value', () => {
    expect(codeOf(() => decodeRecord(Uint8Array.of(0, 1, 0), 0))).toBe('truncated');
    expect(codeOf(() => decodeRecord(Uint8Array.of(0, 1, 0, 2, 5), 0))).toBe('truncated');
    expect(codeOf(() => decodeRecord(new Uint8Array(0), 0))).toBe('truncated');
  });

  it('decodes exactly: trailing bytes and oversized input are rejected', () => {
    const one = encodeRecord(1, Uint8Array.of(1));
    const single = (bytes: Uint8Array, offset: number) => decodeRecord(bytes, offset);
    expect(decodeExactly(single, one, 10).type).toBe(1);
    expect(codeOf(() => decodeExactly(single, concatBytes(one, Uint8Array.of(0)), 10))).toBe('trailing-bytes');
    expect(codeOf(() => decodeExactly(single, one, 4))).toBe('too-long');
  });

  it('bounds the number of records', () => {
    const three = encodeRecords([rec(1, b(0)), rec(1, b(0)), rec(1, b(0))]);
    expect(decodeExactly(recordList(3), three, 100)).toHaveLength(3);
    expect(codeOf(() => decodeExactly(recordList(2), three, 100))).toBe('too-long');
  });
});

describe('framing', () => {
  it('frames as "?mpENC:" + base64 + "."', () => {
    expect(frame(Uint8Array.of(0, 1, 0, 1, 1))).toBe('?mpENC:AAEAAQE=.');
    expect([...unframe('?mpENC:AAEAAQE=.')]).toEqual([0, 1, 0, 1, 1]);
  });

  it('tells plain text from mpENC text', () => {
    expect(isMpencText('hello')).toBe(false);
    expect(isMpencText('?mpENC:x.')).toBe(true);
    expect(codeOf(() => decodePacket('hello ?mpENC:AAEAAQE=.'))).toBe('not-mpenc');
    expect(codeOf(() => decodePacket(''))).toBe('not-mpenc');
  });

  it('rejects malformed framing', () => {
    for (const text of ['?mpENC', '?mpENC:', '?mpENC:.', '?mpENC:AAEAAQE=', '?mpENCv1?', '?mpENC:AAEAAQE.', '?mpENC:AA!AAQE=.', '?mpENC:AAEAAQF=.']) {
      expect(codeOf(() => unframe(text)), text).toBe('bad-framing');
    }
  });

  it('rejects the largest inputs by their limits', () => {
    // 64 KiB of zero bytes is 16384 empty records: over the record-count limit.
    expect(codeOf(() => decodePacket(frame(new Uint8Array(MAX_PACKET_BYTES))))).toBe('too-long');
    expect(codeOf(() => decodePacket(frame(new Uint8Array(MAX_PACKET_BYTES + 3))))).toBe('too-long');
    // One record of the largest value: a 65535-byte payload is over the padded-plaintext limit.
    const big = encodeRecords([...dataRecords().slice(0, 5), rec(T.MESSAGE_PAYLOAD, new Uint8Array(65535))]);
    expect(codeOf(() => decodePacket(frame(big)))).toBe('too-long');
  });

  it('rejects over-long text before decoding it', () => {
    const text = '?mpENC:' + 'A'.repeat(MAX_PACKET_TEXT_CHARS) + '.';
    expect(codeOf(() => unframe(text))).toBe('too-long');
    // The largest packet still fits the text limit.
    expect(frame(new Uint8Array(MAX_PACKET_BYTES)).length).toBeLessThanOrEqual(MAX_PACKET_TEXT_CHARS);
  });
});

describe('greeting packets', () => {
  it('decodes every field and re-encodes to the same bytes', () => {
    const bytes = encodeRecords(greetingRecords());
    const p = decodePacketBytes(bytes);
    expect(p).toMatchObject({
      kind: 'greeting',
      version: 1,
      greetType: 0x9c,
      source: 'alice',
      dest: 'bob',
      members: ['alice', 'bob', 'carol'],
      intKeys: [null, b(32, 2)],
      nonces: [b(32, 3)],
      pubKeys: [b(32, 4)],
      metadata: { prevPf: b(32, 5), chainHash: b(32, 6), latestPms: [b(20, 7)] },
    });
    expect(p).not.toHaveProperty('sessionSignature');
    expect(p).not.toHaveProperty('signingKey');
    expect(encodePacketBytes(p)).toEqual(bytes);
    // S starts right after the signature record (4 + 64 bytes).
    expect(p.kind === 'greeting' && p.signed).toEqual(bytes.slice(68));
  });

  it('decodes a broadcast with session signature and signing key', () => {
    const records = [
      ...greetingRecords().slice(0, 5),
      rec(T.DEST, new Uint8Array(0)),
      rec(T.MEMBER, ascii('alice')),
      rec(T.SESSION_SIGNATURE, b(64, 8)),
      rec(T.SIGNING_KEY, b(32, 9)),
    ];
    const p = decodeRecs(records);
    expect(p).toMatchObject({ dest: null, members: ['alice'], intKeys: [], sessionSignature: b(64, 8), signingKey: b(32, 9) });
    expect(p).not.toHaveProperty('metadata');
  });

  it('rejects missing, misplaced and extra records', () => {
    const g = greetingRecords();
    expect(codeOf(() => decodeRecs(edit(g, 5, 1)))).toBe('bad-record'); // no DEST
    expect(codeOf(() => decodeRecs(edit(g, 4, 1)))).toBe('bad-record'); // no SOURCE
    expect(codeOf(() => decodeRecs(edit(g, 3, 1)))).toBe('bad-record'); // no GREET_TYPE
    expect(codeOf(() => decodeRecs(edit(g, 0, 1)))).toBe('bad-record'); // no signature
    expect(codeOf(() => decodeRecs(edit(g, 14, 1)))).toBe('bad-record'); // PREV_PF without CHAIN_HASH
    // NONCE before INT_KEY: the INT_KEY is left over.
    expect(codeOf(() => decodeRecs([...g.slice(0, 9), g[11]!, g[9]!, g[10]!, ...g.slice(12)]))).toBe('trailing-bytes');
    expect(codeOf(() => decodeRecs([...g, rec(T.MEMBER, ascii('dave'))]))).toBe('trailing-bytes');
    expect(codeOf(() => decodeRecs([...g, rec(0x7777, b(1))]))).toBe('trailing-bytes');
    expect(codeOf(() => decodeRecs([...g, rec(T.SESSION_SIGNATURE, b(64)), rec(T.SESSION_SIGNATURE, b(64))]))).toBe('trailing-bytes');
  });

  it('rejects values of the wrong size or content', () => {
    const g = greetingRecords();
    const cases: [number, WireRecord][] = [
      [0, rec(T.MESSAGE_SIGNATURE, b(63))],
      [1, rec(T.PROTOCOL_VERSION, Uint8Array.of(0, 1))], // two-byte version, as mpENC §5.1 suggests
      [3, rec(T.GREET_TYPE, Uint8Array.of(0x9c))],
      [3, rec(T.GREET_TYPE, Uint8Array.of(1, 0x9c))],
      [3, rec(T.GREET_TYPE, Uint8Array.of(0, 0x9d))],
      [4, rec(T.SOURCE, new Uint8Array(0))],
      [4, rec(T.SOURCE, ascii('al ice'))],
      [6, rec(T.MEMBER, ascii('bob'))], // duplicate member
      [10, rec(T.INT_KEY, b(31))],
      [11, rec(T.NONCE, b(33))],
      [12, rec(T.PUB_KEY, new Uint8Array(0))],
      [13, rec(T.PREV_PF, b(20))],
      [14, rec(T.CHAIN_HASH, b(33))],
      [15, rec(T.LATEST_PM, b(32))],
    ];
    for (const [i, replacement] of cases) {
      expect(codeOf(() => decodeRecs(edit(g, i, 1, replacement))), `record ${i}: ${replacement.type}`).toBe('bad-value');
    }
    expect(codeOf(() => decodeRecs(edit(g, 1, 1, rec(T.PROTOCOL_VERSION, Uint8Array.of(3)))))).toBe('unsupported-version');
    expect(codeOf(() => decodeRecs(edit(g, 4, 1, rec(T.SOURCE, b(MAX_MEMBER_ID_CHARS + 1, 0x41)))))).toBe('bad-value');
  });

  it('takes Covey v2 extension records on v2 packets only', () => {
    const g = edit(greetingRecords(), 1, 1, rec(T.PROTOCOL_VERSION, Uint8Array.of(2)));
    const v2 = decodeRecs([...g, rec(T.OP_REF, b(32, 3)), rec(T.ABORT_REASON, Uint8Array.of(1))]);
    expect(v2).toMatchObject({ version: 2, opRef: b(32, 3), abortReason: 1 });
    const v1 = greetingRecords();
    expect(codeOf(() => decodeRecs([...v1, rec(T.OP_REF, b(32, 3))]))).toBe('bad-record');
    expect(codeOf(() => decodeRecs([...v1, rec(T.ABORT_REASON, Uint8Array.of(1))]))).toBe('bad-record');
    expect(codeOf(() => decodeRecs(edit(v1, 3, 1, rec(T.GREET_TYPE, Uint8Array.of(0, GreetType.ABORT_DOWN)))))).toBe('bad-record');
    expect(codeOf(() => decodeRecs(edit(g, 3, 1, rec(T.GREET_TYPE, Uint8Array.of(0, GreetType.ABORT_DOWN)))))).toBe('no error');
    expect(codeOf(() => decodeRecs([...g, rec(T.OP_REF, b(20))]))).toBe('bad-value');
    expect(codeOf(() => decodeRecs([...g, rec(T.ABORT_REASON, b(2))]))).toBe('bad-value');
    expect(codeOf(() => decodeRecs([...g, rec(T.ABORT_REASON, b(1)), rec(T.OP_REF, b(32))]))).toBe('trailing-bytes');
  });

  it('bounds members, per-member lists and LATEST_PM', () => {
    const g = greetingRecords();
    // Four INT_KEYs for three members.
    expect(codeOf(() => decodeRecs(edit(g, 9, 0, rec(T.INT_KEY, b(32)), rec(T.INT_KEY, b(32)))))).toBe('too-long');
    const manyMembers = Array.from({ length: MAX_GROUP_MEMBERS + 1 }, (_, i) => rec(T.MEMBER, ascii(`m${i}`)));
    expect(codeOf(() => decodeRecs([...g.slice(0, 6), ...manyMembers]))).toBe('too-long');
    const manyPms = Array.from({ length: MAX_LATEST_PM }, () => rec(T.LATEST_PM, b(20)));
    expect(codeOf(() => decodeRecs([...g, ...manyPms]))).toBe('too-long');
  });

  it('fits a greeting of MAX_GROUP_MEMBERS long ids within the packet limits', () => {
    const members = Array.from({ length: MAX_GROUP_MEMBERS }, (_, i) => memberId(`${i}`.padStart(MAX_MEMBER_ID_CHARS, 'x')));
    const fields: GreetingFields = {
      version: PROTOCOL_VERSION_1,
      greetType: GreetType.INIT_PARTICIPANT_DOWN,
      source: members[0]!,
      dest: null,
      members,
      intKeys: members.map(() => b(32)),
      nonces: members.map(() => b(32)),
      pubKeys: members.map(() => b(32)),
      metadata: { prevPf: packetId(b(32)), chainHash: chainHash(b(32)), latestPms: Array.from({ length: MAX_LATEST_PM }, () => messageId(b(20))) },
      sessionSignature: b(64),
      signingKey: b(32),
    };
    const packet = { ...fields, kind: 'greeting' as const, signature: b(64), signed: encodeGreetingRegion(fields) };
    const text = encodePacket(packet);
    expect(text.length).toBeLessThanOrEqual(MAX_PACKET_TEXT_CHARS);
    expect(decodePacket(text)).toEqual(packet);
    expect(4 * MAX_GROUP_MEMBERS + MAX_LATEST_PM + 16).toBeLessThanOrEqual(MAX_RECORDS_PER_PACKET);
  });

  it('splits greeting types into their flags', () => {
    expect(greetTypeFlags(GreetType.INIT_INITIATOR_UP)).toEqual({ initiator: true, operation: GreetOperation.START, aux: false, down: false, gka: true, ske: true });
    expect(greetTypeFlags(GreetType.INIT_PARTICIPANT_CONFIRM_DOWN)).toEqual({ initiator: false, operation: GreetOperation.START, aux: false, down: true, gka: false, ske: true });
    expect(greetTypeFlags(GreetType.EXCLUDE_AUX_INITIATOR_DOWN)).toMatchObject({ initiator: true, operation: GreetOperation.EXCLUDE, aux: true, down: true });
    expect(greetTypeFlags(GreetType.INCLUDE_AUX_PARTICIPANT_UP)).toMatchObject({ initiator: false, operation: GreetOperation.INCLUDE, down: false });
    expect(greetTypeFlags(GreetType.REFRESH_AUX_INITIATOR_DOWN)).toMatchObject({ operation: GreetOperation.REFRESH, gka: true, ske: false });
    expect(greetTypeFlags(GreetType.QUIT_DOWN)).toMatchObject({ operation: GreetOperation.QUIT, gka: false, ske: false });
  });
});

describe('data packets', () => {
  it('decodes and re-encodes', () => {
    const bytes = encodeRecords(dataRecords());
    const p = decodePacketBytes(bytes) as DataPacket;
    expect(p).toMatchObject({ kind: 'data', version: 1, sidkeyHint: 7, iv: b(12), payload: b(128) });
    expect(p.signed).toEqual(bytes.slice(5 + 68));
    expect(p.signed).toEqual(encodeDataRegion(p));
    expect(encodePacketBytes(p)).toEqual(bytes);
  });

  it('rejects bad data packets', () => {
    const d = dataRecords();
    expect(codeOf(() => decodeRecs(d.slice(1)))).toBe('bad-record'); // no SIDKEY_HINT
    expect(codeOf(() => decodeRecs(edit(d, 0, 1, rec(T.SIDKEY_HINT, b(2)))))).toBe('bad-value');
    expect(codeOf(() => decodeRecs(edit(d, 4, 1, rec(T.MESSAGE_IV, b(16)))))).toBe('bad-value');
    expect(codeOf(() => decodeRecs(edit(d, 5, 1)))).toBe('bad-record'); // no payload
    expect(codeOf(() => decodeRecs(edit(d, 5, 1, rec(T.MESSAGE_PAYLOAD, b(MAX_PADDED_PLAINTEXT_BYTES + 1)))))).toBe('too-long');
    expect(codeOf(() => decodeRecs([...d, rec(T.MESSAGE_PARENT, b(20))]))).toBe('trailing-bytes');
    expect(codeOf(() => decodeRecs(edit(d, 3, 1, rec(T.MESSAGE_TYPE, Uint8Array.of(9)))))).toBe('bad-value');
    expect(codeOf(() => decodeRecs(edit(d, 3, 1, rec(T.MESSAGE_TYPE, Uint8Array.of(3, 0)))))).toBe('bad-value');
  });
});

describe('error and query packets', () => {
  it('decodes signed and unsigned error packets', () => {
    const e = errorRecords();
    const signed = decodeRecs(e);
    expect(signed).toMatchObject({ kind: 'error', signature: b(64), source: 'alice', severity: Severity.TERMINAL, message: 'inconsistent history' });
    const unsigned = decodeRecs(e.slice(1));
    expect(unsigned).toMatchObject({ kind: 'error', signature: null, message: 'inconsistent history' });
    expect(unsigned.kind === 'error' && unsigned.signed).toEqual(encodeRecords(e.slice(1)));
    expect(encodePacketBytes(unsigned)).toEqual(encodeRecords(e.slice(1)));
  });

  it('rejects bad error packets', () => {
    const e = errorRecords();
    expect(codeOf(() => decodeRecs(edit(e, 4, 1, rec(T.SEVERITY, Uint8Array.of(3)))))).toBe('bad-value');
    expect(codeOf(() => decodeRecs(edit(e, 5, 1, rec(T.MESSAGE_PAYLOAD, Uint8Array.of(0xc3, 0x28)))))).toBe('bad-value');
    expect(codeOf(() => decodeRecs(edit(e, 5, 1, rec(T.MESSAGE_PAYLOAD, b(MAX_ERROR_TEXT_BYTES + 1, 0x41)))))).toBe('too-long');
    expect(codeOf(() => decodeRecs(edit(e, 3, 1)))).toBe('bad-record');
    const fields = { version: PROTOCOL_VERSION_1, source: memberId('a'), severity: Severity.INFO, message: 'x'.repeat(MAX_ERROR_TEXT_BYTES + 1) } as const;
    expect(codeOf(() => encodeErrorRegion(fields))).toBe('too-long');
  });

  it('decodes a query: version and type only', () => {
    const bytes = encodeRecords([rec(T.PROTOCOL_VERSION, Uint8Array.of(1)), rec(T.MESSAGE_TYPE, Uint8Array.of(MessageType.QUERY))]);
    expect(decodePacketBytes(bytes)).toEqual({ kind: 'query', version: 1 });
    expect(encodePacket({ kind: 'query', version: 1 })).toBe('?mpENC:' + base64Encode(bytes) + '.');
    expect(codeOf(() => decodePacketBytes(concatBytes(bytes, encodeRecord(T.SOURCE, ascii('a')))))).toBe('trailing-bytes');
  });

  it('needs a MESSAGE_TYPE among the first four records', () => {
    expect(codeOf(() => decodeRecs([rec(T.PROTOCOL_VERSION, Uint8Array.of(1))]))).toBe('bad-record');
    expect(codeOf(() => decodeRecs([rec(T.MESSAGE_TYPE, Uint8Array.of(0))]))).toBe('bad-value');
    const late = [rec(9, b(0)), rec(9, b(0)), rec(9, b(0)), rec(9, b(0)), rec(T.MESSAGE_TYPE, Uint8Array.of(1))];
    expect(codeOf(() => decodeRecs(late))).toBe('bad-record');
  });
});
