/**
 * Session (mpENC §4.1, §4.2 HybridSession): the one object the worker talks to for a conversation.
 *
 * Inputs: user actions (`send`, `ack`, `include`, `exclude`, `refresh`, `abort`, `leave`), channel
 * events (`receive`, `catchUp`, `retention`) and the clock (`tick`), each with `nowMs`. Outputs:
 * the tagged effects each call returns (effects.ts). Randomness and crypto come in through
 * `SessionDeps`. Calls must not overlap: the worker awaits each one before the next (asserted).
 *
 * A data packet goes through stages, each owning its state (issue 8 "Shape"; inbound.ts):
 *   decode → duplicate check → subsession (SIDKEY_HINT) → verify/decrypt (that subsession's
 *   keys) → confirmation gate (async-groups rule 5) → transcript (parents, pending) → acks and
 *   presence → the MessageLog and `deliver`. This file holds the calls, the membership half's
 *   outputs and the subsessions' lifecycle (install, part, close, prune, start over).
 * Everything else (greetings, channel membership) goes to the membership half, whose outputs
 * (new subsessions, late confirmations with last words, presence) feed the same stages.
 *
 * Groups whose phones sleep (shared/spec/async-groups.md): a subsession replaced by an operation
 * is never sealed under again (rule 7); it waits for the last words of the members who confirmed
 * it (rules 5, 14), never blocking the new one; a member silent since a message is "pending",
 * not late (rule 14); presence is "online" or "last seen" at relay time (rule 15); while catching
 * up we send nothing (rule 6); late messages and unverifiable ones are told apart (rule 12).
 */
