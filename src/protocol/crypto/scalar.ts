/**
 * Scalars mod ℓ for Covey v2 key contributions (issue 9 §3, "across subsessions").
 *
 * mpENC §5.2.1 keeps a LIST of a member's x25519 contributions, because clamped X25519 scalars
 * "cannot be pre-multiplied": the product of two clamped scalars is not a clamped scalar. With
 * the list, a stolen state and the relay's greeting log give back every group key since the
 * member joined. Here a v2 member keeps ONE scalar x mod ℓ (ℓ = the prime order of the
 * Curve25519 base point), which can be multiplied, divided and ratcheted (greeting/cliques.ts),
 * and is applied with two ordinary X25519 calls (so the WebCrypto fast path still serves):
 *
 *   [x]P = X25519(c1, X25519(c2, P)),   c2 a public clamped constant,  c1 = ±x·c2⁻¹ mod ℓ,
 *                                       also a clamped value.
 *
 * Why it is right, for every P the protocol multiplies (a point of order ℓ: G times products of
 * clamped scalars, or a point after a clamped multiplication):
 * - a clamped scalar is 2^254 + 8k (0 ≤ k < 2^251); multiplying by it kills any small-order
 *   (torsion) component, so X25519(c2, P) lies in the subgroup of order ℓ, where only the scalar
 *   mod ℓ matters: [c1]([c2]P) = [c1·c2 mod ℓ]P = [±x]P;
 * - X25519 returns the u-coordinate only, which [x]P and [−x]P share: the sign is free, and one
 *   of ±x·c2⁻¹ always has the clamped form (the two k values sum to −2^252 ≡ ℓ − 2^252 mod ℓ, a
 *   number of 125 bits, so if one is ≥ 2^251 the other is < 2^251, except in a band of width
 *   2^126 out of 2^252: then the next constant c2 is tried).
 *
 * A stored scalar is 32 bytes little-endian, in one of two forms told apart by bit 254: a clamped
 * X25519 private key (a newcomer's single contribution: applied with one X25519, as before), or a
 * canonical value mod ℓ (< 2^253). Pure; @noble/curves' scalar field does the arithmetic.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '../bytes.js';
import { assert } from '../errors.js';
import type { CryptoProvider } from './provider.js';

const Fn = ed25519.Point.Fn;

/** ℓ = 2^252 + 27742317777372353535851937790883648493. */
export const SCALAR_ORDER: bigint = Fn.ORDER;

export const SCALAR_BYTES = 32;

const TWO_254 = 1n << 254n;
const TWO_251 = 1n << 251n;
const INV_8 = Fn.inv(8n);

/**
 * Inner factors c2 tried before giving up (SPLIT_BASES). One fails for a given x with
 * probability about 2^-126 (see above), so a second is already only a guard; four failures in a
 * row mean a bug, not bad luck.
 */
export const MAX_SPLIT_ATTEMPTS = 4;

/** RFC 7748 §5 clamping, on a copy. */
export function clampScalar(bytes: Uint8Array): Uint8Array {
  assert(bytes.length === SCALAR_BYTES, 'clampScalar: 32 bytes');
  const out = Uint8Array.from(bytes);
  out[0]! &= 248;
  out[31]! &= 127;
  out[31]! |= 64;
  return out;
}

/** Whether a stored scalar is in the clamped form (bit 254 set; a value mod ℓ is < 2^253). */
export function isClampedForm(scalar: Uint8Array): boolean {
  return scalar.length === SCALAR_BYTES && (scalar[31]! & 0x40) !== 0 && (scalar[0]! & 7) === 0 && (scalar[31]! & 0x80) === 0;
}

/** The value mod ℓ of a stored scalar (either form). Never 0: a zero scalar is a bug. */
export function scalarValue(scalar: Uint8Array): bigint {
  assert(scalar.length === SCALAR_BYTES, 'scalarValue: 32 bytes');
  const n = bytesToNumberLE(scalar);
  if (isClampedForm(scalar)) return Fn.create(n);
  assert(n > 0n && n < SCALAR_ORDER, 'a stored scalar mod ℓ is canonical and not zero');
  return n;
}

/** The canonical 32-byte form of a value mod ℓ. */
export function scalarBytes(value: bigint): Uint8Array {
  const v = Fn.create(value);
  assert(v !== 0n, 'a zero scalar');
  return numberToBytesLE(v, SCALAR_BYTES);
}

