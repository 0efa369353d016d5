/**
 * Randomness is an input of the engine, never a global (DESIGN.md §1): production passes the
 * provider's `randomBytes`, tests and the simulator pass a seeded source so that any run replays.
 */
import { ProtocolError } from './errors.js';

export type RandomSource = (length: number) => Uint8Array;

/**
 * Draws this long or longer are checked for repeats (issue 9 §2: "the engine refuses a random
 * source that repeats"). A data IV is 12 bytes, a nonce, a contribution or a signing seed 32:
 * two honest 12-byte draws collide with probability 2^-96, so a repeat is a broken source (a
 * stuck or replayed generator), never chance. Shorter draws (retry jitter) may repeat honestly.
 */
export const RANDOM_CHECKED_MIN_BYTES = 12;

/**
 * How many recent checked draws are remembered (a subsession's IVs and contributions as they
 * are drawn). Bounded memory (each entry: the draw's first 16 bytes as text); a source whose
 * period is longer than this many draws, or that repeats across a restart, is not seen here.
 */
export const RANDOM_REPEAT_WINDOW = 4096;

/**
 * Wraps `source` so that a draw of RANDOM_CHECKED_MIN_BYTES or more that repeats one of the last
 * RANDOM_REPEAT_WINDOW such draws, or is all zero, throws ProtocolError('bad-random'): an IV
 * used twice under one key gives away the XOR of two plaintexts (AES-CTR), a contribution drawn
 * twice gives away a group key. Nothing is sealed or sent with such a draw.
 */
export function checkedRandom(source: RandomSource): RandomSource {
  const seen = new Set<string>();
  return (length) => {
    const out = source(length);
    if (out.length !== length) throw new ProtocolError('bad-random', `random source gave ${out.length} bytes for ${length}`);
    if (length < RANDOM_CHECKED_MIN_BYTES) return out;
    let key = '';
    let zero = true;
    for (let i = 0; i < length; i++) {
      if (out[i] !== 0) zero = false;
      if (i < 16) key += String.fromCharCode(out[i]!);
    }
    if (zero) throw new ProtocolError('bad-random', `random source gave ${length} zero bytes`);
    key += `/${length}`;
    if (seen.has(key)) throw new ProtocolError('bad-random', 'random source repeated a draw: refusing to seal or contribute with it');
    seen.add(key);
    if (seen.size > RANDOM_REPEAT_WINDOW) seen.delete(seen.values().next().value!);
    return out;
  };
}
