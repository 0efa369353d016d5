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
}

/** UI-level news that is not a security concern (mpENC §2.3). */
export type SessionNotice =
  | { readonly kind: 'subsession-started'; readonly subsession: number; readonly members: readonly MemberId[] }
  | { readonly kind: 'subsession-closed'; readonly subsession: number; readonly consistent: boolean }
  | { readonly kind: 'member-parting'; readonly subsession: number; readonly member: MemberId }
  | { readonly kind: 'presence'; readonly subsession: number; readonly expired: readonly MemberId[] }
  | { readonly kind: 'membership'; readonly text: string }
  /** A packet we could never read expired: traffic of a subsession we are not in. */
  | { readonly kind: 'unreadable-dropped'; readonly sender: MemberId }
  | { readonly kind: 'left' };

/** Security-relevant conditions (mpENC §2.3, §3.5): each names its cause. */
export type SessionWarning =
  | { readonly kind: 'not-fully-acked'; readonly id: MessageKey; readonly missing: readonly MemberId[] }
  | { readonly kind: 'rejected'; readonly sender: MemberId; readonly code: string; readonly detail: string }
  | { readonly kind: 'missing-parents-expired'; readonly id: MessageKey; readonly author: MemberId }
  | { readonly kind: 'undecryptable-expired'; readonly sender: MemberId }
  | { readonly kind: 'dropped'; readonly sender: MemberId; readonly reason: string }
  | { readonly kind: 'shutdown-inconsistent'; readonly subsession: number; readonly missing: readonly MemberId[] }
  | { readonly kind: 'membership'; readonly text: string };

export type SessionEffect =
  | { readonly kind: 'send'; readonly text: string }
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
