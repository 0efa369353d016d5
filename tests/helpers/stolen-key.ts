/**
 * What a thief can do with a member's stored key (issue 9 §3), for the oracles and the
 * stolen-state test: every scalar it can make from it, to apply to INT_KEY slots of the log.
 * - A v1 list (and a v2 state saved before the scalar form): every prefix, i.e. every key the
 *   member held since it joined (a prefix of the list applied one by one is its product mod ℓ).
 * - A v2 scalar: x, and x·t⁻¹ (the last ratchet undone with the stored t). Going further back
 *   needs the previous subsession's t, i.e. its key: nothing stored gives it.
 */
import { applyScalar, divScalars, productOfClamped } from '../../src/protocol/crypto/scalar.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import type { OwnKey, ScalarKey } from '../../src/protocol/greeting/cliques.js';

/** (Array.isArray, not cliques.isScalarKey: this file also runs against the list-only engine.) */
const isScalar = (key: OwnKey): key is ScalarKey => !Array.isArray(key);

export function stolenScalars(key: OwnKey): Uint8Array[] {
  if (isScalar(key)) return key.ratchet === null ? [key.x] : [key.x, divScalars(key.x, key.ratchet)];
  return (key as readonly Uint8Array[]).map((_, n) => productOfClamped(key.slice(0, n + 1)));
}

/** [x]slot, or null for a slot X25519 refuses (small order: nothing to learn from it). */
export async function tryScalar(crypto: CryptoProvider, scalar: Uint8Array, slot: Uint8Array): Promise<Uint8Array | null> {
  try {
    return await applyScalar(crypto, scalar, slot);
  } catch (e) {
    if (isProtocolError(e)) return null;
    throw e;
  }
}
