/**
 * The membership half of a session as the message half sees it (mpENC §4.2: the concurrency
 * resolver and the component that runs membership operations). The Session routes every channel
 * event that is not a data packet here, and every membership request; the membership answers
 * with outputs, among them a finished operation's new subsession keys and the confirmations
 * members send later (async-groups rule 5).
 *
 * Implemented by the greeting/order layer (src/protocol/greeting, src/protocol/order); tests use a
 * scripted stand-in. Kept small on purpose so that swapping implementations is a small change.
 */
import type { ChannelJoined, ChannelLeft, ChannelPacket } from '../channel.js';
import type { MemberId, MessageId, SessionId } from '../ids.js';
import type { SubsessionKeys } from '../packets/data.js';
import type { GreetingOutcome } from './effects.js';

/** Everything a new subsession needs to seal and open messages (mpENC §3.6). */
export interface SubsessionSetup {
  readonly members: readonly MemberId[];
  readonly keys: SubsessionKeys;
  /** Every member's ephemeral ed25519 public key (ASKE), ours included. */
  readonly signingKeys: ReadonlyMap<MemberId, Uint8Array>;
  /** Our ephemeral ed25519 seed. Secret. */
  readonly ownSigningSeed: Uint8Array;
  /**
   * 1: an mpenc_js subsession, whose data packets are v1 under the group key. Otherwise (Covey's
   * v2) each sender's packets are under its own hash chain (issue 9 §3, packets/ratchet.ts).
   */
  readonly version?: 1 | 2;
  /**
   * Members whose confirmation is in at once (async-groups rule 5: the contributors, whose own
   * packets count). The others' come later as `confirmed` outputs; a member's data is accepted
   * only after its confirmation. Absent: everyone (a membership without late confirmations).
   */
  readonly confirmed?: readonly MemberId[];
  /**
   * Who initiated the operation. The other contributors were in no subsession of this group
   * before (newcomers), so they seal under nothing older (rule 12); the initiator did, and may
   * send late messages under the one it replaces until its own confirmation.
   */
  readonly initiator?: MemberId;
}

export type MembershipOutput =
  | { readonly kind: 'send'; readonly text: string }
  | { readonly kind: 'kick'; readonly members: readonly MemberId[] }
  | { readonly kind: 'notice'; readonly text: string; readonly outcome?: GreetingOutcome }
  | { readonly kind: 'warn'; readonly text: string }
  /** An operation was accepted (its members are fixed; it may wait for contributors). */
  | { readonly kind: 'started' }
  /** mpENC §3.1: the operation succeeded; switch to this subsession atomically. */
  | { readonly kind: 'completed'; readonly subsession: SubsessionSetup }
  | { readonly kind: 'failed'; readonly reason: string; readonly outcome?: GreetingOutcome }
  /** Rules 10, 11: a signed request of `member` to be included (again). */
  | { readonly kind: 'rejoin-request'; readonly member: MemberId; readonly startedOver: boolean }
  /**
   * Rule 5: `member` confirmed subsession `sessionId`, with its last messages in the subsession
   * it had confirmed before (its last word there: it never seals there again, rule 7).
   */
  | {
      readonly kind: 'confirmed';
      readonly sessionId: SessionId;
      readonly member: MemberId;
      readonly lastWord: readonly MessageId[];
      /** Issue 9 §3: its confirmation renewed its signing key there: its data there is signed with this one. */
      readonly signingKey?: Uint8Array;
    }
  /** Issue 9 §3: we confirmed `sessionId` with a fresh signing key: we sign our data there with `seed`. */
  | { readonly kind: 'own-signing-key'; readonly sessionId: SessionId; readonly seed: Uint8Array }
  /**
   * Deniability (mpENC §6.1.1, issue 9 §3): `member` published the seed of its ephemeral signing
   * key `signingKey` (checked against its static key): data packets under that key that arrive
   * from now on prove nothing and are refused.
   */
  | { readonly kind: 'key-published'; readonly member: MemberId; readonly signingKey: Uint8Array }
  /** Others excluded us (mpENC §3.3): we wait to be removed from the channel, in no subsession. */
  | { readonly kind: 'excluded'; readonly by: MemberId }
  /** An authenticated packet of `member` that is not a data packet (rule 15 presence). */
  | { readonly kind: 'seen'; readonly member: MemberId }
  /**
   * Rule 11: we cannot use this group's keys any more (away longer than the relay keeps events,
   * events withheld, or a key that did not match): we are solo and asked to be included again.
   */
  | { readonly kind: 'start-over'; readonly reason: 'retention' | 'key-mismatch' | 'forked' | 'events-withheld' | 'superseded' };

