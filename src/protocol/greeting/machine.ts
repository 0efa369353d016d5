/**
 * The membership state machine: CLIQUES (cliques.ts) + ASKE greetings for start, include,
 * exclude and refresh (mpENC §5.2), resolved by ServerOrder (§3.3, §4.3), with the transport
 * integration rules of §3.3 and Covey's v2 closures of §6.1.1 (wire.ts). All transitions live
 * here: `step(state, input, env)` returns the next state and the effects; it never mutates.
 *
 * Everything is driven by the channel's one order: our own packets take effect when the relay
 * hands them back, like everyone else's, so every member walks through the same decisions.
 * An operation ends at the first of: its final packet (the last session signature), an accepted
 * ABORT_DOWN, or a target member leaving the channel. A failed operation leaves `current` and
 * `own` exactly as they were (§3.1: "destroy all temporary state related to G").
 */
import { bytesEqual, hexEncode, utf8Encode } from '../bytes.js';
import type { ChannelEvent } from '../channel.js';
import { GreetFlag, GreetType, PROTOCOL_VERSION_2, type ProtocolVersion } from '../codec/constants.js';
import type { GreetingFields, GreetingPacket } from '../codec/greeting.js';
import { decodePacket } from '../codec/packet.js';
import { MAX_GROUP_MEMBERS } from '../codec/limits.js';
import { isProtocolError, ProtocolError } from '../errors.js';
import type { MemberId, MessageId, PacketId, SessionId } from '../ids.js';
import { MAX_AUTOMATIC_ATTEMPTS, MAX_REMEMBERED_GREETINGS, OPERATION_TIMEOUT_MS, PROPOSAL_TIMEOUT_MS } from '../limits.js';
import { acceptFinal, acceptInitial, chainStep, EMPTY_ORDER, genesis, isFinishedOperation, lastEntry } from '../order/server-order.js';
import { makeNonce, makeSessionId, type SessionAck } from '../packets/aske.js';
import { verifyGreeting } from '../packets/greeting-signature.js';
import { deriveGroupKey } from '../packets/group-key.js';
import { makeLeavePacketId, makePacketId } from '../packets/ids.js';
import { downflow, recipientSecret, requireFull, upflow, type IntKey } from './cliques.js';
import type {
  MembershipEffect,
  MembershipEnv,
  MembershipInput,
  MembershipState,
  FailureReason,
  Operation,
  OperationKind,
  SigningKeyPair,
  StepResult,
  Subsession,
  WarningCode,
} from './types.js';
import { abortText, AbortReason, greetingText, isAbortReason, isAlarmingAbort, metadataHash, signAck, verifyAbort, verifyAck } from './wire.js';

type Effects = MembershipEffect[];

/** Initial greeting types and their operation (mpenc-wire.md greeting table; INIT bit set). */
const INITIAL_KIND: ReadonlyMap<number, OperationKind> = new Map([
  [GreetType.INIT_INITIATOR_UP, 'start'],
  [GreetType.INCLUDE_AUX_INITIATOR_UP, 'include'],
  [GreetType.EXCLUDE_AUX_INITIATOR_DOWN, 'exclude'],
  [GreetType.REFRESH_AUX_INITIATOR_DOWN, 'refresh'],
]);
const UPFLOW_TYPE: Partial<Record<OperationKind, GreetType>> = { start: GreetType.INIT_PARTICIPANT_UP, include: GreetType.INCLUDE_AUX_PARTICIPANT_UP };
const DOWNFLOW_TYPE: Partial<Record<OperationKind, GreetType>> = { start: GreetType.INIT_PARTICIPANT_DOWN, include: GreetType.INCLUDE_AUX_PARTICIPANT_DOWN };
const CONFIRM_TYPE: Record<OperationKind, GreetType> = {
  start: GreetType.INIT_PARTICIPANT_CONFIRM_DOWN,
  include: GreetType.INCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN,
  exclude: GreetType.EXCLUDE_AUX_PARTICIPANT_CONFIRM_DOWN,
  refresh: GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN,
};

/** A fresh member view: solo, in no channel yet. `staticSeed` null makes a passive observer. */
export function createMembership(options: { self: MemberId; staticSeed: Uint8Array | null; passive?: boolean }): MembershipState {
  return {
    self: options.self,
    staticSeed: options.staticSeed,
    ephemeral: null,
    channel: [],
    lastSeq: null,
    order: EMPTY_ORDER,
    current: null,
    own: null,
    op: null,
    proposal: null,
    proposedAtMs: null,
    automaticAttempts: 0,
    seen: [],
    passive: options.passive ?? options.staticSeed === null,
  };
}

export async function step(state: MembershipState, input: MembershipInput, env: MembershipEnv): Promise<StepResult> {
  const fx: Effects = [];
  let s: MembershipState;
  switch (input.kind) {
    case 'start':
    case 'include':
    case 'exclude':
    case 'refresh':
      s = await propose(state, input, env, fx, false);
      break;
    case 'abort':
      if (state.op === null || state.op.role !== 'participant' || state.op.abortSent) {
        fx.push({ kind: 'intent-refused', intent: 'abort', reason: 'no operation of ours to abort' });
        s = state;
      } else s = await sendAbort(state, AbortReason.USER, env, fx);
      break;
    case 'channel':
      s = await onChannel(state, input.event, env, fx);
      break;
    case 'tick':
      s = await onTick(state, env, fx);
      break;
  }
  s = await autoExclude(s, env, fx);
  return { state: s, effects: fx };
}

