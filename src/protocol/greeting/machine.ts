/**
 * The membership state machine: CLIQUES (cliques.ts) + ASKE greetings for start, include,
 * exclude and refresh (mpENC §5.2), resolved by ServerOrder (§3.3, §4.3), with the transport
 * integration rules of §3.3, Covey's v2 closures of §6.1.1 (wire.ts) and the rules that let
 * groups work while phones sleep (shared/spec/async-groups.md; flow-v2.ts). `step(state, input,
 * env)` returns the next state and the effects; it never mutates its input.
 *
 * Everything is driven by the channel's one order: our own packets take effect when the relay
 * hands them back, like everyone else's, so every member walks through the same decisions.
 * A v2 operation ends at the first of: its final packet (rule 1: the initial packet of an
 * exclude or refresh, the last newcomer's downflow of an include or start), an accepted
 * ABORT_DOWN, or a target member leaving the channel. A failed operation leaves `current` and
 * `own` exactly as they were (§3.1: "destroy all temporary state related to G").
 *
 * This file holds the inputs: intents, channel events, ticks, catching up (rule 6), and the
 * automatic proposals (mpENC §3.3 exclusions, rule 10 includes, rule 13 refreshes). Greeting
 * packets are receive.ts; operations are flow-v2.ts (and flow-v1.ts for mpENC v1 peers).
 */
import { bytesEqual, hexDecode } from '../bytes.js';
import type { ChannelEvent } from '../channel.js';
import { GreetType } from '../codec/constants.js';
import type { GreetingFields } from '../codec/greeting.js';
import { MAX_GROUP_MEMBERS } from '../codec/limits.js';
import { chainHash, type MemberId, type MessageId } from '../ids.js';
import {
  MAX_AUTOMATIC_ATTEMPTS,
  OPERATION_TIMEOUT_MS,
  OPERATION_WAIT_LIMIT_MS,
  REFRESH_AFTER_MS,
  WAITING_KNOCK_FOR_MS,
  WAITING_KNOCK_INTERVAL_MS,
} from '../limits.js';
import { acceptFinal, EMPTY_ORDER, genesis, lastEntry } from '../order/server-order.js';
import { makeNonce } from '../packets/aske.js';
import { makeLeavePacketId } from '../packets/ids.js';
import { downflowV2, raiseOf, upflowV2 } from './cliques.js';
import { awaitedOnline, contributeV2, sendConfirmation } from './flow-v2.js';
import { awaitedContributors, failed, greeting, newSigningKey, NO_DUE, signingKeysOf, warn, type Effects } from './helpers.js';
import { afterFailure, sendAbort, sendRejoin, startOver, type StepCtx } from './outcome.js';
import { isInviter, onlineNewcomers, planInclude } from './plan.js';
import { onPacket } from './receive.js';
import type { MembershipEnv, MembershipInput, MembershipState, OperationKind, StepResult } from './types.js';
import { AbortReason, abortText, contributorText, deriveSubsessionSecrets, finalKeyConfirmation, initialFinalBinding, metadataHash } from './wire.js';

/**
 * A fresh member view: solo, in no channel yet. `staticSeed` null makes a passive observer.
 * `autoInclude` (rule 10): propose the include of newcomers who join the channel (the app's
 * setting; tests of single operations leave it off).
 */
export function createMembership(options: { self: MemberId; staticSeed: Uint8Array | null; passive?: boolean; autoInclude?: boolean }): MembershipState {
  return {
    self: options.self,
    staticSeed: options.staticSeed,
    ephemeral: null,
    channel: [],
    lastSeq: null,
    membershipSeq: null,
    order: EMPTY_ORDER,
    current: null,
    recent: [],
    own: null,
    op: null,
    proposal: null,
    automaticAttempts: 0,
    seen: [],
    passive: options.passive ?? options.staticSeed === null,
    autoInclude: options.autoInclude ?? false,
    invitedUntilMs: null,
    plannedInclude: null,
    rejoining: [],
    retry: null,
    due: NO_DUE,
  };
}

