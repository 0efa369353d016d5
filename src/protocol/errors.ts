/**
 * Typed, survivable errors for untrusted input (STYLE.md §3).
 *
 * A peer (or a relay) can send us anything; whatever it sends must end as a value or as a
 * `ProtocolError` carrying one of these codes, never as another exception. Programmer errors
 * (broken invariants) are not ProtocolErrors: they go through `assert` and crash loudly.
 */

export type ProtocolErrorCode =
  // Codec: framing and records (mpenc-wire.md "Framing").
  | 'not-mpenc' // text does not start with "?mpENC:"
  | 'bad-framing' // no final ".", bad base64, or input too large
  | 'truncated' // a record header or value runs past the end of the input
  | 'trailing-bytes' // bytes left over after a complete structure
  | 'too-long' // a value or a count exceeds its named limit
  | 'bad-record' // unexpected record type, order, or a missing mandatory record
  | 'bad-value' // a record value of the wrong size or with an invalid content
  | 'unsupported-version'
  // Crypto.
  | 'bad-signature'
  | 'bad-key' // wrong key length, non-canonical or otherwise unusable key
  | 'low-order-point' // x25519 input of small order / all-zero shared secret (RFC 7748 §6.1)
  | 'decrypt-failed'
  | 'bad-padding'
  // Protocol state.
  | 'unexpected-packet' // valid packet, but not one the current state can take
  | 'unknown-member'
  | 'replay'
  | 'key-published' // signed with an ephemeral key its owner published (deniability, mpENC §6.1.1)
  | 'inconsistent' // chain hash or transcript disagreement
  | 'limit-exceeded'
  // Local actions (not peer input): the user asked for something the session cannot do now.
  | 'invalid-state'
  // Restored from a saved state: it may be older than what we already sent (a fork of our own
  // line), so nothing is authored until the session has caught up with the channel head.
  | 'stale-snapshot'
  // The random source repeated itself (random.ts checkedRandom): nothing is sealed with it.
  | 'bad-random';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** Raised on broken invariants: a bug in Covey, not bad input. Never catch it. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
