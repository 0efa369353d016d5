import { describe, expect, it } from 'vitest';
import { Transcript } from '../../src/protocol/transcript/transcript.js';
import { AckMonitor } from '../../src/protocol/reliability/ack-monitor.js';
import type { ReliabilityConfig } from '../../src/protocol/reliability/config.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';

const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((x) => memberId(x)) as [MemberId, MemberId, MemberId];

type Body = { kind: 'payload' | 'ack' | 'heartbeat' | 'consistency' };
const needsAck = (b: Body) => b.kind === 'payload' || b.kind === 'consistency';
const config: ReliabilityConfig = { autoAckDelayMs: 100, resendIntervalMs: 1_000, maxResends: 2, ackTimeoutMs: 5_000 };

function setup(self = alice, members = [alice, bob, carol]) {
  const t = new Transcript<Body>(members);
  const monitor = new AckMonitor<Body>(self, t, needsAck, config);
  const add = (id: string, author: string, kind: Body['kind'], nowMs: number, parents = t.frontier()) => {
    t.add({ id, author: memberId(author), parents, body: { kind } });
    return monitor.accepted(id, nowMs);
  };
  return { t, monitor, add };
}

describe('AckMonitor (mpENC §3.5)', () => {
  it('parents are implicit acks; a message is fully acked when every reader wrote after it', () => {
    const { monitor, add } = setup();
    expect(add('a1', alice, 'payload', 0)).toEqual([]);
    expect(monitor.status('a1')).toBe('waiting');
    expect(add('b1', bob, 'ack', 10)).toEqual([]);
    expect(add('c1', carol, 'ack', 20)).toEqual([{ kind: 'fully-acked', id: 'a1', late: false, needed: true }]);
    expect(monitor.status('a1')).toBe('fully-acked');
    expect(monitor.isConsistent()).toBe(true);
  });

  it('acks and heartbeats need no acks, so no ack-of-ack is ever due', () => {
    const { monitor, add } = setup();
    add('b1', bob, 'ack', 0);
    add('c1', carol, 'heartbeat', 0);
    expect(monitor.status('b1')).toBe('none');
    // still watched until everyone has them, so their packets can be resent with descendants
    expect(monitor.isWatched('c1')).toBe(true);
    expect(monitor.isConsistent()).toBe(true);
    expect(monitor.owesAck()).toBe(false);
    expect(monitor.nextDeadlineMs()).toBeUndefined();
    expect(monitor.tick(1_000_000)).toEqual([]);
  });

  it('auto-acks after a short delay, batching several messages into one ack', () => {
    const { monitor, add } = setup();
    add('b1', bob, 'payload', 0);
    add('c1', carol, 'payload', 50);
    expect(monitor.owesAck()).toBe(true);
    expect(monitor.nextDeadlineMs()).toBe(100);
    expect(monitor.tick(99)).toEqual([]);
    expect(monitor.tick(100)).toEqual([{ kind: 'send-ack' }]);
    // our explicit ack acks both at once
    add('a1', alice, 'ack', 101);
    expect(monitor.owesAck()).toBe(false);
  });

  it('a message we write meanwhile cancels the automatic ack', () => {
    const { monitor, add } = setup();
    add('b1', bob, 'payload', 0);
    add('a1', alice, 'payload', 50);
    expect(monitor.tick(100)).toEqual([]);
  });

  it('warns once, naming who wrote long after a message without acking it, and reports a late full ack', () => {
    const { monitor, add } = setup();
    add('a1', alice, 'payload', 0);
    add('b1', bob, 'ack', 10);
    // carol says nothing: she may be asleep, so no timer ever makes her late
    expect(monitor.tick(50_000).filter((a) => a.kind === 'not-fully-acked')).toEqual([]);
    // she writes, long after a1 (ackTimeoutMs), still without it: she is online and late
    expect(add('c1', carol, 'heartbeat', 6_000, [])).toEqual([
      { kind: 'not-fully-acked', id: 'a1', missing: [carol] },
      { kind: 'resend', id: 'a1', to: [carol] }, // rule 8: she evidently lost it
    ]);
    expect(monitor.status('a1')).toBe('late');
    expect(add('c2', carol, 'heartbeat', 7_000, ['c1']).filter((a) => a.kind === 'not-fully-acked')).toEqual([]);
    // b1 (bob's ack) still waits for us: acks are watched, never owed
    expect(add('c3', carol, 'ack', 7_500, ['c2', 'a1'])).toEqual([{ kind: 'fully-acked', id: 'a1', late: true, needed: true }]);
    expect(monitor.isWatched('b1')).toBe(true);
    expect(monitor.owesAck()).toBe(false);
  });

  it('with relay orders, a message of ours the relay has not handed back is never overdue: written offline, it is after what the others wrote meanwhile', () => {
    const t = new Transcript<Body>([alice, bob]);
    const monitor = new AckMonitor<Body>(alice, t, needsAck, config);
    // Alice writes a1 offline at 0; Bob chats on; she reconnects at 20,000 and reads his
    // messages (relay orders 1, 2) before the relay hands a1 back (order 3): he never saw it.
    t.add({ id: 'a1', author: alice, parents: [], body: { kind: 'payload' } });
    monitor.accepted('a1', 0);
    t.add({ id: 'b1', author: bob, parents: [], body: { kind: 'payload' } });
    expect(monitor.accepted('b1', 20_000, 1, 6_000).filter((x) => x.kind === 'not-fully-acked')).toEqual([]);
    t.add({ id: 'b2', author: bob, parents: ['b1'], body: { kind: 'payload' } });
    expect(monitor.accepted('b2', 20_000, 2, 15_000).filter((x) => x.kind === 'not-fully-acked')).toEqual([]);
    expect(monitor.status('a1')).not.toBe('late');
    // Handed back at relay time 20,000: from then on the timer runs from there.
    monitor.ordered('a1', 3, 20_000);
    t.add({ id: 'b3', author: bob, parents: ['b2'], body: { kind: 'heartbeat' } });
    expect(monitor.accepted('b3', 21_000, 4, 21_000).filter((x) => x.kind === 'not-fully-acked')).toEqual([]);
    t.add({ id: 'b4', author: bob, parents: ['b3'], body: { kind: 'heartbeat' } });
    expect(monitor.accepted('b4', 25_000, 5, 25_000).filter((x) => x.kind === 'not-fully-acked')).toEqual([{ kind: 'not-fully-acked', id: 'a1', missing: [bob] }]);
    expect(monitor.status('a1')).toBe('late');
  });

  it("resends unacked messages, others' too, a bounded number of times", () => {
    const { monitor, add } = setup();
    add('b1', bob, 'payload', 0);
    add('a1', alice, 'ack', 10); // we acked; carol has not
    expect(monitor.tick(999)).toEqual([]);
    expect(monitor.tick(1_000)).toEqual([{ kind: 'resend', id: 'b1', to: [carol] }]);
    expect(monitor.tick(1_500)).toEqual([]);
    expect(monitor.tick(2_000)).toEqual([{ kind: 'resend', id: 'b1', to: [carol] }]);
    expect(monitor.tick(3_000)).toEqual([]); // maxResends reached
    expect(monitor.tick(50_000)).toEqual([]); // and no warning: carol said nothing since
  });

  it('does not resend when we are the only reader missing (our auto-ack fixes that)', () => {
    const { monitor, add } = setup();
    add('b1', bob, 'payload', 0);
    add('c1', carol, 'ack', 1);
    expect(monitor.tick(1_000)).toEqual([{ kind: 'send-ack' }]);
  });

  it('a duplicate of a message we acked makes us resend our latest message, rate-limited', () => {
    const { monitor, add } = setup();
    add('b1', bob, 'payload', 0);
    add('a1', alice, 'ack', 10);
    expect(monitor.duplicate('b1', carol, 20)).toEqual([{ kind: 'resend', id: 'a1', to: [carol] }]);
    expect(monitor.duplicate('b1', carol, 500)).toEqual([]);
    expect(monitor.duplicate('b1', alice, 2_000)).toEqual([]); // our own echo
    expect(monitor.duplicate('b1', carol, 1_020)).toEqual([{ kind: 'resend', id: 'a1', to: [carol] }]);
    // not acked by us yet: nothing to resend (the auto-ack is due anyway)
    add('c1', carol, 'payload', 30);
    expect(monitor.duplicate('c1', bob, 2_000)).toEqual([]);
    // our own message coming back: not our ack that is missing
    expect(monitor.duplicate('a1', bob, 5_000)).toEqual([]);
  });

  it('a message in a solo subsession is fully acked at once', () => {
    const { monitor, add } = setup(alice, [alice]);
    add('a1', alice, 'payload', 0);
    expect(monitor.status('a1')).toBe('fully-acked');
  });

  it('snapshot and restore keep every pending obligation', () => {
    const { t, monitor, add } = setup();
    add('a1', alice, 'payload', 0);
    add('b1', bob, 'payload', 10);
    monitor.tick(1_000);
    const snap = JSON.parse(JSON.stringify(monitor.snapshot()));
    const restored = AckMonitor.restore<Body>(snap, alice, t, needsAck, config);
    expect(restored.snapshot()).toEqual(monitor.snapshot());
    for (const m of [monitor, restored]) {
      expect(m.nextDeadlineMs()).toBe(monitor.nextDeadlineMs());
    }
    t.add({ id: 'c1', author: carol, parents: t.frontier(), body: { kind: 'ack' } });
    expect(restored.accepted('c1', 2_000)).toEqual(monitor.accepted('c1', 2_000));
    expect(restored.tick(10_000)).toEqual(monitor.tick(10_000));
  });

  it('stays fast for a 10,000-message catch-up from 5 authors', () => {
    const members = ['me', 'a', 'b', 'c', 'd', 'e'].map((x) => memberId(x));
    const { monitor, add } = setup(members[0], members);
    for (let i = 0; i < 10_000; i++) add(`m${i}`, members[1 + (i % 5)]!, 'payload', i);
    expect(monitor.owesAck()).toBe(true);
    add('mine', 'me', 'ack', 10_000);
    expect(monitor.owesAck()).toBe(false);
    // everything but the last few messages of each author is fully acked by now
    expect(monitor.outstanding().length).toBeLessThan(10);
  });
});

