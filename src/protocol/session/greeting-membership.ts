/**
 * The real membership half behind the Session's `Membership` interface: the greeting machine of
 * src/protocol/greeting (CLIQUES + ASKE + ServerOrder, mpENC §3.2–§3.3; async-groups v2) driven
 * by `step`.
 *
 * Our first include while in no subsession is a start (IKA); later ones are includes (AKA). The
 * latest messages of the current subsession go into LATEST_PM (mpENC §5.2); our last messages in
 * the subsession we leave go into our confirmation's FIN_PM (async-groups rule 7).
 */
import type { ChannelJoined, ChannelLeft, ChannelPacket } from '../channel.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { MemberId } from '../ids.js';
import { OPERATION_WAIT_LIMIT_MS } from '../limits.js';
import { createMembership, step } from '../greeting/machine.js';
import type { KeyDirectory, MembershipEffect, MembershipEnv, MembershipInput, MembershipState, Subsession as MachineSubsession } from '../greeting/types.js';
import { bytesEqual, hexEncode } from '../bytes.js';
import { isKeyOf, isRevoked, ownKeyPair, pruneKeys, signingKeysOf } from '../greeting/helpers.js';
import { MPENC_PACKET_PREFIX } from '../codec/constants.js';
import type { GreetingPacket } from '../codec/greeting.js';
import { decodePacket } from '../codec/packet.js';
import { isProtocolError, ProtocolError } from '../errors.js';
import { isPublishedKeyPacket, openPublishedKey, publishedKeyText } from '../packets/published-key.js';
import { checkedRandom, type RandomSource } from '../random.js';
import { fromJsonSafe, toJsonSafe, type JsonValue } from './json.js';
import type { Membership, MembershipContext, MembershipOutput, WaitingOperation } from './membership.js';

export interface GreetingMembershipDeps {
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
  /** Static identity keys of members (the app's contact list). */
  readonly keys: KeyDirectory;
}

export class GreetingMembership implements Membership {
  /** Pending timer deadlines the machine asked for, ascending. */
  private timers: number[] = [];
  /** deps.random, refusing a source that repeats (issue 9 §2): contributions, nonces, seeds. */
  private readonly random: RandomSource;

  constructor(
    private state: MembershipState,
    private readonly deps: GreetingMembershipDeps,
  ) {
    this.random = checkedRandom(deps.random);
  }

  /** A fresh member (solo, in no channel yet); `autoInclude`: rule 10 (the app turns it on). */
  static create(self: MemberId, staticSeed: Uint8Array, deps: GreetingMembershipDeps, options: { autoInclude?: boolean } = {}): GreetingMembership {
    return new GreetingMembership(createMembership({ self, staticSeed, autoInclude: options.autoInclude ?? true }), deps);
  }

  /** The machine's state (read only: for queries such as the chain hash). */
  get machine(): MembershipState {
    return this.state;
  }

  async receivePacket(event: ChannelPacket, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    const published = publication(event.text);
    if (published === undefined) return this.run({ kind: 'channel', event }, context, nowMs);
    // A key publication is the session's business (deniability, mpENC §6.1.1); the machine only
    // numbers it, like a data packet.
    const out = await this.run({ kind: 'channel', event, knownData: true }, context, nowMs);
    const staticPub = this.deps.keys.staticKey(event.sender);
    try {
      if (staticPub === undefined) throw new ProtocolError('unknown-member', `no static key for ${event.sender}`);
      const signingKey = await openPublishedKey(this.deps.crypto, published, event.sender, staticPub);
      this.revoke(signingKey);
      out.push({ kind: 'key-published', member: event.sender, signingKey });
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      out.push({ kind: 'warn', text: `key-publication (${event.sender}): ${e.code}: ${e.message}` });
    }
    return out;
  }

