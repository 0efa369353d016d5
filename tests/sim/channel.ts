/**
 * A simulated group channel (mpENC §4.1 GroupChannel; DESIGN.md §3 relay) driving the pure
 * membership machine of every member: one relay order with seq numbers, channel joins and
 * leaves, per-member delivery that lags but keeps the order, and fault injection:
 * - the network: delays (outbox and delivery lag), a member disconnecting (leaving) mid-operation;
 * - an attacker: tamper with, replay or inject packets into the common order;
 * - a malicious relay: per member, withhold an event or show two events in swapped order.
 *
 * Deterministic: all choices come from one seeded RNG, so a seed replays a run exactly.
 */
import type { ChannelEvent } from '../../src/protocol/channel.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { createMembership, step } from '../../src/protocol/greeting/machine.js';
import type { KeyDirectory, MembershipEffect, MembershipInput, MembershipState } from '../../src/protocol/greeting/types.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import { lastEntry } from '../../src/protocol/order/server-order.js';
import { completeIntKeyLists, type SecurityOracle } from './oracle.js';
import { tracePacket } from './trace.js';

export interface SimMember {
  readonly id: MemberId;
  state: MembershipState;
  /** Relay log index of the next event this member will be shown. */
  cursor: number;
  /** Events shown to this member but not yet processed, in order. */
  inbox: ChannelEvent[];
  /** Every effect this member produced, in order. */
  effects: MembershipEffect[];
  timers: number[];
  staticSeed: Uint8Array;
  staticPub: Uint8Array;
  /** An honest member runs the machine; a dishonest one is driven by the test. */
  honest: boolean;
  /** Offline: still in the channel, but processes nothing (events wait) until unpaused. */
  paused: boolean;
}

/** How the relay treats one logged event for one member. */
export type Manipulation =
  | { readonly kind: 'withhold'; readonly member: MemberId }
  | { readonly kind: 'replace'; readonly member: MemberId; readonly text: string }
  | { readonly kind: 'swap-with-next'; readonly member: MemberId };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface LogEntry {
  event: ChannelEvent;
  /** Channel members at the time the relay ordered it: they are shown it. */
  audience: readonly MemberId[];
}

export interface SimOptions {
  readonly crypto: CryptoProvider;
  readonly seed: number;
  /** Probability that a delivery step is skipped for a member (lag), 0 = lockstep. */
  readonly lag?: number;
  /** Records each member's keys, contributions and signatures, and checks them (oracle.ts). */
  readonly oracle?: SecurityOracle;
}

export class SimGroup {
  readonly crypto: CryptoProvider;
  readonly rng: SeededRandom;
  readonly members = new Map<MemberId, SimMember>();
  readonly log: LogEntry[] = [];
  channel: MemberId[] = [];
  nowMs = 1_000_000;
  /** Packets sent but not yet ordered by the relay: [sender, text]. */
  readonly outbox: [MemberId, string][] = [];
  /** Per log index, manipulations applied when showing it. */
  readonly manipulations = new Map<number, Manipulation[]>();
  /** Hook: called when the relay is about to order a packet; may return manipulations. */
  onOrder: ((index: number, sender: MemberId, text: string) => Manipulation[] | void) | null = null;
  /** Hook: an attacker on the way to the relay may replace a packet (for every member). */
  transformOutgoing: ((sender: MemberId, text: string) => string | undefined) | null = null;
  /** Hook: a packet on its way to the relay is lost (a withheld packet; true = drop it). */
  dropOutgoing: ((sender: MemberId, text: string) => boolean) | null = null;
  /** The same, for attacks that must sign (a malicious insider re-signing its own packets). */
  transformOutgoingAsync: ((sender: MemberId, text: string) => Promise<string | undefined>) | null = null;
  readonly keys: KeyDirectory;
  readonly oracle: SecurityOracle | undefined;
  private readonly lag: number;

  constructor(options: SimOptions) {
    this.crypto = options.crypto;
    this.oracle = options.oracle;
    this.rng = seededRandom(options.seed);
    this.lag = options.lag ?? 0;
    this.keys = { staticKey: (m) => this.members.get(m)?.staticPub };
  }

  async addMember(name: string, honest = true): Promise<SimMember> {
    const id = memberId(name);
    const staticSeed = this.rng.bytes(32);
    const member: SimMember = {
      id,
      state: createMembership({ self: id, staticSeed }),
      cursor: this.log.length,
      inbox: [],
      effects: [],
      timers: [],
      staticSeed,
      staticPub: await this.crypto.ed25519PublicKey(staticSeed),
      honest,
      paused: false,
    };
    this.members.set(id, member);
    return member;
  }

