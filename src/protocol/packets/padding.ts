/**
 * Plaintext padding of data packets (mpENC §5.3 "Padding"; mpenc-wire.md "Data packets"):
 * u16be(len(R)) ‖ R ‖ zero bytes, to 128 × 2^ceil(log2(ceil((len(R)+2)/128))) bytes.
 * It hides the low bits of a message's length; the length itself is not secret.
 */
import { ProtocolError } from '../errors.js';
import { MAX_PADDED_PLAINTEXT_BYTES } from '../codec/limits.js';

/** mpENC §5.3: most chat messages fit, and it is a multiple of the 16-byte AES block. */
export const PADDING_BASELINE_BYTES = 128;
/** The u16 length prefix. */
const LENGTH_PREFIX_BYTES = 2;
/** Largest R that pads into MAX_PADDED_PLAINTEXT_BYTES. */
export const MAX_UNPADDED_BYTES = MAX_PADDED_PLAINTEXT_BYTES - LENGTH_PREFIX_BYTES;

/** Padded size for content of `contentLength` bytes. */
export function paddedLength(contentLength: number): number {
  if (!Number.isInteger(contentLength) || contentLength < 0) throw new RangeError(`bad content length ${contentLength}`);
  let size = PADDING_BASELINE_BYTES;
  while (size < contentLength + LENGTH_PREFIX_BYTES) size *= 2;
  return size;
}

export function pad(content: Uint8Array): Uint8Array {
  if (content.length > MAX_UNPADDED_BYTES) {
    throw new ProtocolError('too-long', `plaintext of ${content.length} bytes exceeds ${MAX_UNPADDED_BYTES}`);
  }
  const out = new Uint8Array(paddedLength(content.length));
  out[0] = content.length >> 8;
  out[1] = content.length & 0xff;
  out.set(content, LENGTH_PREFIX_BYTES);
  return out;
}

/**
 * Strict inverse of `pad`: the size must be the one `pad` picks for the stated length, and the
 * padding must be zero, so each plaintext has exactly one padded form.
 */
export function unpad(padded: Uint8Array): Uint8Array {
  return unpaddedView(padded).slice();
}

/** `unpad` as a view into `padded` (no copy: the caller copies what it keeps, then wipes). */
export function unpaddedView(padded: Uint8Array): Uint8Array {
  if (padded.length < PADDING_BASELINE_BYTES || padded.length > MAX_PADDED_PLAINTEXT_BYTES) {
    throw new ProtocolError('bad-padding', `padded size ${padded.length} out of range`);
  }
  const length = (padded[0]! << 8) | padded[1]!;
  if (length > padded.length - LENGTH_PREFIX_BYTES || paddedLength(length) !== padded.length) {
    throw new ProtocolError('bad-padding', `length ${length} does not match padded size ${padded.length}`);
  }
  let nonZero = 0;
  for (let i = LENGTH_PREFIX_BYTES + length; i < padded.length; i++) nonZero |= padded[i]!;
  if (nonZero !== 0) throw new ProtocolError('bad-padding', 'padding bytes are not zero');
  return padded.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + length);
}
