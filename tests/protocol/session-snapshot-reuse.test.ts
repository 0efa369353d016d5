/**
 * Issue 12, incremental snapshots: a snapshot after every step reuses the entries of the last one
 * that did not change (accepted messages, tracked acks), so the worker tells them by identity.
 * Reuse must never show a stale value: a tracked entry says what the session's delivery says now,
 * and a snapshot restores to a session whose own (fresh) snapshot is the same.
 */
import { describe, expect, it } from 'vitest';
import type { MemberId } from '../../src/protocol/ids.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { chat3 } from '../helpers/three-members.js';

/** The snapshot a fresh session gives for the same state (no entry made before). */
const fresh = (snapshot: SessionSnapshot): unknown => JSON.parse(JSON.stringify(snapshot));

describe('incremental session snapshot (issue 12)', () => {
  it('reuses unchanged message and ack entries, makes new ones for what changed, never shows a stale one', async () => {
    const sim = await chat3(12);
    const bob = 'bob' as MemberId;
    const carol = 'carol' as MemberId;
    // Bob's and Carol's phones sleep: Alice's messages stay tracked, waiting for both acks.
    sim.asleep.add(bob);
    sim.asleep.add(carol);
    for (const text of ['one', 'two', 'three']) await sim.act('alice', (s, now) => s.send(text, now));
    await sim.advance(2_000);
    const alice = sim.member('alice').session;
    const first = alice.snapshot();
    const second = alice.snapshot();
    const sub = (s: SessionSnapshot) => s.subsessions.find((x) => x.index === s.current)!;
    expect(sub(first).messages.length).toBeGreaterThanOrEqual(3);
    expect(sub(first).acks.tracked.length).toBeGreaterThan(0);
    // Nothing changed: the same entries, in arrays of their own (one snapshot cannot change another).
    sub(second).messages.forEach((m, i) => expect(m).toBe(sub(first).messages[i]));
    sub(second).acks.tracked.forEach((t, i) => expect(t).toBe(sub(first).acks.tracked[i]));
    expect(sub(second).messages).not.toBe(sub(first).messages);
    expect(Object.isFrozen(sub(first).messages[0])).toBe(true);
    expect(Object.isFrozen(sub(first).acks.tracked[0])).toBe(true);

    // Bob wakes and writes (acking Alice's messages); Carol sleeps on: the tracked entries lose
    // Bob and nothing else (a reused entry would still name him); Bob's message is a new entry.
    sim.asleep.delete(bob);
    await sim.advance(2_000);
    await sim.act('bob', (s, now) => s.send('four', now));
    await sim.advance(2_000);
    const third = alice.snapshot();
    expect(sub(third).messages.length).toBeGreaterThan(sub(first).messages.length);
    sub(first).messages.forEach((m, i) => expect(sub(third).messages[i]).toBe(m));
    expect(sub(first).acks.tracked.filter((t) => t.remaining.includes(bob)).length).toBeGreaterThan(0);
    for (const t of sub(third).acks.tracked) {
      const d = alice.delivery(t.id);
      // `remaining` leaves Alice herself out (restore derives it: AckMonitorSnapshot.selfImplicit).
      expect(t.remaining).toEqual([...d.waiting, ...d.pending, ...d.late].filter((m) => m !== ('alice' as MemberId)).sort());
      if (sub(first).acks.tracked.some((x) => x.id === t.id)) expect(t.remaining).not.toContain(bob);
    }
    // A session restored from a snapshot (nothing reused yet) snapshots the same.
    for (const s of [first, third]) {
      sim.restartFrom('alice', fresh(s) as SessionSnapshot);
      expect(fresh(sim.member('alice').session.snapshot())).toEqual(fresh(s));
    }
  });

  it('restores a snapshot of an older build, which names us among the readers still to ack, as the same session', async () => {
    const sim = await chat3(5);
    const bob = 'bob' as MemberId;
    const carol = 'carol' as MemberId;
    sim.asleep.add(bob);
    sim.asleep.add(carol);
    for (const text of ['one', 'two', 'three']) await sim.act('alice', (s, now) => s.send(text, now));
    // Bob wakes and reads them; his ack is not due yet (Carol sleeps on: they stay tracked).
    sim.asleep.delete(bob);
    await sim.settle();
    const session = sim.member('bob').session;
    const now = session.snapshot();
    const sub = now.subsessions.find((x) => x.index === now.current)!;
    const owed = sub.acks.tracked.filter((t) => session.delivery(t.id).waiting.includes(bob));
    expect(owed.length).toBeGreaterThanOrEqual(3);
    expect(sub.acks.tracked.filter((t) => t.remaining.includes(bob))).toEqual([]);
    // The same state as an older build stored it: Bob named where he is still to ack, no selfImplicit.
    const older = fresh(now) as SessionSnapshot;
    const olderSubs = older.subsessions.map((x) => {
      const { selfImplicit: _, ...acks } = x.acks;
      const tracked = acks.tracked.map((t) => {
        const d = session.delivery(t.id);
        return { ...t, remaining: [...d.waiting, ...d.pending, ...d.late].sort() };
      });
      return { ...x, acks: { ...acks, tracked } };
    });
    expect(olderSubs.flatMap((x) => x.acks.tracked).filter((t) => t.remaining.includes(bob)).length).toBe(owed.length);
    sim.restartFrom('bob', { ...older, subsessions: olderSubs });
    expect(fresh(sim.member('bob').session.snapshot())).toEqual(fresh(now));
    // And Bob's ack still goes out: Alice sees her messages delivered to him.
    await sim.advance(5_000);
    const alice = sim.member('alice').session;
    for (const t of owed) expect(alice.delivery(t.id).acked).toContain(bob);
  });
});