  member(name: string): SimMember {
    const m = this.members.get(name as MemberId);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m;
  }

  /** The relay orders an event: members in the channel are shown it (unless manipulated). */
  private append(event: DistributiveOmit<ChannelEvent, 'seq'>, audience: readonly MemberId[]): number {
    const index = this.log.length;
    this.log.push({ event: { ...event, seq: index + 1 } as ChannelEvent, audience });
    return index;
  }

  join(name: string): void {
    const id = name as MemberId;
    if (this.channel.includes(id)) return;
    this.channel = [...this.channel, id];
    const m = this.members.get(id);
    if (m !== undefined) m.cursor = this.log.length;
    this.append({ kind: 'joined', joined: [id], members: this.channel }, this.channel);
  }

  leave(name: string): void {
    const id = name as MemberId;
    if (!this.channel.includes(id)) return;
    const audience = this.channel;
    this.channel = this.channel.filter((m) => m !== id);
    this.append({ kind: 'left', left: [id], members: this.channel }, audience);
  }

  /** A packet goes straight into the relay order (an attacker's or a test's injection). */
  post(sender: string, text: string): number {
    const index = this.log.length;
    const manipulations = this.onOrder?.(index, sender as MemberId, text);
    if (manipulations) this.manipulations.set(index, manipulations);
    this.append({ kind: 'packet', sender: sender as MemberId, text }, this.channel);
    tracePacket(sender, text);
    return index;
  }

  /** Flushes the outbox into the relay order (senders not in the channel are refused). */
  flushOutbox(max = Infinity): void {
    let n = 0;
    while (this.outbox.length > 0 && n < max) {
      const [sender, original] = this.outbox.shift()!;
      n++;
      if (this.dropOutgoing?.(sender, original) === true) continue;
      const text = this.transformOutgoing?.(sender, original) ?? original;
      if (this.channel.includes(sender)) this.post(sender, text);
    }
  }

  /**
   * Manipulations that changed what a member received. One that never took effect (its victim
   * left the channel before the event reached it) is no attack: nothing could detect it.
   */
  appliedManipulations = 0;

  /** Shows member `m` the events ordered since its cursor (applying manipulations). */
  private show(m: SimMember): void {
    while (m.cursor < this.log.length) {
      const index = m.cursor++;
      const entry = this.log[index]!;
      if (!entry.audience.includes(m.id)) continue;
      const ms = (this.manipulations.get(index) ?? []).filter((x) => x.member === m.id);
      if (ms.some((x) => x.kind === 'withhold')) {
        this.appliedManipulations++;
        continue;
      }
      const replaced = ms.find((x) => x.kind === 'replace');
      let event = entry.event;
      if (replaced && event.kind === 'packet') {
        event = { ...event, text: replaced.text };
        this.appliedManipulations++;
      }
      if (ms.some((x) => x.kind === 'swap-with-next')) {
        // Show the next event *this member is shown* first, then this one, each with its seq.
        // (Swapping with an event the member never sees would change nothing it receives, and
        // an attack that changes nothing cannot be detected.)
        let next = m.cursor;
        while (next < this.log.length && !this.log[next]!.audience.includes(m.id)) next++;
        if (next >= this.log.length) {
          m.cursor = index; // hold it back until there is a next event to show first
          return;
        }
        m.inbox.push(this.log[next]!.event);
        m.cursor = next + 1;
        this.appliedManipulations++;
      }
      m.inbox.push(event);
    }
  }

  /** Hook: sees every transition (the simulator checks its invariants here). */
  onStep: ((m: SimMember, before: MembershipState, input: MembershipInput, effects: readonly MembershipEffect[]) => void) | null = null;

