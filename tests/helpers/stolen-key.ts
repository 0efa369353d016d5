/**
 * What a thief can do with a member's stored key (issue 9 §3), for the oracles and the
 * stolen-state test: every scalar it can make from it, to apply to INT_KEY slots of the log.
 * - A v1 list (and a v2 state saved before the scalar form): every prefix, i.e. every key the
 *   member held since it joined (a prefix of the list applied one by one is its product mod ℓ).
 * - A v2 scalar: x, and x·t⁻¹ (the last ratchet undone with the stored t). Going further back
 *   needs the previous subsession's t, i.e. its key: nothing stored gives it.
 */
import { divScalars, isClampedForm, productOfClamped, scalarBytes, scalarValue, splitScalar } from '../../src/protocol/crypto/scalar.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import type { OwnKey, ScalarKey } from '../../src/protocol/greeting/cliques.js';

/** (Array.isArray, not cliques.isScalarKey: this file also runs against the list-only engine.) */
const isScalar = (key: OwnKey): key is ScalarKey => !Array.isArray(key);

/** By key object (states share them; the oracles note every state): a division per key, not per note. */
const scalarsOf = new WeakMap<object, Uint8Array[]>();

export function stolenScalars(key: OwnKey): Uint8Array[] {
  let out = scalarsOf.get(key);
  if (out === undefined) {
    out = computeScalars(key);
    scalarsOf.set(key, out);
  }
  return out;
}

/** Canonical values mod ℓ (a clamped key and its value mod ℓ are one scalar: tried once). */
function computeScalars(key: OwnKey): Uint8Array[] {
  if (isScalar(key)) return key.ratchet === null ? [canonical(key.x)] : [canonical(key.x), divScalars(key.x, key.ratchet)];
  return (key as readonly Uint8Array[]).map((_, n) => productOfClamped(key.slice(0, n + 1)));
}

const canonical = (x: Uint8Array): Uint8Array => scalarBytes(scalarValue(x));

/**
 * The oracles try many scalars on many slots. Cached: each scalar's split (c1 stays imported in
 * the provider's key cache), and each slot's [c2]slot (c2 is a public constant of
 * crypto/scalar.ts, the same for nearly every scalar): one X25519 per trial, as a list's was.
 */
const splits = new Map<string, [Uint8Array, Uint8Array]>();
const inners = new Map<string, Uint8Array>();
const MAX_CACHED = 8192;

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function cachedSet<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_CACHED) map.clear();
  map.set(key, value);
  return value;
}

/**
 * [x]slot (what crypto/scalar.ts applyScalar computes), or null for a slot X25519 refuses
 * (small order: nothing to learn from it).
 */
export async function tryScalar(crypto: CryptoProvider, scalar: Uint8Array, slot: Uint8Array): Promise<Uint8Array | null> {
  try {
    if (isClampedForm(scalar)) return await crypto.x25519(scalar, slot);
    const hex = hexOf(scalar);
    const [c1, c2] = splits.get(hex) ?? cachedSet(splits, hex, splitScalar(scalar));
    const innerKey = `${hexOf(slot)}:${hexOf(c2)}:${crypto.name}`;
    const inner = inners.get(innerKey) ?? cachedSet(inners, innerKey, await crypto.x25519(c2, slot));
    return await crypto.x25519(c1, inner);
  } catch (e) {
    if (isProtocolError(e)) return null;
    throw e;
  }
}
