/**
 * The real membership half behind the Session's `Membership` interface: the greeting machine of
 * src/protocol/greeting (CLIQUES + ASKE + ServerOrder, mpENC §3.2–§3.3) driven by `step`.
 *
 * Our first include while in no subsession is a start (IKA); later ones are includes (AKA). The
 * latest messages of the current subsession go into LATEST_PM (mpENC §5.2).
 */
import type { ChannelJoined, ChannelLeft, ChannelPacket } from '../channel.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { MemberId } from '../ids.js';
import { step } from '../greeting/machine.js';
import type { KeyDirectory, MembershipEffect, MembershipInput, MembershipState } from '../greeting/types.js';
import type { RandomSource } from '../random.js';
import { fromJsonSafe, toJsonSafe, type JsonValue } from './json.js';
import type { Membership, MembershipContext, MembershipOutput } from './membership.js';

export interface GreetingMembershipDeps {
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
  /** Static identity keys of members (the app's contact list). */
  readonly keys: KeyDirectory;
}

export class GreetingMembership implements Membership {
  /** Pending timer deadlines the machine asked for, ascending. */
  private timers: number[] = [];

  constructor(
    private state: MembershipState,
    private readonly deps: GreetingMembershipDeps,
  ) {}

  /** The machine's state (read only: for queries such as the chain hash). */
  get machine(): MembershipState {
    return this.state;
  }

  receivePacket(event: ChannelPacket, _context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'channel', event }, nowMs);
  }

  /** The machine numbers every channel event, so it sees data packets too (and ignores them). */
  observeData(event: ChannelPacket, _context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'channel', event }, nowMs);
  }

  channelChanged(event: ChannelJoined | ChannelLeft, _context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'channel', event }, nowMs);
  }

  propose(
    operation: { readonly kind: 'include' | 'exclude'; readonly members: readonly MemberId[] },
    context: MembershipContext,
    nowMs: number,
  ): Promise<MembershipOutput[]> {
    const input: MembershipInput =
      operation.kind === 'include' && this.state.current === null
        ? { kind: 'start', others: operation.members }
        : { kind: operation.kind, members: operation.members, latestPms: context.latestMessages };
    return this.run(input, nowMs);
  }

  tick(nowMs: number): Promise<MembershipOutput[]> {
    this.timers = this.timers.filter((t) => t > nowMs);
    return this.run({ kind: 'tick' }, nowMs);
  }

  nextDeadlineMs(): number | undefined {
    return this.timers[0];
  }

  snapshot(): unknown {
    return { state: toJsonSafe(this.state), timers: this.timers };
  }

  static restore(snapshot: unknown, deps: GreetingMembershipDeps): GreetingMembership {
    const s = snapshot as { state: JsonValue; timers: number[] };
    const membership = new GreetingMembership(fromJsonSafe(s.state) as MembershipState, deps);
    membership.timers = [...s.timers];
    return membership;
  }

  private async run(input: MembershipInput, nowMs: number): Promise<MembershipOutput[]> {
    const result = await step(this.state, input, { crypto: this.deps.crypto, random: this.deps.random, nowMs, keys: this.deps.keys });
    this.state = result.state;
    return result.effects.flatMap((e) => this.translate(e));
  }

  private translate(effect: MembershipEffect): MembershipOutput[] {
    switch (effect.kind) {
      case 'send':
        return [{ kind: 'send', text: effect.text }];
      case 'kick':
        return [{ kind: 'kick', members: effect.members }];
      case 'operation-accepted':
        return [
          { kind: 'started' },
          { kind: 'notice', text: `${effect.initiator} started ${effect.operation} of ${effect.members.join(', ')}` },
        ];
      case 'subsession': {
        const sub = effect.subsession;
        if (sub.groupKey === null || effect.ownEphemeral === null) return [{ kind: 'notice', text: `observed ${effect.operation}` }];
        return [
          {
            kind: 'completed',
            subsession: {
              members: [...sub.members],
              keys: { sessionId: sub.sid, groupKey: sub.groupKey },
              signingKeys: new Map(sub.members.map((m, i) => [m, sub.ephemeralPubKeys[i]!])),
              ownSigningSeed: effect.ownEphemeral.seed,
            },
          },
        ];
      }
      case 'operation-failed':
        return [{ kind: 'failed', reason: `${effect.operation} ${effect.reason}${effect.by === undefined ? '' : ` by ${effect.by}`}` }];
      case 'proposal-rejected':
        return [{ kind: 'notice', text: `our ${effect.operation} was not accepted: ${effect.reason}` }];
      case 'intent-refused':
        return [{ kind: 'notice', text: `cannot ${effect.intent}: ${effect.reason}` }];
      case 'excluded':
        return [{ kind: 'notice', text: `${effect.by} excluded us` }];
      case 'warning':
        return [{ kind: 'warn', text: `${effect.code}${effect.member === null ? '' : ` (${effect.member})`}: ${effect.message}` }];
      case 'set-timer':
        this.timers = [...this.timers, effect.atMs].sort((a, b) => a - b);
        return [];
    }
  }
}