  /**
   * Deniability (mpENC §6.1.1): publishes our ephemeral key once nothing in flight needs it, and
   * forgets it (a published key never signs again). `staying` (issue 9 §3: a subsession we stay
   * past is over): only a key that no subsession we hold still lists as ours, since a
   * confirmation of one of them would be signed with it.
   */
  async publishSigningKey(ownPub: Uint8Array, staying = false): Promise<string | null> {
    const s = this.state;
    const pair = ownKeyPair(s, ownPub);
    if (pair === undefined || s.staticSeed === null || isRevoked(s, ownPub)) return null;
    if (s.op !== null || s.proposal !== null) return null;
    // Staying: not a key the current subsession lists as ours, renewed or not. Before our renewal
    // there it signs our confirmation; after it, a proposal made by someone who has not seen the
    // renewal yet lists it again for the next subsession (receive.ts accepts either), and we would
    // have to confirm that one with it. So a key of k is published once the subsession after k
    // no longer lists it (normally when that one is replaced in turn).
    if (staying && s.current !== null && isKeyOf(s.current, s.self, ownPub)) return null;
    const text = await publishedKeyText(this.deps.crypto, s.staticSeed, s.self, pair);
    const ephemeral = s.ephemeral !== null && bytesEqual(s.ephemeral.pub, ownPub) ? null : s.ephemeral;
    // (It joins `revoked` when the relay hands the publication back, at its place in the order,
    // as at every other member: an operation ordered before it still counts.)
    this.state = { ...s, ephemeral, ownKeys: (s.ownKeys ?? []).filter((k) => !bytesEqual(k.pub, ownPub)) };
    return text;
  }

  /** A published key signs nothing any more (kept while a subsession we hold lists it). */
  private revoke(key: Uint8Array): void {
    const s = this.state;
    if (isRevoked(s, key)) return;
    this.state = pruneKeys({ ...s, revoked: [...(s.revoked ?? []), hexEncode(key)] });
  }

