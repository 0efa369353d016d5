/**
 * Issue 9 §3 (forward secrecy and deniability, mpENC §6.1.1): a member who is out of the group
 * (excluded, left, or started over) and is included again signs there with a FRESH ephemeral
 * signing key, never with one it signed with before it was out.
 *
 * Why: a member's key of subsession k is published once k is over (src/protocol/README.md
 * "Deniability at every subsession change"), and only if k's shutdown was acked by all; a key
 * carried into a later subsession m would be published when m is over, for k too (whose own
 * shutdown may never have been acked: a member who starts over closes k without it), and it
 * links the member's subsessions before and after it was out. mpenc_js does the same: carol,
 * excluded and included again in its trace, comes back with a new key (greeting-trace.test.ts
 * data: her key of the include is not her key of the start).
 *
 * 1. The real flow the engine runs (SessionSim, GreetingMembership): carol sleeps past the
 *    relay's retention and starts over (rule 11), alice excludes her automatically (she stays in
 *    the channel, rule 11) and includes her again; 2. the membership machine alone, where an
 *    ordinary leave and a join follow each other (the session ends at a leave; the machine,
 *    which the simulators drive, goes on): carol leaves and joins again; alice excludes carol
 *    and includes her again, carol removed from the channel meanwhile or not.
 */