// ---------------------------------------------------------------------------------------------
// Intents: build our initial packet; it takes effect only when the relay hands it back.
// ---------------------------------------------------------------------------------------------

async function propose(
  s: MembershipState,
  intent: Extract<MembershipInput, { kind: OperationKind }>,
  env: MembershipEnv,
  fx: Effects,
  automatic: boolean,
): Promise<MembershipState> {
  const refuse = (reason: string) => {
    fx.push({ kind: 'intent-refused', intent: intent.kind, reason });
    return s;
  };
  if (s.staticSeed === null || s.passive) return refuse('a passive observer cannot propose');
  if (s.proposal !== null) return refuse('another proposal of ours is pending'); // MAX_PENDING_PROPOSALS = 1
  if (s.op !== null) return refuse('an operation is ongoing');
  if (!s.channel.includes(s.self)) return refuse('we are not in the channel');
  const { crypto, random } = env;
  const eph = s.ephemeral ?? (await newSigningKey(env));
  const cur = s.current;
  let fields: GreetingFields;
  let members: readonly MemberId[];
  let contributions;
  let nonce: Uint8Array;
  let groupKey: Uint8Array | null = null;
  const latestPms: readonly MessageId[] = 'latestPms' in intent ? (intent.latestPms ?? []) : [];

  if (intent.kind === 'start') {
    if (cur !== null) return refuse('already in a subsession: include, exclude or refresh instead');
    const others = [...new Set(intent.others)].filter((m) => m !== s.self).sort();
    if (others.length === 0) return refuse('a group needs at least one other member');
    members = [s.self, ...others]; // mpenc-wire.md "CLIQUES": initiator first, others sorted
    if (members.length > MAX_GROUP_MEMBERS) return refuse(`more than ${MAX_GROUP_MEMBERS} members`);
    if (!members.every((m) => s.channel.includes(m))) return refuse('every member must be in the channel (mpENC §3.3)');
    const up = await upflow(crypto, random, [null], 0, []);
    contributions = up.contributions;
    nonce = makeNonce(random);
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
      const up = await upflow(crypto, random, cur.intKeys, ownIndex, s.own.contributions);
      contributions = up.contributions;
      nonce = makeNonce(random); // mpenc-wire.md: include and exclude refresh the initiator's nonce
      const nonces = cur.nonces.map((n, i) => (i === ownIndex ? nonce : n));
      fields = greeting(GreetType.INCLUDE_AUX_INITIATOR_UP, s.self, joiners[0]!, members, up.intKeys, nonces, cur.ephemeralPubKeys, { metadata });
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
      const down = await downflow(crypto, random, keep.map((i) => cur.intKeys[i]!), myIndex, s.own.contributions);
      contributions = down.contributions;
      groupKey = await deriveGroupKey(crypto, down.secret);
      nonce = intent.kind === 'exclude' ? makeNonce(random) : cur.nonces[ownIndex]!;
      const nonces = keep.map((i) => (i === ownIndex ? nonce : cur.nonces[i]!));
      const pubKeys = keep.map((i) => cur.ephemeralPubKeys[i]!);
      const sid = await makeSessionId(crypto, members, nonces);
      const ack: SessionAck = { member: s.self, ephemeralPubKey: eph.pub, nonce, sessionId: sid };
      const sessionSignature = await signAck(crypto, s.staticSeed, ack, await metadataHash(crypto, metadata));
      const type = intent.kind === 'exclude' ? GreetType.EXCLUDE_AUX_INITIATOR_DOWN : GreetType.REFRESH_AUX_INITIATOR_DOWN;
      fields = greeting(type, s.self, null, members, down.intKeys, nonces, pubKeys, { metadata, sessionSignature });
    }
  }
  const text = await greetingText(crypto, eph.seed, fields);
  fx.push({ kind: 'send', text });
  return {
    ...s,
    ephemeral: eph,
    proposal: { kind: intent.kind, text, members, contributions, nonce, groupKey, automatic },
    proposedAtMs: env.nowMs,
  };
}

/** mpENC §3.3: members who left the channel are excluded from the session automatically. */
async function autoExclude(s: MembershipState, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  if (s.passive || s.current === null || s.op !== null || s.proposal !== null || !s.channel.includes(s.self)) return s;
  // Automatic retries are a security risk (mpENC §6.1.1 footnote): a few, then the user decides.
  if (s.automaticAttempts >= MAX_AUTOMATIC_ATTEMPTS) return s;
  const gone = s.current.members.filter((m) => m !== s.self && !s.channel.includes(m));
  if (gone.length === 0) return s;
  const next = await propose(s, { kind: 'exclude', members: gone }, env, fx, true);
  return next.proposal === null ? next : { ...next, automaticAttempts: s.automaticAttempts + 1 };
}

