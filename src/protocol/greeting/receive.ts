/**
 * Greeting packets from the channel (mpENC §3.3, §5.2; Covey v2): decode once, recognise
 * replays and forged sources, then hand each packet to its step: an initial packet to
 * ServerOrder, an abort, a rejoin request, a confirmation, or a contribution of the ongoing
 * operation. Validate first, then change state (mpenc_js); a bad packet of an operation fails
 * it for everyone who sees it there (outcome.failAt).
 */
import { bytesEqual, hexEncode } from '../bytes.js';
import { GreetFlag, GreetType, PROTOCOL_VERSION_2 } from '../codec/constants.js';
import type { GreetingPacket } from '../codec/greeting.js';
import { decodePacket } from '../codec/packet.js';
import { isProtocolError, ProtocolError } from '../errors.js';
import type { MemberId, PacketId } from '../ids.js';
import { OPERATION_TIMEOUT_MS, OPERATION_WAIT_LIMIT_MS } from '../limits.js';
import { acceptFinal, acceptInitial, chainStep, finishedOperation, parentVerdict, rememberRefused, startsMidHistory, wasRefused, witness, witnessedAncestor } from '../order/server-order.js';
import { makeSessionId } from '../packets/aske.js';
import { verifyGreeting } from '../packets/greeting-signature.js';
import { makePacketId } from '../packets/ids.js';
import { hasContributed, requireFull } from './cliques.js';
import { checkAckV1, contributeV1, onOperationPacketV1, receiveDownflowV1 } from './flow-v1.js';
import { contributeV2, onConfirmationV2, onContributionV2, ownSecrets } from './flow-v2.js';
import { CONFIRM_TYPES, contributorsOf, failed, hasSeen, INITIAL_KIND, isKeyOf, isRevoked, remember, sameKeys, sameMembers, signingKeysOf, versionOf, warn } from './helpers.js';
import { afterFailure, doom, failAt, finish, provisional, startOver, type PacketIdOf, type StepCtx } from './outcome.js';
import { planInclude } from './plan.js';
import type { MembershipState, Operation, OperationKind, Subsession } from './types.js';
import {
  AbortReason,
  abortText,
  finalKeyConfirmation,
  initialFinalBinding,
  isAbortReason,
  isAlarmingAbort,
  metadataHash,
  sessionIdV2,
  verifyAbort,
  verifyContributor,
  verifyRejoin,
} from './wire.js';