import { describe, expect, it } from 'vitest';
import { base64Encode, hexEncode } from '../../src/protocol/bytes.js';
import type { Subsession } from '../../src/protocol/greeting/types.js';
import type { MemberId } from '../../src/protocol/ids.js';
import type { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { publications, signingKeyOf, subsessionOf } from '../helpers/deniability.js';
import { SimGroup, type SimMember } from '../sim/channel.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const alice = 'alice' as MemberId;
const bob = 'bob' as MemberId;
const carol = 'carol' as MemberId;

/** Every key a subsession lists as `member`'s: the one its operation listed and the renewed one. */
function keysOf(sub: Subsession, member: MemberId): string[] {
  const i = sub.members.indexOf(member);
  if (i < 0) return [];
  return [...new Set([sub.ephemeralPubKeys[i]!, (sub.signingKeys ?? sub.ephemeralPubKeys)[i]!].map(hexEncode))];
}

describe("a member included again signs with a fresh key (issue 9 §3, deniability)", () => {
  it('carol starts over, is excluded and included again: her key there is none she had before, and her key of the subsession she dropped is never published', async () => {
    const names = ['alice', 'bob', 'carol'];
    const sim = new SessionSim(crypto, 5, SIM_CONFIG, await greetingMembershipKind(crypto, names));
    for (const n of names) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    const talk = async (where: string) => {
      for (const n of names) {
        await sim.act(n, (s, now) => s.send(`${n} in ${where}`, now));
        await sim.advance(2_000);
      }
    };
    await sim.act('alice', (s, now) => s.include([bob, carol], now));
    await sim.advance(2_000);
    await talk('k0');
    await sim.act('alice', (s, now) => s.refresh(now));
    await sim.advance(5_000);
    await talk('k1');
    // Carol's keys before: whatever her subsessions listed as hers (k0, k1), as alice holds them.
    const alices = () => (sim.member('alice').membership as GreetingMembership).machine;
    const before = new Set([...alices().recent, alices().current!].flatMap((sub) => keysOf(sub, carol)));
    expect(before.size).toBeGreaterThanOrEqual(2);
    const carolsK1 = signingKeyOf(subsessionOf(sim.member('bob').session.snapshot(), 'carol in k1'), carol);

    // Carol slept longer than the relay keeps events: she starts over and asks to be included
    // again (rule 11); alice excludes her automatically (she stays in the channel) ...
    await sim.act('carol', (s, now) => s.retention(sim.seq + 2, now, [alice, bob, carol]));
    await sim.advance(10_000);
    expect(alices().current!.members).toEqual([alice, bob]);
    expect(sim.channel).toContain(carol);
    // ... and includes her again.
    await sim.act('alice', (s, now) => s.include([carol], now));
    await sim.advance(10_000);
    expect(alices().current!.members).toEqual([alice, bob, carol]);
    await talk('k3');
    const k3 = subsessionOf(sim.member('bob').session.snapshot(), 'carol in k3');
    const carolsK3 = signingKeyOf(k3, carol);
    // Her key there is new: none of those listed as hers before she was out.
    expect(before.has(hexEncode(Buffer.from(carolsK3, 'base64')))).toBe(false);
    expect(carolsK3).not.toBe(carolsK1);
    // (and her data there verified under it: the others read her.)
    for (const n of ['alice', 'bob']) expect(sim.member(n).delivered.map((d) => d.text)).toContain('carol in k3');

    // Two more changes, so that k3 is over and replaced and its keys are published.
    await sim.act('alice', (s, now) => s.refresh(now));
    await sim.advance(5_000);
    await talk('k4');
    await sim.act('alice', (s, now) => s.refresh(now));
    await sim.advance(5_000);
    await talk('k5');
    const carols = publications(sim).filter((p) => p.sender === carol).map((p) => base64Encode(p.pub));
    // Her key of k3 is published (the engine does publish keys here: the check below is not vacuous) ...
    expect(carols).toContain(carolsK3);
    // ... and no key of hers from before she was out: k1 closed at her without its shutdown's
    // acks (she dropped it), so mpENC §6.1.1 publishes nothing of it; a key carried into k3
    // would have been published with k3's, on k3's acks alone.
    for (const pub of carols) expect(before.has(hexEncode(Buffer.from(pub, 'base64'))), `published ${pub}`).toBe(false);
    expect(sim.warnings()).toEqual([]);
  });

  async function machineGroup(seed: number): Promise<SimGroup> {
    const g = new SimGroup({ crypto, seed });
    for (const n of ['alice', 'bob', 'carol']) {
      await g.addMember(n);
      g.join(n);
    }
    await g.settle();
    await g.input(g.member('alice'), { kind: 'start', others: [bob, carol] });
    await g.settle();
    // A refresh: carol confirms it with a renewed key (two keys of hers are listed by now).
    await g.input(g.member('alice'), { kind: 'refresh' });
    await g.settle();
    return g;
  }

  /** Every key ever listed as carol's in a subsession `m` held (current and recent). */
  const listedForCarol = (m: SimMember): Set<string> => new Set([...m.state.recent, ...(m.state.current === null ? [] : [m.state.current])].flatMap((sub) => keysOf(sub, carol)));

  async function includeCarolAgain(g: SimGroup): Promise<void> {
    g.join('carol');
    await g.settle();
    await g.input(g.member('alice'), { kind: 'include', members: [carol] });
    await g.settle();
    for (const n of ['alice', 'bob', 'carol']) expect(g.member(n).state.current?.members).toEqual([alice, bob, carol]);
  }

  it('the membership machine: carol leaves the channel and joins again; she is included with a fresh key', async () => {
    const g = await machineGroup(7);
    const before = listedForCarol(g.member('bob'));
    expect(before.size).toBe(2);
    g.leave('carol');
    await g.settle();
    // (alice and bob exclude her: mpENC §3.3.)
    expect(g.member('alice').state.current?.members).toEqual([alice, bob]);
    expect(g.member('carol').state.current).toBeNull();
    await includeCarolAgain(g);
    const now = keysOf(g.member('bob').state.current!, carol);
    expect(now.length).toBe(1);
    expect(before.has(now[0]!)).toBe(false);
    expect(hexEncode(g.member('carol').state.ephemeral!.pub)).toBe(now[0]);
  });

  it.each([
    ['removed from the channel, joins it again', true],
    ['left in the channel (the relay never removes her)', false],
  ])('the membership machine: alice excludes carol (%s) and includes her again; her key is fresh', async (_how, removed) => {
    const g = await machineGroup(8);
    const before = listedForCarol(g.member('bob'));
    expect(before.size).toBe(2);
    // (Without the relay's removal she stays, excluded, as a member asking to be included again does, rule 11.)
    if (!removed) g.kickRequests.add = () => g.kickRequests;
    await g.input(g.member('alice'), { kind: 'exclude', members: [carol] });
    await g.settle();
    expect(g.member('carol').effects.some((e) => e.kind === 'excluded')).toBe(true);
    expect(g.member('carol').state.current).toBeNull();
    expect(g.channel.includes(carol)).toBe(!removed);
    await includeCarolAgain(g);
    const now = keysOf(g.member('bob').state.current!, carol);
    expect(now.length).toBe(1);
    expect(before.has(now[0]!)).toBe(false);
  });
});
