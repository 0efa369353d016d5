/**
 * Small shared pieces of the membership machine: effect builders, comparisons, the greeting
 * field builder and the packet-type tables. No state of its own; imported by every step file.
 */
import { bytesEqual, hexDecode, hexEncode } from '../bytes.js';
import { GreetType, PROTOCOL_VERSION_2, type ProtocolVersion } from '../codec/constants.js';
import type { GreetingFields } from '../codec/greeting.js';
import type { MemberId } from '../ids.js';
import { MAX_REMEMBERED_GREETINGS, MAX_RECENT_SUBSESSIONS } from '../limits.js';
import type { IntKey } from './cliques.js';
import type {
  DueSends,
  FailureReason,
  MembershipEffect,
  MembershipEnv,
  MembershipState,
  Operation,
  OperationKind,
  SigningKeyPair,
  Subsession,
  WarningCode,
} from './types.js';

export type Effects = MembershipEffect[];

/** Initial greeting types and their operation (mpenc-wire.md greeting table; INIT bit set). */
export const INITIAL_KIND: ReadonlyMap<number, OperationKind> = new Map([
  [GreetType.INIT_INITIATOR_UP, 'start'],
  [GreetType.INCLUDE_AUX_INITIATOR_UP, 'include'],
  [GreetType.EXCLUDE_AUX_INITIATOR_DOWN, 'exclude'],
  [GreetType.REFRESH_AUX_INITIATOR_DOWN, 'refresh'],
]);
export const UPFLOW_TYPE: Partial<Record<OperationKind, GreetType>> = { start: GreetType.INIT_PARTICIPANT_UP, include: GreetType.INCLUDE_AUX_PARTICIPANT_UP };
export const DOWNFLOW_TYPE: Partial<Record<OperationKind, GreetType>> = { start: GreetType.INIT_PARTICIPANT_DOWN, include: GreetType.INCLUDE_AUX_PARTICIPANT_DOWN };
export const CONFIRM_TYPE: Record<OperationKind, GreetType> = {
  start: GreetType.INIT_PARTICIPANT_CONFIRM_DOWN,
  include: GreetType.INCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN,
  exclude: GreetType.EXCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN,
  refresh: GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN,
};
export const CONFIRM_TYPES: ReadonlySet<number> = new Set(Object.values(CONFIRM_TYPE));

export const NO_DUE: DueSends = { contribute: false, confirm: false, abort: null, rejoin: false, refreshCheck: false };

export function greeting(
  greetType: GreetType,
  source: MemberId,
  dest: MemberId | null,
  members: readonly MemberId[],
  intKeys: readonly IntKey[],
  nonces: readonly Uint8Array[],
  pubKeys: readonly Uint8Array[],
  extra: Partial<GreetingFields>,
  version: 1 | 2 = 2,
): GreetingFields {
  return { version: version as ProtocolVersion, greetType, source, dest, members, intKeys, nonces, pubKeys, ...extra };
}

export async function newSigningKey(env: MembershipEnv): Promise<SigningKeyPair> {
  const seed = env.random(32);
  return { seed, pub: await env.crypto.ed25519PublicKey(seed) };
}

/** Issue 9 §3: the members' signing keys in `sub` now (renewed by their confirmations). */
export function signingKeysOf(sub: Subsession): readonly Uint8Array[] {
  return sub.signingKeys ?? sub.ephemeralPubKeys;
}

/** Whether `key` is `member`'s listed or renewed signing key in `sub`. */
export function isKeyOf(sub: Subsession, member: MemberId, key: Uint8Array): boolean {
  const i = sub.members.indexOf(member);
  return i >= 0 && (bytesEqual(sub.ephemeralPubKeys[i]!, key) || bytesEqual(signingKeysOf(sub)[i]!, key));
}

/** Our key pair whose public key is `pub` (the newest, or an older one we still hold). */
export function ownKeyPair(s: MembershipState, pub: Uint8Array): SigningKeyPair | undefined {
  if (s.ephemeral !== null && bytesEqual(s.ephemeral.pub, pub)) return s.ephemeral;
  if (s.renewal != null && bytesEqual(s.renewal.pair.pub, pub)) return s.renewal.pair;
  return s.ownKeys?.find((k) => bytesEqual(k.pub, pub));
}

/** Whether its owner published `key` (deniability): nothing signed with it counts any more. */
export function isRevoked(s: MembershipState, key: Uint8Array): boolean {
  return s.revoked !== undefined && s.revoked.includes(hexEncode(key));
}