export async function step(state: MembershipState, input: MembershipInput, env: MembershipEnv): Promise<StepResult> {
  const fx: Effects = [];
  const ctx: StepCtx = { env, fx, seq: input.kind === 'channel' ? input.event.seq : null };
  let s: MembershipState;
  switch (input.kind) {
    case 'start':
    case 'include':
    case 'exclude':
    case 'refresh':
      s = await propose(state, input, ctx, false);
      break;
    case 'abort':
      s = await userAbort(state, ctx);
      break;
    case 'retry-without-missing':
      s = await retryWithoutMissing(state, ctx);
      break;
    case 'channel':
      s = await onChannel(state, input.event, ctx, input.knownData === true);
      break;
    case 'tick':
      s = await onTick(state, ctx);
      break;
    case 'caught-up':
      s = { ...state, due: { ...state.due, refreshCheck: state.current !== null } };
      s = await knock(s, ctx);
      break;
    case 'invited':
      s = planInclude({ ...state, invitedUntilMs: input.untilMs }, ctx, state.lastSeq ?? 0);
      break;
    case 'retention':
      s = await onRetention(input.members === undefined ? state : { ...state, channel: input.members }, input.firstSeq, ctx);
      break;
  }
  // An operation just ended (one that was running, or an exclude or refresh that ended at its
  // initial packet): newcomers still waiting get another chance (rule 10: a new event).
  const newSubsession = s.current !== null && (state.current === null || !bytesEqual(state.current.sid, s.current.sid));
  if ((state.op !== null && s.op === null) || newSubsession) s = planInclude(s, ctx, ctx.seq ?? state.lastSeq ?? 0);
  // The include we were a newcomer in failed: we are still waiting, so we say we are here.
  if (state.op !== null && s.op === null && state.op.role === 'participant' && s.current === null && env.quiet !== true) s = await knock(s, ctx);
  if (s.current !== null && s.knocking != null) s = { ...s, knocking: null };
  // We started over (rule 11, or a key mismatch): our rejoin request went out; keep saying it.
  if (s.current === null && state.current !== null && s.knocking == null && s.channel.includes(s.self)) s = waitToBeIncluded(s, ctx);
  s = await sendDue(s, ctx);
  s = await autoPropose(s, ctx);
  return { state: s, effects: fx };
}

// ---------------------------------------------------------------------------------------------
// Intents: build our initial packet; it takes effect only when the relay hands it back.
// ---------------------------------------------------------------------------------------------

type ProposeIntent = Extract<MembershipInput, { kind: OperationKind }>;

