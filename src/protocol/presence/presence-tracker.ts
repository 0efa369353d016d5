/**
 * PresenceTracker (mpENC §4.3; async-groups rule 15), one per session: a member is "online" if a
 * packet the relay attributes to them (the relay authenticates who posts; any packet counts, even
 * one of a subsession we are not in) was ordered within `expiryMs`; otherwise "last seen" at the
 * relay time of its latest one.
 * Relay times (ChannelEvent.atMs), not our clock at processing: a member catching up on a day of
 * messages must not see everyone as online. A member who just joined the channel counts as
 * online from its join event (liveness only: no safety decision rests on presence).
 *
 * Heartbeats are optional (bandwidth): when enabled, we send one whenever we have been silent for
 * `heartbeatIntervalMs` (the session sends nothing while catching up, async-groups rule 6).
 * Members whose presence expired are reported, so the UI can grey them out (mpENC §2.3).
 */
import { assert } from '../errors.js';
import type { MemberId } from '../transcript/ids.js';

export interface PresenceConfig {
  /** null: no heartbeats (presence then follows ordinary traffic only). */
  readonly heartbeatIntervalMs: number | null;
  /** Longer than the heartbeat interval by a margin for delay (mpenc_js used 4×). */
  readonly expiryMs: number;
}

export const DEFAULT_PRESENCE: PresenceConfig = { heartbeatIntervalMs: 60_000, expiryMs: 4 * 60_000 };

export type PresenceAction =
  | { readonly kind: 'send-heartbeat' }
  /** The members (of those asked about) who are not online changed: `expired`, sorted. */
  | { readonly kind: 'presence'; readonly expired: readonly MemberId[] };

/** What the UI shows for a member (rule 15). */
export type Presence =
  | { readonly kind: 'online'; readonly lastSeenMs: number }
  | { readonly kind: 'last-seen'; readonly lastSeenMs: number }
  | { readonly kind: 'never' };

export interface PresenceSnapshot {
  readonly lastSeenMs: readonly (readonly [MemberId, number])[];
  readonly joinedAtMs: readonly (readonly [MemberId, number])[];
  readonly lastSentMs: number;
  readonly expired: readonly MemberId[];
}

export class PresenceTracker {
  private readonly lastSeenMs = new Map<MemberId, number>();
  private readonly joinedAtMs = new Map<MemberId, number>();
  private lastSentMs: number;
  /** The expired set last reported (the UI greys these out). */
  private reported: readonly MemberId[] = [];

  constructor(
    private readonly self: MemberId,
    nowMs: number,
    private readonly config: PresenceConfig = DEFAULT_PRESENCE,
  ) {
    assert(config.heartbeatIntervalMs === null || config.heartbeatIntervalMs < config.expiryMs, 'heartbeats must come before expiry');
    this.lastSentMs = nowMs;
  }

  /** A packet the relay attributes to `member`, ordered at `atMs`. */
  seen(member: MemberId, atMs: number): void {
    if (member === this.self) return;
    const before = this.lastSeenMs.get(member);
    if (before === undefined || atMs > before) this.lastSeenMs.set(member, atMs);
  }

  /** `member` joined the channel at `atMs` (relay time). */
  joined(member: MemberId, atMs: number): void {
    if (member !== this.self) this.joinedAtMs.set(member, atMs);
  }

  /** We sent something (it resets the heartbeat interval). */
  sent(nowMs: number): void {
    this.lastSentMs = Math.max(this.lastSentMs, nowMs);
  }

  isOnline(member: MemberId, nowMs: number): boolean {
    if (member === this.self) return true;
    const at = Math.max(this.lastSeenMs.get(member) ?? -Infinity, this.joinedAtMs.get(member) ?? -Infinity);
    return nowMs - at < this.config.expiryMs;
  }

  presence(member: MemberId, nowMs: number): Presence {
    const seen = this.lastSeenMs.get(member);
    const joined = this.joinedAtMs.get(member);
    if (member === this.self || this.isOnline(member, nowMs)) return { kind: 'online', lastSeenMs: seen ?? joined ?? nowMs };
    return seen === undefined ? { kind: 'never' } : { kind: 'last-seen', lastSeenMs: seen };
  }

  lastSeen(member: MemberId): number | undefined {
    return this.lastSeenMs.get(member);
  }

  /** Of `members`, those not online now, sorted. */
  expired(members: readonly MemberId[], nowMs: number): MemberId[] {
    return members.filter((m) => m !== this.self && !this.isOnline(m, nowMs)).sort();
  }

  /**
   * `heartbeats`: whether we may send one now (an active subsession, not catching up). Reports
   * a change of the expired set among `members`.
   */
  tick(nowMs: number, members: readonly MemberId[], heartbeats: boolean): PresenceAction[] {
    const actions: PresenceAction[] = [];
    const hb = this.config.heartbeatIntervalMs;
    if (heartbeats && hb !== null && nowMs - this.lastSentMs >= hb) {
      // The caller sends the heartbeat (which calls `sent`).
      this.lastSentMs = nowMs;
      actions.push({ kind: 'send-heartbeat' });
    }
    actions.push(...this.report(members, nowMs));
    return actions;
  }

  /** The expired set among `members` if it changed since the last report. */
  report(members: readonly MemberId[], nowMs: number): PresenceAction[] {
    const expired = this.expired(members, nowMs);
    if (expired.length === this.reported.length && expired.every((m, i) => m === this.reported[i])) return [];
    this.reported = expired;
    return [{ kind: 'presence', expired }];
  }

  /** The next time presence changes on its own (someone online expires) or a heartbeat is due. */
  nextDeadlineMs(members: readonly MemberId[], nowMs: number, heartbeats: boolean): number | undefined {
    let next: number | undefined;
    const consider = (at: number) => {
      if (next === undefined || at < next) next = at;
    };
    if (heartbeats && this.config.heartbeatIntervalMs !== null) consider(this.lastSentMs + this.config.heartbeatIntervalMs);
    for (const m of members) {
      if (m === this.self) continue;
      const at = Math.max(this.lastSeenMs.get(m) ?? -Infinity, this.joinedAtMs.get(m) ?? -Infinity);
      if (nowMs - at < this.config.expiryMs) consider(at + this.config.expiryMs);
    }
    return next;
  }

  snapshot(): PresenceSnapshot {
    return { lastSeenMs: [...this.lastSeenMs], joinedAtMs: [...this.joinedAtMs], lastSentMs: this.lastSentMs, expired: [...this.reported] };
  }

  static restore(snapshot: PresenceSnapshot, self: MemberId, config: PresenceConfig = DEFAULT_PRESENCE): PresenceTracker {
    const tracker = new PresenceTracker(self, snapshot.lastSentMs, config);
    for (const [m, at] of snapshot.lastSeenMs) tracker.lastSeenMs.set(m, at);
    for (const [m, at] of snapshot.joinedAtMs) tracker.joinedAtMs.set(m, at);
    tracker.reported = [...snapshot.expired];
    return tracker;
  }
}
