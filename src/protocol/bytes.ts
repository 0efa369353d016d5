/**
 * Byte helpers for the pure engine. The protocol tsconfig has no DOM or Node libs, so
 * TextEncoder, atob and Buffer are out of reach here: these are small, checked replacements.
 */
import { ProtocolError } from './errors.js';

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Constant-time equality: the time depends only on the lengths, never on the contents. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Whether `list` holds bytes equal to `x`, for PUBLIC values only (keys in a subsession's
 * lists): the first byte screens out most entries before the constant-time comparison, so the
 * time depends on the contents. Never use it for secrets or MACs.
 */
export function includesPublicBytes(list: readonly Uint8Array[], x: Uint8Array): boolean {
  const first = x[0];
  for (const k of list) if (k.length === x.length && k[0] === first && bytesEqual(k, x)) return true;
  return false;
}

/** UTF-8 encode (WHATWG semantics: lone surrogates become U+FFFD). */
export function utf8Encode(text: string): Uint8Array {
  // Fast path (every message body passes here): plain ASCII is its own encoding.
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  if (ascii) {
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else cp = 0xfffd;
    } else if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return Uint8Array.from(out);
}

/** Strict UTF-8 decode: overlong forms, surrogates and truncated sequences are a ProtocolError. */
export function utf8Decode(bytes: Uint8Array): string {
  // Fast path: plain ASCII decodes to the same char codes.
  let ascii = true;
  for (let i = 0; i < bytes.length && ascii; i++) ascii = bytes[i]! < 0x80;
  if (ascii) return latin1Decode(bytes);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b0 = bytes[i]!;
    let cp: number;
    let n: number;
    if (b0 < 0x80) [cp, n] = [b0, 1];
    else if (b0 >= 0xc2 && b0 < 0xe0) [cp, n] = [b0 & 0x1f, 2];
    else if (b0 >= 0xe0 && b0 < 0xf0) [cp, n] = [b0 & 0x0f, 3];
    else if (b0 >= 0xf0 && b0 < 0xf5) [cp, n] = [b0 & 0x07, 4];
    else throw new ProtocolError('bad-value', `invalid UTF-8 lead byte at ${i}`);
    if (i + n > bytes.length) throw new ProtocolError('bad-value', 'truncated UTF-8 sequence');
    for (let k = 1; k < n; k++) {
      const b = bytes[i + k]!;
      if ((b & 0xc0) !== 0x80) throw new ProtocolError('bad-value', `invalid UTF-8 continuation at ${i + k}`);
      cp = (cp << 6) | (b & 0x3f);
    }
    const min = n === 1 ? 0 : n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw new ProtocolError('bad-value', `invalid UTF-8 code point at ${i}`);
    }
    out += String.fromCodePoint(cp);
    i += n;
  }
  return out;
}

/** Latin-1 / byte-string view, as mpenc_js member ids are (mpenc-wire.md "Framing"). */
export function latin1Encode(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new ProtocolError('bad-value', 'byte string holds a character above U+00FF');
    out[i] = c;
  }
  return out;
}

export function latin1Decode(bytes: Uint8Array): string {
  return charCodesToString(bytes);
}

/** Bytes as one flat string of char codes (a rope of += would be flattened later, at a cost). */
function charCodesToString(codes: Uint8Array): string {
  const CHUNK = 8192; // below engines' argument-count limits
  if (codes.length <= CHUNK) return String.fromCharCode.apply(null, codes as unknown as number[]);
  let out = '';
  for (let i = 0; i < codes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, codes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_CODES = Uint8Array.from(B64, (c) => c.charCodeAt(0));
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

export function base64Encode(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o++] = B64_CODES[(n >> 18) & 63]!;
    out[o++] = B64_CODES[(n >> 12) & 63]!;
    out[o++] = i + 1 < bytes.length ? B64_CODES[(n >> 6) & 63]! : 61;
    out[o++] = i + 2 < bytes.length ? B64_CODES[n & 63]! : 61;
  }
  return charCodesToString(out);
}

/** Strict canonical base64 (RFC 4648 §4, padded): anything else is a ProtocolError. */
export function base64Decode(text: string): Uint8Array {
  return base64DecodeRange(text, 0, text.length);
}

