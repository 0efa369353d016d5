import { describe, expect, it } from 'vitest';
import { memberId, type MemberId } from '../../src/protocol/ids.js';
import { PresenceTracker } from '../../src/protocol/presence/presence-tracker.js';

const [me, bob, carol] = ['me', 'bob', 'carol'].map((x) => memberId(x)) as [MemberId, MemberId, MemberId];
const members = [me, bob, carol];
const config = { heartbeatIntervalMs: 1_000, expiryMs: 4_000 };

describe('PresenceTracker (mpENC §4.3, §2.3; async-groups rule 15)', () => {
  it('sends a heartbeat after a silence, not while we talk, and only when allowed', () => {
    const p = new PresenceTracker(me, 0, config);
    expect(p.tick(500, members, true).filter((a) => a.kind === 'send-heartbeat')).toEqual([]);
    p.sent(900);
    expect(p.tick(1_500, members, true).filter((a) => a.kind === 'send-heartbeat')).toEqual([]);
    expect(p.tick(1_900, members, true).filter((a) => a.kind === 'send-heartbeat')).toEqual([{ kind: 'send-heartbeat' }]);
    // while catching up (rule 6) or with no active subsession: none
    expect(p.tick(10_000, members, false).filter((a) => a.kind === 'send-heartbeat')).toEqual([]);
  });

  it('online while an authenticated packet is fresh, else "last seen" at its relay time', () => {
    const p = new PresenceTracker(me, 0, config);
    expect(p.presence(bob, 0)).toEqual({ kind: 'never' });
    p.seen(bob, 1_000);
    expect(p.presence(bob, 2_000)).toEqual({ kind: 'online', lastSeenMs: 1_000 });
    expect(p.isOnline(bob, 4_999)).toBe(true);
    expect(p.presence(bob, 5_000)).toEqual({ kind: 'last-seen', lastSeenMs: 1_000 });
    // relay time, not arrival: a packet from yesterday processed now does not make bob online
    p.seen(bob, 500);
    expect(p.lastSeen(bob)).toBe(1_000);
    expect(p.presence(me, 99_999).kind).toBe('online');
  });

  it('a member who just joined the channel counts as online from its join event', () => {
    const p = new PresenceTracker(me, 0, config);
    p.joined(carol, 10_000);
    expect(p.isOnline(carol, 12_000)).toBe(true);
    expect(p.isOnline(carol, 14_000)).toBe(false);
    expect(p.presence(carol, 14_000)).toEqual({ kind: 'never' });
  });

  it('reports who is not online among the members, when it changes, and when it will', () => {
    const p = new PresenceTracker(me, 0, config);
    p.seen(bob, 0);
    p.seen(carol, 2_000);
    expect(p.nextDeadlineMs(members, 0, false)).toBe(4_000);
    expect(p.tick(3_000, members, false)).toEqual([]);
    expect(p.tick(4_000, members, false)).toEqual([{ kind: 'presence', expired: [bob] }]);
    expect(p.tick(4_500, members, false)).toEqual([]);
    p.seen(bob, 5_000);
    expect(p.tick(6_000, members, false)).toEqual([{ kind: 'presence', expired: [carol] }]);
    expect(p.expired(members, 6_000)).toEqual([carol]);
  });

  it('snapshot and restore give the same tracker', () => {
    const p = new PresenceTracker(me, 0, config);
    p.seen(bob, 100);
    p.joined(carol, 200);
    p.tick(5_000, members, true);
    const restored = PresenceTracker.restore(JSON.parse(JSON.stringify(p.snapshot())), me, config);
    expect(restored.snapshot()).toEqual(p.snapshot());
    expect(restored.presence(bob, 300)).toEqual(p.presence(bob, 300));
  });
});
