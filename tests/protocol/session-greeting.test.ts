/**
 * Sessions over the real membership half (src/protocol/greeting through GreetingMembership):
 * CLIQUES + ASKE greetings through the simulated relay, messages in the resulting subsessions,
 * include and exclude mid-conversation, and restarts from snapshots.
 */
import { describe, expect, it } from 'vitest';
import type { MemberId } from '../../src/protocol/ids.js';
import { OPERATION_WAIT_LIMIT_MS } from '../../src/protocol/limits.js';
import type { SessionNotice } from '../../src/protocol/session/effects.js';
import type { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;

async function group(names: string[], seed: number) {
  const sim = new SessionSim(crypto, seed, SIM_CONFIG, await greetingMembershipKind(crypto, [...names, 'dave']));
  for (const n of names) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  await sim.act(names[0]!, (s, now) => s.include(names.slice(1) as MemberId[], now));
  await sim.advance(1_000);
  return sim;
}

describe('Session over real greetings (GreetingMembership)', () => {
  it('starts a group with a CLIQUES/ASKE greeting, then chats to full acks', async () => {
    const sim = await group(['alice', 'bob', 'carol'], 1);
    for (const n of ['alice', 'bob', 'carol']) expect([...sim.member(n).session.members()].sort()).toEqual(['alice', 'bob', 'carol']);
    await sim.act('bob', (s, now) => s.send('hi from bob', now));
    await sim.advance(2_000);
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).delivered.map((d) => d.text)).toEqual(['hi from bob']);
    const id = sim.member('bob').delivered[0]!.id;
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).session.status(id)).toBe('fully-acked');
    expect(sim.warnings()).toEqual([]);
  });

  it('includes and excludes mid-conversation; old subsessions shut down consistently', async () => {
    const sim = await group(['alice', 'bob', 'carol'], 2);
    sim.addMember('dave');
    sim.join('dave');
    await sim.act('alice', (s, now) => s.send('before dave', now));
    await sim.settle();
    await sim.act('carol', (s, now) => s.include(['dave'] as MemberId[], now));
    await sim.advance(2_000);
    for (const n of ['alice', 'bob', 'carol', 'dave']) expect(sim.member(n).session.members().length).toBe(4);
    await sim.act('dave', (s, now) => s.send('hello, I am dave', now));
    await sim.advance(2_000);
    await sim.act('alice', (s, now) => s.exclude(['bob'] as MemberId[], now));
    await sim.advance(5_000);
    for (const n of ['alice', 'carol', 'dave']) expect([...sim.member(n).session.members()].sort()).toEqual(['alice', 'carol', 'dave']);
    expect(sim.channel).not.toContain('bob');
    await sim.act('carol', (s, now) => s.send('after bob', now));
    await sim.advance(5_000);
    expect(sim.member('dave').delivered.map((d) => d.text)).toEqual(['hello, I am dave', 'after bob']);
    expect(sim.member('bob').delivered.map((d) => d.text)).toEqual(['before dave', 'hello, I am dave']);
    for (const n of ['alice', 'carol', 'dave']) {
      const infos = sim.member(n).session.subsessionInfo();
      for (const info of infos.slice(0, -1)) expect(info).toMatchObject({ phase: 'closed', consistent: true });
    }
    expect(sim.warnings()).toEqual([]);
  });

  it('restarts from snapshots (membership state included) change nothing', async () => {
    const sim = await group(['alice', 'bob', 'carol'], 3);
    await sim.act('alice', (s, now) => s.send('one', now));
    await sim.settle();
    for (const n of ['alice', 'bob', 'carol']) expect(sim.restart(n)).toBe(true);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    expect(sim.restart('bob')).toBe(true);
    await sim.act('bob', (s, now) => s.include(['dave'] as MemberId[], now));
    await sim.advance(3_000);
    await sim.act('dave', (s, now) => s.send('two', now));
    await sim.advance(3_000);
    for (const n of ['alice', 'bob', 'carol', 'dave']) expect(sim.member(n).session.entries().at(-1)?.body).toEqual({ type: 'payload', text: 'two' });
    expect(sim.warnings()).toEqual([]);
  });

  it('a restart in the middle of an operation resumes it from the snapshot', async () => {
    const sim = await group(['alice', 'bob', 'carol'], 4);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
    // deliver only a few events: the include is under way (upflow) when everyone restarts
    for (let i = 0; i < 6; i++) await sim.deliverOne();
    const inFlight = ['alice', 'bob', 'carol', 'dave'].filter((n) => (sim.member(n).membership as GreetingMembership).machine.op !== null);
    expect(inFlight.length).toBeGreaterThan(0);
    for (const n of ['alice', 'bob', 'carol', 'dave']) expect(sim.restart(n)).toBe(true);
    await sim.advance(3_000);
    for (const n of ['alice', 'bob', 'carol', 'dave']) expect(sim.member(n).session.members().length).toBe(4);
    await sim.act('dave', (s, now) => s.send('made it', now));
    await sim.advance(3_000);
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).delivered.at(-1)?.text).toBe('made it');
    expect(sim.warnings()).toEqual([]);
  });

  it('issue 8 point 3: an include waiting for a sleeping newcomer is a state; retry without them goes ahead; they are added when back', async () => {
    const names = ['alice', 'bob', 'carol'];
    const sim = new SessionSim(crypto, 9, SIM_CONFIG, await greetingMembershipKind(crypto, [...names, 'dave', 'erin']));
    for (const n of names) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
    await sim.advance(1_000);
    sim.addMember('dave');
    sim.addMember('erin');
    sim.join('dave');
    // dave accepted the invitation, then his phone slept: he processes nothing, sends nothing.
    const dave = sim.member('dave');
    const stash: typeof dave.inbox = [];
    const awake = [...names, 'erin'].map((n) => sim.member(n));
    const withoutDave = async (ms: number) => {
      const end = sim.nowMs + ms;
      for (let guard = 0; guard < 10_000; guard++) {
        for (let i = 0; i < 10_000; i++) {
          stash.push(...dave.inbox.splice(0));
          if (!(await sim.deliverOne())) break;
        }
        stash.push(...dave.inbox.splice(0));
        const next = Math.min(...awake.map((m) => m.timerAtMs ?? Infinity));
        if (next > end) break;
        sim.nowMs = Math.max(sim.nowMs, next);
        for (const m of awake) {
          if (m.timerAtMs !== undefined && m.timerAtMs <= sim.nowMs) {
            m.timerAtMs = undefined;
            await sim.apply(m, await m.session.tick(sim.nowMs));
          }
        }
      }
      sim.nowMs = Math.max(sim.nowMs, end);
    };
    await withoutDave(10 * 60_000); // long enough that dave no longer shows online
    sim.join('erin'); // erin accepts hers now, and stays online
    await withoutDave(1_000);
    await sim.act('alice', (s, now) => s.include(['dave', 'erin'] as MemberId[], now));
    await withoutDave(3 * 60_000); // past the 2-minute timeout of an operation whose contributors are online
    // Waiting is a state: nothing failed, nobody warned, and the session says who it waits for.
    const waiting = sim.member('alice').session.waiting();
    expect(waiting).toMatchObject({ operation: 'include', initiator: 'alice', canAbort: true });
    expect(waiting!.awaiting).toContain('dave');
    expect(waiting!.limitAtMs - waiting!.sinceMs).toBe(OPERATION_WAIT_LIMIT_MS);
    for (const n of names) expect(sim.member(n).session.members(), n).toEqual(names);
    expect(sim.warnings()).toEqual([]);
    // The initiator gives up on dave: the include is aborted (signed) and proposed again without him.
    await sim.act('alice', (s, now) => s.retryWithoutMissing(now));
    await withoutDave(60_000);
    for (const n of [...names, 'erin']) expect([...sim.member(n).session.members()].sort(), n).toEqual(['alice', 'bob', 'carol', 'erin']);
    expect(sim.member('alice').session.waiting()).toBeNull();
    // dave wakes, catches up, and is added by an online member; nothing anyone holds is lost.
    dave.inbox.push(...stash);
    await sim.advance(5_000);
    await sim.act('bob', (s, now) => s.include(['dave'] as MemberId[], now));
    await sim.advance(5_000);
    for (const n of ['alice', 'bob', 'carol', 'dave', 'erin']) expect([...sim.member(n).session.members()].sort(), n).toEqual(['alice', 'bob', 'carol', 'dave', 'erin']);
    expect(sim.warnings()).toEqual([]);
  });

  it('says membership news typed, beside the words: started, not accepted, excluded, and a request to be included again', async () => {
    const sim = await group(['alice', 'bob', 'carol'], 11);
    const notices = (n: string): SessionNotice[] => sim.member(n).effects.flatMap((e) => (e.kind === 'notice' ? [e.notice] : []));
    const outcomes = (n: string) => notices(n).flatMap((x) => (x.kind === 'membership' && x.outcome !== undefined ? [x.outcome] : []));
    expect(outcomes('carol')).toContainEqual({ kind: 'started', operation: 'start', initiator: 'alice', members: ['alice', 'bob', 'carol'] });
    // Two refreshes from one view: the relay orders alice's first, bob's is refused as stale.
    await sim.act('alice', (s, now) => s.refresh(now));
    await sim.act('bob', (s, now) => s.refresh(now));
    await sim.advance(2_000);
    const refused = outcomes('bob').find((o) => o.kind === 'not-accepted');
    expect(refused).toMatchObject({ kind: 'not-accepted', operation: 'refresh' });
    expect(notices('bob')).toContainEqual({ kind: 'membership', text: `our refresh was not accepted: ${(refused as { reason: string }).reason}`, outcome: refused });
    // carol was away longer than the relay keeps events (rule 11): she starts over and asks to be
    // included again; the others are told who asks, typed.
    await sim.act('carol', (s, now) => s.retention(sim.seq + 2, now, ['alice', 'bob', 'carol'] as MemberId[]));
    await sim.advance(2_000);
    for (const n of ['alice', 'bob']) expect(notices(n), n).toContainEqual({ kind: 'rejoin-request', member: 'carol', startedOver: true });
    // dave is being added, and leaves the channel before his turn: the include fails, typed.
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
    sim.leaveChannel('dave' as MemberId);
    await sim.advance(2_000);
    expect(outcomes('alice')).toContainEqual({ kind: 'failed', operation: 'include', reason: 'member-left' });
    // alice excludes bob: bob reads who did it, typed.
    await sim.act('alice', (s, now) => s.exclude(['bob'] as MemberId[], now));
    await sim.advance(2_000);
    expect(outcomes('bob')).toContainEqual({ kind: 'excluded', by: 'alice' });
  });
});