/** The packet text starts with "?mpENC" (anything else is plain text, which we ignore). */
export async function onPacket(s0: MembershipState, sender: MemberId, text: string, ctx: StepCtx): Promise<MembershipState> {
  const { env, fx } = ctx;
  const engaged = s0.current !== null || s0.op !== null || s0.passive;
  // Issue 8: the packet id (a hash over the channel and the text) only for packets the chain needs.
  let id: Promise<PacketId> | undefined;
  const idOf: PacketIdOf = () => (id ??= makePacketId(env.crypto, sender, s0.channel, text));
  const ours = s0.proposal !== null && sender === s0.self && text === s0.proposal.text;
  let g: GreetingPacket;
  try {
    const packet = decodePacket(text);
    if (packet.kind !== 'greeting') return s0; // data, query and error packets are the session layer's
    g = packet;
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    if (ours) throw e; // our own packet: a bug
    if (!engaged) return s0;
    warn(fx, 'bad-packet', sender, `undecodable packet: ${e.message}`);
    return failAt(sender === s0.self ? rejectProposal(s0, ctx, e.message) : s0, ctx, idOf);
  }
  const concerned = engaged || g.members.includes(s0.self);
  // Issue 8: replays are recognised by the signature (Ed25519 is deterministic and strictly
  // verified, so a repeat of a packet repeats its signature), not by hashing the whole text.
  const key = hexEncode(g.signature);
  if (hasSeen(s0.seen, key)) {
    if (!concerned) return s0;
    warn(fx, 'replay', sender, 'a greeting packet was repeated');
    // Only a repeat of the ongoing operation's own packets fails it: every participant saw
    // those. Older packets are recognised only by members who saw them (a newcomer did not),
    // and an operation must end the same way for everyone (rule 1).
    const op = s0.op;
    const ofOngoing = op !== null && (op.initialSignature === key || (g.opRef !== undefined && bytesEqual(g.opRef, op.opRef)));
    return ofOngoing ? failAt(s0, ctx, idOf) : s0;
  }
  let s: MembershipState = { ...s0, seen: remember(s0.seen, key) };
  if (g.source !== sender) {
    if (!concerned) return s;
    warn(fx, 'forged-source', sender, `packet claims to be from ${g.source}`);
    return failAt(s, ctx, idOf);
  }
  const version = versionOf(g.version);
  if (!ours && sender === s.self && s.proposal !== null && (g.greetType & GreetFlag.INIT) !== 0) {
    // The relay hands back an initial packet under our name that is not the one we posted: our
    // proposal was altered on the way (rule 8: it ends here, decided by what the relay ordered).
    warn(fx, 'bad-packet', sender, 'an initial packet under our name is not the proposal we posted');
    s = rejectProposal(s, ctx, 'the relay altered it');
  }
  try {
    if ((g.greetType & GreetFlag.INIT) !== 0) return await onInitial(s, g, ctx, idOf, ours, key);
    if (ours) s = rejectProposal(s, ctx, 'not an initial packet');
    if (g.greetType === GreetType.ABORT_DOWN) return await onAbort(s, g, ctx, idOf);
    if (g.greetType === GreetType.REJOIN_DOWN) return await onRejoin(s, g, ctx);
    if (version === 1) return await onOperationPacketV1(s, g, ctx, idOf);
    if (g.opRef === undefined) throw new ProtocolError('bad-record', 'v2 greeting without OP_REF');
    if (CONFIRM_TYPES.has(g.greetType)) {
      try {
        const confirmed = await onConfirmationV2(s, g, ctx);
        if (confirmed !== undefined) return confirmed;
      } catch (e) {
        // A bad confirmation of a finished subsession is a warning; it fails no other operation.
        if (!isProtocolError(e)) throw e;
        if (concerned) warn(fx, warningCode(e.code), sender, e.message);
        return s;
      }
      return await unmatchedConfirmation(s, g, ctx);
    }
    if (s.op === null || !bytesEqual(s.op.opRef, g.opRef)) return await foreignPacket(s, g, ctx);
    if (s.op.version !== 2) throw new ProtocolError('bad-value', 'protocol version changed within an operation');
    return await onContributionV2(s, g, ctx, idOf);
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    // A packet under our name that fails is our proposal, altered on the way: give it up.
    const kept = ours || sender === s.self ? rejectProposal(s, ctx, e.message) : s;
    if (!concerned) return kept;
    warn(fx, warningCode(e.code), sender, e.message);
    return failAt(kept, ctx, idOf);
  }
}

function warningCode(code: string): 'low-order-point' | 'bad-signature' | 'replay' | 'bad-packet' {
  return code === 'low-order-point' ? 'low-order-point' : code === 'bad-signature' ? 'bad-signature' : code === 'replay' ? 'replay' : 'bad-packet';
}

export function rejectProposal(s: MembershipState, ctx: StepCtx, reason: string): MembershipState {
  if (s.proposal === null) return s;
  ctx.fx.push({ kind: 'proposal-rejected', operation: s.proposal.kind, reason });
  return { ...s, proposal: null };
}

/** Says in plain words why ServerOrder refused our proposal (rule 5: "it says so"). */
function rejectionReason(reason: 'ongoing' | 'stale' | 'unknown-parent'): string {
  switch (reason) {
    case 'ongoing':
      return 'another operation was already running when the relay ordered ours; nothing was retried';
    case 'stale':
      return 'another operation was ordered first: ours was made from an older view of the group; nothing was retried';
    case 'unknown-parent':
      return 'it builds on a history we do not hold';
  }
}

