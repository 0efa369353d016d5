/**
 * Issue 9 §2, snapshot generations: restoring an older snapshot must not fork the member's own
 * line. After any restore the session authors nothing until it has caught up with the channel
 * head (its own latest packets included); then what it sends descends from everything it sent.
 */
import { describe, expect, it } from 'vitest';
import type { MemberId } from '../../src/protocol/ids.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import type { SessionSim } from '../sim/session-harness.js';
import { chat3 } from '../helpers/three-members.js';


const texts = (sim: SessionSim, name: string) => sim.member(name).session.entries().map((e) => (e.body.type === 'payload' ? e.body.text : ''));

describe('restore of an older snapshot (issue 9 §2: snapshot generations)', () => {
  it('refuses to author until caught up with the head, then sends on its own line (no fork)', async () => {
    const sim = await chat3(41);
    await sim.act('alice', (s, now) => s.send('one', now));
    await sim.advance(2_000);
    const alice = sim.member('alice');
    const old = JSON.parse(JSON.stringify(alice.session.snapshot())) as SessionSnapshot;
    const oldSeq = alice.session.processedSeq()!;
    await sim.act('alice', (s, now) => s.send('two', now));
    await sim.act('alice', (s, now) => s.send('three', now));
    await sim.advance(2_000);
    expect(alice.session.generation()).toBeGreaterThan(old.generation!);

    // The app loses its newest state and starts from the older snapshot.
    sim.restartFrom('alice', old);
    expect(alice.session.generation()).toBe(old.generation);
    expect(alice.session.catchingUp()).toBe(true);
    await expect(alice.session.send('forked?', sim.nowMs)).rejects.toMatchObject({ code: 'stale-snapshot' });
    await expect(alice.session.ack(sim.nowMs)).rejects.toMatchObject({ code: 'stale-snapshot' });
    await expect(alice.session.refresh(sim.nowMs)).rejects.toMatchObject({ code: 'stale-snapshot' });
    // Nothing is authored by itself either (no ack, heartbeat or confirmation) while behind.
    const quiet = await alice.session.tick(sim.nowMs + 60_000);
    expect(quiet.filter((e) => e.kind === 'send')).toEqual([]);

    // It subscribes again: the relay's head, then the backlog (its own 'two' and 'three' included).
    const head = sim.posted.at(-1)!.seq;
    await sim.apply(alice, await alice.session.catchUp(head, sim.nowMs));
    await expect(alice.session.send('still behind', sim.nowMs)).rejects.toMatchObject({ code: 'stale-snapshot' });
    await sim.apply(alice, await alice.session.receiveAll(sim.posted.filter((p) => p.seq > oldSeq), sim.nowMs));
    expect(alice.session.catchingUp()).toBe(false);
    expect(texts(sim, 'alice')).toEqual(['one', 'two', 'three']);

    alice.restored = false;
    await sim.act('alice', (s, now) => s.send('four', now));
    await sim.advance(5_000);
    for (const n of ['alice', 'bob', 'carol']) expect(texts(sim, n)).toEqual(['one', 'two', 'three', 'four']);
    // 'four' descends from alice's own latest message: her line is one line.
    const log = sim.member('bob').session.messages();
    const four = log.order()[3]!;
    const three = log.order()[2]!;
    expect(log.ancestors(four).has(three)).toBe(true);
    expect(sim.warnings()).toEqual([]);
    const id = alice.delivered.find((d) => d.text === 'four')!.id;
    expect(alice.session.status(id)).toBe('fully-acked');
  });

  it('a restore of the newest snapshot is caught up by catchUp at the head it processed', async () => {
    const sim = await chat3(42);
    await sim.act('bob', (s, now) => s.send('hi', now));
    await sim.advance(2_000);
    expect(sim.restart('bob')).toBe(true);
    const bob = sim.member('bob');
    await expect(bob.session.send('too early', sim.nowMs)).rejects.toMatchObject({ code: 'stale-snapshot' });
    await sim.act('bob', (s, now) => s.send('after catch-up', now));
    await sim.advance(2_000);
    for (const n of ['alice', 'bob', 'carol']) expect(texts(sim, n)).toEqual(['hi', 'after catch-up']);
    expect(sim.warnings()).toEqual([]);
  });
});

describe('members who left count for consistency (issue 9 §2)', () => {
  async function leaverScenario(seed: number, carolAcks: boolean) {
    const sim = await chat3(seed);
    if (!carolAcks) sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('before carol left', now));
    await sim.advance(5_000);
    sim.faults.loss.clear();
    sim.leaveChannel('carol' as MemberId);
    await sim.settle();
    const alice = sim.member('alice');
    const id = alice.delivered[0]!.id;
    const delivery = alice.session.delivery(id);
    await sim.act('alice', (s, now) => s.exclude(['carol'] as MemberId[], now));
    await sim.advance(10_000);
    const first = alice.session.subsessionInfo()[0]!;
    return { sim, delivery, first };
  }

  it('a member who left without acking what it was shown: its ack will never come, and the subsession did not end consistent', async () => {
    const { delivery, first, sim } = await leaverScenario(51, false);
    expect(delivery.gone).toEqual(['carol']);
    expect(delivery.acked).toEqual(['bob']);
    expect(first).toMatchObject({ phase: 'closed', consistent: false });
    expect(sim.member('bob').session.subsessionInfo()[0]).toMatchObject({ phase: 'closed', consistent: false });
  });

  it('a member who acked everything before it left changes nothing', async () => {
    const { delivery, first } = await leaverScenario(52, true);
    expect(delivery.gone).toEqual([]);
    expect(first).toMatchObject({ phase: 'closed', consistent: true });
  });
});