// ---------------------------------------------------------------------------------------------
// Channel events
// ---------------------------------------------------------------------------------------------

async function onChannel(s0: MembershipState, ev: ChannelEvent, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  let s = s0;
  if (ev.kind === 'joined' && ev.joined.includes(s.self)) {
    // Our own join: the relay's numbering for us starts here. Joining means we had left (maybe
    // removed while offline, unseen): mpENC §3.3, we are solo until an operation includes us.
    const solo = s.current === null && s.op === null && s.proposal === null ? s : await onLeft(s, [s.self], s.channel, env, fx);
    return { ...solo, channel: ev.members, lastSeq: ev.seq };
  }
  if (s.lastSeq !== null) {
    // An event we already processed: a client re-fetching after a reconnect does this, so it
    // is ignored quietly. (A relay showing events out of order trips the gap check first.)
    if (ev.seq <= s.lastSeq) return s;
    if (ev.seq !== s.lastSeq + 1) {
      // The relay numbers every event of a channel; a gap means events were withheld from us.
      warn(fx, 'events-withheld', null, `channel events ${s.lastSeq + 1}..${ev.seq - 1} never arrived`);
      s = await doom(s, AbortReason.SECURITY, env, fx);
    }
  }
  s = { ...s, lastSeq: ev.seq };
  switch (ev.kind) {
    case 'joined':
      return { ...s, channel: ev.members, automaticAttempts: 0 };
    case 'left':
      return onLeft({ ...s, automaticAttempts: 0 }, ev.left, ev.members, env, fx);
    case 'packet':
      return onPacket(s, ev.sender, ev.text, env, fx);
  }
}

async function onLeft(s: MembershipState, left: readonly MemberId[], members: readonly MemberId[], env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  if (left.includes(s.self)) {
    // mpENC §3.3: we switch to a solo subsession only after leaving the channel.
    if (s.op !== null) fx.push(failed(s.op, 'left-channel'));
    if (s.proposal !== null) fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason: 'we left the channel' });
    return { ...createMembership({ self: s.self, staticSeed: s.staticSeed, passive: s.passive }), ephemeral: s.ephemeral, seen: s.seen };
  }
  const before = s;
  s = { ...s, channel: members };
  const op = s.op;
  const leavers = op === null ? [] : op.members.filter((m) => left.includes(m)).sort();
  if (op === null || leavers.length === 0) return s;
  // mpENC §3.3: a target member left mid-operation, so it fails for everyone at this event,
  // chained as the pseudo packet of mpenc-wire.md.
  const id = await makeLeavePacketId(env.crypto, lastEntry(before.order)!.packetId, leavers, members);
  const order = await acceptFinal(env.crypto, s.order, id, 'leave');
  fx.push(failed(op, 'member-left'));
  return afterFailure({ ...s, order, op: null });
}