/**
 * Issue 9 §3: keeps of our older keys (and of the revoked ones) only those a kept subsession or
 * the ongoing operation still lists as ours (resp. anyone's): nothing else can ask for them, so
 * both lists stay bounded by the kept subsessions (MAX_RECENT_SUBSESSIONS).
 */
export function pruneKeys(s: MembershipState): MembershipState {
  const subs = s.current === null ? s.recent : [...s.recent, s.current];
  const listed = (key: Uint8Array, member: MemberId | null) =>
    subs.some((sub) => (member === null ? sub.members.some((m) => isKeyOf(sub, m, key)) : isKeyOf(sub, member, key))) ||
    (s.op !== null && s.op.pubKeys.some((k) => bytesEqual(k, key)));
  const ownKeys = (s.ownKeys ?? []).filter((k) => listed(k.pub, s.self) && (s.ephemeral === null || !bytesEqual(k.pub, s.ephemeral.pub)));
  const revoked = (s.revoked ?? []).filter((h) => listed(hexDecode(h), null));
  const same = ownKeys.length === (s.ownKeys?.length ?? 0) && revoked.length === (s.revoked?.length ?? 0);
  return same ? s : { ...s, ownKeys, revoked };
}

export function versionOf(v: number): 1 | 2 {
  return v === PROTOCOL_VERSION_2 ? 2 : 1;
}

/**
 * The members who contribute to an operation (async-groups rule 1): everyone in a start, the
 * initiator and the newcomers in an include (they come after the old members), the initiator
 * alone in an exclude or refresh.
 */
export function contributorsOf(op: Pick<Operation, 'kind' | 'members' | 'initiator'>, oldCount: number): MemberId[] {
  if (op.kind === 'start') return [...op.members];
  if (op.kind === 'include') return [op.initiator, ...op.members.slice(oldCount)];
  return [op.initiator];
}

/** Members whose turn has not come yet in a start or include (empty once the downflow is out). */
export function awaitedContributors(op: Operation): MemberId[] {
  return op.nextIndex < 0 ? [] : op.members.slice(op.nextIndex);
}

export function failed(op: Operation, reason: FailureReason): Extract<MembershipEffect, { kind: 'operation-failed' }> {
  return { kind: 'operation-failed', operation: op.kind, reason, opRef: op.opRef };
}

export function warn(fx: Effects, code: WarningCode, member: MemberId | null, message: string): void {
  fx.push({ kind: 'warning', code, member, message });
}

/**
 * Signatures of recent greeting packets, as immutable chunks of SEEN_CHUNK keys (oldest first),
 * so that a step shares every full chunk with the state before it and a lookup costs a few set
 * probes (issue 8: the flat list made each packet cost O(MAX_REMEMBERED_GREETINGS) per member).
 */
export type SeenSignatures = readonly (readonly string[])[];

const SEEN_CHUNK = 64;
/** Chunks are immutable, so each one's set is built once. */
const chunkSets = new WeakMap<readonly string[], Set<string>>();

export function hasSeen(seen: SeenSignatures, key: string): boolean {
  for (const chunk of seen) {
    // The last chunk is a new array at every step until it is full: a scan, not a set built
    // for one lookup (issue 8: that set was most of the check's cost).
    if (chunk.length < SEEN_CHUNK) {
      if (chunk.includes(key)) return true;
      continue;
    }
    let set = chunkSets.get(chunk);
    if (set === undefined) chunkSets.set(chunk, (set = new Set(chunk)));
    if (set.has(key)) return true;
  }
  return false;
}

export function remember(seen: SeenSignatures, key: string): SeenSignatures {
  const last = seen[seen.length - 1];
  const chunks = last !== undefined && last.length < SEEN_CHUNK ? [...seen.slice(0, -1), [...last, key]] : [...seen, [key]];
  // Bounded: the oldest chunk goes once MAX_REMEMBERED_GREETINGS are exceeded.
  return chunks.length * SEEN_CHUNK > MAX_REMEMBERED_GREETINGS + SEEN_CHUNK ? chunks.slice(1) : chunks;
}

export function rememberSubsession(recent: readonly Subsession[], sub: Subsession | null): readonly Subsession[] {
  if (sub === null) return recent;
  const all = [...recent, sub];
  return all.length > MAX_RECENT_SUBSESSIONS ? all.slice(all.length - MAX_RECENT_SUBSESSIONS) : all;
}

export function sameMembers(a: readonly MemberId[], b: readonly MemberId[]): boolean {
  return a.length === b.length && a.every((m, i) => m === b[i]);
}

export function sameKeys(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => bytesEqual(x, b[i]!));
}

/** Relay time of the event being processed. */
export function relayTime(env: MembershipEnv): number {
  return env.atMs ?? env.nowMs;
}