  async input(m: SimMember, input: MembershipInput): Promise<readonly MembershipEffect[]> {
    const before = m.state;
    const crypto = this.oracle?.providerFor(m.id) ?? this.crypto;
    const result = await step(m.state, input, {
      crypto,
      random: this.rng.bytes,
      nowMs: this.nowMs,
      keys: this.keys,
      // A member is online unless paused (asleep): rule 9's 2-minute timeout needs it.
      isOnline: (id) => this.members.get(id)?.paused !== true,
    });
    m.state = result.state;
    if (this.oracle !== undefined) this.observe(this.oracle, m, before, input, result.effects);
    this.onStep?.(m, before, input, result.effects);
    for (const e of result.effects) {
      m.effects.push(e);
      if (e.kind === 'send') this.outbox.push([m.id, e.text]);
      else if (e.kind === 'kick') for (const k of e.members) this.kickRequests.add(k);
      else if (e.kind === 'set-timer') m.timers.push(e.atMs);
    }
    return result.effects;
  }

  /** Hands the oracle what the member's state holds, and checks which chain it accepted on. */
  private observe(oracle: SecurityOracle, m: SimMember, before: MembershipState, input: MembershipInput, effects: readonly MembershipEffect[]): void {
    oracle.noteState(m.id, m.state);
    if (input.kind !== 'channel' || input.event.kind !== 'packet' || !effects.some((e) => e.kind === 'operation-accepted')) return;
    const packet = decodePacket(input.event.text);
    if (packet.kind === 'greeting' && packet.metadata !== undefined) {
      oracle.checkChainAccepted(m.id, packet.metadata.chainHash, lastEntry(before.order)?.chainHash ?? null);
      oracle.checkInitialSigned(m.id, packet.source, packet.signature, packet.signed);
    }
  }

  /** Every complete INT_KEY list the relay ordered (downflows; exclude and refresh initial packets). */
  downflows(): { members: string[]; intKeys: Uint8Array[] }[] {
    return completeIntKeyLists(this.log.flatMap(({ event }) => (event.kind === 'packet' ? [event.text] : [])));
  }

  readonly kickRequests = new Set<MemberId>();

  /** Processes kicks: the relay removes kicked members (duplicates are no-ops). */
  private applyKicks(): void {
    for (const k of this.kickRequests) this.leave(k);
    this.kickRequests.clear();
  }

  /** One member processes one shown event; false when it has nothing to process. */
  async deliverOne(m: SimMember): Promise<boolean> {
    if (m.paused) return false;
    this.show(m);
    const event = m.inbox.shift();
    if (event === undefined) return false;
    if (m.honest) await this.input(m, { kind: 'channel', event });
    return true;
  }

  private async prepareOutbox(): Promise<void> {
    if (this.transformOutgoingAsync === null) return;
    for (const item of this.outbox) item[1] = (await this.transformOutgoingAsync(item[0], item[1])) ?? item[1];
  }

  /** A few rounds of progress (some members may lag), so that tests can act mid-operation. */
  async run(rounds: number): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      this.nowMs += 10;
      await this.prepareOutbox();
      this.flushOutbox(1 + this.rng.int(2));
      this.applyKicks();
      for (const m of this.members.values()) {
        if (this.lag > 0 && this.rng.float() < this.lag) continue;
        await this.deliverOne(m);
      }
    }
  }

  /**
   * Runs until nothing moves: relay flushes outboxes, every member processes every event.
   * With lag > 0, members fall behind at random but catch up before this returns.
   */
  async settle(maxSteps = 100_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      this.nowMs += 10;
      await this.prepareOutbox();
      this.flushOutbox(this.lag > 0 ? 1 + this.rng.int(2) : Infinity);
      this.applyKicks();
      let moved = this.outbox.length > 0 || this.kickRequests.size > 0;
      for (const m of this.members.values()) {
        if (this.lag > 0 && this.rng.float() < this.lag) {
          this.show(m);
          moved ||= m.inbox.length > 0;
          continue;
        }
        if (await this.deliverOne(m)) moved = true;
      }
      if (!moved) return;
    }
    throw new Error('simulation did not settle');
  }

  /** Advances the clock and delivers due timers as ticks. */
  async advance(ms: number): Promise<void> {
    this.nowMs += ms;
    for (const m of this.members.values()) {
      if (!m.honest || m.paused) continue;
      const due = m.timers.filter((t) => t <= this.nowMs);
      if (due.length === 0) continue;
      m.timers = m.timers.filter((t) => t > this.nowMs);
      await this.input(m, { kind: 'tick' });
    }
  }

  honestMembers(): SimMember[] {
    return [...this.members.values()].filter((m) => m.honest);
  }

  warnings(m?: SimMember): MembershipEffect[] {
    const all = m === undefined ? this.honestMembers() : [m];
    return all.flatMap((x) => x.effects.filter((e) => e.kind === 'warning'));
  }
}
