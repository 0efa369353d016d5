import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  base64Decode, base64Encode, base64UrlDecode, base64UrlEncode, bytesEqual, utf8Decode, utf8Encode,
} from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';

describe('bytes helpers', () => {
  it('base64 round-trips and matches Node', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const text = base64Encode(b);
      expect(text).toBe(Buffer.from(b).toString('base64'));
      expect(base64Decode(text)).toEqual(b);
      expect(base64UrlDecode(base64UrlEncode(b))).toEqual(b);
    }));
  });

  it('rejects non-canonical base64 with a ProtocolError', () => {
    for (const bad of ['QQ', 'QR==', 'Q===', 'QQ=A', '****', 'QUJD\n']) {
      expect(() => base64Decode(bad)).toThrow(ProtocolError);
    }
  });

  it('utf8 matches TextEncoder/TextDecoder on valid strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
      const bytes = utf8Encode(s);
      expect(bytes).toEqual(new TextEncoder().encode(s));
      expect(utf8Decode(bytes)).toBe(s);
    }));
  });

  it('utf8 decode rejects invalid sequences', () => {
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0xf4, 0x90, 0x80, 0x80]]) {
      expect(() => utf8Decode(Uint8Array.from(bad))).toThrow(ProtocolError);
    }
  });

  it('bytesEqual compares contents and lengths', () => {
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 0))).toBe(false);
  });
});
