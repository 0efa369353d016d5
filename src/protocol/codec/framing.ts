/**
 * Packet text framing (mpENC §5.4; mpenc-wire.md "Framing"): "?mpENC:" + base64(records) + ".".
 * Text not starting with "?mpENC" is plain text, which Covey never treats as a packet.
 */
import { base64DecodeRange, base64Encode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { MPENC_PACKET_PREFIX, MPENC_PACKET_SUFFIX, MPENC_PREFIX } from './constants.js';
import { MAX_PACKET_BYTES, MAX_PACKET_TEXT_CHARS } from './limits.js';

export function isMpencText(text: string): boolean {
  return text.startsWith(MPENC_PREFIX);
}

export function frame(bytes: Uint8Array): string {
  return MPENC_PACKET_PREFIX + base64Encode(bytes) + MPENC_PACKET_SUFFIX;
}

/** The record bytes of a packet text. The length is checked before any decoding work. */
export function unframe(text: string): Uint8Array {
  if (typeof text !== 'string') throw new ProtocolError('bad-framing', 'packet is not text');
  if (!isMpencText(text)) throw new ProtocolError('not-mpenc', 'text does not start with "?mpENC"');
  if (text.length > MAX_PACKET_TEXT_CHARS) {
    throw new ProtocolError('too-long', `packet text of ${text.length} characters exceeds ${MAX_PACKET_TEXT_CHARS}`);
  }
  if (!text.startsWith(MPENC_PACKET_PREFIX) || !text.endsWith(MPENC_PACKET_SUFFIX) || text.length < 8) {
    throw new ProtocolError('bad-framing', 'expected "?mpENC:" + base64 + "."');
  }
  const bytes = base64DecodeRange(text, MPENC_PACKET_PREFIX.length, text.length - MPENC_PACKET_SUFFIX.length);
  if (bytes.length === 0) throw new ProtocolError('bad-framing', 'empty packet');
  if (bytes.length > MAX_PACKET_BYTES) throw new ProtocolError('too-long', `packet of ${bytes.length} bytes`);
  return bytes;
}
