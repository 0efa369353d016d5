/**
 * Session (mpENC §4.1, §4.2 HybridSession): the one object the worker talks to for a conversation.
 *
 * Inputs: user actions (`send`, `ack`, `include`, `exclude`, `leave`), channel events (`receive`)
 * and the clock (`tick`), each with `nowMs`. Outputs: the tagged effects each call returns
 * (effects.ts). Randomness and crypto come in through `SessionDeps`. Calls must not overlap: the
 * worker awaits each one before the next (asserted).
 *
 * Receive handler (mpENC §4.2): channel membership events and non-data packets go to the
 * membership half; a data packet is tried against the current and the previous subsessions, the
 * SIDKEY_HINT choosing which to try; one that verifies joins that subsession's transcript (or
 * waits there for its parents); one that decrypts nowhere waits for a later subsession.
 */
import type { ChannelEvent, ChannelLeft, ChannelPacket } from '../channel.js';
import { decodePacket, encodePacket } from '../codec/packet.js';
import type { DataPacket } from '../codec/data.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { assert, isProtocolError, ProtocolError } from '../errors.js';
import { hexDecode } from '../bytes.js';
import { idKey, messageId, type MemberId, type MessageId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import { openDataPacket, sealDataPacket, sidkeyHint } from '../packets/data.js';
import { makeMessageId } from '../packets/ids.js';
import type { PresenceAction } from '../presence/presence-tracker.js';
import type { RandomSource } from '../random.js';
import type { AckAction, AckStatus } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import { ingest } from '../transcript/ingest.js';
import { MessageLog, type LogEntry } from '../transcript/message-log.js';
import type { TranscriptMessage } from '../transcript/message.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from './config.js';
import { isContent, type SessionEffect, type SessionState } from './effects.js';
import { checkSnapshotVersion, restoreSubsession, SESSION_SNAPSHOT_VERSION, snapshotSubsession, type SessionSnapshot } from './snapshot.js';
import type { Membership, MembershipContext, MembershipOutput, SubsessionSetup } from './membership.js';
import { Subsession, type SubsessionPhase } from './subsession.js';
import { UndecryptablePackets } from './undecryptable.js';

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
  readonly phase: SubsessionPhase['kind'];
  /** For a closed subsession: whether it closed with every message fully acked. */
  readonly consistent: boolean | null;
  /** Messages waiting for parents. */
  readonly pending: number;
}

/**
 * Live subsessions (current plus those still shutting down). Each costs a trial decryption only
 * when the SIDKEY_HINT matches; rotations faster than shutdowns finish are rare, so four is room.
 */
export const MAX_LIVE_SUBSESSIONS = 4;

export class Session {
  /** Every subsession we were part of, by index (= MessageLog subsession index). */
  protected readonly subsessions: Subsession[] = [];
  protected current: Subsession | undefined;
  protected readonly log = new MessageLog<MessageBody>(isContent);
  protected readonly undecryptable: UndecryptablePackets;
  protected channel: MemberId[] = [];
  protected sessionState: SessionState = 'active';
  protected lastTimerMs: number | undefined;
  /** When our first subsession started (see WaitingPacket.expected). */
  protected firstSubsessionAtMs: number | undefined;
  private busy = false;

  constructor(
    readonly self: MemberId,
    protected readonly deps: SessionDeps,
    protected readonly membership: Membership,
    readonly config: SessionConfig = DEFAULT_SESSION_CONFIG,
  ) {
    this.undecryptable = new UndecryptablePackets(config.maxUndecryptablePackets, config.undecryptableExpiryMs);
  }

  // ── user actions ───────────────────────────────────────────────────────────────────────────

