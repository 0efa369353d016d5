/**
 * Events of the group transport channel, as the engine sees them (mpENC §4.1 GroupChannel;
 * DESIGN.md §3). The relay numbers every event of a channel with one sequence number: that is
 * the single consistent order mpENC needs (§3.3), and the engine trusts it for liveness only,
 * never for safety (the chain hash checks it).
 *
 * Shared by the membership layer (greeting, order) and the session layer. Channel membership is
 * distinct from session membership (§4.1): a member may be in the channel and not (yet) in the
 * session, and being offline is not leaving.
 */
import type { MemberId } from './ids.js';

/** Members joined the channel. `members` is the whole channel membership after the event. */
export interface ChannelJoined {
  readonly kind: 'joined';
  readonly seq: number;
  /** Relay clock when the event was appended (RelayEvent.timeMs); absent in old traces. */
  readonly atMs?: number;
  readonly joined: readonly MemberId[];
  readonly members: readonly MemberId[];
}

/** Members left (or were removed from) the channel. `members` is the membership after it. */
export interface ChannelLeft {
  readonly kind: 'left';
  readonly seq: number;
  readonly atMs?: number;
  readonly left: readonly MemberId[];
  readonly members: readonly MemberId[];
}

/** A packet posted by `sender`; `text` is the packet text exactly as posted ("?mpENC:...."). */
export interface ChannelPacket {
  readonly kind: 'packet';
  readonly seq: number;
  /** Relay clock when the packet was ordered: "last seen" (async-groups rule 15) uses it. */
  readonly atMs?: number;
  readonly sender: MemberId;
  readonly text: string;
}

export type ChannelEvent = ChannelJoined | ChannelLeft | ChannelPacket;

/** What the engine asks the channel to do (effects; the worker performs them). */
export type ChannelAction =
  | { readonly kind: 'send'; readonly text: string }
  /** mpENC §3.3: members who leave the session are removed from the channel by the others. */
  | { readonly kind: 'kick'; readonly members: readonly MemberId[] }
  /** mpENC §3.3: we never exclude ourselves; we shut down and then leave the channel. */
  | { readonly kind: 'leave' };

/** Channel membership after `event`, given the membership before it. */
export function channelMembersAfter(before: readonly MemberId[], event: ChannelEvent): readonly MemberId[] {
  return event.kind === 'packet' ? before : event.members;
}
