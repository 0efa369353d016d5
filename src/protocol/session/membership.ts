/**
 * The membership half of a session as the message half sees it (mpENC §4.2: the concurrency
 * resolver and the component that runs membership operations). The Session routes every channel
 * event that is not a data packet here, and every include/exclude request; the membership answers
 * with outputs, among them a finished operation's new subsession keys.
 *
 * Implemented by the greeting/order layer (src/protocol/greeting, src/protocol/order); tests use a
 * scripted stand-in. Kept small on purpose so that swapping implementations is a small change.
 */
import type { ChannelJoined, ChannelLeft, ChannelPacket } from '../channel.js';
import type { MemberId, MessageId } from '../ids.js';
import type { SubsessionKeys } from '../packets/data.js';

/** Everything a new subsession needs to seal and open messages (mpENC §3.6). */
export interface SubsessionSetup {
  readonly members: readonly MemberId[];
  readonly keys: SubsessionKeys;
  /** Every member's ephemeral ed25519 public key (ASKE), ours included. */
  readonly signingKeys: ReadonlyMap<MemberId, Uint8Array>;
  /** Our ephemeral ed25519 seed. Secret. */
  readonly ownSigningSeed: Uint8Array;
}

export type MembershipOutput =
  | { readonly kind: 'send'; readonly text: string }
  | { readonly kind: 'kick'; readonly members: readonly MemberId[] }
  | { readonly kind: 'notice'; readonly text: string }
  | { readonly kind: 'warn'; readonly text: string }
  /** An operation was accepted: the current subsession should reach consistency (mpenc_js). */
  | { readonly kind: 'started' }
  /** mpENC §3.1: the operation succeeded; switch to this subsession atomically. */
  | { readonly kind: 'completed'; readonly subsession: SubsessionSetup }
  | { readonly kind: 'failed'; readonly reason: string };

/** What the membership may ask of the message half while it works. */
export interface MembershipContext {
  /** LATEST_PM: the latest messages of the current subsession that we have seen (mpENC §5.2). */
  readonly latestMessages: readonly MessageId[];
}

export interface Membership {
  /** A packet that is not a data packet (greetings, queries, errors, anything undecodable). */
  receivePacket(event: ChannelPacket, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /**
   * A data packet, before the session handles it: for a membership half that follows the relay's
   * numbering of every event (a gap means events were withheld). Optional.
   */
  observeData?(event: ChannelPacket, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  channelChanged(event: ChannelJoined | ChannelLeft, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  propose(
    operation: { readonly kind: 'include' | 'exclude'; readonly members: readonly MemberId[] },
    context: MembershipContext,
    nowMs: number,
  ): Promise<MembershipOutput[]>;
  tick(nowMs: number): Promise<MembershipOutput[]>;
  nextDeadlineMs(): number | undefined;
  /** JSON-safe state for save/load (§6.3); restored by the factory given to Session.restore. */
  snapshot(): unknown;
}