async function onInitial(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf, ours: boolean, key: string): Promise<MembershipState> {
  const { env, fx } = ctx;
  const { crypto } = env;
  const kind = INITIAL_KIND.get(g.greetType);
  const version = versionOf(g.version);
  if (kind !== undefined && version === 2 && g.metadata !== undefined && !s.passive && (s.current === null || provisional(s.current))) {
    // While we cannot check the group's chain, we note where each proposal we see was made: the
    // links of the chain before our include, which its chain hash lets us verify (below).
    const oneShot = g.members.length === 1 || kind === 'refresh' || kind === 'exclude';
    s = { ...s, witnessed: witness(s.witnessed ?? [], { packetId: await idOf(), parent: { packetId: g.metadata.prevPf, chainHash: g.metadata.chainHash }, oneShot }) };
  }
  if (
    kind === 'include' &&
    version === 2 &&
    g.source !== s.self &&
    provisional(s.current) &&
    s.current!.members.includes(g.source) &&
    g.members.indexOf(s.self) >= g.nonces.length &&
    g.metadata !== undefined &&
    parentVerdict(s.order, g.metadata) === 'unknown-parent' &&
    !(await witnessedAncestor(crypto, s.order, s.witnessed ?? [], g.metadata))
  ) {
    // A member of the subsession we joined includes us as a newcomer, building on a history that
    // does not hold our include: for the group we are not in it (the order refused the include,
    // which we could not check). Not so if its parent is an earlier point of the chain our
    // include continues (README "A parent we never saw", asleep seed 786): another proposal on
    // that parent was ordered before it (we saw it, and our include's chain hash commits to it),
    // so it lost that race; it is refused below like any race lost before our time. (One that
    // builds on what ours built on lost the race to ours: stale, refused below.) The packet must
    // be genuine before we drop anything.
    const staticKey = env.keys.staticKey(g.source);
    if (staticKey !== undefined && (await verifyContributor(crypto, g, staticKey))) s = await startOver(s, ctx, 'superseded');
  }
  const cur = s.current;
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
  if (kind === undefined || !relevant) return ours ? rejectProposal(s, ctx, 'not relevant') : s;
  const meta = g.metadata;
  if (meta === undefined) throw new ProtocolError('bad-record', 'initial packet without PREV_PF / CHAIN_HASH');
  if (version === 2 && g.opRef !== undefined) throw new ProtocolError('bad-record', 'OP_REF on an initial packet');

  // A proposal that lost the race (or came while another operation runs) was built on another
  // view of the group: refused as it is, before its shape is compared with a view it never had.
  const early = parentVerdict(s.order, meta);
  if (early === 'ongoing' || early === 'stale') {
    if (ours) s = await voidRefused(rejectProposal(s, ctx, rejectionReason(early)), g, ctx, idOf, kind, version);
    return refused(s, g, ctx, idOf, kind, version);
  }
  if (early === 'unknown-parent' && version === 2 && cur !== null && (await beforeOurTime(s, g, kind, cur, ctx))) {
    // A race lost before our time (README "A parent we never saw"): refused like a stale one,
    // without comparing its shape with a view its initiator never had. Its own structure is
    // checked, and its initiator's static key must sign it (rule 2): nothing in it is altered.
    checkInitialShape(kind, g, null, version);
    await checkInitiatorSignature(g, ctx);
    if (ours) s = await voidRefused(rejectProposal(s, ctx, rejectionReason('unknown-parent')), g, ctx, idOf, kind, version);
    return refused(s, g, ctx, idOf, kind, version);
  }
  if (version === 2 && cur !== null && g.pubKeys.some((k) => isRevoked(s, k))) {
    // Issue 9 §3: its initiator listed a signing key that its owner has renewed and published
    // since (the proposal was made before the initiator saw the renewal): refused like a stale
    // one, by everyone who holds the group's chain; it must be genuine all the same.
    await checkInitiatorSignature(g, ctx);
    if (ours) s = await voidRefused(rejectProposal(s, ctx, 'a member renewed its signing key meanwhile; nothing was retried'), g, ctx, idOf, kind, version);
    return refused(s, g, ctx, idOf, kind, version);
  }
  checkInitialShape(kind, g, cur, version);
  // mpENC §3.3: every target member must be in the channel to see the first packet, else it is ignored.
  if (!g.members.every((m) => s.channel.includes(m))) return ours ? rejectProposal(s, ctx, 'a target member is not in the channel') : s;

  const initiatorIndex = g.members.indexOf(g.source);
  if (version === 2) {
    await checkInitiatorSignature(g, ctx);
    if ((kind === 'exclude' || kind === 'refresh') && g.keyConfirmation === undefined) throw new ProtocolError('bad-record', 'final packet without KEY_CONFIRMATION');
  } else {
    const knownPub = cur === null ? undefined : cur.ephemeralPubKeys[cur.members.indexOf(g.source)];
    if (!(await verifyGreeting(crypto, g, knownPub ?? g.pubKeys[initiatorIndex]!))) throw new ProtocolError('bad-signature', `initial packet of ${g.source} does not verify`);
  }

  // Rule 1: a v2 exclude or refresh is final at its initial packet (only its initiator contributes).
  const oneShot = g.members.length === 1 || kind === 'refresh' || (version === 2 && kind === 'exclude');
  const id = await idOf();
  const verdict = await acceptInitial(crypto, s.order, id, meta, oneShot);
  if (!verdict.accept) {
    if (ours) s = await voidRefused(rejectProposal(s, ctx, rejectionReason(verdict.reason)), g, ctx, idOf, kind, version);
    s = await refused(s, g, ctx, idOf, kind, version);
    if (verdict.reason === 'unknown-parent' && version === 2 && cur !== null && !s.passive && s.staticSeed !== null && env.quiet !== true) {
      // A fellow member builds on a history we never saw: the order was forked. Say so to
      // everyone, in a way that ends the operation for those who accepted it (Covey §6.1.1).
      warn(fx, 'inconsistent-order', g.source, 'an operation builds on a history we never saw');
      const theirRef = await chainStep(crypto, meta.chainHash, id, oneShot ? 'initial-final' : 'initial');
      fx.push({ kind: 'send', text: await abortText(crypto, s.staticSeed, s.self, theirRef, AbortReason.INCONSISTENT) });
    } else if (verdict.reason === 'unknown-parent' && version === 2 && cur !== null && !s.passive) {
      warn(fx, 'inconsistent-order', g.source, 'an operation builds on a history we never saw');
    }
    return s;
  }

  const participant = g.members.includes(s.self) && !s.passive;
  const proposal = ours ? s.proposal! : null;
  const ownIndex = cur === null ? -1 : cur.members.indexOf(s.self);
  const oldCount = kind === 'include' ? g.nonces.length : 0;
  const contributors = contributorsOf({ kind, members: g.members, initiator: g.source }, oldCount);
  let op: Operation = {
    kind,
    version,
    initiator: g.source,
    members: g.members,
    initialId: id,
    initialSignature: key,
    opRef: verdict.opRef,
    metaHash: version === 2 ? await metadataHash(crypto, meta) : null,
    acceptedAtMs: env.nowMs,
    turnSinceMs: env.nowMs,
    turnOnline: true,
    role: participant ? 'participant' : 'observer',
    contributors,
    nextIndex: -1,
    intKeys: g.intKeys,
    nonces: g.nonces,
    pubKeys: g.pubKeys,
    sid: null,
    confirmed: [],
    contributions: !participant ? null : proposal !== null ? proposal.contributions : (s.own?.contributions ?? []),
    nonce: !participant ? null : proposal !== null ? proposal.nonce : ownIndex >= 0 ? cur!.nonces[ownIndex]! : null,
    groupKey: proposal?.groupKey ?? null,
    confirmKey: proposal?.confirmKey ?? null,
    abortSent: false,
  };
  s = { ...s, order: verdict.order, op, ...(ours && { proposal: null }) };
  fx.push({ kind: 'operation-accepted', operation: kind, initiator: g.source, members: g.members, opRef: verdict.opRef });
  if (version === 2) fx.push({ kind: 'seen', member: g.source });

  if (kind === 'start' || kind === 'include') {
    const nextMember = g.members[g.nonces.length]!;
    op = { ...op, nextIndex: g.nonces.length, turnOnline: env.isOnline?.(nextMember) ?? true };
    s = { ...s, op };
    if (participant) {
      if (version === 1) fx.push({ kind: 'set-timer', atMs: env.nowMs + OPERATION_TIMEOUT_MS });
      else {
        fx.push({ kind: 'set-timer', atMs: env.nowMs + OPERATION_WAIT_LIMIT_MS });
        if (g.source === s.self && op.turnOnline) fx.push({ kind: 'set-timer', atMs: env.nowMs + OPERATION_TIMEOUT_MS });
      }
    }
    if (g.dest !== s.self || !participant) return s;
    return version === 2 ? contributeV2(s, ctx) : contributeV1(s, ctx);
  }
  // Exclude and refresh: the initial packet is also the first downflow (mpENC §5.2.3 [b]).
  if (version === 1) return onInitialDownflowV1(s, g, ctx, idOf, oneShot);
  const sid = await sessionIdV2(crypto, g.members, g.nonces, verdict.opRef);
  op = { ...op, sid, intKeys: requireFull(g.intKeys) };
  // Our own final packet, but not our proposal: a saved state from before we posted it was
  // restored (issue 9 §2), and its secrets are gone with it. We cannot use this subsession.
  if (participant && g.source === s.self && op.groupKey === null) return startOver({ ...s, op }, ctx, 'key-mismatch');
  if (participant && g.source !== s.self) {
    const j = g.members.indexOf(s.self);
    if (!hasContributed(op.contributions)) throw new ProtocolError('unexpected-packet', 'a downflow for a slot we never contributed to');
    // A member who contributes nothing derives the key from its stored contributions, however
    // late and after however many operations (async-groups "What already holds").
    const secrets = await ownSecrets(op.intKeys as Uint8Array[], j, op.contributions, ctx);
    const binding = await initialFinalBinding(crypto, g.members, g.nonces, op.metaHash!);
    // Rule 4, and the packet is final for everyone else: if our key differs, we start over.
    if (secrets === null || !bytesEqual(await finalKeyConfirmation(crypto, secrets.confirmKey, binding), g.keyConfirmation!)) {
      return startOver({ ...s, op }, ctx, 'key-mismatch');
    }
    op = { ...op, groupKey: secrets.groupKey, confirmKey: secrets.confirmKey };
  }
  return finish({ ...s, op }, ctx, idOf, true);
}