  /** The machine numbers every channel event, so it sees data packets too (and ignores them). */
  observeData(event: ChannelPacket, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'channel', event, knownData: true }, context, nowMs);
  }

  channelChanged(event: ChannelJoined | ChannelLeft, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'channel', event }, context, nowMs);
  }

  propose(
    operation: { readonly kind: 'include' | 'exclude' | 'refresh'; readonly members: readonly MemberId[] },
    context: MembershipContext,
    nowMs: number,
  ): Promise<MembershipOutput[]> {
    const latestPms = context.latestMessages;
    const input: MembershipInput =
      operation.kind === 'refresh'
        ? { kind: 'refresh', latestPms }
        : operation.kind === 'include' && this.state.current === null
          ? { kind: 'start', others: operation.members }
          : { kind: operation.kind, members: operation.members, latestPms };
    return this.run(input, context, nowMs);
  }

  tick(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    this.timers = this.timers.filter((t) => t > nowMs);
    return this.run({ kind: 'tick' }, context, nowMs);
  }

  caughtUp(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'caught-up' }, context, nowMs);
  }

  retention(firstSeq: number, members: readonly MemberId[] | undefined, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'retention', firstSeq, ...(members !== undefined && { members }) }, context, nowMs);
  }

  invited(untilMs: number, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'invited', untilMs }, context, nowMs);
  }

  abort(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'abort' }, context, nowMs);
  }

  retryWithoutMissing(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    return this.run({ kind: 'retry-without-missing' }, context, nowMs);
  }

  waiting(): WaitingOperation | null {
    const op = this.state.op;
    if (op === null || op.version !== 2 || op.nextIndex < 0) return null;
    const awaiting = op.members.slice(op.nextIndex);
    return {
      operation: op.kind,
      initiator: op.initiator,
      awaiting,
      sinceMs: op.turnSinceMs,
      limitAtMs: op.acceptedAtMs + OPERATION_WAIT_LIMIT_MS,
      canAbort: op.role === 'participant' && !op.abortSent,
    };
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

  private async run(input: MembershipInput, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]> {
    const env: MembershipEnv = {
      crypto: this.deps.crypto,
      random: this.random,
      nowMs,
      keys: this.deps.keys,
      atMs: context.atMs,
      quiet: context.quiet,
      isOnline: context.isOnline,
      lastWord: (sid) => context.lastWord(sid),
    };
    const result = await step(this.state, input, env);
    this.state = result.state;
    const outputs = result.effects.flatMap((e) => this.translate(e));
    this.dropHandedKeys();
    return outputs;
  }

  /**
   * Issue 9 §3: a group key goes to the session in the `completed` output (which splits it into
   * sender chains and drops it); the membership never needs it again (it keeps the confirmation
   * key for late confirmations, rule 5), so its state, and hence its snapshot, no longer holds it.
   * Not wiped in place: the session still reads these bytes after this call.
   */
  private dropHandedKeys(): void {
    const s = this.state;
    const held = (sub: MachineSubsession | null) => sub !== null && sub.groupKey !== null;
    if (!held(s.current) && !s.recent.some(held)) return;
    const drop = (sub: MachineSubsession): MachineSubsession => (sub.groupKey === null ? sub : { ...sub, groupKey: null });
    this.state = { ...s, current: s.current === null ? null : drop(s.current), recent: s.recent.map(drop) };
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
          {
            kind: 'notice',
            text: `${effect.initiator} started ${effect.operation} of ${effect.members.join(', ')}`,
            outcome: { kind: 'started', operation: effect.operation, initiator: effect.initiator, members: effect.members },
          },
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
              signingKeys: new Map(sub.members.map((m, i) => [m, signingKeysOf(sub)[i]!])),
              ownSigningSeed: effect.ownEphemeral.seed,
              confirmed: [...sub.confirmed],
              initiator: sub.initiator,
              version: sub.version,
            },
          },
        ];
      }
      case 'confirmed':
        return [{ kind: 'confirmed', sessionId: effect.sid, member: effect.member, lastWord: effect.finPms, ...(effect.signingKey !== undefined && { signingKey: effect.signingKey }) }];
      case 'own-signing-key':
        return [{ kind: 'own-signing-key', sessionId: effect.sid, seed: effect.pair.seed }];
      case 'seen':
        return [{ kind: 'seen', member: effect.member }];
      case 'waiting':
        return [
          {
            kind: 'notice',
            text: `the ${effect.operation} waits for ${effect.awaiting.join(', ')} to open Covey`,
            outcome: { kind: 'waiting', operation: effect.operation, awaiting: effect.awaiting },
          },
        ];
      case 'start-over':
        return [{ kind: 'start-over', reason: effect.reason }];
      case 'operation-failed':
        return [
          {
            kind: 'failed',
            reason: `${effect.operation} ${effect.reason}${effect.by === undefined ? '' : ` by ${effect.by}`}`,
            outcome: {
              kind: 'failed',
              operation: effect.operation,
              reason: effect.reason,
              ...(effect.abortReason !== undefined && { abortReason: effect.abortReason }),
              ...(effect.by !== undefined && { by: effect.by }),
            },
          },
        ];
      case 'proposal-rejected':
        return [{ kind: 'notice', text: `our ${effect.operation} was not accepted: ${effect.reason}`, outcome: { kind: 'not-accepted', operation: effect.operation, reason: effect.reason } }];
      case 'intent-refused':
        return [{ kind: 'notice', text: `cannot ${effect.intent}: ${effect.reason}`, outcome: { kind: 'refused', intent: effect.intent, reason: effect.reason } }];
      case 'excluded':
        return [{ kind: 'excluded', by: effect.by }];
      case 'rejoin-request':
        return [{ kind: 'rejoin-request', member: effect.member, startedOver: effect.startedOver }];
      case 'warning':
        return [{ kind: 'warn', text: `${effect.code}${effect.member === null ? '' : ` (${effect.member})`}: ${effect.message}` }];
      case 'set-timer':
        this.timers = [...this.timers, effect.atMs].sort((a, b) => a - b);
        return [];
    }
  }
}

/** The key publication in `text`, if it is one (anything else goes to the greeting machine as before). */
function publication(text: string): GreetingPacket | undefined {
  if (!text.startsWith(MPENC_PACKET_PREFIX)) return undefined;
  try {
    const packet = decodePacket(text);
    return packet.kind === 'greeting' && isPublishedKeyPacket(packet) ? packet : undefined;
  } catch {
    return undefined;
  }
}