async function propose(s: MembershipState, intent: ProposeIntent, ctx: StepCtx, automatic: boolean): Promise<MembershipState> {
  const { env, fx } = ctx;
  const refuse = (reason: string) => {
    if (!automatic) fx.push({ kind: 'intent-refused', intent: intent.kind, reason });
    return s;
  };
  if (s.staticSeed === null || s.passive) return refuse('a passive observer cannot propose');
  // Rule 6: a member behind the head proposes nothing (its view is stale).
  if (env.quiet === true) return refuse('catching up with the channel: propose once we reach its head');
  if (s.proposal !== null) return refuse('another proposal of ours waits for the relay to order it'); // MAX_PENDING_PROPOSALS = 1
  if (s.op !== null) {
    const waiting = awaitedContributors(s.op);
    return refuse(waiting.length > 0 ? `an ${s.op.kind} is waiting for ${waiting.join(', ')}: abort it first (any member may)` : 'an operation is ongoing');
  }
  if (!s.channel.includes(s.self)) return refuse('we are not in the channel');
  const { crypto, random } = env;
  const staticSeed = s.staticSeed;
  const eph = s.ephemeral ?? (await newSigningKey(env));
  const cur = s.current;
  let fields: GreetingFields;
  let members: readonly MemberId[];
  let contributions;
  // Rule 3: every initiator draws a fresh nonce, refresh included.
  const nonce = makeNonce(random);
  let keys: { groupKey: Uint8Array; confirmKey: Uint8Array } | null = null;
  const latestPms: readonly MessageId[] = 'latestPms' in intent ? (intent.latestPms ?? []) : [];

  if (intent.kind === 'start') {
    if (cur !== null) return refuse('already in a subsession: include, exclude or refresh instead');
    const others = [...new Set(intent.others)].filter((m) => m !== s.self).sort();
    if (others.length === 0) return refuse('a group needs at least one other member');
    members = [s.self, ...others]; // mpenc-wire.md "CLIQUES": initiator first, others sorted
    if (members.length > MAX_GROUP_MEMBERS) return refuse(`more than ${MAX_GROUP_MEMBERS} members`);
    if (!members.every((m) => s.channel.includes(m))) return refuse('every member must be in the channel (mpENC §3.3)');
    const up = await upflowV2(crypto, random, [null], 0, null);
    contributions = up.key;
    const parent = await genesis(crypto, random);
    fields = greeting(GreetType.INIT_INITIATOR_UP, s.self, members[1]!, members, up.intKeys, [nonce], [eph.pub], {
      metadata: { prevPf: parent.packetId, chainHash: parent.chainHash, latestPms },
    });
  } else {
    if (cur === null || s.own === null) return refuse('not in a subsession');
    const head = lastEntry(s.order);
    if (head === null) return refuse('no chain to build on');
    const metadata = { prevPf: head.packetId, chainHash: head.chainHash, latestPms };
    const ownIndex = cur.members.indexOf(s.self);
    if (intent.kind === 'include') {
      const joiners = [...new Set(intent.members)].filter((m) => !cur.members.includes(m)).sort();
      if (joiners.length === 0) return refuse('nobody new to include');
      members = [...cur.members, ...joiners]; // mpenc-wire.md: the old order plus the new members
      if (members.length > MAX_GROUP_MEMBERS) return refuse(`more than ${MAX_GROUP_MEMBERS} members`);
      if (!members.every((m) => s.channel.includes(m))) return refuse('every member must be in the channel (mpENC §3.3)');
      // Issue 9 §3: the stored list lacks the ratchet of the subsession that made it (raiseOf).
      const up = await upflowV2(crypto, random, cur.intKeys, ownIndex, s.own.contributions, raiseOf(s.own.contributions, cur.members.length));
      contributions = up.key;
      const nonces = cur.nonces.map((n, i) => (i === ownIndex ? nonce : n));
      // Issue 9 §3: every member's signing key as we know it now (renewed by its confirmation).
      fields = greeting(GreetType.INCLUDE_AUX_INITIATOR_UP, s.self, joiners[0]!, members, up.intKeys, nonces, signingKeysOf(cur), { metadata });
    } else {
      let keep: number[];
      if (intent.kind === 'exclude') {
        const out = new Set(intent.members);
        if (out.has(s.self)) return refuse('we never exclude ourselves: leave instead (mpENC §3.3)');
        if (![...out].every((m) => cur.members.includes(m))) return refuse('not a member');
        if (out.size === 0) return refuse('nobody to exclude');
        keep = cur.members.flatMap((m, i) => (out.has(m) ? [] : [i]));
      } else keep = cur.members.map((_, i) => i);
      members = keep.map((i) => cur.members[i]!);
      if (!members.every((m) => s.channel.includes(m))) return refuse('every remaining member must be in the channel (mpENC §3.3)');
      const myIndex = members.indexOf(s.self);
      const raise = raiseOf(s.own.contributions, cur.members.length);
      const down = await downflowV2(crypto, random, keep.map((i) => cur.intKeys[i]!), myIndex, s.own.contributions, raise);
      contributions = down.key;
      keys = await deriveSubsessionSecrets(crypto, down.own);
      const nonces = keep.map((i) => (i === ownIndex ? nonce : cur.nonces[i]!));
      const pubKeys = keep.map((i) => signingKeysOf(cur)[i]!);
      // Rule 4 on a packet that is initial and final: bind what its OP_REF will cover.
      const binding = await initialFinalBinding(crypto, members, nonces, await metadataHash(crypto, metadata));
      const keyConfirmation = await finalKeyConfirmation(crypto, keys.confirmKey, binding);
      const type = intent.kind === 'exclude' ? GreetType.EXCLUDE_AUX_INITIATOR_DOWN : GreetType.REFRESH_AUX_INITIATOR_DOWN;
      fields = greeting(type, s.self, null, members, down.intKeys, nonces, pubKeys, { metadata, keyConfirmation });
    }
  }
  // Rule 2: our contribution is bound to our static key.
  const text = await contributorText(crypto, staticSeed, fields);
  fx.push({ kind: 'send', text });
  return {
    ...s,
    ephemeral: eph,
    proposal: {
      kind: intent.kind,
      text,
      members,
      contributions,
      nonce,
      groupKey: keys?.groupKey ?? null,
      confirmKey: keys?.confirmKey ?? null,
      automatic,
    },
  };
}

/** Rule 9: the initiator aborts its operation; any member aborts a waiting include or start. */
async function userAbort(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op;
  const refuse = (reason: string) => {
    ctx.fx.push({ kind: 'intent-refused', intent: 'abort', reason });
    return s;
  };
  if (op === null || op.role !== 'participant' || op.abortSent) return refuse('no operation we take part in');
  if (op.initiator !== s.self && awaitedContributors(op).length === 0) return refuse('only its initiator aborts an operation that is not waiting');
  return sendAbort(s, AbortReason.USER, ctx);
}