export function mulScalars(a: Uint8Array, b: Uint8Array): Uint8Array {
  return scalarBytes(Fn.mul(scalarValue(a), scalarValue(b)));
}

/** a · b⁻¹ mod ℓ. */
export function divScalars(a: Uint8Array, b: Uint8Array): Uint8Array {
  return scalarBytes(Fn.div(scalarValue(a), scalarValue(b)));
}

/** a^e mod ℓ (e ≥ 0). */
export function powScalar(a: Uint8Array, e: number): Uint8Array {
  assert(Number.isInteger(e) && e >= 0, 'powScalar: a natural exponent');
  return scalarBytes(Fn.pow(scalarValue(a), BigInt(e)));
}

/**
 * A value mod ℓ from 64 uniform bytes (wide reduction, as Ed25519 does: bias < 2^-259).
 * A zero result (probability 2^-252) becomes 1, so that the function is total.
 */
export function scalarFromWide(bytes: Uint8Array): Uint8Array {
  assert(bytes.length === 64, 'scalarFromWide: 64 bytes');
  const v = Fn.create(bytesToNumberLE(bytes));
  return scalarBytes(v === 0n ? 1n : v);
}

/** The product of clamped X25519 scalars, mod ℓ: what applying them one by one does to a point of order ℓ. */
export function productOfClamped(list: readonly Uint8Array[]): Uint8Array {
  assert(list.length > 0, 'productOfClamped: at least one scalar');
  let acc = 1n;
  for (const c of list) acc = Fn.mul(acc, Fn.create(bytesToNumberLE(clampScalar(c))));
  return scalarBytes(acc);
}

/**
 * The inner factors c2: public constants (clamp(SHA-256("covey scalar split" ‖ attempt))), one
 * per attempt. c2 need not be secret: [c2]P is computable by anyone from the public P; only c1
 * = ±x·c2⁻¹ carries x. A constant c2 keeps its imported WebCrypto key cached, so applying a
 * fresh scalar costs one private-key import (c1) instead of two (an import is a scalar
 * multiplication: select.ts "no cache").
 */
const SPLIT_BASES: readonly { readonly c2: Uint8Array; readonly inverse: bigint }[] = Array.from({ length: MAX_SPLIT_ATTEMPTS }, (_, attempt) => {
  const c2 = clampScalar(sha256(concatBytes(new TextEncoder().encode('covey scalar split'), Uint8Array.of(attempt))));
  return { c2, inverse: Fn.inv(Fn.create(bytesToNumberLE(c2))) };
});

/** Two clamped scalars [c1, c2] with c1·c2 ≡ ±x (mod ℓ); c2 is a public constant (SPLIT_BASES). */
export function splitScalar(scalar: Uint8Array): [Uint8Array, Uint8Array] {
  const x = scalarValue(scalar);
  for (const { c2, inverse } of SPLIT_BASES) {
    const t = Fn.mul(x, inverse);
    for (const target of [t, Fn.neg(t)]) {
      // 2^254 + 8k ≡ target (mod ℓ)  ⇔  k ≡ (target − 2^254) / 8.
      const k = Fn.mul(Fn.sub(target, Fn.create(TWO_254)), INV_8);
      if (k < TWO_251) return [numberToBytesLE(TWO_254 + 8n * k, SCALAR_BYTES), c2];
    }
  }
  assert(false, `no clamped split of a scalar in ${MAX_SPLIT_ATTEMPTS} attempts`);
}

/**
 * [x]P with X25519 only (`point` null: the base point). One call for a clamped-form scalar, two
 * otherwise. Throws ProtocolError('low-order-point') as X25519 does for a small-order P.
 * c1 carries x: the provider forgets it at once (a key cache would otherwise keep a secret the
 * ratchet means to erase).
 */
export async function applyScalar(crypto: CryptoProvider, scalar: Uint8Array, point: Uint8Array | null): Promise<Uint8Array> {
  if (isClampedForm(scalar)) return point === null ? crypto.x25519PublicKey(scalar) : crypto.x25519(scalar, point);
  const [c1, c2] = splitScalar(scalar);
  const inner = point === null ? await crypto.x25519PublicKey(c2) : await crypto.x25519(c2, point);
  try {
    return await crypto.x25519(c1, inner);
  } finally {
    crypto.forgetKeys([c1]);
  }
}
