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
 * v1 (mpenc_js): scalar multiplications with clamped x25519 scalars commute, so applying a
 * member's contributions one by one in any order gives the same point; they cannot be
 * pre-multiplied into one clamped scalar (§5.2.1 "Updating Private Key Contributions"), hence
 * the list.
 *
 * v2 (issue 9 §3, "across subsessions"): a member keeps ONE scalar mod ℓ instead
 * (crypto/scalar.ts), and ratchets it at every completed subsession (`ratchetKey`), so that a
 * stolen state and the relay's log open no key older than the current subsession. Fresh
 * contributions stay clamped, so mixing them into the other slots is still one X25519 per slot.
 */
import type { CryptoProvider } from '../crypto/provider.js';
import { applyScalar, clampScalar, divScalars, mulScalars, powScalar, productOfClamped, scalarFromWide } from '../crypto/scalar.js';
import { assert, ProtocolError } from '../errors.js';
import type { RandomSource } from '../random.js';
import { MAX_KEY_CONTRIBUTIONS } from '../limits.js';

export type IntKey = Uint8Array | null;

/** X25519 private key contributions of one member, oldest first (v1). Secret. */
export type Contributions = readonly Uint8Array[];

/**
 * A v2 member's key (issue 9 §3): one scalar x (crypto/scalar.ts: a clamped key for a
 * newcomer's single contribution, else a value mod ℓ), and `ratchet`, the factor t of the
 * current subsession's completion (x was multiplied by it): the current INT_KEYs lack it, and
 * our next initiation adds it (`raiseOf`). Secret.
 */
export interface ScalarKey {
  readonly x: Uint8Array;
  readonly ratchet: Uint8Array | null;
}

/**
 * What a member keeps: a list (v1; and v2 states saved before issue 9 §3, which turn into a
 * scalar at their next v2 step: the product of the list mod ℓ is exactly what the list does to
 * every point the protocol multiplies) or a scalar (v2). An empty list: no contribution yet.
 */
export type OwnKey = Contributions | ScalarKey;

export function isScalarKey(key: OwnKey): key is ScalarKey {
  return !Array.isArray(key);
}

/** Whether a member has contributed (an empty list: a newcomer before its first step). */
export function hasContributed(key: OwnKey | null): key is OwnKey {
  return key !== null && (isScalarKey(key) || key.length > 0);
}

/** The v1 list; a scalar key in a v1 operation is a bug (v1 groups never make one). */
export function asList(key: OwnKey): Contributions {
  assert(!isScalarKey(key), 'a v1 operation with a v2 scalar key');
  return key;
}

/** The scalar of a key that has contributed (a saved list turns into its product mod ℓ). */
function scalarOf(key: OwnKey): Uint8Array {
  if (isScalarKey(key)) return key.x;
  assert(key.length > 0, 'scalarOf: no contribution yet');
  return key.length === 1 ? clampScalar(key[0]!) : productOfClamped(key);
}

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

export interface ScalarStep {
  /** The list to send on: n+1 slots (upflow) or n (downflow). */
  readonly intKeys: readonly IntKey[];
  readonly key: ScalarKey;
  /** The cardinal (upflow: the next member's slot) or the shared x25519 secret (downflow). */
  readonly own: Uint8Array;
}

/**
 * A v2 contributor's step (rule 1): a fresh clamped c is mixed into every other slot (one X25519
 * each), and our scalar becomes x·r. `raise` (an initiator's only: `raiseOf`) is the factor
 * every slot of the stored list lacks since the ratchet of the subsession it came from. Then r =
 * c·raise⁻¹, so that the other slots still need only c (one X25519: their owners' x already hold
 * the ratchet, and c·raise⁻¹·raise = c), and our own slot is brought up to date (two X25519).
 */