/**
 * Rule 9 ("the app decides; the engine offers it"): abort the waiting include or start and
 * propose it again, once the abort is ordered, without the newcomers who have not come.
 */
async function retryWithoutMissing(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op;
  const awaited = op === null ? [] : awaitedContributors(op);
  if (op === null || (op.kind !== 'include' && op.kind !== 'start') || awaited.length === 0 || op.role !== 'participant' || op.abortSent) {
    ctx.fx.push({ kind: 'intent-refused', intent: 'retry-without-missing', reason: 'no include is waiting for anyone' });
    return s;
  }
  const missing = awaited.filter((m) => !(ctx.env.isOnline?.(m) ?? false));
  const gone = missing.length > 0 ? missing : awaited;
  const newcomers = op.contributors.filter((m) => m !== op.initiator && !gone.includes(m));
  const aborted = await sendAbort(s, AbortReason.USER, ctx);
  return newcomers.length > 0 ? { ...aborted, retry: { members: newcomers } } : aborted;
}

// ---------------------------------------------------------------------------------------------
// Automatic proposals and sends that fell due (rules 6, 10, 11, 13; mpENC §3.3)
// ---------------------------------------------------------------------------------------------

/**
 * Rule 10: a newcomer waiting to be included whose phone slept is shown offline, so nobody
 * includes it; when it has caught up it announces itself with REJOIN_DOWN (its static key
 * signs it), and the members online plan its include as for a join.
 */
async function knock(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  if (s.current !== null || s.op !== null || s.proposal !== null || s.passive || s.staticSeed === null) return s;
  if (!s.channel.includes(s.self) || s.channel.length < 2 || ctx.env.quiet === true) return s;
  return sendRejoin(waitToBeIncluded(s, ctx), ctx);
}

/** We said we are here: we say it again every WAITING_KNOCK_INTERVAL_MS for WAITING_KNOCK_FOR_MS. */
function waitToBeIncluded(s: MembershipState, ctx: StepCtx): MembershipState {
  if (s.passive || s.staticSeed === null || s.channel.length < 2) return s;
  ctx.fx.push({ kind: 'set-timer', atMs: ctx.env.nowMs + WAITING_KNOCK_INTERVAL_MS });
  return { ...s, knocking: { atMs: ctx.env.nowMs, untilMs: ctx.env.nowMs + WAITING_KNOCK_FOR_MS } };
}

async function knockAgain(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const k = s.knocking;
  if (k == null || ctx.env.nowMs < k.atMs + WAITING_KNOCK_INTERVAL_MS) return s;
  if (s.current !== null || ctx.env.nowMs > k.untilMs || !s.channel.includes(s.self)) return { ...s, knocking: null };
  if (s.op !== null || s.proposal !== null || ctx.env.quiet === true) return s;
  const next = ctx.env.nowMs + WAITING_KNOCK_INTERVAL_MS;
  if (next <= k.untilMs) ctx.fx.push({ kind: 'set-timer', atMs: next });
  return sendRejoin({ ...s, knocking: { atMs: ctx.env.nowMs, untilMs: k.untilMs } }, ctx);
}

/** Makes the sends that fell due while we were catching up (rule 6), once we are not. */
async function sendDue(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  if (ctx.env.quiet === true) return s;
  if (s.due.rejoin) s = await sendRejoin(s, ctx);
  const op = s.op;
  if (s.due.contribute) {
    const ours = op !== null && op.version === 2 && op.role === 'participant' && !op.abortSent && op.nextIndex >= 0 && op.members[op.nextIndex] === s.self;
    s = ours ? await contributeV2(s, ctx) : { ...s, due: { ...s.due, contribute: false } };
  }
  if (s.due.abort !== null) {
    const reason = s.due.abort;
    s = s.op !== null && s.op.role === 'participant' && !s.op.abortSent ? await sendAbort(s, reason, ctx) : { ...s, due: { ...s.due, abort: null } };
  }
  if (s.due.confirm) s = await sendConfirmation(s, ctx);
  if (s.due.voids !== undefined && s.due.voids.length > 0 && s.staticSeed !== null) {
    for (const ref of s.due.voids) ctx.fx.push({ kind: 'send', text: await abortText(ctx.env.crypto, s.staticSeed, s.self, chainHash(hexDecode(ref)), AbortReason.REFUSED) });
    s = { ...s, due: { ...s.due, voids: [] } };
  }
  return s;
}

