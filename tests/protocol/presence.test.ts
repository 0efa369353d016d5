import { describe, expect, it } from 'vitest';
import { PresenceTracker } from '../../src/protocol/presence/presence-tracker.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';

const [alice, bob, carol, mallory] = ['alice', 'bob', 'carol', 'mallory'].map((x) => memberId(x)) as [MemberId, MemberId, MemberId, MemberId];

const config = { heartbeatIntervalMs: 100, expiryMs: 400 };

describe('PresenceTracker (mpENC §4.3, §2.3)', () => {
  it('sends a heartbeat after a silence, not while we talk', () => {
    const p = new PresenceTracker(alice, [alice, bob], 0, config);
    expect(p.nextDeadlineMs()).toBe(100);
    p.activity(alice, 80);
    expect(p.tick(100)).toEqual([]);
    expect(p.tick(180)).toEqual([{ kind: 'send-heartbeat' }]);
    expect(p.tick(200)).toEqual([]);
  });

  it('without heartbeats it only follows traffic', () => {
    const p = new PresenceTracker(alice, [alice, bob], 0, { heartbeatIntervalMs: null, expiryMs: 400 });
    expect(p.tick(399)).toEqual([]);
    expect(p.nextDeadlineMs()).toBe(400);
  });

  it('reports members whose activity expired, and their return', () => {
    const p = new PresenceTracker(alice, [alice, bob, carol], 0, { heartbeatIntervalMs: null, expiryMs: 400 });
    p.activity(bob, 300);
    expect(p.tick(400)).toEqual([{ kind: 'presence', expired: [carol] }]);
    expect(p.tick(500)).toEqual([]);
    expect(p.tick(700)).toEqual([{ kind: 'presence', expired: [bob, carol] }]);
    expect(p.activity(carol, 710)).toEqual([{ kind: 'presence', expired: [bob] }]);
    expect(p.activity(carol, 720)).toEqual([]);
    expect(p.activity(mallory, 720)).toEqual([]);
    expect(p.expired()).toEqual([bob]);
  });

  it('snapshot and restore give the same tracker', () => {
    const p = new PresenceTracker(alice, [alice, bob, carol], 0, config);
    p.activity(bob, 300);
    p.tick(450);
    const q = PresenceTracker.restore(JSON.parse(JSON.stringify(p.snapshot())), alice, config);
    expect(q.snapshot()).toEqual(p.snapshot());
    expect(q.tick(800)).toEqual(p.tick(800));
  });

  it('forgets a member who left the channel (no expiry for them)', () => {
    const p = new PresenceTracker(alice, [alice, bob, carol], 0, { heartbeatIntervalMs: null, expiryMs: 400 });
    expect(p.tick(400)).toEqual([{ kind: 'presence', expired: [bob, carol] }]);
    expect(p.forget(carol)).toEqual([{ kind: 'presence', expired: [bob] }]);
    expect(p.forget(carol)).toEqual([]);
    expect(p.activity(carol, 500)).toEqual([]);
    expect(p.lastSeen(carol)).toBeUndefined();
  });
});