/** Rule 2: a v2 initial packet is bound to its initiator's static key. */
async function checkInitiatorSignature(g: GreetingPacket, ctx: StepCtx): Promise<void> {
  const { crypto } = ctx.env;
  const staticKey = ctx.env.keys.staticKey(g.source);
  if (staticKey === undefined) throw new ProtocolError('unknown-member', `no static key for ${g.source}`);
  if (!(await verifyContributor(crypto, g, staticKey))) throw new ProtocolError('bad-signature', `initial packet of ${g.source} does not verify with its identity key`);
}

/** v1 exclude and refresh: the initiator's SESSION_SIGNATURE, then everyone confirms (mpenc_js). */
async function onInitialDownflowV1(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf, oneShot: boolean): Promise<MembershipState> {
  const { env } = ctx;
  let op = s.op!;
  const kind = op.kind;
  const cur = s.current!;
  const sid = kind === 'refresh' ? cur.sid : await makeSessionId(env.crypto, g.members, g.nonces);
  if (kind !== 'refresh') await checkAckV1(env, op, g, sid, g.members.indexOf(g.source));
  op = { ...op, sid, confirmed: [g.source] };
  s = { ...s, op };
  if (op.role === 'participant' && g.source !== s.self) s = await receiveDownflowV1(s, env, ctx);
  if (oneShot) return finish(s, ctx, idOf, true);
  return s;
}

