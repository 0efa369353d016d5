/** Input checks shared by both crypto providers. */
import { ProtocolError } from '../errors.js';

/** Web Crypto's getRandomValues refuses more than 65536 bytes in one call. */
export const MAX_RANDOM_BYTES_PER_CALL = 65536;

export function checkKey(key: Uint8Array, length: number, what: string): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${what}: expected Uint8Array`);
  if (key.length !== length) {
    throw new ProtocolError('bad-key', `${what}: expected ${length} bytes, got ${key.length}`);
  }
}

/** Constant-time with respect to the contents (every byte is read). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}