describe('AckMonitor.forget (mpENC §3.3: members who leave the channel)', () => {
  it('stops expecting acks from a member who left, completing what only they held up', () => {
    const { monitor, add } = setup();
    add('a1', 'alice', 'payload', 0);
    add('b1', 'bob', 'ack', 10);
    expect(monitor.missing('a1')).toEqual(['carol']);
    expect(monitor.forget(carol)).toEqual([{ kind: 'fully-acked', id: 'a1', late: false, needed: true }]);
    expect(monitor.isConsistent()).toBe(true);
    expect(monitor.tick(100_000)).toEqual([]);
  });
});

describe('AckMonitor recovery of lost flow-control messages', () => {
  it('rule 8: a reader who writes without acking our old message gets it resent', () => {
    const { t, add } = setup();
    add('a1', 'alice', 'heartbeat', 0);
    // bob writes without a1 (he lost it) soon after: too early to tell
    expect(add('b1', 'bob', 'heartbeat', 500, [])).toEqual([]);
    // bob writes again, still without a1, long after: he lost it
    expect(add('b2', 'bob', 'heartbeat', 1_500, ['b1'])).toEqual([{ kind: 'resend', id: 'a1', to: [bob] }]);
    // rate-limited per reader
    expect(add('b3', 'bob', 'heartbeat', 1_600, ['b2'])).toEqual([]);
    // once bob acks a1, nothing more
    add('b4', 'bob', 'heartbeat', 3_000, ['b3', 'a1']);
    expect(t.ackedBy('a1', bob)).toBe(true);
  });

  it('rule 6 is skipped when the sender already has our latest message', () => {
    const { monitor, add } = setup();
    add('b1', 'bob', 'payload', 0);
    add('a1', 'alice', 'ack', 10);
    add('c1', 'carol', 'ack', 20); // carol has a1
    expect(monitor.duplicate('b1', carol, 30)).toEqual([]);
    expect(monitor.duplicate('b1', bob, 30)).toEqual([{ kind: 'resend', id: 'a1', to: [bob] }]);
  });
});

