/**
 * CLIQUES group Diffie-Hellman on x25519 (mpENC §5.2.1; mpenc-wire.md "CLIQUES"): IKA upflow and
 * downflow, and the AKA steps for include, exclude and refresh. Pure functions over the injected
 * CryptoProvider and RandomSource; no state of their own.
 *
 * Invariant of an intermediate-key list `intKeys` for members `m[0..n)`: slot j holds the
 * product of every contribution made so far EXCEPT member j's own ones (mpENC §5.2.1 "each of
 * them lacking the private contribution of exactly one participant"). `null` is an empty slot,
 * i.e. the base point G (only the IKA initiator's own slot is ever empty on the wire).
 *
 * Scalar multiplications with clamped x25519 scalars commute, so applying a member's
 * contributions one by one in any order gives the same point; they cannot be pre-multiplied
 * into one scalar (§5.2.1 "Updating Private Key Contributions"), hence the list.
 */
import type { CryptoProvider } from '../crypto/provider.js';
import { assert, ProtocolError } from '../errors.js';
import type { RandomSource } from '../random.js';
import { MAX_KEY_CONTRIBUTIONS } from '../limits.js';

export type IntKey = Uint8Array | null;

/** X25519 private key contributions of one member, oldest first. Secret. */
export type Contributions = readonly Uint8Array[];

export interface UpflowResult {
  /** The list to send on: n+1 slots (the new cardinal appended for the next member). */
  readonly intKeys: readonly IntKey[];
  readonly contributions: Contributions;
}

export interface DownflowResult {
  /** The complete list to broadcast: one slot per member. */
  readonly intKeys: readonly Uint8Array[];
  readonly contributions: Contributions;
  /** The shared x25519 secret (input of the group key KDF). Secret. */
  readonly secret: Uint8Array;
}

/** x·P, where an empty slot stands for the base point. Throws 'low-order-point' on all-zero. */
async function mul(crypto: CryptoProvider, scalar: Uint8Array, point: IntKey): Promise<Uint8Array> {
  return point === null ? crypto.x25519PublicKey(scalar) : crypto.x25519(scalar, point);
}

/** Applies every contribution in turn to `point` (the member's own slot). */
export async function applyContributions(crypto: CryptoProvider, contributions: Contributions, point: IntKey): Promise<Uint8Array> {
  assert(contributions.length > 0, 'applyContributions needs at least one contribution');
  let acc = point;
  for (const x of contributions) acc = await mul(crypto, x, acc);
  assert(acc !== null, 'applyContributions produced no point');
  return acc;
}

/** Fresh contribution: a new x25519 private key appended to the member's list. */
function freshContributions(random: RandomSource, contributions: Contributions): { fresh: Uint8Array; all: Contributions } {
  if (contributions.length >= MAX_KEY_CONTRIBUTIONS) {
    throw new ProtocolError('limit-exceeded', `more than ${MAX_KEY_CONTRIBUTIONS} key contributions: start the group again`);
  }
  const fresh = random(32);
  assert(fresh.length === 32, 'random source returned the wrong length');
  return { fresh, all: [...contributions, fresh] };
}

/** Multiplies every slot except `ownIndex` by `fresh`. */
async function mixIntoOthers(crypto: CryptoProvider, intKeys: readonly IntKey[], ownIndex: number, fresh: Uint8Array): Promise<IntKey[]> {
  const out: IntKey[] = [];
  for (let j = 0; j < intKeys.length; j++) out.push(j === ownIndex ? intKeys[j]! : await mul(crypto, fresh, intKeys[j]!));
  return out;
}

/**
 * One upflow step by the member at `ownIndex` (the last slot of `intKeys`), who is not the last
 * member: mix a fresh contribution into the other slots, keep its own slot, and append the
 * cardinal (all its contributions applied to its own slot) as the next member's slot.
 * IKA start: intKeys = [null], contributions = [] (mpENC §5.2.1 "Upflow").
 * AKA include initiator: intKeys = the current list, contributions = its list (§5.2.1 "Member
 * Inclusion": the cardinal needs the old contributions too, so joiners cannot learn the old key).
 */
export async function upflow(crypto: CryptoProvider, random: RandomSource, intKeys: readonly IntKey[], ownIndex: number, contributions: Contributions): Promise<UpflowResult> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'upflow: own index outside the list');
  const { fresh, all } = freshContributions(random, contributions);
  const mixed = await mixIntoOthers(crypto, intKeys, ownIndex, fresh);
  const cardinal = await applyContributions(crypto, all, intKeys[ownIndex]!);
  return { intKeys: [...mixed, cardinal], contributions: all };
}

/**
 * The step that ends the upflow (the last member of IKA or include), or an exclude / refresh
 * initiator's only step (mpENC §5.2.1 "Downflow", "Member Exclusion", "Key Refresh"): mix a fresh
 * contribution into the other slots and keep the full cardinal as the group secret.
 */
export async function downflow(crypto: CryptoProvider, random: RandomSource, intKeys: readonly IntKey[], ownIndex: number, contributions: Contributions): Promise<DownflowResult> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'downflow: own index outside the list');
  const { fresh, all } = freshContributions(random, contributions);
  const mixed = await mixIntoOthers(crypto, intKeys, ownIndex, fresh);
  const secret = await applyContributions(crypto, all, intKeys[ownIndex]!);
  return { intKeys: requireFull(mixed), contributions: all, secret };
}

/** A downflow recipient's secret: its contributions applied to its own slot. */
export async function recipientSecret(crypto: CryptoProvider, intKeys: readonly IntKey[], ownIndex: number, contributions: Contributions): Promise<Uint8Array> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'recipientSecret: own index outside the list');
  return applyContributions(crypto, contributions, intKeys[ownIndex]!);
}

/** A complete list has a key in every slot (only the IKA initiator's upflow has an empty one). */
export function requireFull(intKeys: readonly IntKey[]): Uint8Array[] {
  return intKeys.map((k, j) => {
    if (k === null) throw new ProtocolError('bad-value', `empty INT_KEY in slot ${j} of a complete list`);
    return k;
  });
}