/** Remembers the OP_REF a refused v2 initial packet would have had (fork detection, ServerOrder.refused). */
/**
 * Our own include, refused by the order: its newcomers cannot tell (they do not hold the group's
 * chain), and one who contributes ends it for itself. We declare it void (ABORT_DOWN, REFUSED),
 * at once or once we have caught up (rule 6).
 */
async function voidRefused(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf, kind: OperationKind, version: 1 | 2): Promise<MembershipState> {
  if (kind !== 'include' || version !== 2 || g.metadata === undefined || s.staticSeed === null) return s;
  const ref = await chainStep(ctx.env.crypto, g.metadata.chainHash, await idOf(), 'initial');
  if (ctx.env.quiet === true) return { ...s, due: { ...s.due, voids: [...(s.due.voids ?? []), hexEncode(ref)] } };
  ctx.fx.push({ kind: 'send', text: await abortText(ctx.env.crypto, s.staticSeed, s.self, ref, AbortReason.REFUSED) });
  return s;
}

async function refused(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf, kind: OperationKind, version: 1 | 2): Promise<MembershipState> {
  if (version !== 2 || s.current === null || g.metadata === undefined) return s;
  const oneShot = g.members.length === 1 || kind === 'refresh' || kind === 'exclude';
  const theirRef = await chainStep(ctx.env.crypto, g.metadata.chainHash, await idOf(), oneShot ? 'initial-final' : 'initial');
  return { ...s, order: rememberRefused(s.order, theirRef) };
}