/** What the membership may ask of the message half while it works. */
export interface MembershipContext {
  /** LATEST_PM: the latest messages of the current subsession that we have seen (mpENC §5.2). */
  readonly latestMessages: readonly MessageId[];
  /**
   * Our last word for a confirmation of subsession `confirming` (FIN_PM, rule 7): our latest
   * messages in the newest subsession before it that we confirmed and have not left behind yet.
   */
  lastWord(confirming: SessionId): readonly MessageId[];
  /** Rule 6: we are catching up; send nothing until `caughtUp`. */
  readonly quiet: boolean;
  /** Rule 15: whether a member is shown online. */
  readonly isOnline: (member: MemberId) => boolean;
  /** Relay time of the event being processed (or now). */
  readonly atMs: number;
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
    operation: { readonly kind: 'include' | 'exclude' | 'refresh'; readonly members: readonly MemberId[] },
    context: MembershipContext,
    nowMs: number,
  ): Promise<MembershipOutput[]>;
  tick(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  nextDeadlineMs(): number | undefined;
  /** Rule 6: we reached the head we saw when we started fetching; send what fell due. Optional. */
  caughtUp?(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /** Rule 11: the relay no longer holds events before `firstSeq`; `members`: the channel then. Optional. */
  retention?(firstSeq: number, members: readonly MemberId[] | undefined, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /** Rule 10: we invited someone, until `untilMs` (relay time). Optional. */
  invited?(untilMs: number, context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /** Rule 9: abort the operation (ours, or any waiting include). Optional. */
  abort?(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /** Rule 9: abort the waiting include and propose it again without who never came. Optional. */
  retryWithoutMissing?(context: MembershipContext, nowMs: number): Promise<MembershipOutput[]>;
  /**
   * Deniability (mpENC §6.1.1): the packet that publishes our ephemeral signing key `ownPub`,
   * after our shutdown was acked by every other member; the membership never signs with that key
   * again. null when the key is still needed (an operation or proposal in flight uses it; when
   * `staying`, also a subsession we hold lists it as ours) or is not ours. Optional (a membership
   * without it publishes nothing).
   */
  publishSigningKey?(ownPub: Uint8Array, staying?: boolean): Promise<string | null>;
  /** What the ongoing operation waits for, if it waits (rule 9), for the UI. Optional. */
  waiting?(nowMs: number): WaitingOperation | null;
  /** JSON-safe state for save/load (§6.3); restored by the factory given to Session.restore. */
  snapshot(): unknown;
}

/** An operation that waits for contributors (rule 9: waiting is a state). */
export interface WaitingOperation {
  readonly operation: 'start' | 'include' | 'exclude' | 'refresh';
  readonly initiator: MemberId;
  /** Members whose turn has not come or who have not acted yet. */
  readonly awaiting: readonly MemberId[];
  readonly sinceMs: number;
  /** When it will be aborted if it still waits (OPERATION_WAIT_LIMIT_MS). */
  readonly limitAtMs: number;
  /** Whether we may abort it now (its initiator, or any member of a waiting include). */
  readonly canAbort: boolean;
}