async function autoPropose(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const { env } = ctx;
  if (env.quiet === true || s.passive || s.staticSeed === null || s.op !== null || s.proposal !== null || !s.channel.includes(s.self)) return s;
  // Automatic retries are a security risk (mpENC §6.1.1 footnote): a few, then the user decides.
  if (s.automaticAttempts >= MAX_AUTOMATIC_ATTEMPTS) return s;
  const attempt = async (intent: ProposeIntent): Promise<MembershipState> => {
    const next = await propose(s, intent, ctx, true);
    return next.proposal === null ? next : { ...next, automaticAttempts: s.automaticAttempts + 1 };
  };
  if (s.retry !== null) {
    const newcomers = s.retry.members.filter((m) => s.channel.includes(m) && !(s.current?.members.includes(m) ?? false));
    s = { ...s, retry: null };
    if (newcomers.length > 0) return attempt(s.current === null ? { kind: 'start', others: newcomers } : { kind: 'include', members: newcomers });
  }
  const cur = s.current;
  if (cur !== null) {
    // mpENC §3.3: members who left the channel are excluded; rule 11: so are those who asked
    // to be included again (they stay in the channel and come back as newcomers).
    const gone = goneMembers(s, cur.members);
    if (gone.length > 0) return attempt({ kind: 'exclude', members: gone });
    if (s.due.refreshCheck) {
      s = { ...s, due: { ...s.due, refreshCheck: false } };
      // Rule 13: our newest contribution is old: refresh it (contributions change only when we initiate).
      if (s.own !== null && env.nowMs - s.own.contributedAtMs > REFRESH_AFTER_MS) return attempt({ kind: 'refresh' });
    }
  }
  const plan = s.plannedInclude;
  if (plan !== null && env.nowMs >= plan.atMs) {
    s = { ...s, plannedInclude: null };
    const newcomers = onlineNewcomers(s, env);
    if (newcomers.length === 0) return s;
    if (cur === null) return isInviter(s, env) ? attempt({ kind: 'start', others: newcomers }) : s;
    return attempt({ kind: 'include', members: newcomers });
  }
  return s;
}

/**
 * mpENC §3.3 and rule 11: the members of `members` other than us who left the channel or asked
 * to be included again. Asked after every step; the lists change rarely (joins, leaves,
 * operations), so the answer is kept per member list and recomputed when any of its inputs is
 * another array (issue 8: a channel scan per member per step was O(n²) per packet at n = 100).
 */
const goneMemo = new WeakMap<readonly MemberId[], { self: MemberId; channel: readonly MemberId[]; rejoining: readonly MemberId[]; gone: readonly MemberId[] }>();

function goneMembers(s: MembershipState, members: readonly MemberId[]): readonly MemberId[] {
  const hit = goneMemo.get(members);
  if (hit !== undefined && hit.self === s.self && hit.channel === s.channel && hit.rejoining === s.rejoining) return hit.gone;
  const channel = new Set(s.channel);
  const gone = members.filter((m) => m !== s.self && (!channel.has(m) || s.rejoining.includes(m)));
  goneMemo.set(members, { self: s.self, channel: s.channel, rejoining: s.rejoining, gone });
  return gone;
}

// ---------------------------------------------------------------------------------------------
// Channel events, time, retention
// ---------------------------------------------------------------------------------------------