/** Structure of an initial packet against what we know (mpenc-wire.md "Greeting packets"). */
function checkInitialShape(kind: OperationKind, g: GreetingPacket, cur: Subsession | null, version: 1 | 2): void {
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
      if (!(version === 2 ? g.pubKeys.length === cur.members.length && g.pubKeys.every((p, k) => isKeyOf(cur, cur.members[k]!, p)) : sameKeys(g.pubKeys, cur.ephemeralPubKeys))) throw bad('signing keys altered');
      if (!g.nonces.every((x, k) => k === i || bytesEqual(x, cur.nonces[k]!))) throw bad('nonces altered');
      if (version === 2 && bytesEqual(g.nonces[i]!, cur.nonces[i]!)) throw bad('the initiator must draw a fresh nonce (rule 3)');
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
    // Issue 9 §3 (v2): each member's key as listed in our subsession, or as renewed by its
    // confirmation (the initiator may not have seen a renewal ordered before its proposal).
    const keyOk = (p: Uint8Array, k: number) => (version === 2 ? isKeyOf(cur, cur.members[k]!, p) : bytesEqual(p, cur.ephemeralPubKeys[k]!));
    if (!g.pubKeys.every((p, j) => keyOk(p, keep[j]!))) throw bad('signing keys altered');
    if (!g.nonces.every((x, j) => j === i || bytesEqual(x, cur.nonces[keep[j]!]!))) throw bad('nonces altered');
    // Rule 3: every initiator draws a fresh nonce, refresh included (v1 refresh keeps the sid).
    if (version === 2 && bytesEqual(g.nonces[i]!, cur.nonces[keep[i]!]!)) throw bad('the initiator must draw a fresh nonce (rule 3)');
  }
}

/**
 * Whether an initial packet whose parent we never accepted may be a race lost before our time
 * (async-groups rules 5, 11; README "A parent we never saw"): our chain starts mid-history (we
 * were included, perhaps again after starting over), and the initiator's view does not hold our
 * current slot (our nonce and signing key among its existing members), so it was made before the
 * operation that gave us that slot, which our chain starts with. If its view holds our slot, its
 * history contains ours from our start on, and a parent we never saw is a fork: alarm as before.
 */
async function beforeOurTime(s: MembershipState, g: GreetingPacket, kind: OperationKind, cur: Subsession, ctx: StepCtx): Promise<boolean> {
  const mine = cur.members.indexOf(s.self);
  const existing = kind === 'include' ? g.nonces.length : g.members.length;
  const theirs = g.members.indexOf(s.self);
  const holdsOurSlot =
    mine >= 0 &&
    theirs >= 0 &&
    theirs < existing &&
    g.nonces[theirs] !== undefined &&
    g.pubKeys[theirs] !== undefined &&
    bytesEqual(g.nonces[theirs], cur.nonces[mine]!) &&
    isKeyOf(cur, s.self, g.pubKeys[theirs]);
  return !holdsOurSlot && (await startsMidHistory(ctx.env.crypto, s.order));
}

/** Whether `member` is in the subsession we hold (or a recent one): only members can fork us. */
function isKnownMember(s: MembershipState, member: MemberId): boolean {
  return (s.current?.members.includes(member) ?? false) || s.recent.some((r) => r.members.includes(member));
}