async function stepV2(crypto: CryptoProvider, random: RandomSource, intKeys: readonly IntKey[], ownIndex: number, key: OwnKey | null, raise: Uint8Array | null): Promise<ScalarStep> {
  const c = clampScalar(random(32));
  const mixed = await mixIntoOthers(crypto, intKeys, ownIndex, c);
  const prior = key === null || !hasContributed(key) ? null : scalarOf(key);
  const ownSlot = intKeys[ownIndex]!;
  if (raise === null) {
    const x = prior === null ? c : mulScalars(prior, c);
    return { intKeys: mixed, key: { x, ratchet: null }, own: await applyScalar(crypto, x, ownSlot) };
  }
  assert(prior !== null && ownSlot !== null, 'only a member with a stored list raises it');
  mixed[ownIndex] = await applyScalar(crypto, raise, ownSlot);
  const xc = mulScalars(prior, c); // our new x times raise: applied to the raw own slot
  return { intKeys: mixed, key: { x: divScalars(xc, raise), ratchet: null }, own: await applyScalar(crypto, xc, ownSlot) };
}

/** v2 upflow step: as `upflow`, with a scalar key (see stepV2). */
export async function upflowV2(crypto: CryptoProvider, random: RandomSource, intKeys: readonly IntKey[], ownIndex: number, key: OwnKey | null, raise: Uint8Array | null = null): Promise<ScalarStep> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'upflow: own index outside the list');
  const step = await stepV2(crypto, random, intKeys, ownIndex, key, raise);
  return { ...step, intKeys: [...step.intKeys, step.own] };
}

/** v2 downflow step (last contributor, or exclude / refresh initiator): `own` is the secret. */
export async function downflowV2(crypto: CryptoProvider, random: RandomSource, intKeys: readonly IntKey[], ownIndex: number, key: OwnKey | null, raise: Uint8Array | null = null): Promise<ScalarStep & { readonly intKeys: readonly Uint8Array[] }> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'downflow: own index outside the list');
  const step = await stepV2(crypto, random, intKeys, ownIndex, key, raise);
  return { ...step, intKeys: requireFull(step.intKeys) };
}

/** A v2 downflow recipient's secret: its scalar applied to its own slot. */
export async function recipientSecretV2(crypto: CryptoProvider, intKeys: readonly IntKey[], ownIndex: number, key: OwnKey): Promise<Uint8Array> {
  assert(ownIndex >= 0 && ownIndex < intKeys.length, 'recipientSecret: own index outside the list');
  const slot = intKeys[ownIndex]!;
  assert(slot !== null, 'recipientSecret: an empty slot');
  return applyScalar(crypto, scalarOf(key), slot);
}

/** HKDF info of the ratchet factor (issue 9 §3). */
const RATCHET_INFO = new TextEncoder().encode('covey ratchet');

/**
 * Issue 9 §3: when a subsession completes, every member of it multiplies its scalar by
 * t = H("covey ratchet", group key) mod ℓ and keeps t (for `raiseOf`) until its next step.
 * What is erased: the scalar that opened this subsession's key is now x·t, and getting back to
 * the one before needs the previous subsession's t, i.e. its key (circular): a stolen state
 * opens the current subsession's key, no older one. The same deterministic local step for every
 * member, whenever it processes the completion: nothing waits (rule 1).
 */
export async function ratchetKey(crypto: CryptoProvider, key: OwnKey, groupKey: Uint8Array): Promise<ScalarKey> {
  const t = scalarFromWide(await crypto.hkdfSha256(groupKey, new Uint8Array(0), RATCHET_INFO, 64));
  return { x: mulScalars(scalarOf(key), t), ratchet: t };
}

/**
 * The factor every slot of a subsession of `members` members lacks once all of them ratcheted
 * by t: slot j is the product of every x but x_j, so t^(members−1). Null when none is due.
 */
export function raiseOf(key: OwnKey, members: number): Uint8Array | null {
  if (!isScalarKey(key) || key.ratchet === null || members < 2) return null;
  return powScalar(key.ratchet, members - 1);
}

/** A complete list has a key in every slot (only the IKA initiator's upflow has an empty one). */
export function requireFull(intKeys: readonly IntKey[]): Uint8Array[] {
  return intKeys.map((k, j) => {
    if (k === null) throw new ProtocolError('bad-value', `empty INT_KEY in slot ${j} of a complete list`);
    return k;
  });
}