  /** Sends a text message to the current subsession. Returns the effects; the id is in `deliver`. */
  send(text: string, nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      const sub = this.activeSubsession('send');
      await this.sendBody(sub, { type: 'payload', text }, nowMs, out);
    });
  }

  /** A manual explicit ack (mpENC §3.5): acks everything we have seen. */
  ack(nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      const sub = this.activeSubsession('ack');
      await this.sendBody(sub, { type: 'explicit-ack', manual: true }, nowMs, out);
    });
  }

  include(members: readonly MemberId[], nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      this.requireState('active', 'include');
      await this.applyMembership(await this.membership.propose({ kind: 'include', members }, this.context(), nowMs), nowMs, out);
    });
  }

  exclude(members: readonly MemberId[], nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      this.requireState('active', 'exclude');
      // mpENC §3.3: we never exclude ourselves; we shut down and leave instead.
      if (members.includes(this.self)) throw new ProtocolError('invalid-state', 'exclude yourself by leave()');
      await this.applyMembership(await this.membership.propose({ kind: 'exclude', members }, this.context(), nowMs), nowMs, out);
    });
  }

  /**
   * mpENC §3.3: to part, shut the subsession down (FIN, then wait for consistency), then leave the
   * channel. The `leave` effect comes when the shutdown finishes (or times out).
   */
  leave(nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      this.requireState('active', 'leave');
      this.sessionState = 'leaving';
      const sub = this.current;
      if (sub === undefined) {
        this.finishLeaving(out);
      } else if (sub.phase.kind === 'active') {
        await this.startShutdown(sub, nowMs, out);
      }
    });
  }

  // ── inputs from the world ──────────────────────────────────────────────────────────────────

  receive(event: ChannelEvent, nowMs: number): Promise<SessionEffect[]> {
    return this.run(async (out) => {
      if (this.sessionState === 'left') return;
      switch (event.kind) {
        case 'joined':
          this.channel = [...event.members];
          await this.applyMembership(await this.membership.channelChanged(event, this.context(), nowMs), nowMs, out);
          return;
        case 'left':
          await this.channelLeft(event, nowMs, out);
          return;
        case 'packet':
          await this.receivePacket(event, nowMs, out);
          return;
      }
    });
  }

  tick(nowMs: number): Promise<SessionEffect[]> {
    // The worker's timer has fired: the next one is always announced again.
    this.lastTimerMs = undefined;
    return this.run(async (out) => {
      if (this.sessionState === 'left') return;
      for (const sub of this.subsessions) {
        if (sub.phase.kind === 'closed') continue;
        await this.applyAcks(sub, sub.acks.tick(nowMs), nowMs, out);
        if (sub.phase.kind === 'active') await this.applyPresence(sub, sub.presence.tick(nowMs), nowMs, out);
        for (const item of sub.pending.expire(nowMs)) {
          out.push({ kind: 'warn', warning: { kind: 'missing-parents-expired', id: item.message.id, author: item.message.author } });
        }
        await this.checkParting(sub, nowMs, out);
      }
      for (const waiting of this.undecryptable.expire(nowMs)) {
        const sender = waiting.event.sender;
        if (waiting.expected) out.push({ kind: 'warn', warning: { kind: 'undecryptable-expired', sender } });
        else out.push({ kind: 'notice', notice: { kind: 'unreadable-dropped', sender } });
      }
      await this.applyMembership(await this.membership.tick(nowMs), nowMs, out);
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

  /** Ack status of a message (mpENC §2.3 "Messages not yet acknowledged"). */
  status(id: MessageKey): AckStatus {
    return this.subsessionOf(id).acks.status(id);
  }

  /** Readers whose ack we have not seen. */
  unacked(id: MessageKey): MemberId[] {
    return this.subsessionOf(id).transcript.unackedBy(id);
  }

  /** Members of the current subsession whose activity expired (grey them out, §2.3). */
  expired(): MemberId[] {
    return this.current?.presence.expired() ?? [];
  }

  /** Every subsession's transcript, by subsession index (tests, the simulator, debugging views). */
  transcripts(): readonly Subsession['transcript'][] {
    return this.subsessions.map((s) => s.transcript);
  }

  /** Every subsession we were part of, by index: its session id (hex), members and phase. */
  subsessionInfo(): SubsessionInfo[] {
    return this.subsessions.map((s) => ({
      index: s.index,
      sessionId: idKey(s.setup.keys.sessionId),
      members: s.members,
      phase: s.phase.kind,
      consistent: s.phase.kind === 'closed' ? s.phase.consistent : null,
      pending: s.pending.size,
    }));
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
      self: this.self,
      state: this.sessionState,
      channel: [...this.channel],
      current: this.current?.index ?? null,
      lastTimerMs: this.lastTimerMs ?? null,
      firstSubsessionAtMs: this.firstSubsessionAtMs ?? null,
      undecryptable: this.undecryptable.list().map((w) => ({
        sender: w.event.sender,
        seq: w.event.seq,
        text: w.event.text,
        receivedAtMs: w.receivedAtMs,
        expected: w.expected,
      })),
      subsessions: this.subsessions.map(snapshotSubsession),
      membership: this.membership.snapshot(),
    };
  }

  /**
   * Rebuilds a session from `snapshot`. `membership` is the membership half restored by the
   * caller from `snapshot.membership`. Throws ProtocolError('unsupported-version').
   */
  static restore(snapshot: SessionSnapshot, deps: SessionDeps, membership: Membership, config: SessionConfig = DEFAULT_SESSION_CONFIG): Session {
    checkSnapshotVersion(snapshot);
    const session = new Session(snapshot.self, deps, membership, config);
    session.sessionState = snapshot.state;
    session.channel = [...snapshot.channel];
    session.lastTimerMs = snapshot.lastTimerMs ?? undefined;
    session.firstSubsessionAtMs = snapshot.firstSubsessionAtMs ?? undefined;
    for (const w of snapshot.undecryptable) {
      const event = { kind: 'packet', seq: w.seq, sender: w.sender, text: w.text } as const;
      session.undecryptable.add({ event, receivedAtMs: w.receivedAtMs, expected: w.expected });
    }
    for (const s of snapshot.subsessions) {
      const sub = restoreSubsession(s, snapshot.self, config);
      assert(session.log.addSubsession(sub.transcript) === s.index, 'subsessions restore in order');
      session.subsessions.push(sub);
      // Acceptance order is what the log saw the first time.
      for (const id of sub.transcript.ids()) session.log.accepted(s.index, id);
    }
    session.current = snapshot.current === null ? undefined : session.subsessions[snapshot.current];
    return session;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────

  private async run(body: (out: Out) => Promise<void>): Promise<SessionEffect[]> {
    assert(!this.busy, 'Session calls must not overlap: await each one');
    this.busy = true;
    const out: Out = [];
    try {
      await body(out);
    } finally {
      this.busy = false;
    }
    this.scheduleTimer(out);
    return out;
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
    let next = this.undecryptable.nextExpiryMs();
    const consider = (at: number | undefined) => {
      if (at !== undefined && (next === undefined || at < next)) next = at;
    };
    for (const sub of this.subsessions) if (sub.phase.kind !== 'closed') consider(sub.nextDeadlineMs());
    consider(this.membership.nextDeadlineMs());
    return next;
  }

  private requireState(state: SessionState, action: string): void {
    if (this.sessionState !== state) throw new ProtocolError('invalid-state', `cannot ${action} while ${this.sessionState}`);
  }

  private activeSubsession(action: string): Subsession {
    this.requireState('active', action);
    const sub = this.current;
    if (sub === undefined || sub.phase.kind !== 'active') {
      throw new ProtocolError('invalid-state', `cannot ${action}: no active subsession (include someone first)`);
    }
    return sub;
  }

  private subsessionOf(id: MessageKey): Subsession {
    for (const sub of this.subsessions) if (sub.transcript.has(id)) return sub;
    throw new ProtocolError('invalid-state', `no message ${id}`);
  }

  private context(): MembershipContext {
    const latest: MessageId[] = (this.current?.transcript.frontier() ?? []).map((k) => messageId(hexDecode(k)));
    return { latestMessages: latest };
  }

  /** Seals a body with the subsession keys, parents = our frontier (mpENC §3.4), and accepts it. */
  protected async sendBody(sub: Subsession, body: MessageBody, nowMs: number, out: Out): Promise<MessageKey> {
    const parents = sub.transcript.frontier();
    const packet = await sealDataPacket(this.deps.crypto, this.deps.random, {
      keys: await sub.keys(this.deps.crypto),
      ephemeralSeed: sub.setup.ownSigningSeed,
      content: { parents: parents.map((k) => messageId(hexDecode(k))), body },
    });
    const text = encodePacket(packet);
    const id = idKey(await makeMessageId(this.deps.crypto, packet));
    out.push({ kind: 'send', text });
    await this.offer(sub, { id, author: this.self, parents, body }, text, this.self, nowMs, out);
    assert(sub.transcript.has(id), 'our own message is accepted at once');
    return id;
  }

  private async offer(
    sub: Subsession,
    message: TranscriptMessage<MessageBody>,
    text: string,
    sender: MemberId,
    nowMs: number,
    out: Out,
  ): Promise<void> {
    const result = ingest(sub.transcript, sub.pending, { message, extra: text, receivedAtMs: nowMs });
    if (result.duplicate) {
      await this.applyAcks(sub, sub.acks.duplicate(message.id, sender, nowMs), nowMs, out);
      return;
    }
    for (const { item, error } of result.rejected) {
      out.push({ kind: 'warn', warning: { kind: 'rejected', sender: item.message.author, code: error.code, detail: error.message } });
    }
    for (const item of result.accepted) await this.onAccepted(sub, item.message, item.extra, nowMs, out);
  }

  private async onAccepted(sub: Subsession, message: TranscriptMessage<MessageBody>, text: string, nowMs: number, out: Out): Promise<void> {
    const { id, author, body } = message;
    const position = this.log.accepted(sub.index, id);
    const actions = sub.acks.accepted(id, nowMs);
    // Messages that arrive after a reader left the channel do not wait for that reader either.
    for (const member of sub.departed) actions.push(...sub.acks.forget(member));
    // Keep the packet texts someone may need again: those some reader lacks (resends, rule 5 of
    // AckMonitor), and our latest message (re-acks, rule 6).
    if (author === this.self) {
      const line = sub.transcript.byAuthor(this.self);
      const previousOwn = line[line.length - 2];
      if (previousOwn !== undefined && !sub.acks.isWatched(previousOwn)) sub.packets.delete(previousOwn);
    }
    if (author === this.self || sub.acks.isWatched(id)) sub.packets.set(id, text);
    if (body.type === 'payload' && position !== undefined) {
      out.push({
        kind: 'deliver',
        message: { id, author, text: body.text, subsession: sub.index, position, hiddenParents: this.log.hasHiddenParents(id, position) },
      });
      out.push({ kind: 'status', id, status: sub.acks.status(id) });
    }
    if (body.type === 'consistency' && body.close && author !== this.self) {
      out.push({ kind: 'notice', notice: { kind: 'member-parting', subsession: sub.index, member: author } });
    }
    await this.applyPresence(sub, sub.presence.activity(author, nowMs), nowMs, out);
    await this.applyAcks(sub, actions, nowMs, out);
    await this.checkParting(sub, nowMs, out);
  }

  private async applyAcks(sub: Subsession, actions: readonly AckAction[], nowMs: number, out: Out): Promise<void> {
    for (const action of actions) {
      switch (action.kind) {
        case 'send-ack':
          if (sub.phase.kind !== 'closed' && this.sessionState !== 'left') {
            await this.sendBody(sub, { type: 'explicit-ack', manual: false }, nowMs, out);
          }
          break;
        case 'resend':
          for (const text of sub.resendPackets(action.id, action.to)) out.push({ kind: 'send', text });
          break;
        case 'not-fully-acked':
          out.push({ kind: 'warn', warning: { kind: 'not-fully-acked', id: action.id, missing: action.missing } });
          if (this.log.has(action.id)) out.push({ kind: 'status', id: action.id, status: 'late' });
          break;
        case 'fully-acked':
          sub.release(action.id);
          if (action.needed && this.log.has(action.id)) out.push({ kind: 'status', id: action.id, status: 'fully-acked' });
          break;
      }
    }
  }

  private async applyPresence(sub: Subsession, actions: readonly PresenceAction[], nowMs: number, out: Out): Promise<void> {
    for (const action of actions) {
      if (action.kind === 'send-heartbeat') {
        if (sub.phase.kind === 'active' && this.sessionState === 'active') {
          await this.sendBody(sub, { type: 'heartbeat' }, nowMs, out);
        }
      } else {
        out.push({ kind: 'notice', notice: { kind: 'presence', subsession: sub.index, expired: action.expired } });
      }
    }
  }

  private async applyMembership(outputs: readonly MembershipOutput[], nowMs: number, out: Out): Promise<void> {
    for (const o of outputs) {
      switch (o.kind) {
        case 'send':
          out.push({ kind: 'send', text: o.text });
          break;
        case 'kick':
          out.push({ kind: 'kick', members: o.members });
          break;
        case 'notice':
        case 'failed':
          out.push({ kind: 'notice', notice: { kind: 'membership', text: o.kind === 'notice' ? o.text : `operation failed: ${o.reason}` } });
          break;
        case 'warn':
          out.push({ kind: 'warn', warning: { kind: 'membership', text: o.text } });
          break;
        case 'started': {
          // mpenc_js: an accepted operation asks the current subsession to reach consistency, so
          // the rotation that may follow finds everything acked.
          const sub = this.current;
          if (sub !== undefined && sub.phase.kind === 'active' && this.sessionState === 'active') {
            await this.sendBody(sub, { type: 'consistency', close: false }, nowMs, out);
          }
          break;
        }
        case 'completed':
          await this.install(o.subsession, nowMs, out);
          break;
      }
    }
  }

  /** mpENC §3.1: switch to the new subsession atomically; the old one shuts down behind it. */
  private async install(setup: SubsessionSetup, nowMs: number, out: Out): Promise<void> {
    assert(setup.members.includes(this.self), 'a completed operation includes us');
    assert(setup.signingKeys.has(this.self), 'our signing key is in the new subsession');
    const hint = await sidkeyHint(this.deps.crypto, setup.keys);
    const sub = new Subsession(this.subsessions.length, setup, hint, this.self, this.config, nowMs);
    // mpENC §3.3: members already gone from the channel are being excluded; never wait for them.
    for (const m of setup.members) if (this.channel.length > 0 && !this.channel.includes(m)) sub.departed.add(m);
    const index = this.log.addSubsession(sub.transcript);
    assert(index === sub.index, 'log and session number subsessions alike');
    this.subsessions.push(sub);
    this.firstSubsessionAtMs ??= nowMs;
    // mpENC §3.1: previous subsessions shut down in the background, independently of later
    // operations; only a bounded number stay live (the oldest is closed as it stands).
    const live = this.subsessions.filter((s) => s.phase.kind !== 'closed' && s !== sub);
    if (live.length >= MAX_LIVE_SUBSESSIONS) {
      const oldest = live[0]!;
      this.close(oldest, oldest.acks.isConsistent() && !oldest.acks.owesAck(), out, this.missingAcks(oldest));
    }
    const previous = this.current;
    this.current = sub;
    out.push({ kind: 'notice', notice: { kind: 'subsession-started', subsession: sub.index, members: [...setup.members] } });
    if (previous !== undefined && previous.phase.kind === 'active') await this.startShutdown(previous, nowMs, out);
    if (this.sessionState === 'leaving') await this.startShutdown(sub, nowMs, out);
    // Packets that decrypted nowhere may belong here (mpENC §4.2 step 5).
    for (const waiting of this.undecryptable.drain()) {
      const packet = decodeData(waiting.event.text);
      assert(packet !== undefined, 'only data packets wait for their subsession');
      await this.receiveData(waiting.event, packet, waiting.receivedAtMs, nowMs, out, waiting.expected);
    }
  }

  private async startShutdown(sub: Subsession, nowMs: number, out: Out): Promise<void> {
    if (sub.phase.kind !== 'active') return;
    const finId = await this.sendBody(sub, { type: 'consistency', close: true }, nowMs, out);
    sub.phase = { kind: 'parting', finId, deadlineMs: nowMs + this.config.finTimeoutMs };
    await this.checkParting(sub, nowMs, out);
  }

  /** A parting subsession closes once everything is fully acked and we owe no acks (§3.5). */
  private async checkParting(sub: Subsession, nowMs: number, out: Out): Promise<void> {
    if (sub.phase.kind !== 'parting') return;
    if (sub.acks.isConsistent() && !sub.acks.owesAck()) {
      this.close(sub, true, out);
    } else if (nowMs >= sub.phase.deadlineMs) {
      this.close(sub, false, out, this.missingAcks(sub));
    }
  }

  private missingAcks(sub: Subsession): MemberId[] {
    const missing = new Set<MemberId>();
    for (const id of sub.acks.outstanding()) for (const m of sub.acks.missing(id)) missing.add(m);
    if (sub.acks.owesAck()) missing.add(this.self);
    return [...missing].sort();
  }

  private close(sub: Subsession, consistent: boolean, out: Out, missing: readonly MemberId[] = []): void {
    sub.phase = { kind: 'closed', consistent };
    // Nothing more is accepted here: what still waits for parents never will (its parents were
    // lost, e.g. by a member excluded before resends could heal it).
    for (const item of sub.pending.expire(Number.POSITIVE_INFINITY)) {
      out.push({ kind: 'warn', warning: { kind: 'missing-parents-expired', id: item.message.id, author: item.message.author } });
    }
    out.push({ kind: 'notice', notice: { kind: 'subsession-closed', subsession: sub.index, consistent } });
    if (!consistent) out.push({ kind: 'warn', warning: { kind: 'shutdown-inconsistent', subsession: sub.index, missing } });
    if (sub === this.current && this.sessionState === 'leaving') {
      this.current = undefined;
      this.finishLeaving(out);
    }
  }

  private finishLeaving(out: Out): void {
    this.sessionState = 'left';
    out.push({ kind: 'leave' });
    out.push({ kind: 'notice', notice: { kind: 'left' } });
  }

  private async channelLeft(event: ChannelLeft, nowMs: number, out: Out): Promise<void> {
    this.channel = [...event.members];
    if (event.left.includes(this.self)) {
      // Removed from the channel (or our leave went through): nothing more to do here.
      for (const sub of this.subsessions) if (sub.phase.kind !== 'closed') sub.phase = { kind: 'closed', consistent: sub.acks.isConsistent() };
      this.current = undefined;
      if (this.sessionState !== 'left') {
        this.sessionState = 'left';
        out.push({ kind: 'notice', notice: { kind: 'left' } });
      }
      return;
    }
    // mpENC §3.3: a member who left the channel is being excluded; their missing acks are no fault.
    for (const sub of this.subsessions) {
      if (sub.phase.kind === 'closed') continue;
      for (const member of event.left) {
        if (!sub.members.includes(member)) continue;
        sub.departed.add(member);
        await this.applyAcks(sub, sub.acks.forget(member), nowMs, out);
        await this.applyPresence(sub, sub.presence.forget(member), nowMs, out);
      }
      await this.checkParting(sub, nowMs, out);
    }
    await this.applyMembership(await this.membership.channelChanged(event, this.context(), nowMs), nowMs, out);
  }

  /**
   * @param receivedAtMs when the packet first arrived (a retried packet keeps its age)
   */
  /**
   * Non-data packets go to the membership half; data packets are ours, after the membership half
   * has observed them (it may follow the relay's numbering of every event).
   */
  private async receivePacket(event: ChannelPacket, nowMs: number, out: Out): Promise<void> {
    const packet = decodeData(event.text);
    if (packet === undefined) {
      await this.applyMembership(await this.membership.receivePacket(event, this.context(), nowMs), nowMs, out);
      return;
    }
    if (this.membership.observeData !== undefined) {
      await this.applyMembership(await this.membership.observeData(event, this.context(), nowMs), nowMs, out);
    }
    await this.receiveData(event, packet, nowMs, nowMs, out, this.readsEverything(nowMs));
  }

  /** Whether every data packet arriving now should be readable by us (see WaitingPacket). */
  private readsEverything(nowMs: number): boolean {
    return this.current !== undefined && this.firstSubsessionAtMs !== undefined && nowMs >= this.firstSubsessionAtMs + this.config.finTimeoutMs;
  }

  private async receiveData(
    event: ChannelPacket,
    packet: DataPacket,
    receivedAtMs: number,
    nowMs: number,
    out: Out,
    expected: boolean,
  ): Promise<void> {
    const crypto = this.deps.crypto;
    const id = idKey(await makeMessageId(crypto, packet));
    // Duplicates (resends, relay duplicates, our own echo) are recognised before any crypto.
    for (const sub of this.subsessions) {
      if (sub.transcript.has(id) || sub.pending.has(id)) {
        await this.applyAcks(sub, sub.acks.duplicate(id, event.sender, nowMs), nowMs, out);
        return;
      }
    }
    // mpENC §5.3: SIDKEY_HINT picks the candidate subsessions; the newest live one first.
    const candidates = this.subsessions.filter((s) => s.phase.kind !== 'closed' && s.hint === packet.sidkeyHint).reverse();
    for (const sub of candidates) {
      // The channel sender is usually the author; resent packets come from someone else.
      const authors = [event.sender, ...sub.members.filter((m) => m !== event.sender)].filter((m) => sub.setup.signingKeys.has(m));
      for (const author of authors) {
        let content;
        try {
          content = await openDataPacket(crypto, packet, await sub.keys(crypto), sub.setup.signingKeys.get(author)!);
        } catch (e) {
          if (!isProtocolError(e)) throw e;
          if (e.code === 'bad-signature') continue;
          // It verified, so its author sealed bad plaintext: a broken or malicious member.
          out.push({ kind: 'warn', warning: { kind: 'rejected', sender: event.sender, code: e.code, detail: e.message } });
          return;
        }
        const message = { id, author, parents: content.parents.map(idKey), body: content.body };
        await this.offer(sub, message, event.text, event.sender, nowMs, out);
        return;
      }
    }
    // mpENC §4.2 step 5: verifies nowhere (yet). The one-byte hint collides now and then, so a
    // hint match proves nothing: the packet waits like any other, and a forgery expires there.
    const dropped = this.undecryptable.add({ event, receivedAtMs, expected });
    if (dropped !== undefined) {
      out.push({ kind: 'warn', warning: { kind: 'dropped', sender: dropped.event.sender, reason: 'too many undecryptable packets' } });
    }
  }
}

/** The data packet in `text`, or undefined for anything else (greetings, plain text, garbage). */
function decodeData(text: string): DataPacket | undefined {
  try {
    const packet = decodePacket(text);
    return packet.kind === 'data' ? packet : undefined;
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return undefined;
  }
}