/** A v2 packet naming an operation other than the ongoing one. */
async function foreignPacket(s: MembershipState, g: GreetingPacket, ctx: StepCtx): Promise<MembershipState> {
  const opRef = g.opRef!;
  const from = g.source;
  const done = finishedOperation(s.order, opRef);
  if (done !== undefined) {
    // A late packet of an operation we saw finish (an abort that lost the race, an upflow sent
    // before its sender saw the abort) is benign, but must still be genuine.
    const genuine = await lateIsGenuine(g, ctx);
    if (!genuine) {
      warn(ctx.fx, 'bad-signature', from, 'a late packet of a finished operation does not verify');
      return s;
    }
    const cur = s.current;
    // The subsession made by the operation it names (ours now, or one we built on since).
    const made = cur === null ? undefined : [cur, ...s.recent].find((x) => bytesEqual(x.opRef, opRef) && x.initiator === from);
    if (g.greetType === GreetType.ABORT_DOWN && g.abortReason === AbortReason.REFUSED && done.succeeded && made !== undefined) {
      // Its initiator says the order refused the include that made that subsession. As its
      // newcomer we could not check it (provisional): the group never took us in, nor anything
      // we built on it since (an operation we made in it meanwhile is ours alone: the relay
      // ordered it before the abort, seed 8486); we drop it all and wait to be included.
      // A member who checked it and took it as its head holds another order than its initiator: a fork.
      if (provisional(made)) return startOver(s, ctx, 'superseded');
      if (made === cur) {
        warn(ctx.fx, 'inconsistent-order', from, `${from} says the order refused an include we accepted: the order was forked`);
        return startOver(s, ctx, 'forked');
      }
    }
    if (done.failedOurChecks === true && g.greetType !== GreetType.ABORT_DOWN && isKnownMember(s, from)) {
      // A packet of this operation failed our checks, yet a member goes on with it: the relay
      // showed us something else than the others. We cannot use our view: start over.
      warn(ctx.fx, 'inconsistent-order', from, 'the group went on with an operation whose packet failed our checks');
      return startOver(s, ctx, 'forked');
    }
    return s;
  }
  // A joiner (or a solo member) cannot tell operations before its time from foreign ones; a
  // would-be joiner of an operation we refused is no member of ours. It must still be genuine.
  // Its initiator declares void an include we refused too, or never saw (we were busy, or not
  // yet here): nothing to do.
  if (g.greetType === GreetType.ABORT_DOWN && g.abortReason === AbortReason.REFUSED) {
    if (!(await lateIsGenuine(g, ctx))) warn(ctx.fx, 'bad-signature', from, 'an abort in its name does not verify');
    return s;
  }
  // Nor can we tell anything from someone outside our subsession (one we excluded may go on in
  // a group of its own, in the same channel until it is removed).
  if (s.current === null) return s;
  if (!s.current.members.includes(from)) {
    if (!(await lateIsGenuine(g, ctx))) warn(ctx.fx, 'bad-signature', from, 'a packet of an operation we do not know does not verify');
    return s;
  }
  warn(ctx.fx, 'inconsistent-order', from, wasRefused(s.order, opRef) ? `${from} accepted an operation we refused: the order was forked` : 'packet of an operation we never accepted: the relay showed us a different order');
  return doom(s, AbortReason.INCONSISTENT, ctx);
}

/**
 * A confirmation naming no subsession we hold: old (we keep a few), before our time (a joiner's
 * first confirmations), or a sign that the confirmer's order differs from ours.
 */
async function unmatchedConfirmation(s: MembershipState, g: GreetingPacket, ctx: StepCtx): Promise<MembershipState> {
  const opRef = g.opRef!;
  const from = g.source;
  const cur = s.current;
  const index = cur?.members.indexOf(from) ?? -1;
  // Genuine if it verifies with a signing key of the confirmer that we know: its key in our
  // subsession (keys carry over), or an older one (issue 9 §3: each confirmation renews it).
  const genuine = async () => {
    if (index < 0) return false;
    // Newest first, each key once (consecutive subsessions share most of them): a genuine one
    // verifies at its first or second try, so a catch-up stays linear in what it reads.
    const tried = new Set<string>();
    for (const sub of [cur!, ...[...s.recent].reverse()]) {
      const i = sub.members.indexOf(from);
      if (i < 0) continue;
      for (const key of [signingKeysOf(sub)[i]!, sub.ephemeralPubKeys[i]!]) {
        const hex = hexEncode(key);
        if (tried.has(hex)) continue;
        tried.add(hex);
        if (await verifyGreeting(ctx.env.crypto, g, key)) return true;
      }
    }
    return false;
  };
  if (s.op !== null && bytesEqual(s.op.opRef, opRef)) {
    // Nobody can confirm an operation before its final packet, which everyone sees first.
    if (!(await genuine())) return s;
    warn(ctx.fx, 'inconsistent-order', from, 'a confirmation of an operation that has not finished: the relay showed us a different order');
    return doom(s, AbortReason.INCONSISTENT, ctx);
  }
  const done = finishedOperation(s.order, opRef);
  if (done !== undefined && !done.succeeded && (await genuine())) {
    warn(ctx.fx, 'inconsistent-order', from, `${from} confirms an operation that failed for us`);
    // If it failed at a packet that failed only our checks, we are the one shown something else.
    return done.failedOurChecks === true ? startOver(s, ctx, 'forked') : s;
  }
  if (index >= 0 && !(await genuine())) {
    warn(ctx.fx, 'bad-signature', from, `a confirmation in ${from}'s name does not verify`);
    return s;
  }
  if (done === undefined && wasRefused(s.order, opRef) && index >= 0) {
    warn(ctx.fx, 'inconsistent-order', from, `${from} accepted an operation we refused: the order was forked`);
  }
  return s; // older than what we keep, or before our time
}

