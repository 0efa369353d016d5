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

  it('base64url matches Node and refuses padding, foreign characters, a length of 1 mod 4 and non-zero trailing bits', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      expect(base64UrlDecode(Buffer.from(b).toString('base64url'))).toEqual(b);
    }));
    const codes: Record<string, string> = { QQ: 'ok', 'QQ==': 'bad-value', 'Q+': 'bad-value', 'Q/': 'bad-value', 'QUJD.': 'bad-value', 'QUJD\n': 'bad-value', Q: 'bad-framing', QUJDR: 'bad-framing', 'QUJD*': 'bad-value', QR: 'bad-framing', QUI: 'ok', QUJ: 'bad-framing', 'é': 'bad-value' };
    for (const [text, code] of Object.entries(codes)) {
      let got = 'ok';
      try {
        base64UrlDecode(text);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        got = (e as ProtocolError).code;
      }
      expect([text, got]).toEqual([text, code]);
    }
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