async function onChannel(s0: MembershipState, ev: ChannelEvent, ctx: StepCtx, knownData: boolean): Promise<MembershipState> {
  let s = s0;
  const membershipSeq = ev.kind === 'packet' ? s.membershipSeq : ev.seq;
  if (ev.kind === 'joined' && ev.joined.includes(s.self)) {
    // Our own join: the relay's numbering for us starts here. Joining means we had left (maybe
    // removed while offline, unseen): mpENC §3.3, we are solo until an operation includes us.
    const solo = s.current === null && s.op === null && s.proposal === null ? s : await onLeft(s, [s.self], s.channel, ctx);
    // The join says we are here; while we wait to be included we say it again now and then.
    return waitToBeIncluded({ ...solo, channel: ev.members, lastSeq: ev.seq, membershipSeq }, ctx);
  }
  if (s.lastSeq !== null) {
    // An event we already processed: a client re-fetching after a reconnect does this, so it
    // is ignored quietly. (A relay showing events out of order trips the gap check first.)
    if (ev.seq <= s.lastSeq) return s;
    if (ev.seq !== s.lastSeq + 1) {
      // The relay numbers every event of a channel; a gap it did not announce as retention
      // (rule 11) means events were withheld from us. We cannot know what we missed (perhaps an
      // operation): say so, and start over in this group (a withheld event cannot split us).
      warn(ctx.fx, 'events-withheld', null, `channel events ${s.lastSeq + 1}..${ev.seq - 1} never arrived`);
      if (s.current !== null || s.op !== null || s.proposal !== null) s = await startOver(s, ctx, 'events-withheld');
    }
  }
  s = { ...s, lastSeq: ev.seq, membershipSeq };
  switch (ev.kind) {
    case 'joined':
      s = { ...s, channel: ev.members, automaticAttempts: 0 };
      return planInclude(s, ctx, ev.seq);
    case 'left':
      return onLeft({ ...s, automaticAttempts: 0 }, ev.left, ev.members, ctx);
    case 'packet':
      // Data packets are the session's (it tells us, so we do not decode them twice).
      return !knownData && ev.text.startsWith('?mpENC') ? onPacket(s, ev.sender, ev.text, ctx) : s;
  }
}

async function onLeft(s: MembershipState, left: readonly MemberId[], members: readonly MemberId[], ctx: StepCtx): Promise<MembershipState> {
  if (left.includes(s.self)) {
    // mpENC §3.3: we switch to a solo subsession only after leaving the channel.
    if (s.op !== null) ctx.fx.push(failed(s.op, 'left-channel'));
    if (s.proposal !== null) ctx.fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason: 'we left the channel' });
    // Issue 9 §3: our signing key goes with the group we left (a fresh one if we come back).
    const fresh = createMembership({ self: s.self, staticSeed: s.staticSeed, passive: s.passive, autoInclude: s.autoInclude });
    return { ...fresh, seen: s.seen };
  }
  const before = s;
  s = { ...s, channel: members, rejoining: s.rejoining.filter((m) => members.includes(m)) };
  const op = s.op;
  const leavers = op === null ? [] : op.members.filter((m) => left.includes(m)).sort();
  if (op === null || leavers.length === 0) return s;
  // mpENC §3.3: a target member left mid-operation, so it fails for everyone at this event,
  // chained as the pseudo packet of mpenc-wire.md.
  const id = await makeLeavePacketId(ctx.env.crypto, lastEntry(before.order)!.packetId, leavers, members);
  const order = await acceptFinal(ctx.env.crypto, s.order, id, 'leave');
  ctx.fx.push(failed(op, 'member-left'));
  return afterFailure({ ...s, order, op: null, due: { ...s.due, contribute: false, abort: null } });
}

async function onTick(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  // Rule 8: a proposal and its secret live until the relay's order decides it; no clock here.
  const { env } = ctx;
  const op = s.op;
  if (s.knocking != null) s = await knockAgain(s, ctx);
  if (op === null || op.role !== 'participant' || op.abortSent) return s;
  if (op.version === 1) {
    // mpENC v1 peers are all online together: the old timeout.
    return env.nowMs >= op.acceptedAtMs + OPERATION_TIMEOUT_MS ? sendAbort(s, AbortReason.TIMEOUT, ctx) : s;
  }
  // Rule 9: waiting is a state. The 2-minute timeout applies only when every awaited
  // contributor is online (and was when its turn began); otherwise the operation waits up to
  // OPERATION_WAIT_LIMIT_MS, after which any participant aborts it.
  const stalled = op.initiator === s.self && op.turnOnline && awaitedOnline(op, env.isOnline) && env.nowMs >= op.turnSinceMs + OPERATION_TIMEOUT_MS;
  const expired = env.nowMs >= op.acceptedAtMs + OPERATION_WAIT_LIMIT_MS;
  return stalled || expired ? sendAbort(s, AbortReason.TIMEOUT, ctx) : s;
}

/** Rule 11: the relay no longer holds events before `firstSeq`. */
async function onRetention(s: MembershipState, firstSeq: number, ctx: StepCtx): Promise<MembershipState> {
  if (s.lastSeq === null || firstSeq <= s.lastSeq + 1) return s;
  const engaged = s.current !== null || s.op !== null || s.proposal !== null;
  const skipped = { ...s, lastSeq: firstSeq - 1 };
  // No "events withheld" alarm: a relay that withheld events instead ends the same way.
  return engaged ? startOver(skipped, ctx, 'retention') : skipped;
}
