/**
 * PresenceTracker (mpENC §4.3): the latest activity of every member of a subsession. A member
 * whose activity is older than `expiryMs` is reported as expired, so the UI can grey them out
 * (mpENC §2.3 "Users not responding to heartbeats"); this detects a transport that drops their
 * packets (or ours). Heartbeats are optional (bandwidth): when enabled, we send one whenever we
 * have been silent for `heartbeatIntervalMs`, so that others do not expire us.
 *
 * Activity is any message of the member accepted into the transcript: its signature proves it is
 * theirs and its parents prove what they had seen.
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
  | { readonly kind: 'presence'; readonly expired: readonly MemberId[] };

export interface PresenceSnapshot {
  readonly lastSeenMs: readonly (readonly [MemberId, number])[];
  readonly lastSentMs: number;
  readonly expired: readonly MemberId[];
}

export class PresenceTracker {
  private readonly lastSeenMs = new Map<MemberId, number>();
  private lastSentMs: number;
  private expiredSet = new Set<MemberId>();

  constructor(
    private readonly self: MemberId,
    members: readonly MemberId[],
    nowMs: number,
    private readonly config: PresenceConfig = DEFAULT_PRESENCE,
  ) {
    assert(config.heartbeatIntervalMs === null || config.heartbeatIntervalMs < config.expiryMs, 'heartbeats must come before expiry');
    for (const m of members) if (m !== self) this.lastSeenMs.set(m, nowMs);
    this.lastSentMs = nowMs;
  }

  /** A message of `member` was accepted. Returns a presence change if they had expired. */
  activity(member: MemberId, nowMs: number): PresenceAction[] {
    if (member === this.self) {
      this.lastSentMs = Math.max(this.lastSentMs, nowMs);
      return [];
    }
    if (!this.lastSeenMs.has(member)) return [];
    this.lastSeenMs.set(member, Math.max(this.lastSeenMs.get(member)!, nowMs));
    if (!this.expiredSet.delete(member)) return [];
    return [{ kind: 'presence', expired: this.expired() }];
  }

  /** A member left the channel: no longer expected to be active. */
  forget(member: MemberId): PresenceAction[] {
    this.lastSeenMs.delete(member);
    if (!this.expiredSet.delete(member)) return [];
    return [{ kind: 'presence', expired: this.expired() }];
  }

  tick(nowMs: number): PresenceAction[] {
    const actions: PresenceAction[] = [];
    const hb = this.config.heartbeatIntervalMs;
    if (hb !== null && nowMs - this.lastSentMs >= hb) {
      // The caller sends the heartbeat, which comes back to `activity` as our own message.
      this.lastSentMs = nowMs;
      actions.push({ kind: 'send-heartbeat' });
    }
    let changed = false;
    for (const [member, seen] of this.lastSeenMs) {
      if (!this.expiredSet.has(member) && nowMs - seen >= this.config.expiryMs) {
        this.expiredSet.add(member);
        changed = true;
      }
    }
    if (changed) actions.push({ kind: 'presence', expired: this.expired() });
    return actions;
  }

  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    const consider = (at: number) => {
      if (next === undefined || at < next) next = at;
    };
    if (this.config.heartbeatIntervalMs !== null) consider(this.lastSentMs + this.config.heartbeatIntervalMs);
    for (const [member, seen] of this.lastSeenMs) if (!this.expiredSet.has(member)) consider(seen + this.config.expiryMs);
    return next;
  }

  /** Members whose activity expired, sorted. */
  expired(): MemberId[] {
    return [...this.expiredSet].sort();
  }

  lastSeen(member: MemberId): number | undefined {
    return this.lastSeenMs.get(member);
  }

  snapshot(): PresenceSnapshot {
    return { lastSeenMs: [...this.lastSeenMs], lastSentMs: this.lastSentMs, expired: this.expired() };
  }

  static restore(snapshot: PresenceSnapshot, self: MemberId, config: PresenceConfig = DEFAULT_PRESENCE): PresenceTracker {
    const tracker = new PresenceTracker(self, [], snapshot.lastSentMs, config);
    for (const [m, at] of snapshot.lastSeenMs) tracker.lastSeenMs.set(m, at);
    tracker.expiredSet = new Set(snapshot.expired);
    return tracker;
  }
}