/** Signature of a late packet: the static key for an abort or a contribution, else its signing key. */
async function lateIsGenuine(g: GreetingPacket, ctx: StepCtx): Promise<boolean> {
  const key = ctx.env.keys.staticKey(g.source);
  if (g.greetType === GreetType.ABORT_DOWN) return key !== undefined && verifyAbort(ctx.env.crypto, g, key);
  if (g.version === PROTOCOL_VERSION_2 && !CONFIRM_TYPES.has(g.greetType)) return key !== undefined && verifyContributor(ctx.env.crypto, g, key);
  const pub = g.pubKeys[g.members.indexOf(g.source)];
  return pub !== undefined && verifyGreeting(ctx.env.crypto, g, pub);
}

async function onAbort(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf): Promise<MembershipState> {
  const { env, fx } = ctx;
  if (g.version !== PROTOCOL_VERSION_2 || g.opRef === undefined || g.abortReason === undefined || !isAbortReason(g.abortReason)) {
    throw new ProtocolError('bad-record', 'malformed abort');
  }
  const op = s.op;
  if (op === null || !bytesEqual(op.opRef, g.opRef)) return foreignPacket(s, g, ctx);
  if (!op.members.includes(g.source)) throw new ProtocolError('unknown-member', `${g.source} cannot abort this operation`);
  const staticKey = env.keys.staticKey(g.source);
  if (staticKey === undefined || !(await verifyAbort(env.crypto, g, staticKey))) throw new ProtocolError('bad-signature', `abort of ${g.source} does not verify`);
  fx.push({ kind: 'seen', member: g.source });
  const order = await acceptFinal(env.crypto, s.order, await idOf(), 'abort');
  fx.push({ ...failed(op, 'aborted'), abortReason: g.abortReason, by: g.source });
  if (isAlarmingAbort(g.abortReason) && g.source !== s.self) warn(fx, 'peer-alarm', g.source, `${g.source} aborted the operation for a security reason`);
  return afterFailure({ ...s, order, op: null, due: { ...s.due, contribute: false, abort: null } });
}

/**
 * Rule 11: a member lost this group's state and asks to be excluded and included again. From a
 * newcomer outside our subsession (rule 10), it says it is back online, waiting to be included.
 */
async function onRejoin(s: MembershipState, g: GreetingPacket, ctx: StepCtx): Promise<MembershipState> {
  if (g.version !== PROTOCOL_VERSION_2 || g.opRef === undefined) throw new ProtocolError('bad-record', 'malformed rejoin request');
  const member = g.source;
  const cur = s.current;
  if (member === s.self || s.rejoining.includes(member) || !s.channel.includes(member)) return s;
  const staticKey = ctx.env.keys.staticKey(member);
  if (staticKey === undefined || !(await verifyRejoin(ctx.env.crypto, g, staticKey))) throw new ProtocolError('bad-signature', `rejoin request of ${member} does not verify`);
  ctx.fx.push({ kind: 'seen', member });
  const startedOver = cur !== null && cur.members.includes(member);
  ctx.fx.push({ kind: 'rejoin-request', member, startedOver });
  if (!startedOver) return planInclude(s, ctx, ctx.seq ?? 0, member);
  return { ...s, rejoining: [...s.rejoining, member] };
}