/**
 * base64Decode of `text[start, end)`, without copying the text or allocating per group, since
 * every packet passes through here (issue 8 hot paths).
 */
export function base64DecodeRange(text: string, start: number, end: number): Uint8Array {
  const length = end - start;
  if (length % 4 !== 0) throw new ProtocolError('bad-framing', 'base64 length is not a multiple of 4');
  let pad = 0;
  if (length > 0 && text.charCodeAt(end - 1) === 61) pad = text.charCodeAt(end - 2) === 61 ? 2 : 1;
  const out = new Uint8Array((length / 4) * 3 - pad);
  let o = 0;
  const full = end - (pad > 0 ? 4 : 0);
  for (let i = start; i < full; i += 4) {
    const n = (sextet(text, i) << 18) | (sextet(text, i + 1) << 12) | (sextet(text, i + 2) << 6) | sextet(text, i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (pad > 0) {
    const i = end - 4;
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    // Canonical form: the bits dropped by padding must be zero.
    if (pad === 2) {
      if ((b & 15) !== 0) throw new ProtocolError('bad-framing', 'non-canonical base64 padding bits');
      out[o] = (a << 2) | (b >> 4);
    } else {
      const c = sextet(text, i + 2);
      if ((c & 3) !== 0) throw new ProtocolError('bad-framing', 'non-canonical base64 padding bits');
      out[o] = (a << 2) | (b >> 4);
      out[o + 1] = ((b & 15) << 4) | (c >> 2);
    }
  }
  return out;
}

function sextet(text: string, i: number): number {
  const c = text.charCodeAt(i);
  const v = c < 128 ? B64_INDEX[c]! : -1;
  if (v < 0) throw new ProtocolError('bad-framing', `invalid base64 character at ${i}`);
  return v;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  return base64Encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

/**
 * Strict unpadded base64url (RFC 4648 §5): only its 64 characters, no `=`, a length that is not
 * 1 mod 4, and zero bits after the last byte; anything else is a ProtocolError ('bad-value' for a
 * foreign character, 'bad-framing' for the rest). Decoded in place,
 * without the standard-alphabet copy and padding it once went through: every relay event of a
 * catch-up passes through here (bench:catchup).
 */
export function base64UrlDecode(text: string): Uint8Array {
  const rest = text.length % 4;
  if (rest === 1) {
    // (Codes as before: a foreign character first, then the length.)
    for (let i = 0; i < text.length; i++) sextetUrl(text, i);
    throw new ProtocolError('bad-framing', 'base64url length is 1 mod 4');
  }
  const full = text.length - rest;
  const out = new Uint8Array((full / 4) * 3 + (rest === 0 ? 0 : rest - 1));
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const n = (sextetUrl(text, i) << 18) | (sextetUrl(text, i + 1) << 12) | (sextetUrl(text, i + 2) << 6) | sextetUrl(text, i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (rest > 0) {
    const a = sextetUrl(text, full);
    const b = sextetUrl(text, full + 1);
    // Canonical form: the bits after the last byte must be zero.
    if (rest === 2) {
      if ((b & 15) !== 0) throw new ProtocolError('bad-framing', 'non-canonical base64 padding bits');
      out[o] = (a << 2) | (b >> 4);
    } else {
      const c = sextetUrl(text, full + 2);
      if ((c & 3) !== 0) throw new ProtocolError('bad-framing', 'non-canonical base64 padding bits');
      out[o] = (a << 2) | (b >> 4);
      out[o + 1] = ((b & 15) << 4) | (c >> 2);
    }
  }
  return out;
}

function sextetUrl(text: string, i: number): number {
  const c = text.charCodeAt(i);
  const v = c < 128 ? B64URL_INDEX[c]! : -1;
  if (v < 0) throw new ProtocolError('bad-value', 'invalid base64url text');
  return v;
}

const HEX_CODES = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * Lower-case hex, built as one flat string: message ids are map keys encoded several times per
 * message of a catch-up, and a rope of 2-character += pieces cost ~1.4 KB of garbage per id
 * (issue 8 hot paths).
 */
export function hexEncode(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = HEX_CODES[bytes[i]! >> 4]!;
    out[2 * i + 1] = HEX_CODES[bytes[i]! & 15]!;
  }
  return charCodesToString(out);
}

export function hexDecode(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('hexDecode: invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
