/**
 * How operations end (mpENC §3.1, §3.3; async-groups rules 1, 4, 9, 11): success (the new
 * subsession is installed atomically), failure (state exactly as before), our abort, and the
 * key-confirmation failure that makes us start over. Shared by the v1 and v2 flows.
 */
import { chainHash, type PacketId } from '../ids.js';
import { acceptFinal, EMPTY_ORDER, lastEntry } from '../order/server-order.js';
import { ratchetKey, requireFull } from './cliques.js';
import { failed, NO_DUE, ownKeyPair, pruneKeys, relayTime, rememberSubsession, warn, type Effects } from './helpers.js';
import type { MembershipEnv, MembershipState, Subsession } from './types.js';
import { abortText, AbortReason, rejoinText } from './wire.js';

/** What a step knows about the event it processes. */
export interface StepCtx {
  readonly env: MembershipEnv;
  readonly fx: Effects;
  /** Seq of the channel event being processed (null for intents and ticks). */
  readonly seq: number | null;
}

/** Packet ids are computed only for the packets the chain needs (issue 8: lazily). */
export type PacketIdOf = () => Promise<PacketId>;

/**
 * The operation succeeded at packet `id` (mpENC §3.1: atomically switch to the new subsession).
 * `chained`: the packet was already chained (an initial packet that is also final).
 */
export async function finish(s: MembershipState, ctx: StepCtx, idOf: PacketIdOf, chained: boolean): Promise<MembershipState> {
  const { env, fx } = ctx;
  const op = s.op!;
  const id = await idOf();
  const order = chained ? s.order : await acceptFinal(env.crypto, s.order, id, 'final');
  const head = lastEntry(order)!;
  const participant = op.role === 'participant';
  const subsession: Subsession = {
    members: op.members,
    sid: op.sid!,
    groupKey: participant ? op.groupKey : null,
    confirmKey: participant ? op.confirmKey : null,
    ephemeralPubKeys: op.pubKeys,
    nonces: op.nonces,
    intKeys: requireFull(op.intKeys),
    finalPacketId: id,
    chainHash: head.chainHash,
    opRef: op.opRef,
    kind: op.kind,
    version: op.version,
    initiator: op.initiator,
    // v1: every member's session signature is in (the operation ends at the last); v2 rule 5:
    // the contributors' own packets are their confirmations, the others come later.
    confirmed: op.version === 1 ? op.members : op.contributors,
    finned: [],
    finalSeq: ctx.seq,
    ...(op.version === 2 && { contributors: op.contributors }),
    ...(op.version === 2 && op.kind === 'include' && participant && s.current === null && { joinedHere: true }),
  };
  const previous = s.current;
  if (op.role === 'observer' && !s.passive) {
    // We were excluded: wait to be removed from the channel (mpENC §3.3).
    fx.push({ kind: 'excluded', by: op.initiator });
    // (Our invitations were to the group we are no longer in: we start nothing on their behalf.)
    // Issue 9 §3: nor does our signing key go on (retiredKey).
    return retiredKey({ ...s, order: EMPTY_ORDER, op: null, current: null, recent: [], own: null, due: NO_DUE, invitedUntilMs: null, plannedInclude: null });
  }
  if (participant && (op.groupKey === null || op.contributions === null)) {
    throw new Error('operation finished before we derived the group key'); // a bug: asserted by the flows
  }
  // Our key as the operation lists it: an older one of ours when its initiator had not yet seen
  // our renewal (issue 9 §3), else our newest.
  const j = op.members.indexOf(s.self);
  const ownEphemeral = !participant ? null : ((j >= 0 && op.pubKeys[j] !== undefined ? ownKeyPair(s, op.pubKeys[j]) : undefined) ?? s.ephemeral);
  fx.push({ kind: 'subsession', operation: op.kind, subsession, ownEphemeral, previousSid: previous?.sid ?? null });
  if (previous !== null && participant) {
    // mpENC §3.3: excluded members are removed from the channel, except those who asked to be
    // included again (rule 11): they stay, to be included as newcomers.
    const gone = previous.members.filter((m) => !op.members.includes(m) && s.channel.includes(m) && !s.rejoining.includes(m));
    if (gone.length > 0) fx.push({ kind: 'kick', members: gone });
  }
  const contributed = op.contributors.includes(s.self);
  // Issue 9 §3: a v2 member ratchets its scalar at every subsession it completes (cliques.ts).
  const ownKey = !participant ? null : op.version === 2 ? await ratchetKey(env.crypto, op.contributions!, op.groupKey!) : op.contributions!;
  return pruneKeys({
    ...s,
    order,
    op: null,
    automaticAttempts: 0,
    current: subsession,
    recent: rememberSubsession(s.recent, previous),
    own: ownKey !== null ? { contributions: ownKey, contributedAtMs: contributed ? relayTime(env) : (s.own?.contributedAtMs ?? relayTime(env)) } : null,
    // Rule 11: a member who asked to be included again and is now out of the subsession is a newcomer.
    rejoining: s.rejoining.filter((m) => subsession.members.includes(m)),
    // Rule 5: an existing member confirms the new head, with its last word in the old one (FIN_PM).
    due: { ...s.due, confirm: participant && op.version === 2 && previous !== null && previous.members.includes(s.self), contribute: false },
  });
}

