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
import { hexDecode, hexEncode, utf8Encode } from '../../src/protocol/bytes.js';
import { memberId, messageId, sessionId, sessionId as sessionIdOf, type MemberId } from '../../src/protocol/ids.js';
import type { RandomSource } from '../../src/protocol/random.js';
import type { Membership, MembershipContext, MembershipOutput, SubsessionSetup } from '../../src/protocol/session/membership.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionConfig } from '../../src/protocol/session/config.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { DEFAULT_SESSION_CONFIG } from '../../src/protocol/session/config.js';
import type { DeliveredMessage, SessionEffect, SessionWarning } from '../../src/protocol/session/effects.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';

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

  constructor(
    readonly crypto: CryptoProvider,
    seed: number,
    readonly config: SessionConfig = SIM_CONFIG,
    readonly membershipKind: MembershipKind = scriptedMembership,
  ) {
    this.rng = seededRandom(seed);
  }

  addMember(name: string): SimSessionMember {
    const id = memberId(name);
    const rng = seededRandom(this.rng.int(2 ** 31));
    const membership = this.membershipKind.create(id, this.crypto, rng.bytes);
    const member: SimSessionMember = {
      id,
      session: new Session(id, { crypto: this.crypto, random: rng.bytes }, membership, this.config),
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

  private broadcast(event: ChannelEvent): void {
    for (const id of this.channel) this.members.get(id)?.inbox.push(event);
  }

  async apply(m: SimSessionMember, effects: readonly SessionEffect[]): Promise<void> {
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
          break;
        default:
          break;
      }
    }
  }

  async act(name: string, action: (s: Session, nowMs: number) => Promise<SessionEffect[]>): Promise<void> {
    const m = this.member(name);
    await this.apply(m, await action(m.session, this.nowMs));
  }

  /**
   * The member's app restarts: its session is saved to JSON text and loaded again (mpENC §6.3).
   * Returns whether the restored session saves to the very same snapshot.
   */
  restart(name: string): boolean {
    const m = this.member(name);
    const text = JSON.stringify(m.session.snapshot());
    const snapshot = JSON.parse(text) as SessionSnapshot;
    m.membership = this.membershipKind.restore(snapshot.membership, m.id, this.crypto, m.rng.bytes);
    m.session = Session.restore(snapshot, { crypto: this.crypto, random: m.rng.bytes }, m.membership, this.config);
    return JSON.stringify(m.session.snapshot()) === text;
  }

  /** Delivers one shown event to one member; false when nothing is queued anywhere. */
  async deliverOne(): Promise<boolean> {
    this.stepCount++;
    const due = this.held.filter(([at]) => at <= this.stepCount);
    this.held = this.held.filter(([at]) => at > this.stepCount);
    for (const [, id, event] of due) this.members.get(id)?.inbox.push(event);
    const ready = [...this.members.values()].filter((m) => m.inbox.length > 0);
    if (ready.length === 0) return this.held.length > 0;
    const m = ready[this.rng.int(ready.length)]!;
    const event = m.inbox.shift()!;
    await this.apply(m, await m.session.receive(event, this.nowMs));
    return true;
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
      const next = Math.min(...[...this.members.values()].map((m) => m.timerAtMs ?? Infinity));
      if (next > end) break;
      this.nowMs = Math.max(this.nowMs, next);
      for (const m of this.members.values()) {
        if (m.timerAtMs !== undefined && m.timerAtMs <= this.nowMs) {
          m.timerAtMs = undefined;
          await this.apply(m, await m.session.tick(this.nowMs));
        }
      }
    }
    this.nowMs = Math.max(this.nowMs, end);
  }

  warnings(): SessionWarning[] {
    return [...this.members.values()].flatMap((m) => m.warnings);
  }
}
