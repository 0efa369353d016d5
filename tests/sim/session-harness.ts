/**
 * Session scenarios: several members, each running a Session, chatting through a simulated relay
 * that can lose, duplicate and delay data packets per member, while operations run mid-chat.
 *
 * Membership here is a scripted stand-in (ScriptedMembership): an operation is one packet whose
 * channel order is the agreement, and subsession keys are derived from its nonce. It exercises the
 * message half (keys, switching, shutdown) without the cost of real greetings; the real greeting
 * machine plugs in through the same `Membership` interface.
 */
import type { ChannelEvent, ChannelPacket } from '../../src/protocol/channel.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { base64Decode, base64Encode, hexDecode, hexEncode, utf8Encode } from '../../src/protocol/bytes.js';
import { memberId, messageId, sessionId, sessionId as sessionIdOf, type MemberId } from '../../src/protocol/ids.js';
import type { RandomSource } from '../../src/protocol/random.js';
import type { Membership, MembershipContext, MembershipOutput, SubsessionSetup } from '../../src/protocol/session/membership.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionConfig } from '../../src/protocol/session/config.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { DEFAULT_SESSION_CONFIG } from '../../src/protocol/session/config.js';
import type { DeliveredMessage, SessionEffect, SessionWarning } from '../../src/protocol/session/effects.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';
import { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { SecurityOracle } from './oracle.js';
import { restartState } from './restart-state.js';
import { tracePacket } from './trace.js';

const OP_PREFIX = '?covey-test-op:';
/** A member's confirmation of a scripted subsession, with its last word in the one before (rule 5, 7). */
const CONFIRM_PREFIX = '?covey-test-confirm:';

interface ScriptedConfirm {
  readonly nonce: string;
  /** Hex message ids. */
  readonly lastWord: string[];
}

interface ScriptedOp {
  readonly members: string[];
  readonly nonce: string;
  /** Nonce of the last operation the proposer saw (ServerOrder's parent reference). */
  readonly prev: string | null;
  /** The members before it (so that every member, a newcomer too, knows who contributes). */
  readonly before: string[];
}

/**
 * Keys every member derives alike from an operation's nonce (test only: nothing is secret).
 * `confirmed`: the members confirmed at once (the proposer, whose packet counts, rule 5).
 */
export async function scriptedSetup(crypto: CryptoProvider, members: readonly MemberId[], nonce: string, self: MemberId, confirmed?: readonly MemberId[], initiator?: MemberId): Promise<SubsessionSetup> {
  const seeds = new Map<MemberId, Uint8Array>();
  const signingKeys = new Map<MemberId, Uint8Array>();
  for (const m of members) {
    const seed = await crypto.sha256(utf8Encode(`seed:${m}:${nonce}`));
    seeds.set(m, seed);
    signingKeys.set(m, await crypto.ed25519PublicKey(seed));
  }
  return {
    members: [...members],
    keys: {
      sessionId: sessionId(await crypto.sha256(utf8Encode(`sid:${nonce}`))),
      groupKey: await crypto.sha256(utf8Encode(`gk:${nonce}`)),
    },
    signingKeys,
    ownSigningSeed: seeds.get(self)!,
    ...(confirmed !== undefined && { confirmed }),
    ...(initiator !== undefined && { initiator }),
  };
}

function scriptedSid(crypto: CryptoProvider, nonce: string): Promise<Uint8Array> {
  return crypto.sha256(utf8Encode(`sid:${nonce}`));
}

export class ScriptedMembership implements Membership {
  members: MemberId[] | null = null;
  /** Nonce of the last accepted operation: ops must name it as their parent (mpENC §3.3). */
  last: string | null = null;
  /** Nonces of the operations whose subsessions we were in (confirmations name them). */
  readonly known = new Set<string>();
  channel: MemberId[] = [];

  constructor(
    readonly self: MemberId,
    private readonly crypto: CryptoProvider,
    private readonly random: RandomSource,
  ) {}

  async receivePacket(event: ChannelPacket, context?: MembershipContext): Promise<MembershipOutput[]> {
    // mpenc-wire.md "Framing": text that does not start with "?" is plain text, not ours to judge.
    if (!event.text.startsWith('?')) return [];
    if (event.text.startsWith(CONFIRM_PREFIX)) {
      const c = JSON.parse(event.text.slice(CONFIRM_PREFIX.length)) as ScriptedConfirm;
      if (!this.known.has(c.nonce)) return []; // before our time
      const sessionId = sessionIdOf(await scriptedSid(this.crypto, c.nonce));
      return [{ kind: 'confirmed', sessionId, member: event.sender, lastWord: c.lastWord.map((h) => messageId(hexDecode(h))) }];
    }
    if (!event.text.startsWith(OP_PREFIX)) return [{ kind: 'warn', text: `unexpected packet from ${event.sender}` }];
    const op = JSON.parse(event.text.slice(OP_PREFIX.length)) as ScriptedOp;
    const members = op.members.map((m) => memberId(m));
    const outputs: MembershipOutput[] = [];
    // mpENC §3.3: accept only an op on top of the last one (everyone in the channel follows the
    // chain, members or not; the first op seen is taken as it comes), and only if all its targets
    // are in the channel.
    if ((this.last !== null && op.prev !== this.last) || !members.every((m) => this.channel.includes(m))) {
      return event.sender === this.self ? [{ kind: 'notice', text: 'our operation was not accepted' }] : [];
    }
    this.last = op.nonce;
    const excluded = (this.members ?? []).filter((m) => !members.includes(m));
    if (event.sender === this.self && excluded.length > 0) outputs.push({ kind: 'kick', members: excluded });
    if (!members.includes(this.self)) {
      if (this.members !== null) outputs.push({ kind: 'excluded', by: event.sender });
      return outputs;
    }
    const previous = this.members ?? [];
    const wasMember = previous.includes(this.self);
    this.members = members;
    this.known.add(op.nonce);
    outputs.push({ kind: 'started' });
    // As in the greeting machine (rule 1): the proposer and the newcomers contribute; their
    // packets count as confirmations; the members who were there before confirm later.
    const contributors = [event.sender, ...members.filter((m) => !op.before.includes(m) && m !== event.sender)];
    outputs.push({ kind: 'completed', subsession: await scriptedSetup(this.crypto, members, op.nonce, this.self, contributors, event.sender) });
    if (wasMember && context !== undefined) {
      // Rule 5: an existing member confirms, with its last word in the subsession it leaves.
      const sid = sessionIdOf(await scriptedSid(this.crypto, op.nonce));
      const confirm: ScriptedConfirm = { nonce: op.nonce, lastWord: context.lastWord(sid).map((id) => hexEncode(id)) };
      outputs.push({ kind: 'send', text: CONFIRM_PREFIX + JSON.stringify(confirm) });
    }
    return outputs;
  }

  async channelChanged(event: { readonly members: readonly MemberId[] }): Promise<MembershipOutput[]> {
    this.channel = [...event.members];
    return [];
  }

  async propose(operation: { kind: 'include' | 'exclude'; members: readonly MemberId[] }): Promise<MembershipOutput[]> {
    const current = this.members ?? [this.self];
    const next =
      operation.kind === 'include'
        ? [...new Set([...current, ...operation.members])]
        : current.filter((m) => !operation.members.includes(m));
    const op: ScriptedOp = { members: next.sort(), nonce: hexEncode(this.random(16)), prev: this.last, before: this.members ?? [] };
    return [{ kind: 'send', text: OP_PREFIX + JSON.stringify(op) }];
  }

  async tick(): Promise<MembershipOutput[]> {
    return [];
  }

  nextDeadlineMs(): number | undefined {
    return undefined;
  }

  snapshot(): unknown {
    return { members: this.members, last: this.last, channel: this.channel, known: [...this.known] };
  }

  static restore(snapshot: unknown, self: MemberId, crypto: CryptoProvider, random: RandomSource): ScriptedMembership {
    const m = new ScriptedMembership(self, crypto, random);
    const s = snapshot as { members: MemberId[] | null; last: string | null; channel: MemberId[]; known: string[] };
    m.members = s.members;
    m.last = s.last;
    m.channel = s.channel;
    for (const n of s.known) m.known.add(n);
    return m;
  }
}

export interface SimSessionMember {
  readonly id: MemberId;
  session: Session;
  membership: Membership;
  readonly rng: SeededRandom;
  inbox: ChannelEvent[];
  timerAtMs: number | undefined;
  readonly warnings: SessionWarning[];
  readonly delivered: DeliveredMessage[];
  readonly effects: SessionEffect[];
  /** Restarted and not yet caught up (issue 9 §2): the next use catches up to what it processed first. */
  restored?: boolean;
}

/** A packet an attacker put into the relay order (SessionSim.inject). */
export interface InjectedAttack {
  readonly kind: string;
  readonly seq: number;
  readonly sender: MemberId;
  readonly text: string;
  /** Hex message id the packet would have if accepted (undefined: it is no data packet). */
  readonly messageId: string | undefined;
  /**
   * The genuine packet it was made from, when it carries the very same message (a re-labelled
   * copy): a member that already holds the message is then compared with a twin shown the
   * genuine packet again, i.e. an ordinary duplicate.
   */
  readonly original: string | undefined;
  /** What each channel member did with it, once it processed it. */
  readonly outcomes: AttackOutcome[];
}

export interface AttackOutcome {
  readonly member: MemberId;
  /** The member had left the session already: the attack never reached a session. */
  readonly inactive: boolean;
  /** Its state right after is the state a harmless packet in its place would have left. */
  readonly stateMatches: boolean;
  /** It held the message already, and treated the packet as the duplicate it is. */
  readonly absorbed: boolean;
  /** Where the member's effects stood before it processed the packet. */
  readonly effectIndex: number;
  /** It said so at once (a warning, or a notice that it refused or dropped something). */
  readonly signalled: boolean;
  /** Deliveries beyond the twin's. */
  readonly delivered: number;
  /** 1 if it sent other packets than the twin did. */
  readonly sent: number;
}

/** What the twin of an attacked member processes in the attack's place: plain text. */
export const HARMLESS_TEXT = 'plain text, nothing to see';

/** Who wrote a delivered message and what it said (the forgery check compares both). */
interface Authored {
  readonly author: MemberId;
  readonly text: string;
}

export interface Faults {
  /** Per member: probability that a data packet shown to them is lost. */
  loss: Map<MemberId, number>;
  /** Probability that a data packet is shown twice to a member. */
  duplicate: number;
  /** Probability that a data packet is held back and shown later (reordering). */
  delay: number;
}

export const noFaults = (): Faults => ({ loss: new Map(), duplicate: 0, delay: 0 });

/** Short times so that scenarios heal in simulated seconds. */
export const SIM_CONFIG: SessionConfig = {
  ...DEFAULT_SESSION_CONFIG,
  reliability: { autoAckDelayMs: 200, resendIntervalMs: 1_000, maxResends: 8, ackTimeoutMs: 20_000 },
  // Members count as online (rule 15) for a while after their last packet: a lossy member that
  // stays quiet is still awake here, and gets resends (AckMonitor rule 5 only resends to the online).
  presence: { heartbeatIntervalMs: null, expiryMs: 240_000 },
  finTimeoutMs: 30_000,
};

/** How a simulated member's membership half is made and restored. */
export interface MembershipKind {
  create(id: MemberId, crypto: CryptoProvider, random: RandomSource): Membership;
  restore(snapshot: unknown, id: MemberId, crypto: CryptoProvider, random: RandomSource): Membership;
}

export const scriptedMembership: MembershipKind = {
  create: (id, crypto, random) => new ScriptedMembership(id, crypto, random),
  restore: (snapshot, id, crypto, random) => ScriptedMembership.restore(snapshot, id, crypto, random),
};

export class SessionSim {
  readonly rng: SeededRandom;
  readonly members = new Map<MemberId, SimSessionMember>();
  channel: MemberId[] = [];
  nowMs = 1_000_000;
  seq = 0;
  faults: Faults = noFaults();
  /** Data packets held back per member: [release step, event]. */
  private held: [number, MemberId, ChannelEvent][] = [];
  private stepCount = 0;
  /** Every packet the relay ordered (for replay attacks). */
  readonly posted: ChannelPacket[] = [];
  /** Injected attack packets, by relay seq. */
  readonly attacks = new Map<number, InjectedAttack>();
  /** Every payload message an author delivered to itself: what others must be shown. */
  readonly written = new Map<string, Authored>();
  /** Broken invariants seen while the run went on (forgeries, oracle findings are kept there). */
  readonly violations: string[] = [];
  /** Members whose phone sleeps: what the relay shows them waits in their inbox, and no timer runs. */
  readonly asleep = new Set<MemberId>();

  constructor(
    readonly crypto: CryptoProvider,
    seed: number,
    readonly config: SessionConfig = SIM_CONFIG,
    readonly membershipKind: MembershipKind = scriptedMembership,
    readonly oracle?: SecurityOracle,
  ) {
    this.rng = seededRandom(seed);
  }

  /** The provider a member runs on (recorded by the oracle, if any). */
  cryptoFor(id: MemberId): CryptoProvider {
    return this.oracle?.providerFor(id) ?? this.crypto;
  }

  addMember(name: string): SimSessionMember {
    const id = memberId(name);
    const rng = seededRandom(this.rng.int(2 ** 31));
    const crypto = this.cryptoFor(id);
    const membership = this.membershipKind.create(id, crypto, rng.bytes);
    const member: SimSessionMember = {
      id,
      session: new Session(id, { crypto, random: rng.bytes }, membership, this.config),
      membership,
      rng,
      inbox: [],
      timerAtMs: undefined,
      warnings: [],
      delivered: [],
      effects: [],
    };
    this.members.set(id, member);
    return member;
  }

  member(name: string): SimSessionMember {
    const m = this.members.get(name as MemberId);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m;
  }

  join(name: string): void {
    const id = name as MemberId;
    if (this.channel.includes(id)) return;
    this.channel = [...this.channel, id];
    this.broadcast({ kind: 'joined', seq: ++this.seq, atMs: this.nowMs, joined: [id], members: this.channel });
  }

  leaveChannel(id: MemberId): void {
    if (!this.channel.includes(id)) return;
    const audience = this.channel;
    this.channel = this.channel.filter((m) => m !== id);
    const event: ChannelEvent = { kind: 'left', seq: ++this.seq, atMs: this.nowMs, left: [id], members: this.channel };
    for (const m of audience) this.members.get(m)?.inbox.push(event);
  }

  /** The relay orders a packet and shows it to every channel member (faults on data packets). */
  post(sender: MemberId, text: string): void {
    if (!this.channel.includes(sender)) return;
    const event: ChannelPacket = { kind: 'packet', seq: ++this.seq, atMs: this.nowMs, sender, text };
    this.posted.push(event);
    tracePacket(sender, text);
    const isData = text.startsWith('?mpENC:');
    for (const id of this.channel) {
      const m = this.members.get(id)!;
      if (!isData || id === sender) {
        m.inbox.push(event);
        continue;
      }
      if (this.rng.float() < (this.faults.loss.get(id) ?? 0)) continue;
      if (this.rng.float() < this.faults.delay) this.held.push([this.stepCount + 1 + this.rng.int(20), id, event]);
      else m.inbox.push(event);
      if (this.rng.float() < this.faults.duplicate) this.held.push([this.stepCount + 1 + this.rng.int(20), id, event]);
    }
  }

  /**
   * An attacker puts `text` into the relay order as `sender`: every channel member is shown it,
   * without the transport's random faults (so that the run around it goes as it would without).
   */
  inject(kind: string, sender: MemberId, text: string, messageId: string | undefined, original?: string): InjectedAttack {
    const event: ChannelPacket = { kind: 'packet', seq: ++this.seq, sender, text };
    const attack: InjectedAttack = { kind, seq: event.seq, sender, text, messageId, original, outcomes: [] };
    this.attacks.set(event.seq, attack);
    for (const id of this.channel) this.members.get(id)!.inbox.push(event);
    return attack;
  }

  private broadcast(event: ChannelEvent): void {
    for (const id of this.channel) this.members.get(id)?.inbox.push(event);
  }

  /**
   * What the member's membership state holds, for the oracle; and once per subsession the key's
   * SHA-256(sid ‖ gk) from its session (the membership drops the group key once the session took
   * it, issue 9 §3: the oracle finds it among the member's recorded derivations).
   */
  private noteKeys(m: SimSessionMember, oracle: SecurityOracle): void {
    const state = (m.membership as GreetingMembership).machine;
    oracle.noteState(m.id, state);
    const cur = state.current;
    if (cur === null || cur.groupKey !== null || state.own === null || oracle.hasBound(m.id, cur.sid)) return;
    const sid = base64Encode(cur.sid);
    const sub = m.session.snapshot().subsessions.find((x) => x.setup.sessionId === sid);
    if (sub === undefined) return;
    if (sub.ratchet !== undefined) oracle.noteBound(m.id, { sid: cur.sid, sidkeyHash: base64Decode(sub.ratchet.sidkeyHash), members: cur.members });
    else if (sub.setup.groupKey !== '') oracle.noteHolding(m.id, { sid: cur.sid, groupKey: base64Decode(sub.setup.groupKey), members: cur.members });
  }

  async apply(m: SimSessionMember, effects: readonly SessionEffect[]): Promise<void> {
    if (this.oracle !== undefined && m.membership instanceof GreetingMembership) this.noteKeys(m, this.oracle);
    for (const e of effects) {
      m.effects.push(e);
      switch (e.kind) {
        case 'send':
          this.post(m.id, e.text);
          break;
        case 'kick':
          for (const k of e.members) this.leaveChannel(k);
          break;
        case 'leave':
          this.leaveChannel(m.id);
          break;
        case 'setTimer':
          m.timerAtMs = e.atMs;
          break;
        case 'warn':
          m.warnings.push(e.warning);
          break;
        case 'deliver':
          m.delivered.push(e.message);
          this.checkDelivery(m, e.message);
          break;
        default:
          break;
      }
    }
  }

  /** The forgery check: a delivered message is what its author wrote, author and text alike. */
  private checkDelivery(m: SimSessionMember, d: DeliveredMessage): void {
    if (d.author === m.id) {
      const earlier = this.written.get(d.id);
      if (earlier !== undefined && (earlier.author !== d.author || earlier.text !== d.text)) this.violations.push(`${m.id} wrote ${d.id.slice(0, 8)} twice, differently`);
      this.written.set(d.id, { author: d.author, text: d.text });
    } else {
      const w = this.written.get(d.id);
      if (w === undefined) this.violations.push(`${m.id} was shown ${d.id.slice(0, 8)} "${d.text}" as ${d.author}'s, which nobody wrote`);
      else if (w.author !== d.author || w.text !== d.text) {
        this.violations.push(`${m.id} was shown ${d.id.slice(0, 8)} as ${d.author}'s "${d.text}", but ${w.author} wrote "${w.text}"`);
      }
    }
    this.oracle?.checkAuthor(m.id, d.id, d.author);
  }

  async act(name: string, action: (s: Session, nowMs: number) => Promise<SessionEffect[]>): Promise<void> {
    const m = this.member(name);
    await this.ready(m);
    await this.apply(m, await action(m.session, this.nowMs));
  }

  /**
   * The member's app restarts: its session is saved to JSON text and loaded again (mpENC §6.3).
   * Returns whether the restored session saves to the very same snapshot and still waits for
   * the same readers (restart-state.ts).
   */
  restart(name: string): boolean {
    const before = restartState(this.member(name).session);
    this.restartFrom(name, JSON.parse(JSON.stringify(this.member(name).session.snapshot())) as SessionSnapshot);
    return restartState(this.member(name).session) === before;
  }

  /** The member's app starts again from `snapshot` (possibly an older one than its latest: issue 9 §2). */
  restartFrom(name: string, snapshot: SessionSnapshot): void {
    const m = this.member(name);
    const crypto = this.cryptoFor(m.id);
    m.membership = this.membershipKind.restore(snapshot.membership, m.id, crypto, m.rng.bytes);
    m.session = Session.restore(snapshot, { crypto, random: m.rng.bytes }, m.membership, this.config);
    m.restored = true;
  }

  /**
   * A restored session authors nothing until it has caught up (issue 9 §2); the app calls
   * `catchUp` with the relay's head when it subscribes again. Here the head is what the member
   * had processed (what it has not been shown yet comes afterwards, as to a live member).
   */
  async ready(m: SimSessionMember): Promise<void> {
    if (m.restored !== true) return;
    m.restored = false;
    await this.apply(m, await m.session.catchUp(m.session.processedSeq() ?? 0, this.nowMs));
  }

  /** Delivers one shown event to one member; false when nothing is queued anywhere. */
  async deliverOne(): Promise<boolean> {
    this.stepCount++;
    const due = this.held.filter(([at]) => at <= this.stepCount);
    this.held = this.held.filter(([at]) => at > this.stepCount);
    for (const [, id, event] of due) this.members.get(id)?.inbox.push(event);
    const ready = [...this.members.values()].filter((m) => m.inbox.length > 0 && !this.asleep.has(m.id));
    if (ready.length === 0) return this.held.length > 0;
    const m = ready[this.rng.int(ready.length)]!;
    await this.ready(m);
    const event = m.inbox.shift()!;
    const attack = event.kind === 'packet' ? this.attacks.get(event.seq) : undefined;
    if (attack !== undefined) await this.receiveAttack(m, event as ChannelPacket, attack);
    else await this.apply(m, await m.session.receive(event, this.nowMs));
    return true;
  }

  /**
   * The member processes an attack packet; a twin restored from its state just before processes,
   * in its place and with the same seq, what a run without the attack would have shown it: plain
   * text, or for a re-labelled copy of a message it already holds, the genuine packet (a
   * duplicate). The two must then agree on state, deliveries and packets sent, but for the attack
   * packet waiting among the undecryptable ones (issue 9: "the victim's state must match a run
   * without it").
   */
  private async receiveAttack(m: SimSessionMember, event: ChannelPacket, attack: InjectedAttack): Promise<void> {
    const inactive = m.session.state() === 'left';
    const before = m.session.snapshot();
    const text = JSON.stringify(before);
    const holds = attack.messageId !== undefined && before.subsessions.some((sub) => sub.messages.some((x) => x.id === attack.messageId) || sub.pending.some((x) => x.message.id === attack.messageId));
    const twinText = holds && attack.original !== undefined ? attack.original : HARMLESS_TEXT;
    const effectIndex = m.effects.length;
    const effects = await m.session.receive(event, this.nowMs);
    await this.apply(m, effects);
    const snapshot = JSON.parse(text) as SessionSnapshot;
    const twinRandom = seededRandom(event.seq).bytes;
    const twinMembership = this.membershipKind.restore(snapshot.membership, m.id, this.crypto, twinRandom);
    const twin = Session.restore(snapshot, { crypto: this.crypto, random: twinRandom }, twinMembership, this.config, { atHead: true });
    const twinEffects = await twin.receive({ ...event, text: twinText }, this.nowMs);
    // (A packet nobody can verify is counted, not kept: the count is no state.)
    const normal = (s: SessionSnapshot) => JSON.stringify({ ...s, lastTimerMs: null, unreadable: 0 });
    const sends = (fx: readonly SessionEffect[]) => JSON.stringify(fx.flatMap((e) => (e.kind === 'send' ? [e.text] : [])));
    const delivered = (fx: readonly SessionEffect[]) => fx.filter((e) => e.kind === 'deliver').length;
    attack.outcomes.push({
      member: m.id,
      inactive,
      stateMatches: normal(m.session.snapshot()) === normal(twin.snapshot()),
      absorbed: twinText !== HARMLESS_TEXT,
      effectIndex,
      signalled: effects.some(isRefusal),
      delivered: delivered(effects) - delivered(twinEffects),
      sent: sends(effects) === sends(twinEffects) ? 0 : 1,
    });
  }

  /** Delivers until every inbox is empty (bounded). */
  async settle(maxSteps = 200_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      this.nowMs += 1;
      if (!(await this.deliverOne())) return;
    }
    throw new Error('session simulation did not settle');
  }

  /** Advances the clock to each due timer in turn, settling in between, for `ms` in total. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      await this.settle();
      const next = Math.min(...[...this.members.values()].map((m) => (this.asleep.has(m.id) ? Infinity : (m.timerAtMs ?? Infinity))));
      if (next > end) break;
      this.nowMs = Math.max(this.nowMs, next);
      for (const m of this.members.values()) {
        if (m.timerAtMs !== undefined && m.timerAtMs <= this.nowMs && !this.asleep.has(m.id)) {
          m.timerAtMs = undefined;
          await this.ready(m);
          await this.apply(m, await m.session.tick(this.nowMs));
        }
      }
    }
    this.nowMs = Math.max(this.nowMs, end);
  }

  /** Data packets the relay ordered (attacks left out). */
  dataPackets(): ChannelPacket[] {
    return this.posted.filter((p) => isDataPacket(p.text));
  }

  warnings(): SessionWarning[] {
    return [...this.members.values()].flatMap((m) => m.warnings);
  }
}

/** A warning, or a notice that something was refused or dropped: the member said so. */
export function isRefusal(e: SessionEffect): boolean {
  return e.kind === 'warn' || (e.kind === 'notice' && e.notice.kind === 'unreadable-dropped');
}

function isDataPacket(text: string): boolean {
  if (!text.startsWith('?mpENC:')) return false;
  try {
    return decodePacket(text).kind === 'data';
  } catch {
    return false;
  }
}