import type { ChannelEvent, ChannelLeft, ChannelPacket } from '../channel.js';
import { bytesEqual, hexDecode } from '../bytes.js';
import { encodePacket } from '../codec/packet.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { assert, ProtocolError } from '../errors.js';
import { idKey, messageId, type MemberId, type MessageId, type SessionId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import { sealDataPacket, sidkeyHint } from '../packets/data.js';
import { makeMessageId } from '../packets/ids.js';
import { PresenceTracker, type Presence, type PresenceAction } from '../presence/presence-tracker.js';
import { checkedRandom, type RandomSource } from '../random.js';
import type { AckStatus, Delivery } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import { MessageLog, type LogEntry } from '../transcript/message-log.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from './config.js';
import { Inbound } from './inbound.js';
import { isContent, type Sealed, type SessionEffect, type SessionState } from './effects.js';
import type { Membership, MembershipContext, MembershipOutput, SubsessionSetup, WaitingOperation } from './membership.js';
import { checkSnapshotVersion, restoreSubsession, SESSION_SNAPSHOT_VERSION, snapshotSubsession, type SessionSnapshot } from './snapshot.js';
import { Subsession, type SubsessionPhase } from './subsession.js';

export interface SessionDeps {
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
}

export type { SessionState } from './effects.js';

type Out = SessionEffect[];

export interface SubsessionInfo {
  readonly index: number;
  /** Hex of the subsession's session id (the same for every member). */
  readonly sessionId: string;
  readonly members: readonly MemberId[];
  /** 'pruned': dropped from memory (MAX_KEPT_SUBSESSIONS), only this line remains. */
  readonly phase: SubsessionPhase['kind'] | 'pruned';
  /** For a closed subsession: whether it closed with every message fully acked. */
  readonly consistent: boolean | null;
  /** Messages waiting for parents. */
  readonly pending: number;
  /** The subsession that replaced it (rule 7: nobody seals here after processing that). */
  readonly replacedBy: number | null;
  /** Members whose confirmation we have (rule 5). */
  readonly confirmed: readonly MemberId[];
}

/**
 * Live subsessions (current plus those still parting). A replaced subsession waits for the
 * last words of the members who confirmed it, which a sleeping phone gives only when it wakes;
 * beyond this many the oldest is closed as it stands (no warning: sleeping is no fault).
 */
export const MAX_LIVE_SUBSESSIONS = 4;

/**
 * Closed subsessions whose keys and transcripts we keep (issue 8: prune old subsessions; rule 12:
 * a late message sealed under one of them is still read). Older ones are dropped from memory,
 * their keys forgotten by the crypto provider (`forgetKeys`).
 */
export const MAX_KEPT_SUBSESSIONS = 8;

export class Session {
  /** Subsessions still in memory, by index (= MessageLog subsession index). */
  protected readonly subsessions = new Map<number, Subsession>();
  /** Subsessions dropped from memory: index, session id (hex) and members only. */
  protected readonly pruned: { readonly index: number; readonly sessionId: string; readonly members: readonly MemberId[] }[] = [];
  protected nextIndex = 0;
  protected current: Subsession | undefined;
  protected readonly log = new MessageLog<MessageBody>(isContent);
  protected channel: MemberId[] = [];
  /** Seq of the last channel membership event processed (the channel's membership version, rule 7). */
  protected membershipSeq: number | null = null;
  /** Seq of the last channel event processed. */
  protected lastSeq: number | null = null;
  /** Rule 6: while set, we are catching up to this head and send nothing. */
  protected catchUpTo: number | null = null;
  protected presence: PresenceTracker;
  protected sessionState: SessionState = 'active';
  protected lastTimerMs: number | undefined;
  /** The inbound pipeline of data packets (decode → … → acks), its own state inside. */
  protected readonly inbound: Inbound;
  /**
   * Issue 9 §2, snapshot generations: calls that authored something (a `send` effect). Kept in
   * the snapshot, so a restored session says which state it came from.
   */
  private authored = 0;
  /**
   * Restored from a snapshot and not yet caught up with the channel head. The snapshot may be
   * older than what we already posted: sealing now would fork our own line (our next message
   * would not descend from the ones the others hold, and they would refuse it). So we author
   * nothing, not even an ack, until we have processed the head, our own latest packets included
   * (the pipeline accepts our own packets that we no longer hold like anyone else's).
   */
  private restoredBehind = false;
  /** deps.random, refusing a source that repeats (issue 9 §2; random.ts). */
  private readonly random: RandomSource;
  /** The latest clock reading we were given (presence queries between calls use it). */
  private nowMs = 0;
  private busy = false;

  constructor(
    readonly self: MemberId,
    protected readonly deps: SessionDeps,
    protected readonly membership: Membership,
    readonly config: SessionConfig = DEFAULT_SESSION_CONFIG,
  ) {
    this.presence = new PresenceTracker(self, 0, config.presence);
    this.random = checkedRandom(deps.random);
    this.inbound = new Inbound({
      self,
      crypto: deps.crypto,
      config,
      log: this.log,
      subsessions: () => this.subsessions.values(),
      current: () => this.current,
      presence: () => this.presence,
      quiet: () => this.quiet(),
      active: () => this.sessionState !== 'left',
      sendBody: (sub, body, nowMs, out) => this.sendBody(sub, body, nowMs, out),
      checkParting: (sub, nowMs, out) => this.checkParting(sub, nowMs, out),
    });
  }

  // ── user actions ───────────────────────────────────────────────────────────────────────────

  /** Sends a text message to the current subsession. Returns the effects; the id is in `deliver`. */
  send(text: string, nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      const sub = this.activeSubsession('send');
      await this.sendBody(sub, { type: 'payload', text }, nowMs, out);
    });
  }

  /** A manual explicit ack (mpENC §3.5): acks everything we have seen. */
  ack(nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      const sub = this.activeSubsession('ack');
      await this.sendBody(sub, { type: 'explicit-ack', manual: true }, nowMs, out);
    });
  }

  include(members: readonly MemberId[], nowMs: number): Promise<SessionEffect[]> {
    return this.proposal({ kind: 'include', members }, nowMs);
  }

  exclude(members: readonly MemberId[], nowMs: number): Promise<SessionEffect[]> {
    // mpENC §3.3: we never exclude ourselves; we shut down and leave instead.
    if (members.includes(this.self)) return Promise.reject(new ProtocolError('invalid-state', 'exclude yourself by leave()'));
    return this.proposal({ kind: 'exclude', members }, nowMs);
  }

  /** A fresh key for the group (async-groups rule 13 does this by itself for old contributions). */
  refresh(nowMs: number): Promise<SessionEffect[]> {
    return this.proposal({ kind: 'refresh', members: [] }, nowMs);
  }

  /** Rule 9: abort the ongoing operation (ours, or any include that waits for a newcomer). */
  abort(nowMs: number): Promise<SessionEffect[]> {
    return this.membershipCall('abort', nowMs, (m, c) => m.abort?.(c, nowMs));
  }

  /** Rule 9: abort the waiting include and propose it again without the newcomers who never came. */
  retryWithoutMissing(nowMs: number): Promise<SessionEffect[]> {
    return this.membershipCall('retry', nowMs, (m, c) => m.retryWithoutMissing?.(c, nowMs));
  }

  /** Rule 10: we made an invitation valid until `untilMs` (relay time): we include newcomers at once. */
  invited(untilMs: number, nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      await this.applyMembership((await this.membership.invited?.(untilMs, this.context(nowMs), nowMs)) ?? [], nowMs, out);
    });
  }

  /**
   * mpENC §3.3: to part, shut the subsession down (FIN, then wait for the online members' acks),
   * then leave the channel. The `leave` effect comes when the shutdown finishes (or times out).
   */
  leave(nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      this.requireState('active', 'leave');
      this.sessionState = 'leaving';
      const sub = this.current;
      if (sub === undefined || sub.phase.kind !== 'active' || this.quiet()) {
        this.finishLeaving(out);
      } else {
        await this.startShutdown(sub, nowMs, out);
      }
    });
  }

  // ── inputs from the world ──────────────────────────────────────────────────────────────────

  receive(event: ChannelEvent, nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, (out) => this.receiveOne(event, nowMs, out));
  }

  /**
   * Events in relay order (a page of a catch-up, rule 6), processed exactly as `receive` would
   * one by one, in one call (one timer, one step for the worker to persist). The signature checks
   * of the next data packets are started `config.verifyAhead` events ahead, so that with WebCrypto they
   * run off the main thread while earlier events are processed (issue 8: catch-up). A check
   * started ahead is used only for the subsession and author the sequential path tries first;
   * anything else is checked as `receive` would.
   */
  receiveAll(events: readonly ChannelEvent[], nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      this.inbound.beginPage();
      try {
        for (let i = 0; i < events.length; i++) {
          this.inbound.next(events, i);
          await this.receiveOne(events[i]!, nowMs, out);
          this.inbound.done(events[i]!);
        }
      } finally {
        this.inbound.endPage();
      }
    });
  }

  private async receiveOne(event: ChannelEvent, nowMs: number, out: Out): Promise<void> {
    if (this.sessionState === 'left') return;
    const atMs = event.atMs ?? nowMs;
    switch (event.kind) {
      case 'joined':
        this.channel = [...event.members];
        this.membershipSeq = event.seq;
        for (const m of event.joined) this.presence.joined(m, atMs);
        await this.applyMembership(await this.membership.channelChanged(event, this.context(nowMs, atMs), nowMs), nowMs, out, event.seq, atMs);
        break;
      case 'left':
        this.membershipSeq = event.seq;
        await this.channelLeft(event, nowMs, out);
        break;
      case 'packet':
        await this.receivePacket(event, nowMs, out);
        break;
    }
    if (this.lastSeq === null || event.seq > this.lastSeq) this.lastSeq = event.seq;
    if (this.catchUpTo !== null && event.seq >= this.catchUpTo) await this.caughtUp(nowMs, out);
  }

  /**
   * Rule 6: the worker starts fetching; the relay's head is `headSeq`. Until we have processed
   * it we send nothing (no confirmations, acks, heartbeats or automatic proposals into a past
   * we have not seen the end of); then we do what fell due, once.
   */
  catchUp(headSeq: number, nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      // Nothing to fetch (the app came back with nothing new): we are at the head already, so
      // what falls due on waking (rule 13's check, a waiting newcomer's "I am here") does now.
      if (this.lastSeq !== null && headSeq <= this.lastSeq) {
        await this.caughtUp(nowMs, out);
        return;
      }
      this.catchUpTo = headSeq;
    });
  }

  /**
   * Rule 11: the relay no longer holds events before `firstSeq` (ReadEventsResponse.firstSeq).
   * If we missed some, we cannot trust our keys of this group: we say so in plain words, drop
   * them, go solo and ask to be included again. Nothing already shown is lost. `channelMembers`:
   * the channel's members just before `firstSeq`, if the relay says (the membership events we
   * missed are gone too; the next one we see carries the whole membership anyway).
   */
  retention(firstSeq: number, nowMs: number, channelMembers?: readonly MemberId[]): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      if (this.lastSeq !== null && firstSeq > this.lastSeq + 1) this.lastSeq = firstSeq - 1;
      if (channelMembers !== undefined) this.channel = [...channelMembers];
      await this.applyMembership((await this.membership.retention?.(firstSeq, channelMembers, this.context(nowMs), nowMs)) ?? [], nowMs, out);
    });
  }

  tick(nowMs: number): Promise<SessionEffect[]> {
    // The worker's timer has fired: the next one is always announced again.
    this.lastTimerMs = undefined;
    return this.run(nowMs, async (out) => {
      if (this.sessionState === 'left') return;
      const quiet = this.quiet();
      for (const sub of this.live()) {
        if (!quiet) await this.inbound.applyAcks(sub, sub.acks.tick(nowMs), nowMs, out);
        for (const item of sub.pending.expire(nowMs)) {
          out.push({ kind: 'warn', warning: { kind: 'missing-parents-expired', id: item.message.id, author: item.message.author } });
        }
        this.inbound.expireHeld(sub, nowMs, out);
        await this.checkParting(sub, nowMs, out);
      }
      await this.applyPresence(this.presence.tick(nowMs, this.current?.members ?? [], this.heartbeatsAllowed()), nowMs, out);
      await this.applyMembership(await this.membership.tick(this.context(nowMs), nowMs), nowMs, out);
    });
  }

  // ── queries ────────────────────────────────────────────────────────────────────────────────

  state(): SessionState {
    return this.sessionState;
  }

  /** Session membership: the current subsession's members (mpENC §4.1), or just us. */
  members(): readonly MemberId[] {
    return this.current?.members ?? [this.self];
  }

  channelMembers(): readonly MemberId[] {
    return this.channel;
  }

  /** The MessageLog (display order, parents, ancestors, readers, unacked). Read it, never change it. */
  messages(): MessageLog<MessageBody> {
    return this.log;
  }

  /** Content messages in display order. */
  entries(): readonly LogEntry<MessageBody>[] {
    return this.log.entries();
  }

  /** Ack status of a message (mpENC §2.3 "Messages not yet acknowledged"; rule 14 'pending'). */
  status(id: MessageKey): AckStatus {
    return this.subsessionOf(id).acks.status(id);
  }

  /** Who has a message: "delivered to k of n, m not yet online" (rule 14). */
  delivery(id: MessageKey): Delivery {
    return this.subsessionOf(id).acks.delivery(id);
  }

  /** Readers whose ack we have not seen. */
  unacked(id: MessageKey): MemberId[] {
    return this.subsessionOf(id).transcript.unackedBy(id);
  }

  /** Members of the current subsession not shown online (grey them out, §2.3; rule 15). */
  expired(): MemberId[] {
    return this.presence.expired(this.current?.members ?? [], this.nowMs);
  }

  /** Rule 15: "online", or "last seen" at the relay time of the latest packet the relay attributes to the member. */
  presenceOf(member: MemberId): Presence {
    return this.presence.presence(member, this.nowMs);
  }

  /** Rule 6: whether we are catching up (we send nothing until we reach the head); also after any restore, until `catchUp`. */
  catchingUp(): boolean {
    return this.quiet();
  }

  /** Issue 9 §2: the snapshot generation (calls that authored something so far). */
  generation(): number {
    return this.authored;
  }

  /** Seq of the last channel event processed (null before any): the head we have seen. */
  processedSeq(): number | null {
    return this.lastSeq;
  }

  /** Rule 9: what the ongoing operation waits for, if it waits (for the UI). */
  waiting(): WaitingOperation | null {
    return this.membership.waiting?.(this.nowMs) ?? null;
  }

  /**
   * Rule 7: whether a data packet sealed earlier (waiting in the outbox) may still be posted:
   * only if no operation we processed has replaced the subsession it was sealed under. If not,
   * the worker drops it and seals the draft again. (The relay's conditional post on
   * `sealed.membershipSeq` covers members who left that we have not processed yet.)
   */
  canPost(sealed: Sealed): boolean {
    const sub = this.current;
    return sub !== undefined && sub.index === sealed.subsession && sub.phase.kind === 'active' && this.sessionState === 'active';
  }

  /** Every subsession's transcript still in memory, by subsession index (tests, the simulator, debugging views). */
  transcripts(): readonly Subsession['transcript'][] {
    const out: Subsession['transcript'][] = [];
    for (const [i, s] of this.subsessions) out[i] = s.transcript;
    return out;
  }

  /** Every subsession we were part of, by index: its session id (hex), members and phase. */
  subsessionInfo(): SubsessionInfo[] {
    const info: SubsessionInfo[] = this.pruned.map((p) => ({
      index: p.index,
      sessionId: p.sessionId,
      members: p.members,
      phase: 'pruned' as const,
      consistent: null,
      pending: 0,
      replacedBy: null,
      confirmed: [],
    }));
    for (const s of this.subsessions.values()) {
      info.push({
        index: s.index,
        sessionId: idKey(s.setup.keys.sessionId),
        members: s.members,
        phase: s.phase.kind,
        consistent: s.phase.kind === 'closed' ? s.phase.consistent : null,
        pending: s.pending.size,
        replacedBy: s.phase.kind === 'parting' ? s.phase.replacedBy : null,
        confirmed: [...s.confirmed].sort(),
      });
    }
    return info.sort((a, b) => a.index - b.index);
  }

  /** The current subsession's index, if any. */
  currentSubsession(): number | undefined {
    return this.current?.index;
  }

  // ── save and load (mpENC §6.3) ─────────────────────────────────────────────────────────────

  /** The whole state as a versioned JSON-safe snapshot (secrets included: encrypt it at rest). */
  snapshot(): SessionSnapshot {
    assert(!this.busy, 'snapshot between calls, not during one');
    return {
      version: SESSION_SNAPSHOT_VERSION,
      generation: this.authored,
      self: this.self,
      state: this.sessionState,
      channel: [...this.channel],
      membershipSeq: this.membershipSeq,
      lastSeq: this.lastSeq,
      catchUpTo: this.catchUpTo,
      current: this.current?.index ?? null,
      nextIndex: this.nextIndex,
      lastTimerMs: this.lastTimerMs ?? null,
      nowMs: this.nowMs,
      unreadable: this.inbound.unreadable,
      presence: this.presence.snapshot(),
      pruned: this.pruned.map((p) => ({ ...p, members: [...p.members] })),
      subsessions: [...this.subsessions.values()].map(snapshotSubsession),
      membership: this.membership.snapshot(),
    };
  }

  /**
   * Rebuilds a session from `snapshot`. `membership` is the membership half restored by the
   * caller from `snapshot.membership`. Throws ProtocolError('unsupported-version').
   *
   * Issue 9 §2: a snapshot may be older than what this member already posted (a lost write, a
   * backup), so the restored session authors nothing (send, ack, proposals, automatic acks,
   * confirmations) until `catchUp(headSeq)` has taken it to the channel head; authoring calls
   * throw ProtocolError('stale-snapshot') meanwhile. `options.atHead` is only for a copy of a
   * session that is still running and has posted nothing since the snapshot (a simulator's
   * twin); an app restart never passes it.
   */
  static restore(
    snapshot: SessionSnapshot,
    deps: SessionDeps,
    membership: Membership,
    config: SessionConfig = DEFAULT_SESSION_CONFIG,
    options: { readonly atHead?: boolean } = {},
  ): Session {
    checkSnapshotVersion(snapshot);
    const session = new Session(snapshot.self, deps, membership, config);
    session.authored = snapshot.generation ?? 0;
    session.restoredBehind = options.atHead !== true;
    session.sessionState = snapshot.state;
    session.channel = [...snapshot.channel];
    session.membershipSeq = snapshot.membershipSeq;
    session.lastSeq = snapshot.lastSeq;
    session.catchUpTo = snapshot.catchUpTo;
    session.nextIndex = snapshot.nextIndex;
    session.lastTimerMs = snapshot.lastTimerMs ?? undefined;
    session.nowMs = snapshot.nowMs;
    session.inbound.unreadable = snapshot.unreadable;
    session.presence = PresenceTracker.restore(snapshot.presence, snapshot.self, config.presence);
    session.pruned.push(...snapshot.pruned);
    for (const p of snapshot.pruned) session.log.skipSubsession(p.index);
    for (const s of snapshot.subsessions) {
      const sub = restoreSubsession(s, snapshot.self, config, session.isOnline);
      while (session.log.subsessionCount() < s.index) session.log.skipSubsession(session.log.subsessionCount());
      assert(session.log.addSubsession(sub.transcript) === s.index, 'subsessions restore in order');
      session.subsessions.set(sub.index, sub);
      // Acceptance order is what the log saw the first time.
      for (const id of sub.transcript.ids()) session.log.accepted(s.index, id);
    }
    session.current = snapshot.current === null ? undefined : session.subsessions.get(snapshot.current);
    return session;
  }

  // ── internals: calls, timers, context ─────────────────────────────────────────────────────

  private async run(nowMs: number, body: (out: Out) => Promise<void>): Promise<SessionEffect[]> {
    assert(!this.busy, 'Session calls must not overlap: await each one');
    this.busy = true;
    this.nowMs = Math.max(this.nowMs, nowMs);
    const out: Out = [];
    try {
      await body(out);
    } finally {
      this.busy = false;
    }
    if (out.some((e) => e.kind === 'send')) this.authored += 1;
    this.scheduleTimer(out);
    return out;
  }

  private proposal(operation: { kind: 'include' | 'exclude' | 'refresh'; members: readonly MemberId[] }, nowMs: number): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      this.requireState('active', operation.kind);
      this.requireCaughtUp(operation.kind);
      await this.applyMembership(await this.membership.propose(operation, this.context(nowMs), nowMs), nowMs, out);
    });
  }

  private membershipCall(
    action: string,
    nowMs: number,
    call: (m: Membership, c: MembershipContext) => Promise<MembershipOutput[]> | undefined,
  ): Promise<SessionEffect[]> {
    return this.run(nowMs, async (out) => {
      this.requireState('active', action);
      this.requireCaughtUp(action);
      await this.applyMembership((await call(this.membership, this.context(nowMs))) ?? [], nowMs, out);
    });
  }

  /** Announces the next deadline when it changed (the worker keeps one timer per session). */
  private scheduleTimer(out: Out): void {
    const next = this.nextDeadlineMs();
    if (next !== undefined && next !== this.lastTimerMs) out.push({ kind: 'setTimer', atMs: next });
    this.lastTimerMs = next;
  }

  /** The earliest time `tick` has work to do. */
  nextDeadlineMs(): number | undefined {
    if (this.sessionState === 'left') return undefined;
    let next: number | undefined;
    const consider = (at: number | undefined) => {
      if (at !== undefined && (next === undefined || at < next)) next = at;
    };
    for (const sub of this.live()) consider(sub.nextDeadlineMs(this.config.pendingExpiryMs));
    consider(this.presence.nextDeadlineMs(this.current?.members ?? [], this.nowMs, this.heartbeatsAllowed()));
    consider(this.membership.nextDeadlineMs());
    return next;
  }

  private quiet(): boolean {
    return this.catchUpTo !== null || this.restoredBehind;
  }

  private heartbeatsAllowed(): boolean {
    return !this.quiet() && this.sessionState === 'active' && this.current?.phase.kind === 'active' && this.current.members.length > 1;
  }

  private readonly isOnline = (member: MemberId): boolean => this.presence.isOnline(member, this.nowMs);

  private requireState(state: SessionState, action: string): void {
    if (this.sessionState !== state) throw new ProtocolError('invalid-state', `cannot ${action} while ${this.sessionState}`);
  }

  /** Rule 6: a member behind the head acts on a view it has not seen the end of: refused. */
  private requireCaughtUp(action: string): void {
    if (this.restoredBehind) {
      throw new ProtocolError('stale-snapshot', `cannot ${action} before catching up with the channel after a restore (our saved state may be older than what we sent; keep it as a draft)`);
    }
    if (this.quiet()) throw new ProtocolError('invalid-state', `cannot ${action} while catching up with the channel (keep it as a draft)`);
  }

  private activeSubsession(action: string): Subsession {
    this.requireState('active', action);
    this.requireCaughtUp(action);
    const sub = this.current;
    if (sub === undefined || sub.phase.kind !== 'active') {
      throw new ProtocolError('invalid-state', `cannot ${action}: no active subsession (include someone first)`);
    }
    return sub;
  }

  private subsessionOf(id: MessageKey): Subsession {
    for (const sub of this.subsessions.values()) if (sub.transcript.has(id)) return sub;
    throw new ProtocolError('invalid-state', `no message ${id}`);
  }

  /** Subsessions not closed, oldest first. */
  private live(): Subsession[] {
    return [...this.subsessions.values()].filter((s) => s.phase.kind !== 'closed');
  }

  /** What the membership half may ask of us; the message lists are computed only when read. */
  private context(nowMs: number, atMs = nowMs): MembershipContext {
    return new LazyContext(
      () => (this.current?.transcript.frontier() ?? []).map((k) => messageId(hexDecode(k))),
      (confirming) => this.lastWordSubsession(confirming)?.transcript.frontier().map((k) => messageId(hexDecode(k))) ?? [],
      this.quiet(),
      this.isOnline,
      atMs,
    );
  }

  /**
   * The newest subsession before `confirming` that we confirmed and have not given our last word
   * in. `confirming` may not be installed yet (we confirm as soon as we derive its key, rule 5):
   * then every subsession we hold is before it.
   */
  private lastWordSubsession(confirming: SessionId): Subsession | undefined {
    const key = idKey(confirming);
    const limit = [...this.subsessions.values()].find((s) => idKey(s.setup.keys.sessionId) === key)?.index ?? Number.POSITIVE_INFINITY;
    let found: Subsession | undefined;
    for (const s of this.subsessions.values()) {
      if (s.index < limit && s.confirmed.has(this.self) && !s.done.has(this.self) && (found === undefined || s.index > found.index)) found = s;
    }
    return found;
  }

  // ── stage: sealing (rule 7) ────────────────────────────────────────────────────────────────

  /** Seals a body with the subsession keys, parents = our frontier (mpENC §3.4), and accepts it. */
  protected async sendBody(sub: Subsession, body: MessageBody, nowMs: number, out: Out): Promise<MessageKey> {
    // Rule 7: never under a subsession an operation we processed has replaced.
    assert(sub.phase.kind === 'active' || (sub.phase.kind === 'parting' && sub.phase.replacedBy === null), 'sealing only under a subsession no operation replaced');
    assert(!this.quiet(), 'nothing is sealed while catching up (rule 6)');
    const parents = sub.transcript.frontier();
    const crypto = this.deps.crypto;
    await sub.startRatchet(crypto);
    const keys = await sub.keys(crypto);
    // Issue 9 §3: our next message key, used for this packet only and wiped.
    let chain: { index: number; messageKey: Uint8Array } | undefined;
    if (sub.chains !== undefined) {
      const index = sub.chains.nextIndex(this.self);
      assert(index !== undefined, 'we have a chain in our own subsession');
      const messageKey = await sub.chains.take(crypto, this.self, index);
      assert(messageKey !== undefined, 'our next message key is there');
      chain = { index, messageKey };
    }
    let packet;
    try {
      packet = await sealDataPacket(crypto, this.random, {
        keys,
        ephemeralSeed: sub.setup.ownSigningSeed,
        content: { parents: parents.map((k) => messageId(hexDecode(k))), body },
        ...(chain !== undefined && { chain }),
      });
    } finally {
      if (chain !== undefined) {
        crypto.forgetKeys([chain.messageKey]);
        chain.messageKey.fill(0);
      }
    }
    const text = encodePacket(packet);
    const id = idKey(await makeMessageId(this.deps.crypto, packet));
    out.push({ kind: 'send', text, sealed: { subsession: sub.index, membershipSeq: this.membershipSeq } });
    this.presence.sent(nowMs);
    await this.inbound.offer(sub, { id, author: this.self, parents, body }, { text, seq: undefined, sender: this.self, atMs: nowMs }, this.self, nowMs, nowMs, out);
    assert(sub.transcript.has(id), 'our own message is accepted at once');
    return id;
  }

  // ── inbound: greetings to the membership half, data packets to the pipeline (inbound.ts) ──

  /**
   * Non-data packets go to the membership half; data packets are ours, after the membership half
   * has observed them (it follows the relay's numbering of every event).
   */
  private async receivePacket(event: ChannelPacket, nowMs: number, out: Out): Promise<void> {
    const packet = this.inbound.decode(event);
    const atMs = event.atMs ?? nowMs;
    // Presence (rule 15) is what the relay saw: any packet it attributes to a member, at its time.
    if (event.sender !== this.self) this.presence.seen(event.sender, atMs);
    if (packet === undefined) {
      await this.applyMembership(await this.membership.receivePacket(event, this.context(nowMs, atMs), nowMs), nowMs, out, event.seq, atMs);
      return;
    }
    if (this.membership.observeData !== undefined) {
      await this.applyMembership(await this.membership.observeData(event, this.context(nowMs, atMs), nowMs), nowMs, out, event.seq, atMs);
    }
    await this.inbound.receiveData(event, packet, nowMs, out);
  }

  private async applyPresence(actions: readonly PresenceAction[], nowMs: number, out: Out): Promise<void> {
    for (const action of actions) {
      if (action.kind === 'send-heartbeat') {
        const sub = this.current;
        if (sub !== undefined && this.heartbeatsAllowed()) await this.sendBody(sub, { type: 'heartbeat' }, nowMs, out);
      } else if (this.current !== undefined) {
        out.push({ kind: 'notice', notice: { kind: 'presence', subsession: this.current.index, expired: action.expired } });
      }
    }
  }

  // ── membership outputs ─────────────────────────────────────────────────────────────────────

  private async applyMembership(outputs: readonly MembershipOutput[], nowMs: number, out: Out, seq: number | null = null, atMs = nowMs): Promise<void> {
    for (const o of outputs) {
      switch (o.kind) {
        case 'send':
          out.push({ kind: 'send', text: o.text });
          this.presence.sent(nowMs);
          break;
        case 'kick':
          out.push({ kind: 'kick', members: o.members });
          break;
        case 'notice':
        case 'failed': {
          const text = o.kind === 'notice' ? o.text : `operation failed: ${o.reason}`;
          out.push({ kind: 'notice', notice: { kind: 'membership', text, ...(o.outcome !== undefined && { outcome: o.outcome }) } });
          break;
        }
        case 'rejoin-request':
          out.push({ kind: 'notice', notice: { kind: 'rejoin-request', member: o.member, startedOver: o.startedOver } });
          break;
        case 'warn':
          out.push({ kind: 'warn', warning: { kind: 'membership', text: o.text } });
          break;
        case 'started':
          break;
        case 'completed':
          await this.install(o.subsession, nowMs, out, seq);
          break;
        case 'confirmed':
          this.presence.seen(o.member, atMs);
          await this.confirmedBy(o.sessionId, o.member, o.lastWord, nowMs, out, o.signingKey);
          break;
        case 'own-signing-key':
          this.ownSigningKey(o.sessionId, o.seed);
          break;
        case 'seen':
          this.presence.seen(o.member, atMs);
          break;
        case 'key-published':
          this.keyPublished(o.member, o.signingKey);
          break;
        case 'start-over':
          await this.startOver(o.reason, nowMs, out);
          break;
        case 'excluded':
          // mpENC §3.3: out of the group until the relay removes us; nothing more is ours to read.
          for (const sub of this.live()) this.close(sub, sub.acks.endedConsistent() && sub.acks.isConsistent(), out);
          this.current = undefined;
          out.push({ kind: 'notice', notice: { kind: 'membership', text: `${o.by} excluded us`, outcome: { kind: 'excluded', by: o.by } } });
          break;
      }
    }
  }

  /**
   * Rule 5: `member` confirmed subsession `sid`; its messages there are accepted from now on.
   * Its last word in the subsessions it had confirmed before acks what it names there, and
   * after it the member is no longer awaited there (rule 7: it never seals there again).
   */
  private async confirmedBy(sid: SessionId, member: MemberId, lastWord: readonly MessageId[], nowMs: number, out: Out, signingKey?: Uint8Array): Promise<void> {
    const key = idKey(sid);
    const target = [...this.subsessions.values()].find((s) => idKey(s.setup.keys.sessionId) === key);
    if (target === undefined) return;
    if (signingKey !== undefined) {
      // Issue 9 §3: its data here is signed with its renewed key (rule 5: none came before).
      const signingKeys = new Map(target.setup.signingKeys);
      signingKeys.set(member, signingKey);
      target.setup = { ...target.setup, signingKeys };
      // Our own renewal is in the order now: subsessions that closed meanwhile may publish.
      if (member === this.self) await this.publishParted(nowMs, out);
    }
    target.confirmed.add(member);
    target.confirmedByPacket.add(member);
    await this.inbound.releaseHeld(target, member, nowMs, out);
    const words = lastWord.map(idKey);
    const holds = (sub: Subsession, w: MessageKey) => sub.transcript.has(w) || sub.pending.has(w) || sub.held.some((h) => h.message.id === w);
    const left = [...this.subsessions.values()].filter((s) => s.index < target.index && s.confirmed.has(member) && !s.done.has(member));
    const newest = left.reduce<Subsession | undefined>((a, b) => (a === undefined || b.index > a.index ? b : a), undefined);
    for (const sub of left) {
      sub.done.add(member);
      if (sub.phase.kind === 'closed') continue;
      // Its last word names messages of the subsession it leaves (normally one: the newest it
      // confirmed); a message we never got is that one's too.
      const here = words.filter((w) => holds(sub, w) || (sub === newest && !left.some((o) => holds(o, w))));
      await this.inbound.applyAcks(sub, sub.acks.lastWord(member, here), nowMs, out);
      await this.checkParting(sub, nowMs, out);
    }
  }

  // ── lifecycle: install, part, close, prune ─────────────────────────────────────────────────

  /** mpENC §3.1: switch to the new subsession atomically; the old one parts behind it. */
  private async install(setup: SubsessionSetup, nowMs: number, out: Out, seq: number | null): Promise<void> {
    assert(setup.members.includes(this.self), 'a completed operation includes us');
    assert(setup.signingKeys.has(this.self), 'our signing key is in the new subsession');
    const hint = await sidkeyHint(this.deps.crypto, setup.keys);
    const sub = new Subsession(this.nextIndex++, setup, hint, this.self, this.config, seq, this.isOnline);
    // Issue 9 §3: sender chains from the group key, which the subsession then drops.
    await sub.startRatchet(this.deps.crypto);
    // mpENC §3.3: members already gone from the channel are being excluded; never wait for them.
    for (const m of setup.members) if (this.channel.length > 0 && !this.channel.includes(m)) sub.acks.forget(m);
    while (this.log.subsessionCount() < sub.index) this.log.skipSubsession(this.log.subsessionCount());
    const index = this.log.addSubsession(sub.transcript);
    assert(index === sub.index, 'log and session number subsessions alike');
    this.subsessions.set(sub.index, sub);
    const previous = this.current;
    this.current = sub;
    out.push({ kind: 'notice', notice: { kind: 'subsession-started', subsession: sub.index, members: [...setup.members] } });
    if (previous !== undefined && previous.phase.kind !== 'closed') {
      // Rule 7: replaced, so never sealed under again; it waits for the last words of the members
      // who confirmed it (rule 14), and never for those the operation left out or who never
      // confirmed it (they slept through it).
      previous.phase = { kind: 'parting', finId: null, deadlineMs: null, replacedBy: sub.index };
      for (const m of previous.members) {
        if (m === this.self) continue;
        if (!setup.members.includes(m) || !previous.confirmed.has(m)) await this.inbound.applyAcks(previous, previous.acks.forget(m), nowMs, out);
      }
      // Our own acks there are our last word (our confirmation of the new one).
      await this.inbound.applyAcks(previous, previous.acks.forget(this.self), nowMs, out);
      await this.checkParting(previous, nowMs, out);
    }
    // Bounded: the oldest parting subsessions close as they stand (sleeping is no fault).
    const live = this.live().filter((s) => s !== sub);
    for (const old of live.slice(0, Math.max(0, live.length - (MAX_LIVE_SUBSESSIONS - 1)))) this.close(old, old.acks.endedConsistent() && old.acks.isConsistent(), out);
    this.prune();
    // Issue 9 §3: a key the replaced subsession still listed as ours may be free now.
    await this.publishParted(nowMs, out);
    if (this.sessionState === 'leaving' && !this.quiet()) await this.startShutdown(sub, nowMs, out);
  }

  private async startShutdown(sub: Subsession, nowMs: number, out: Out): Promise<void> {
    if (sub.phase.kind !== 'active') return;
    const finId = await this.sendBody(sub, { type: 'consistency', close: true }, nowMs, out);
    sub.phase = { kind: 'parting', finId, deadlineMs: nowMs + this.config.finTimeoutMs, replacedBy: null };
    await this.checkParting(sub, nowMs, out);
  }

  /**
   * A replaced subsession closes once every member who confirmed it gave its last word (rule 14);
   * one we leave, once the online members acked our FIN and we owe nothing, or at the FIN timeout.
   */
  private async checkParting(sub: Subsession, nowMs: number, out: Out): Promise<void> {
    const phase = sub.phase;
    if (phase.kind !== 'parting') return;
    if (phase.replacedBy !== null) {
      if (!sub.lastWordsIn()) return;
      const consistent = sub.acks.endedConsistent();
      if (consistent) await this.publishPartedKey(sub, nowMs, out);
      this.close(sub, consistent, out);
      return;
    }
    const fin = phase.finId!;
    const delivery = sub.acks.delivery(fin);
    const late = sub.acks.everOwing();
    if (delivery.waiting.length === 0 && delivery.late.length === 0 && !sub.acks.owesAck()) {
      if (late.length === 0) await this.publishSigningKey(sub, delivery, nowMs, out);
      this.close(sub, late.length === 0, out, late);
    } else if (phase.deadlineMs !== null && nowMs >= phase.deadlineMs) {
      this.close(sub, false, out, [...new Set([...late, ...delivery.waiting])].sort());
    }
  }

  /**
   * Deniability (mpENC §6.1.1, issue 9 §3): our FIN was acked by EVERY other member (not only
   * the online ones: one asleep could still be shown a forgery before it sees the publication),
   * so each of them refuses what comes under our key after it, and we publish the key. Never
   * waited for: a shutdown that closes without all acks (FIN timeout, members asleep) publishes
   * nothing, and nothing is published while catching up (rule 6) or under an mpenc_js (v1)
   * subsession, whose peers do not know the packet.
   */
  private async publishSigningKey(sub: Subsession, finDelivery: Delivery, nowMs: number, out: Out): Promise<void> {
    if (this.quiet() || sub.setup.version === 1 || this.membership.publishSigningKey === undefined) return;
    const others = sub.members.filter((m) => m !== this.self);
    if (!others.every((m) => finDelivery.acked.includes(m))) return;
    const pub = sub.setup.signingKeys.get(this.self)!;
    const text = await this.membership.publishSigningKey(pub);
    if (text === null) return;
    out.push({ kind: 'send', text });
    this.presence.sent(nowMs);
    this.keyPublished(this.self, pub);
  }

  /**
   * Issue 9 §3: we confirmed `sid` with a fresh signing key; what we seal there from now on is
   * signed with it (our confirmation goes out first, so everyone knows the key before our data).
   */
  private ownSigningKey(sid: SessionId, seed: Uint8Array): void {
    const key = idKey(sid);
    const target = [...this.subsessions.values()].find((s) => idKey(s.setup.keys.sessionId) === key);
    if (target === undefined) return; // (a subsession we dropped meanwhile: nothing to sign there)
    target.setup = { ...target.setup, ownSigningSeed: seed };
  }

  /**
   * Issue 9 §3: our keys of the subsessions that closed consistent and whose keys we have not
   * published yet (a later subsession still listed them), now that one more may be free.
   */
  private async publishParted(nowMs: number, out: Out): Promise<void> {
    for (const sub of [...this.subsessions.values()]) {
      if (sub.phase.kind === 'closed' && sub.phase.consistent && sub.setup.version !== 1 && !sub.published.has(this.self)) await this.publishPartedKey(sub, nowMs, out);
    }
  }

  /**
   * Deniability for members who stay (issue 9 §3, mpENC §6.1.1): subsession `sub` is over (every
   * member who confirmed it gave its last word, rule 14) and every one of them acked our last
   * message there, so we publish our signing key of `sub`. Our confirmation of the next one
   * renewed our key, so this one signs nothing more of ours; receivers refuse what comes under it
   * from now on. Not while catching up (rule 6), not under v1, and not while a subsession we
   * hold later still signs with it (the membership checks the current one).
   */
  private async publishPartedKey(sub: Subsession, nowMs: number, out: Out): Promise<void> {
    if (this.quiet() || sub.setup.version === 1 || this.membership.publishSigningKey === undefined || this.sessionState !== 'active') return;
    const pub = sub.setup.signingKeys.get(this.self);
    if (pub === undefined) return;
    for (const later of this.subsessions.values()) {
      const key = later.setup.signingKeys.get(this.self);
      if (later.index > sub.index && key !== undefined && bytesEqual(key, pub)) return;
    }
    const last = sub.transcript.lastBy(this.self);
    if (last !== undefined) {
      const acked = sub.acks.delivery(last).acked;
      const awaited = [...sub.confirmed].filter((m) => m !== this.self && !sub.acks.hasDeparted(m));
      if (!awaited.every((m) => acked.includes(m))) return;
    }
    const text = await this.membership.publishSigningKey(pub, true);
    if (text === null) return;
    out.push({ kind: 'send', text });
    this.presence.sent(nowMs);
    this.keyPublished(this.self, pub);
  }

  /** `member`'s signing key `signingKey` is public now: under it, nothing that comes later is theirs. */
  private keyPublished(member: MemberId, signingKey: Uint8Array): void {
    for (const sub of this.subsessions.values()) {
      const key = sub.setup.signingKeys.get(member);
      if (key !== undefined && bytesEqual(key, signingKey)) sub.published.add(member);
    }
  }

  private close(sub: Subsession, consistent: boolean, out: Out, missing: readonly MemberId[] = []): void {
    sub.phase = { kind: 'closed', consistent };
    // Nothing more waits here: what still waits for parents never will (its parents were lost,
    // e.g. by a member excluded before resends could heal it).
    for (const item of sub.pending.expire(Number.POSITIVE_INFINITY)) {
      out.push({ kind: 'warn', warning: { kind: 'missing-parents-expired', id: item.message.id, author: item.message.author } });
    }
    const unconfirmed = sub.members.filter((m) => !sub.confirmed.has(m)).sort();
    out.push({ kind: 'notice', notice: { kind: 'subsession-closed', subsession: sub.index, consistent, ...(unconfirmed.length > 0 && { unconfirmed }) } });
    if (!consistent && missing.length > 0) out.push({ kind: 'warn', warning: { kind: 'shutdown-inconsistent', subsession: sub.index, missing } });
    if (sub === this.current && this.sessionState === 'leaving') {
      this.current = undefined;
      this.finishLeaving(out);
    }
  }

  /** Issue 8: closed subsessions beyond MAX_KEPT_SUBSESSIONS leave memory, their keys forgotten. */
  private prune(): void {
    const closed = [...this.subsessions.values()].filter((s) => s.phase.kind === 'closed' && s !== this.current);
    for (const old of closed.slice(0, Math.max(0, closed.length - MAX_KEPT_SUBSESSIONS))) {
      this.subsessions.delete(old.index);
      this.log.dropSubsession(old.index);
      this.pruned.push({ index: old.index, sessionId: idKey(old.setup.keys.sessionId), members: old.members });
      this.deps.crypto.forgetKeys([old.setup.keys.groupKey, old.setup.ownSigningSeed]);
    }
  }

  private finishLeaving(out: Out): void {
    this.sessionState = 'left';
    out.push({ kind: 'leave' });
    out.push({ kind: 'notice', notice: { kind: 'left' } });
  }

  /** Rule 11 (and rule 4): the membership dropped this group's secrets; we are solo until included again. */
  private async startOver(reason: 'retention' | 'key-mismatch' | 'forked' | 'events-withheld' | 'superseded', nowMs: number, out: Out): Promise<void> {
    // We missed events or cannot trust what we hold: what we have is not the whole transcript.
    for (const sub of this.live()) this.close(sub, false, out);
    // Every subsession we kept is one whose tail we may have missed: its keys are no longer used
    // (rule 11: drop this group's secrets; what we showed stays).
    for (const sub of this.subsessions.values()) {
      if (sub.phase.kind !== 'closed') continue;
      sub.phase = { ...sub.phase, missedEvents: true };
      this.deps.crypto.forgetKeys([sub.setup.keys.groupKey, sub.setup.ownSigningSeed]);
    }
    this.current = undefined;
    const text =
      reason === 'retention'
        ? 'You were away longer than the relay keeps messages. The others will add you to the group again; nothing you already have is lost.'
        : 'Covey could not use the group\'s new keys on this device. The others will add you to the group again; nothing you already have is lost.';
    out.push({ kind: 'notice', notice: { kind: 'start-over', reason, text } });
    void nowMs;
  }

  /** We reached the head we saw when we started fetching (rule 6): do what fell due, once. */
  private async caughtUp(nowMs: number, out: Out): Promise<void> {
    this.catchUpTo = null;
    this.restoredBehind = false;
    out.push({ kind: 'notice', notice: { kind: 'caught-up' } });
    await this.applyMembership((await this.membership.caughtUp?.(this.context(nowMs), nowMs)) ?? [], nowMs, out);
    const sub = this.current;
    // One explicit ack acks everything we read while catching up.
    if (sub !== undefined && sub.phase.kind === 'active' && sub.acks.owesAck() && this.sessionState === 'active') {
      await this.sendBody(sub, { type: 'explicit-ack', manual: false }, nowMs, out);
    }
    if (this.sessionState === 'leaving' && sub !== undefined) await this.startShutdown(sub, nowMs, out);
  }

  private async channelLeft(event: ChannelLeft, nowMs: number, out: Out): Promise<void> {
    this.channel = [...event.members];
    if (event.left.includes(this.self)) {
      // Removed from the channel (or our leave went through): nothing more to do here.
      for (const sub of this.live()) sub.phase = { kind: 'closed', consistent: sub.acks.isConsistent() };
      this.current = undefined;
      if (this.sessionState !== 'left') {
        this.sessionState = 'left';
        out.push({ kind: 'notice', notice: { kind: 'left' } });
      }
      return;
    }
    // mpENC §3.3: a member who left the channel is being excluded; their missing acks are no fault.
    for (const sub of this.live()) {
      for (const member of event.left) {
        if (!sub.members.includes(member)) continue;
        sub.done.add(member);
        // Issue 9 §2: what it was shown and never acked still counts for consistency.
        await this.inbound.applyAcks(sub, sub.acks.left(member), nowMs, out);
      }
      await this.checkParting(sub, nowMs, out);
    }
    await this.applyMembership(await this.membership.channelChanged(event, this.context(nowMs, event.atMs ?? nowMs), nowMs), nowMs, out, event.seq, event.atMs ?? nowMs);
  }
}

/** A MembershipContext whose message lists are computed only if the membership reads them (most calls do not). */
class LazyContext implements MembershipContext {
  constructor(
    private readonly latest: () => readonly MessageId[],
    private readonly word: (confirming: SessionId) => readonly MessageId[],
    readonly quiet: boolean,
    readonly isOnline: (member: MemberId) => boolean,
    readonly atMs: number,
  ) {}

  get latestMessages(): readonly MessageId[] {
    return this.latest();
  }

  lastWord(confirming: SessionId): readonly MessageId[] {
    return this.word(confirming);
  }
}