async function onTick(s: MembershipState, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  if (s.proposal !== null && s.proposedAtMs !== null && env.nowMs >= s.proposedAtMs + PROPOSAL_TIMEOUT_MS) {
    fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason: 'the relay never ordered it' });
    s = { ...s, proposal: null, proposedAtMs: null };
  }
  const op = s.op;
  if (op !== null && op.role === 'participant' && !op.abortSent && env.nowMs >= op.acceptedAtMs + OPERATION_TIMEOUT_MS) {
    // Covey (mpENC §6.1.1): a stalled operation is aborted through the order, so it ends the
    // same way for everyone: at whichever comes first of its final packet and an abort.
    s = await sendAbort(s, AbortReason.TIMEOUT, env, fx);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Greeting packets
// ---------------------------------------------------------------------------------------------

async function onPacket(s0: MembershipState, sender: MemberId, text: string, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  if (!text.startsWith('?mpENC')) return s0;
  const engaged = s0.current !== null || s0.op !== null || s0.passive;
  const id = await makePacketId(env.crypto, sender, s0.channel, text);
  let g: GreetingPacket;
  try {
    const packet = decodePacket(text);
    if (packet.kind !== 'greeting') return s0; // data, query and error packets are the session layer's
    g = packet;
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    if (s0.proposal !== null && sender === s0.self && text === s0.proposal.text) throw e; // our own packet: a bug
    if (!engaged) return s0;
    warn(fx, 'bad-packet', sender, `undecodable packet: ${e.message}`);
    return failAt(sender === s0.self ? rejectProposal(s0, fx, e.message) : s0, id, env, fx);
  }
  const ours = s0.proposal !== null && sender === s0.self && text === s0.proposal.text;
  const concerned = engaged || g.members.includes(s0.self);
  const hash = hexEncode(await env.crypto.sha256(utf8Encode(text)));
  if (s0.seen.includes(hash)) {
    if (!concerned) return s0;
    warn(fx, 'replay', sender, 'a greeting packet was repeated');
    return failAt(s0, id, env, fx);
  }
  let s: MembershipState = { ...s0, seen: remember(s0.seen, hash) };
  if (g.source !== sender) {
    if (!concerned) return s;
    warn(fx, 'forged-source', sender, `packet claims to be from ${g.source}`);
    return failAt(s, id, env, fx);
  }
  try {
    if ((g.greetType & GreetFlag.INIT) !== 0) return await onInitial(s, g, id, ours, env, fx);
    if (ours) s = rejectProposal(s, fx, 'not an initial packet');
    if (g.greetType === GreetType.ABORT_DOWN) return await onAbort(s, g, id, env, fx);
    return await onOperationPacket(s, g, id, env, fx);
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    // A packet under our name that fails is our proposal, altered on the way: give it up.
    const kept = ours || sender === s.self ? rejectProposal(s, fx, e.message) : s;
    if (!concerned) return kept;
    warn(fx, e.code === 'low-order-point' ? 'low-order-point' : e.code === 'bad-signature' ? 'bad-signature' : 'bad-packet', sender, e.message);
    return failAt(kept, id, env, fx);
  }
}

/**
 * A bad packet arrived while an operation runs (validate first, then change state; mpenc_js
 * marks a greeting broken on any bad packet). Everyone who sees the packet at this point of the
 * order fails the operation here, chained like an abort so that the next parent agrees; we also
 * post ABORT_DOWN so that members shown something else (a relay that tampers per member) end
 * it too, unless its final packet reaches them first.
 */
async function failAt(s0: MembershipState, id: PacketId, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const s = await doom(s0, AbortReason.SECURITY, env, fx);
  const op = s.op;
  if (op === null) return s;
  const order = await acceptFinal(env.crypto, s.order, id, 'abort');
  fx.push(failed(op, 'rejected-packet'));
  return afterFailure({ ...s, order, op: null });
}

/** A joiner whose operation failed has no chain of its own: it starts afresh at the next one. */
function afterFailure(s: MembershipState): MembershipState {
  return s.current === null ? { ...s, order: EMPTY_ORDER } : s;
}

async function onInitial(s: MembershipState, g: GreetingPacket, id: PacketId, ours: boolean, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const { crypto } = env;
  const kind = INITIAL_KIND.get(g.greetType);
  const cur = s.current;
  const version = versionOf(g.version);
  const relevant =
    kind === undefined
      ? false
      : kind === 'start'
        ? cur === null && (g.members.includes(s.self) || s.passive)
        : cur !== null
          ? cur.members.includes(g.source)
          : // Joiners come after the existing members: a packet listing us among those while we
            // are in no subsession is from a history we do not share, and we cannot take part.
            s.passive || (kind === 'include' && g.members.indexOf(s.self) >= g.nonces.length);
  if (kind === undefined || !relevant) return ours ? rejectProposal(s, fx, 'not relevant') : s;
  const meta = g.metadata;
  if (meta === undefined) throw new ProtocolError('bad-record', 'initial packet without PREV_PF / CHAIN_HASH');
  if (version === 2 && g.opRef !== undefined) throw new ProtocolError('bad-record', 'OP_REF on an initial packet');

  checkInitialShape(kind, g, cur);
  // mpENC §3.3: every target member must be in the channel to see the first packet, else it is ignored.
  if (!g.members.every((m) => s.channel.includes(m))) return ours ? rejectProposal(s, fx, 'a target member is not in the channel') : s;

  const initiatorIndex = g.members.indexOf(g.source);
  const knownPub = cur === null ? undefined : cur.ephemeralPubKeys[cur.members.indexOf(g.source)];
  const pub = knownPub ?? g.pubKeys[initiatorIndex]!;
  if (!(await verifyGreeting(crypto, g, pub))) throw new ProtocolError('bad-signature', `initial packet of ${g.source} does not verify`);

  const oneShot = g.members.length === 1 || (kind === 'refresh' && version === 1);
  const verdict = await acceptInitial(crypto, s.order, id, meta, oneShot);
  if (!verdict.accept) {
    if (ours) s = rejectProposal(s, fx, verdict.reason);
    if (verdict.reason === 'unknown-parent' && version === 2 && cur !== null && !s.passive && s.staticSeed !== null) {
      // A fellow member builds on a history we never saw: the order was forked. Say so to
      // everyone, in a way that ends the operation for those who accepted it (Covey §6.1.1).
      warn(fx, 'inconsistent-order', g.source, 'an operation builds on a history we never saw');
      const theirRef = await chainStep(crypto, meta.chainHash, id, oneShot ? 'initial-final' : 'initial');
      fx.push({ kind: 'send', text: await abortText(crypto, s.staticSeed, s.self, theirRef, AbortReason.INCONSISTENT) });
    }
    return s;
  }

  const participant = g.members.includes(s.self) && !s.passive;
  const proposal = ours ? s.proposal! : null;
  const ownIndex = cur === null ? -1 : cur.members.indexOf(s.self);
  let op: Operation = {
    kind,
    version,
    initiator: g.source,
    members: g.members,
    initialId: id,
    opRef: verdict.opRef,
    metaHash: version === 2 ? await metadataHash(crypto, meta) : null,
    acceptedAtMs: env.nowMs,
    role: participant ? 'participant' : 'observer',
    nextIndex: -1,
    intKeys: g.intKeys,
    nonces: g.nonces,
    pubKeys: g.pubKeys,
    sid: null,
    confirmed: [],
    contributions: !participant ? null : proposal !== null ? proposal.contributions : (s.own?.contributions ?? []),
    nonce: !participant ? null : proposal !== null ? proposal.nonce : ownIndex >= 0 ? cur!.nonces[ownIndex]! : null,
    groupKey: proposal?.groupKey ?? null,
    abortSent: false,
  };
  s = { ...s, order: verdict.order, op, ...(ours && { proposal: null, proposedAtMs: null }) };
  fx.push({ kind: 'operation-accepted', operation: kind, initiator: g.source, members: g.members, opRef: verdict.opRef });
  if (participant) fx.push({ kind: 'set-timer', atMs: env.nowMs + OPERATION_TIMEOUT_MS });

  if (kind === 'start' || kind === 'include') {
    op = { ...op, nextIndex: g.nonces.length };
    s = { ...s, op };
    return g.dest === s.self && participant ? contribute(s, env, fx) : s;
  }
  // Exclude and refresh: the initial packet is also the first downflow (mpENC §5.2.3 [b]).
  const sid = kind === 'refresh' && version === 1 ? cur!.sid : await makeSessionId(crypto, g.members, g.nonces);
  if (!(kind === 'refresh' && version === 1)) {
    await checkAck(env, op, g, sid, initiatorIndex, op.metaHash);
  }
  op = { ...op, sid, confirmed: [g.source] };
  s = { ...s, op };
  if (participant && g.source !== s.self) s = await receiveDownflow(s, env, fx);
  if (oneShot) return finish(s, id, true, env, fx);
  return s;
}

/** Structure of an initial packet against what we know (mpenc-wire.md "Greeting packets"). */
function checkInitialShape(kind: OperationKind, g: GreetingPacket, cur: Subsession | null): void {
  const bad = (why: string) => new ProtocolError('bad-value', `${kind} initial packet: ${why}`);
  const n = g.members.length;
  const i = g.members.indexOf(g.source);
  if (i < 0) throw bad('initiator is not a member');
  if (kind === 'start') {
    const others = g.members.slice(1);
    if (i !== 0 || n < 2) throw bad('initiator must come first, with at least one other member');
    if (others.some((m, k) => k > 0 && others[k - 1]! >= m)) throw bad('members after the initiator must be sorted');
    if (g.intKeys.length !== 2 || g.intKeys[0] !== null || g.intKeys[1] === null) throw bad('expected [empty, x·G]');
    if (g.nonces.length !== 1 || g.pubKeys.length !== 1 || g.dest !== g.members[1]) throw bad('bad upflow lists');
    return;
  }
  if (kind === 'include') {
    const old = g.nonces.length;
    if (old < 1 || old >= n || g.pubKeys.length !== old || g.intKeys.length !== old + 1 || g.dest !== g.members[old]) throw bad('bad upflow lists');
    if (i >= old) throw bad('initiator must be an existing member');
    if (g.intKeys.some((k) => k === null)) throw bad('empty INT_KEY');
    if (cur !== null) {
      if (!sameMembers(g.members.slice(0, old), cur.members)) throw bad('existing members altered');
      if (g.members.slice(old).some((m) => cur.members.includes(m))) throw bad('a joiner is already a member');
      if (!sameKeys(g.pubKeys, cur.ephemeralPubKeys)) throw bad('signing keys altered');
      if (!g.nonces.every((x, k) => k === i || bytesEqual(x, cur.nonces[k]!))) throw bad('nonces altered');
    }
    return;
  }
  if (g.dest !== null || g.intKeys.length !== n || g.nonces.length !== n || g.pubKeys.length !== n) throw bad('bad downflow lists');
  requireFull(g.intKeys);
  if (cur !== null) {
    const keep = g.members.map((m) => cur.members.indexOf(m));
    if (keep.some((k) => k < 0) || keep.some((k, j) => j > 0 && keep[j - 1]! >= k)) throw bad('members must keep their order');
    if (kind === 'refresh' && n !== cur.members.length) throw bad('a refresh keeps every member');
    if (kind === 'exclude' && n === cur.members.length) throw bad('an exclude removes someone');
    if (!g.pubKeys.every((p, j) => bytesEqual(p, cur.ephemeralPubKeys[keep[j]!]!))) throw bad('signing keys altered');
    if (!g.nonces.every((x, j) => j === i || bytesEqual(x, cur.nonces[keep[j]!]!))) throw bad('nonces altered');
  }
}

/** Upflow, downflow and confirmation packets of the ongoing operation. */
async function onOperationPacket(s: MembershipState, g: GreetingPacket, id: PacketId, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op;
  const version = versionOf(g.version);
  if (version === 2) {
    if (g.opRef === undefined) throw new ProtocolError('bad-record', 'v2 greeting without OP_REF');
    if (op === null || !bytesEqual(op.opRef, g.opRef)) return foreignPacket(s, g, env, fx);
  } else if (op === null) return s; // v1 has no operation reference: nothing to match it to
  if (op.version !== version) throw new ProtocolError('bad-value', 'protocol version changed within an operation');
  const n = op.members.length;
  const index = op.members.indexOf(g.source);
  if (index < 0) throw new ProtocolError('unknown-member', `${g.source} is not in this operation`);
  if (!sameMembers(g.members, op.members)) throw new ProtocolError('bad-value', 'MEMBER list differs from the operation');

  if (g.greetType === UPFLOW_TYPE[op.kind] || g.greetType === DOWNFLOW_TYPE[op.kind]) {
    const last = index === n - 1;
    if (op.nextIndex !== index || last !== (g.greetType === DOWNFLOW_TYPE[op.kind])) throw new ProtocolError('unexpected-packet', `not ${g.source}'s turn`);
    if (g.nonces.length !== index + 1 || g.pubKeys.length !== index + 1) throw new ProtocolError('bad-value', 'upflow lists of the wrong length');
    if (!sameKeys(g.nonces.slice(0, index), op.nonces) || !sameKeys(g.pubKeys.slice(0, index), op.pubKeys)) {
      throw new ProtocolError('bad-value', 'earlier contributions altered');
    }
    // An upflow packet is checked by the member it is addressed to, who builds on it; the
    // others only record it (a bad one makes that member abort, which everyone sees, and the
    // downflow's lists are checked by all). The downflow is checked by everyone.
    const mustVerify = last || g.dest === s.self;
    if (mustVerify && !(await verifyGreeting(env.crypto, g, g.pubKeys[index]!))) {
      throw new ProtocolError('bad-signature', `${last ? 'downflow' : 'upflow'} of ${g.source} does not verify`);
    }
    if (!last) {
      if (g.intKeys.length !== index + 2 || g.dest !== op.members[index + 1]) throw new ProtocolError('bad-value', 'upflow INT_KEY count or DEST');
      requireFull(g.intKeys);
      const next: Operation = { ...op, nextIndex: index + 1, intKeys: g.intKeys, nonces: g.nonces, pubKeys: g.pubKeys };
      s = { ...s, op: next };
      return g.dest === s.self && op.role === 'participant' ? contribute(s, env, fx) : s;
    }
    if (g.dest !== null || g.intKeys.length !== n) throw new ProtocolError('bad-value', 'downflow INT_KEY count or DEST');
    requireFull(g.intKeys);
    const sid = await makeSessionId(env.crypto, op.members, g.nonces);
    const withLists: Operation = { ...op, nextIndex: -1, intKeys: g.intKeys, nonces: g.nonces, pubKeys: g.pubKeys };
    await checkAck(env, withLists, g, sid, index, ackBinding(op));
    s = { ...s, op: { ...withLists, sid, confirmed: [g.source] } };
    if (op.role === 'participant' && g.source !== s.self) s = await receiveDownflow(s, env, fx);
    return s;
  }

  if (g.greetType === CONFIRM_TYPE[op.kind]) {
    if (op.sid === null) throw new ProtocolError('unexpected-packet', 'confirmation before the downflow');
    if (op.confirmed.includes(g.source)) throw new ProtocolError('replay', `${g.source} confirmed twice`);
    if (!sameKeys(g.nonces, op.nonces) || !sameKeys(g.pubKeys, op.pubKeys) || g.intKeys.length !== 0) {
      throw new ProtocolError('bad-value', 'confirmation lists differ from the operation');
    }
    // v2: the session signature covers member, signing key, nonce, sid and OP_REF, which is all a
    // confirmation says, so its ephemeral MESSAGE_SIGNATURE adds nothing and is not checked
    // (half the verifications of an operation: n² of them across the group).
    if (op.version === 1 && !(await verifyGreeting(env.crypto, g, op.pubKeys[index]!))) {
      throw new ProtocolError('bad-signature', `confirmation of ${g.source} does not verify`);
    }
    await checkAck(env, op, g, op.sid, index, ackBinding(op));
    const confirmed = [...op.confirmed, g.source];
    s = { ...s, op: { ...op, confirmed } };
    return confirmed.length === n ? finish(s, id, false, env, fx) : s;
  }
  throw new ProtocolError('unexpected-packet', `greeting type 0x${g.greetType.toString(16)} in a ${op.kind}`);
}

/** Verifies the SESSION_SIGNATURE of op.members[index] in `g` over `sid` (mpENC §5.2.2 phase 3). */
async function checkAck(env: MembershipEnv, op: Operation, g: GreetingPacket, sid: SessionId, index: number, binding: Uint8Array | null): Promise<void> {
  const member = op.members[index]!;
  if (g.sessionSignature === undefined) throw new ProtocolError('bad-record', `no SESSION_SIGNATURE from ${member}`);
  const staticKey = env.keys.staticKey(member);
  if (staticKey === undefined) throw new ProtocolError('unknown-member', `no static key for ${member}`);
  const ack: SessionAck = { member, ephemeralPubKey: g.pubKeys[index]!, nonce: g.nonces[index]!, sessionId: sid };
  if (!(await verifyAck(env.crypto, staticKey, g.sessionSignature, ack, binding))) {
    throw new ProtocolError('bad-signature', `session signature of ${member} does not verify`);
  }
}

/** A v2 packet naming an operation other than the ongoing one. */
async function foreignPacket(s: MembershipState, g: GreetingPacket, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const opRef = g.opRef!;
  const from = g.source;
  if (isFinishedOperation(s.order, opRef)) {
    // A late packet of an operation we saw finish (an abort that lost the race, an upflow sent
    // before its sender saw the abort) is benign, but must still be genuine.
    if (!(await lateIsGenuine(g, env))) warn(fx, 'bad-signature', from, 'a late packet of a finished operation does not verify');
    return s;
  }
  // A joiner (or a solo member) cannot tell operations before its time from foreign ones.
  if (s.current === null) return s;
  warn(fx, 'inconsistent-order', from, 'packet of an operation we never accepted: the relay showed us a different order');
  return doom(s, AbortReason.INCONSISTENT, env, fx);
}

/** Signature of a late packet: the static key for an abort, else the sender's listed signing key. */
async function lateIsGenuine(g: GreetingPacket, env: MembershipEnv): Promise<boolean> {
  if (g.greetType === GreetType.ABORT_DOWN) {
    const key = env.keys.staticKey(g.source);
    return key !== undefined && verifyAbort(env.crypto, g, key);
  }
  const pub = g.pubKeys[g.members.indexOf(g.source)];
  return pub !== undefined && verifyGreeting(env.crypto, g, pub);
}

async function onAbort(s: MembershipState, g: GreetingPacket, id: PacketId, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  if (g.version !== PROTOCOL_VERSION_2 || g.opRef === undefined || g.abortReason === undefined || !isAbortReason(g.abortReason)) {
    throw new ProtocolError('bad-record', 'malformed abort');
  }
  const op = s.op;
  if (op === null || !bytesEqual(op.opRef, g.opRef)) return foreignPacket(s, g, env, fx);
  if (!op.members.includes(g.source)) throw new ProtocolError('unknown-member', `${g.source} cannot abort this operation`);
  const staticKey = env.keys.staticKey(g.source);
  if (staticKey === undefined || !(await verifyAbort(env.crypto, g, staticKey))) throw new ProtocolError('bad-signature', `abort of ${g.source} does not verify`);
  const order = await acceptFinal(env.crypto, s.order, id, 'abort');
  fx.push({ ...failed(op, 'aborted'), abortReason: g.abortReason, by: g.source });
  if (isAlarmingAbort(g.abortReason) && g.source !== s.self) warn(fx, 'peer-alarm', g.source, `${g.source} aborted the operation for a security reason`);
  return afterFailure({ ...s, order, op: null });
}

// ---------------------------------------------------------------------------------------------
// Our own steps
// ---------------------------------------------------------------------------------------------

/** Our upflow turn (mpENC §5.2.1 "Upflow"; §5.2.2 phase 1), or the downflow if we are last. */
async function contribute(s: MembershipState, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op!;
  if (op.abortSent || s.staticSeed === null) return s;
  const { crypto, random } = env;
  const i = op.nextIndex;
  const n = op.members.length;
  const eph = s.ephemeral ?? (await newSigningKey(env));
  const nonce = makeNonce(random);
  const nonces = [...op.nonces, nonce];
  const pubKeys = [...op.pubKeys, eph.pub];
  const extra = op.version === 2 ? { opRef: op.opRef } : {};
  if (i < n - 1) {
    const up = await upflow(crypto, random, op.intKeys, i, op.contributions!);
    const fields = greeting(UPFLOW_TYPE[op.kind]!, s.self, op.members[i + 1]!, op.members, up.intKeys, nonces, pubKeys, extra, op.version);
    fx.push({ kind: 'send', text: await greetingText(crypto, eph.seed, fields) });
    return { ...s, ephemeral: eph, op: { ...op, contributions: up.contributions, nonce } };
  }
  const down = await downflow(crypto, random, op.intKeys, i, op.contributions!);
  const groupKey = await deriveGroupKey(crypto, down.secret);
  const sid = await makeSessionId(crypto, op.members, nonces);
  const sessionSignature = await signAck(crypto, s.staticSeed, { member: s.self, ephemeralPubKey: eph.pub, nonce, sessionId: sid }, ackBinding(op));
  const fields = greeting(DOWNFLOW_TYPE[op.kind]!, s.self, null, op.members, down.intKeys, nonces, pubKeys, { ...extra, sessionSignature }, op.version);
  fx.push({ kind: 'send', text: await greetingText(crypto, eph.seed, fields) });
  return { ...s, ephemeral: eph, op: { ...op, contributions: down.contributions, nonce, groupKey } };
}

/** A downflow reached us: derive the key and send our confirmation (mpENC §5.2.2 phase 2). */
async function receiveDownflow(s: MembershipState, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op!;
  if (op.abortSent || s.staticSeed === null) return s;
  const j = op.members.indexOf(s.self);
  const eph = s.ephemeral;
  // "checking that the values supposedly contributed by them actually match what they output"
  if (eph === null || !bytesEqual(op.pubKeys[j]!, eph.pub) || (op.nonce !== null && !bytesEqual(op.nonces[j]!, op.nonce))) {
    throw new ProtocolError('bad-signature', 'our own contribution was altered in the downflow');
  }
  if (op.contributions === null || op.contributions.length === 0) {
    throw new ProtocolError('unexpected-packet', 'a downflow for a slot we never contributed to');
  }
  const secret = await recipientSecret(env.crypto, op.intKeys, j, op.contributions);
  const groupKey = await deriveGroupKey(env.crypto, secret);
  const nonce = op.nonces[j]!;
  const sessionSignature = await signAck(env.crypto, s.staticSeed, { member: s.self, ephemeralPubKey: eph.pub, nonce, sessionId: op.sid! }, ackBinding(op));
  const fields = greeting(CONFIRM_TYPE[op.kind], s.self, null, op.members, [], op.nonces, op.pubKeys, {
    sessionSignature,
    ...(op.version === 2 && { opRef: op.opRef }),
  }, op.version);
  fx.push({ kind: 'send', text: await greetingText(env.crypto, eph.seed, fields) });
  return { ...s, op: { ...op, groupKey, nonce } };
}

/** The operation succeeded at packet `id` (mpENC §3.1: atomically switch to the new subsession). */
async function finish(s: MembershipState, id: PacketId, chained: boolean, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op!;
  const order = chained ? s.order : await acceptFinal(env.crypto, s.order, id, 'final');
  const head = lastEntry(order)!;
  const subsession: Subsession = {
    members: op.members,
    sid: op.sid!,
    groupKey: op.role === 'participant' ? op.groupKey : null,
    ephemeralPubKeys: op.pubKeys,
    nonces: op.nonces,
    intKeys: requireFull(op.intKeys),
    finalPacketId: id,
    chainHash: head.chainHash,
  };
  const previous = s.current;
  if (op.role === 'observer' && !s.passive) {
    // We were excluded: wait to be removed from the channel (mpENC §3.3).
    fx.push({ kind: 'excluded', by: op.initiator });
    return { ...s, order: EMPTY_ORDER, op: null, current: null, own: null };
  }
  if (op.role === 'participant' && (op.groupKey === null || op.contributions === null)) {
    throw new ProtocolError('unexpected-packet', 'operation finished before we derived the group key');
  }
  fx.push({ kind: 'subsession', operation: op.kind, subsession, ownEphemeral: op.role === 'participant' ? s.ephemeral : null, previousSid: previous?.sid ?? null });
  if (previous !== null && op.role === 'participant') {
    const gone = previous.members.filter((m) => !op.members.includes(m) && s.channel.includes(m));
    if (gone.length > 0) fx.push({ kind: 'kick', members: gone });
  }
  return {
    ...s,
    order,
    op: null,
    automaticAttempts: 0,
    current: subsession,
    own: op.role === 'participant' ? { contributions: op.contributions! } : null,
  };
}

/** We detected a problem in the ongoing operation: stop taking part and abort it for everyone. */
async function doom(s: MembershipState, reason: AbortReason, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op;
  if (op === null || op.role !== 'participant' || op.abortSent || op.version !== 2 || s.staticSeed === null) return s;
  return sendAbort(s, reason, env, fx);
}

async function sendAbort(s: MembershipState, reason: AbortReason, env: MembershipEnv, fx: Effects): Promise<MembershipState> {
  const op = s.op!;
  if (s.staticSeed === null) return s;
  fx.push({ kind: 'send', text: await abortText(env.crypto, s.staticSeed, s.self, op.opRef, reason) });
  return { ...s, op: { ...op, abortSent: true } };
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function greeting(
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

async function newSigningKey(env: MembershipEnv): Promise<SigningKeyPair> {
  const seed = env.random(32);
  return { seed, pub: await env.crypto.ed25519PublicKey(seed) };
}

/**
 * What a v2 session signature binds besides the ASKE values (wire.ts): the operation's OP_REF
 * (chain hash after its initial packet, which covers PREV_PF, CHAIN_HASH and LATEST_PM through
 * the packet id). Only the signature inside the initial packet itself cannot know OP_REF (it
 * depends on that packet's bytes): it binds the metadata hash instead. v1: nothing.
 */
function ackBinding(op: Operation): Uint8Array | null {
  return op.version === 2 ? op.opRef : null;
}

function versionOf(v: number): 1 | 2 {
  return v === PROTOCOL_VERSION_2 ? 2 : 1;
}

function rejectProposal(s: MembershipState, fx: Effects, reason: string): MembershipState {
  if (s.proposal === null) return s;
  fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason });
  return { ...s, proposal: null, proposedAtMs: null };
}

function failed(op: Operation, reason: FailureReason): Extract<MembershipEffect, { kind: 'operation-failed' }> {
  return { kind: 'operation-failed', operation: op.kind, reason, opRef: op.opRef };
}

function warn(fx: Effects, code: WarningCode, member: MemberId | null, message: string): void {
  fx.push({ kind: 'warning', code, member, message });
}

function remember(seen: readonly string[], hash: string): readonly string[] {
  const all = [...seen, hash];
  return all.length > MAX_REMEMBERED_GREETINGS ? all.slice(all.length - MAX_REMEMBERED_GREETINGS) : all;
}

function sameMembers(a: readonly MemberId[], b: readonly MemberId[]): boolean {
  return a.length === b.length && a.every((m, i) => m === b[i]);
}

function sameKeys(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => bytesEqual(x, b[i]!));
}