/**
 * Issue 9 §3 (deniability, mpENC §6.1.1): we are out of every subsession (excluded, or we start
 * over): the signing key we had there is not ours in any later one. Included again, we contribute
 * with a fresh key (`contributeV2`, `propose`: `s.ephemeral ?? newSigningKey`), as mpenc_js does
 * (its trace: carol, excluded and included again, comes back with a new key). A key carried over
 * would be published once the later subsession is over, so for the old one too, whose shutdown
 * may never have been acked by all (a member who starts over closes it without), and it would
 * link the member's subsessions before and after. (Nothing publishes the old key, as before: a
 * member who starts over closed its subsessions unacked, and an excluded one is removed from the
 * channel, which ends its session. Older keys of ours, `ownKeys`, are left as they are.)
 */
function retiredKey(s: MembershipState): MembershipState {
  return { ...s, ephemeral: null };
}

/** A joiner whose operation failed has no chain of its own: it starts afresh at the next one. */
export function afterFailure(s: MembershipState): MembershipState {
  return s.current === null ? { ...s, order: EMPTY_ORDER } : s;
}

/**
 * A bad packet arrived while an operation runs (validate first, then change state; mpenc_js
 * marks a greeting broken on any bad packet). Everyone who sees the packet at this point of the
 * order fails the operation here, chained like an abort so that the next parent agrees; we also
 * post ABORT_DOWN so that members shown something else (a relay that tampers per member) end
 * it too, unless its final packet reaches them first.
 */
export async function failAt(s0: MembershipState, ctx: StepCtx, idOf: PacketIdOf): Promise<MembershipState> {
  const s = await doom(s0, AbortReason.SECURITY, ctx);
  const op = s.op;
  if (op === null) return s;
  const order = await acceptFinal(ctx.env.crypto, s.order, await idOf(), 'abort', true);
  ctx.fx.push(failed(op, 'rejected-packet'));
  return afterFailure({ ...s, order, op: null, due: { ...s.due, contribute: false, abort: null } });
}

/** We detected a problem in the ongoing operation: stop taking part and abort it for everyone. */
export async function doom(s: MembershipState, reason: AbortReason, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op;
  if (op === null || op.role !== 'participant' || op.abortSent || op.version !== 2 || s.staticSeed === null) return s;
  return sendAbort(s, reason, ctx);
}

/** Posts ABORT_DOWN for the ongoing operation, or keeps it due while we catch up (rule 6). */
export async function sendAbort(s: MembershipState, reason: AbortReason, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op!;
  if (s.staticSeed === null) return s;
  if (ctx.env.quiet === true) return { ...s, due: { ...s.due, abort: reason } };
  ctx.fx.push({ kind: 'send', text: await abortText(ctx.env.crypto, s.staticSeed, s.self, op.opRef, reason) });
  return { ...s, op: { ...op, abortSent: true }, due: { ...s.due, abort: null } };
}

/**
 * Rules 4 and 11: we cannot use this group's keys any more (the relay dropped events we never
 * saw, or a key confirmation failed): drop its secrets, go solo, and ask to be included again.
 * Nothing else is lost: the session keeps what it has shown.
 */
export async function startOver(s: MembershipState, ctx: StepCtx, reason: 'retention' | 'key-mismatch' | 'forked' | 'events-withheld' | 'superseded'): Promise<MembershipState> {
  if (s.op !== null) ctx.fx.push(failed(s.op, 'rejected-packet'));
  if (s.proposal !== null) ctx.fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason: 'we start over in this group' });
  if (reason === 'key-mismatch') warn(ctx.fx, 'key-mismatch', null, 'our key of the new subsession differs from its contributor\'s: we start over in this group');
  ctx.fx.push({ kind: 'start-over', reason });
  const solo: MembershipState = retiredKey({
    ...s,
    order: EMPTY_ORDER,
    current: null,
    recent: [],
    own: null,
    op: null,
    proposal: null,
    automaticAttempts: 0,
    plannedInclude: null,
    rejoining: [],
    retry: null,
    due: NO_DUE,
  });
  // Superseded: a member is including us again right now; nothing to ask for.
  return reason === 'superseded' ? solo : sendRejoin(solo, ctx);
}

/**
 * The subsession we joined as a newcomer was made by an include no member who did not contribute
 * has confirmed yet: the group may never have taken it (see Subsession.joinedHere).
 */
export function provisional(cur: Subsession | null): boolean {
  if (cur === null || cur.joinedHere !== true || cur.contributors === undefined) return false;
  const contributors = cur.contributors;
  return cur.confirmed.every((m) => contributors.includes(m));
}

/**
 * Posts REJOIN_DOWN (rule 11: "include me again"; rule 10: "I am back, include me"), or keeps it
 * due while we catch up (rule 6). It carries a fresh random value, so that two requests of ours
 * are never the same packet (an exact repeat is a replay).
 */
export async function sendRejoin(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  if (s.staticSeed === null || s.passive) return { ...s, due: { ...s.due, rejoin: false } };
  if (ctx.env.quiet === true) return { ...s, due: { ...s.due, rejoin: true } };
  ctx.fx.push({ kind: 'send', text: await rejoinText(ctx.env.crypto, s.staticSeed, s.self, chainHash(ctx.env.random(32))) });
  return { ...s, due: { ...s.due, rejoin: false } };
}
