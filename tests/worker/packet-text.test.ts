/**
 * The worker reads each relay event's packet text with the platform's strict UTF-8 decoder
 * (src/worker/conversation.ts PACKET_TEXT) instead of the engine's utf8Decode: both must give
 * the same text for every byte string, and refuse the same ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from '../../src/protocol/bytes.js';
import { PACKET_TEXT } from '../../src/worker/conversation.js';

const read = (decode: (bytes: Uint8Array) => string, bytes: Uint8Array): string | null => {
  try {
    return decode(bytes);
  } catch {
    return null;
  }
};
const same = (bytes: Uint8Array) => expect(read((b) => PACKET_TEXT.decode(b), bytes), Array.from(bytes, (b) => b.toString(16)).join(' ')).toBe(read(utf8Decode, bytes));

/** Sequences at the edges of well-formed UTF-8 (Unicode Table 3-7). */
const EDGES: readonly number[][] = [
  [0xef, 0xbb, 0xbf], // BOM: kept as U+FEFF by both
  [0xc0, 0x80], [0xc1, 0xbf], [0xc2, 0x80], [0xdf, 0xbf], // overlong 2-byte forms, then the first and last good ones
  [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xe0, 0xa0, 0x80], // overlong 3-byte, then the first good
  [0xed, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xee, 0x80, 0x80], // around the surrogates
  [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf0, 0x90, 0x80, 0x80], // overlong 4-byte, then the first good
  [0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xff], // U+10FFFF, past it
  [0x80], [0xbf], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc2], // stray continuation, truncated
  [0x00], [0x7f], [0x3f, 0x6d, 0x70, 0x45, 0x4e, 0x43, 0x3a], // ASCII ("?mpENC:")
];

describe('packet text of a relay event', () => {
  it('every edge sequence, alone and between ASCII, reads as utf8Decode reads it', () => {
    for (const edge of EDGES) {
      same(Uint8Array.from(edge));
      same(Uint8Array.from([0x41, ...edge, 0x42]));
      same(Uint8Array.from([...edge, ...edge]));
    }
  });

  it('random byte strings and mixes of edges and text read the same (fast-check)', () => {
    const piece = fc.oneof(fc.constantFrom(...EDGES), fc.string({ unit: 'grapheme' }).map((s) => [...utf8Encode(s)]), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }));
    fc.assert(fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
      same(Uint8Array.from(pieces.flat()));
    }), { numRuns: 3000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      same(bytes);
    }), { numRuns: 3000 });
  });

  it('a well-formed packet text comes back as it was sent', () => {
    const text = '?mpENC:' + 'QUJD'.repeat(50) + '.';
    expect(PACKET_TEXT.decode(utf8Encode(text))).toBe(text);
    expect(PACKET_TEXT.decode(utf8Encode('\ufeffé😀'))).toBe('\ufeffé😀');
  });
});
