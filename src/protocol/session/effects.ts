/**
 * What a Session asks of the world (STYLE.md §1: tagged effects). The worker performs `send`,
 * `kick` and `leave` on the channel, shows `deliver`, `status`, `notice` and `warn` to the user,
 * and calls `tick(nowMs)` at the latest `setTimer` time.
 */
import type { MemberId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import type { AckStatus } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';

/** 'active': in the channel; 'leaving': our FIN is out (mpENC §3.3); 'left': we left the channel. */
export type SessionState = 'active' | 'leaving' | 'left';

/** A content message accepted into the transcript (ours or others'), ready to display. */
export interface DeliveredMessage {
  readonly id: MessageKey;
  readonly author: MemberId;
  readonly text: string;
  /** Index of the subsession (creation order) it belongs to: its membership is that one's. */
  readonly subsession: number;
  /** Position in MessageLog display order at the time of delivery. */
  readonly position: number;
  /** mpENC §2.3(b): the message's real parents differ from the message shown above it. */
  readonly hiddenParents: boolean;
  /**
   * Relay time of the packet that carried it (`ChannelEvent.atMs`; for our own message, our
   * clock when we sent it), so that the app can place it without looking the packet up.
   */
  readonly atMs: number;
}

/**
 * A membership operation's news, typed, so that the app need not read the notice's text (which
 * says the same in words and stays for older readers). Operations: 'start' | 'include' |
 * 'exclude' | 'refresh'.
 */
export type GreetingOutcome =
  | { readonly kind: 'started'; readonly operation: string; readonly initiator: MemberId; readonly members: readonly MemberId[] }
  /** Rule 9: it waits for `awaiting` to open Covey. */
  | { readonly kind: 'waiting'; readonly operation: string; readonly awaiting: readonly MemberId[] }
  /**
   * It ended without a new subsession: 'aborted' (by `by`, ABORT reason `abortReason`),
   * 'member-left' (a target left the channel), 'left-channel' (we did), 'rejected-packet'.
   */
  | { readonly kind: 'failed'; readonly operation: string; readonly reason: 'aborted' | 'member-left' | 'left-channel' | 'rejected-packet'; readonly abortReason?: number; readonly by?: MemberId }
  /** Our proposal was not accepted (another operation was ordered first, ...); nothing was retried. */
  | { readonly kind: 'not-accepted'; readonly operation: string; readonly reason: string }
  /** An intent we could not act on (nothing was sent). */
  | { readonly kind: 'refused'; readonly intent: string; readonly reason: string }
  /** Others excluded us (mpENC §3.3). */
  | { readonly kind: 'excluded'; readonly by: MemberId };

/** UI-level news that is not a security concern (mpENC §2.3). */
export type SessionNotice =
  | { readonly kind: 'subsession-started'; readonly subsession: number; readonly members: readonly MemberId[] }
  /**
   * A subsession we left behind is done: `consistent` when everyone who confirmed it gave its
   * last word and nobody was late; `unconfirmed` never confirmed it (slept through it).
   */
  | { readonly kind: 'subsession-closed'; readonly subsession: number; readonly consistent: boolean; readonly unconfirmed?: readonly MemberId[] }
  | { readonly kind: 'member-parting'; readonly subsession: number; readonly member: MemberId }
  /** Members of the current subsession not shown online (grey them out, mpENC §2.3; rule 15). */
  | { readonly kind: 'presence'; readonly subsession: number; readonly expired: readonly MemberId[] }
  /** Membership news in words; `outcome`, where given, says the same typed. */
  | { readonly kind: 'membership'; readonly text: string; readonly outcome?: GreetingOutcome }
  /**
   * Rules 10, 11: `member` asks to be included: `startedOver`, it is in our subsession but lost
   * this group's state (the others exclude it and include it again); otherwise it is in the
   * channel, online, waiting to be included. The engine proposes the include itself only with
   * `autoInclude`; an app with its own rule 10 treats this as a claim.
   */
  | { readonly kind: 'rejoin-request'; readonly member: MemberId; readonly startedOver: boolean }
  /**
   * A data packet we cannot read was dropped at once: traffic of a subsession we are not in (or
   * were shown late, its parents lost), or a forgery from someone whose view we cannot vouch for.
   */
  | { readonly kind: 'unreadable-dropped'; readonly sender: MemberId }
  /**
   * Rule 12: `author` sent message `id` under subsession `subsession` before seeing the change
   * that replaced it ("sent before seeing <change>").
   */
  | { readonly kind: 'late-message'; readonly id: MessageKey; readonly author: MemberId; readonly subsession: number; readonly replacedBy: number }
  /** Rule 6: we caught up with the channel (we send again). */
  | { readonly kind: 'caught-up' }
  /**
   * Rule 11, in plain words for the user: we were away longer than the relay keeps messages
   * (or could not use the group's new keys); the others add us again, nothing shown is lost.
   */
  | { readonly kind: 'start-over'; readonly reason: 'retention' | 'key-mismatch' | 'forked' | 'events-withheld' | 'superseded'; readonly text: string }
  | { readonly kind: 'left' };

/** Security-relevant conditions (mpENC §2.3, §3.5): each names its cause. */
export type SessionWarning =
  /** Rule 14: `missing` were active since (or online) and did not ack `id`. Never for a sleeping phone. */
  | { readonly kind: 'not-fully-acked'; readonly id: MessageKey; readonly missing: readonly MemberId[] }
  | { readonly kind: 'rejected'; readonly sender: MemberId; readonly code: string; readonly detail: string }
  | { readonly kind: 'missing-parents-expired'; readonly id: MessageKey; readonly author: MemberId }
  | { readonly kind: 'dropped'; readonly sender: MemberId; readonly reason: string }
  | { readonly kind: 'shutdown-inconsistent'; readonly subsession: number; readonly missing: readonly MemberId[] }
  | { readonly kind: 'membership'; readonly text: string }
  /** Rule 12: a data packet that verifies under no subsession we know at its place in the order. */
  | { readonly kind: 'fork'; readonly sender: MemberId; readonly seq: number }
  /** Rule 12: `author` sealed under a subsession after confirming a later one (rule 7 broken, or a replay). */
  | { readonly kind: 'sealed-after-moving-on'; readonly author: MemberId; readonly subsession: number }
  /** Rule 5: data of `author` under a subsession it never confirmed (held until it expired). */
  | { readonly kind: 'unconfirmed-author'; readonly author: MemberId; readonly subsession: number };

/**
 * Rule 7: what a data packet was sealed under, so that the worker can post it conditionally
 * (the relay refuses it if a member left the channel since `membershipSeq`) and never post it
 * once an operation replaced `subsession` (`Session.canPost`).
 */
export interface Sealed {
  readonly subsession: number;
  /** Seq of the last channel membership event (joined/left) we had processed: the channel's membership version. */
  readonly membershipSeq: number | null;
}

export type SessionEffect =
  /** `sealed`: on data packets (rule 7); greetings carry none. */
  | { readonly kind: 'send'; readonly text: string; readonly sealed?: Sealed }
  | { readonly kind: 'kick'; readonly members: readonly MemberId[] }
  | { readonly kind: 'leave' }
  | { readonly kind: 'deliver'; readonly message: DeliveredMessage }
  | { readonly kind: 'status'; readonly id: MessageKey; readonly status: AckStatus }
  | { readonly kind: 'notice'; readonly notice: SessionNotice }
  | { readonly kind: 'warn'; readonly warning: SessionWarning }
  | { readonly kind: 'setTimer'; readonly atMs: number };

/** Bodies that are content, shown in the MessageLog (mpENC §4.3). */
export function isContent(body: MessageBody): boolean {
  return body.type === 'payload';
}

/**
 * mpENC §3.5 "acks of acks": payloads and consistency messages need acks from every reader;
 * explicit acks and heartbeats do not (they still ack their ancestors). See reliability/ack-monitor.
 */
export function needsAck(body: MessageBody): boolean {
  return body.type === 'payload' || body.type === 'consistency';
}