describe('AckMonitor for phones that sleep (async-groups rule 14)', () => {
  /** A transcript where each message carries its relay order; `online` says who is shown online. */
  function ordered(online: Set<MemberId>, self = alice, members = [alice, bob, carol]) {
    const t = new Transcript<Body>(members);
    const monitor = new AckMonitor<Body>(self, t, needsAck, config, (m) => online.has(m));
    let seq = 0;
    const add = (id: string, author: string, kind: Body['kind'], nowMs: number, parents = t.frontier()) => {
      t.add({ id, author: memberId(author), parents, body: { kind } });
      return monitor.accepted(id, nowMs, ++seq);
    };
    return { t, monitor, add };
  }

  it('a reader silent since a message is pending: no warning, no resend, whatever the time', () => {
    const online = new Set([alice, carol]);
    const { monitor, add } = ordered(online);
    add('a1', 'alice', 'payload', 0);
    add('c1', 'carol', 'ack', 10);
    expect(monitor.status('a1')).toBe('pending'); // only bob is missing, and bob sleeps
    expect(monitor.delivery('a1')).toEqual({ readers: [bob, carol], acked: [carol], waiting: [], pending: [bob], late: [], gone: [] });
    expect(monitor.tick(1_000_000)).toEqual([]);
    expect(monitor.status('a1')).toBe('pending');
  });

  it('resends go only to the readers shown online; the others are pending', () => {
    const online = new Set([alice, bob]); // carol's phone sleeps; bob is online but does not ack
    const { monitor, add } = ordered(online);
    add('a1', 'alice', 'payload', 0);
    expect(monitor.status('a1')).toBe('waiting');
    expect(monitor.tick(1_000)).toEqual([{ kind: 'resend', id: 'a1', to: [bob] }]);
    expect(monitor.tick(2_000)).toEqual([{ kind: 'resend', id: 'a1', to: [bob] }]);
    expect(monitor.tick(3_000)).toEqual([]); // maxResends
    online.delete(bob);
    expect(monitor.status('a1')).toBe('pending');
    expect(monitor.delivery('a1').pending).toEqual([bob, carol]);
  });

  it('a reader who writes past a message without acking it is late at once, with no timer', () => {
    const dave = memberId('dave');
    const { monitor, add } = ordered(new Set(), alice, [alice, bob, carol, dave]); // nobody online: no timer fires
    add('a1', 'alice', 'payload', 0);
    add('d1', 'dave', 'payload', 10, []); // dave had not seen a1: pending, not late
    expect(monitor.missing('a1')).toEqual([bob, carol, dave]);
    expect(monitor.status('a1')).toBe('pending');
    // bob writes after d1, which the relay ordered after a1, but without a1: he skipped it
    expect(add('b1', 'bob', 'ack', 20, ['d1'])).toEqual([{ kind: 'not-fully-acked', id: 'a1', missing: [bob] }]);
    expect(monitor.status('a1')).toBe('late');
    expect(monitor.delivery('a1')).toMatchObject({ late: [bob], pending: [carol, dave] });
  });

  it("the author's own earlier message does not count as seen later (the relay orders it after what it had not shown)", () => {
    const online = new Set<MemberId>([alice, bob, carol]);
    const { t, monitor } = ordered(online, alice);
    // relay order: a1 (seq 1), b1 (seq 2, bob had not seen a1), b2 (seq 3, child of b1)
    t.add({ id: 'a1', author: alice, parents: [], body: { kind: 'payload' } });
    monitor.accepted('a1', 0, 1);
    t.add({ id: 'b1', author: bob, parents: [], body: { kind: 'payload' } });
    expect(monitor.accepted('b1', 1, 2)).toEqual([]);
    t.add({ id: 'b2', author: bob, parents: ['b1'], body: { kind: 'payload' } });
    expect(monitor.accepted('b2', 2, 3)).toEqual([]);
    expect(monitor.status('a1')).toBe('waiting');
  });

  it("a member's last word acks what it names; then it is no longer awaited", () => {
    const { monitor, add } = ordered(new Set());
    add('a1', 'alice', 'payload', 0);
    add('a2', 'alice', 'payload', 1);
    add('c1', 'carol', 'payload', 2, ['a2']);
    add('a3', 'alice', 'payload', 3);
    // bob moves on having seen c1: his last word names it, which acks a1, a2 and c1; a3 came
    // after his last word: not his fault, but the subsession did not end fully acked by him
    expect(monitor.lastWord(bob, ['c1']).filter((a) => a.kind === 'not-fully-acked')).toEqual([]);
    expect(monitor.delivery('a2').acked).toContain(bob);
    expect(monitor.delivery('a3').gone).toEqual([bob]);
    expect(monitor.hasDeparted(bob)).toBe(true);
    expect(monitor.endedConsistent()).toBe(false);
  });

  it('a last word that names a later message but not an earlier one is late at once', () => {
    const dave = memberId('dave');
    const { monitor, add } = ordered(new Set(), alice, [alice, bob, carol, dave]);
    add('a1', 'alice', 'payload', 0);
    add('c1', 'carol', 'payload', 1, []); // ordered after a1, without it
    expect(monitor.lastWord(dave, ['c1']).filter((a) => a.kind === 'not-fully-acked')).toEqual([{ kind: 'not-fully-acked', id: 'a1', missing: [dave] }]);
    expect(monitor.endedConsistent()).toBe(false);
  });
});
