/**
 * An initial packet whose parent the receiver never accepted (src/protocol/README.md "A parent we
 * never saw"; async-groups rules 2, 5, 10, 11). A newcomer's chain starts at the include that
 * added it, so a race lost before its time names a parent it cannot know: refused quietly, like
 * any lost race, never called "altered" (asleep seeds 3016, 3349, 4561, 7767). A relay that shows
 * members different orders is still caught: by the newcomer when the proposal holds its slot, by
 * a member whose chain starts at the group's start always. And a newcomer whose include the order
 * refused drops everything it built on it once the initiator declares it void (seed 8486).
 */
import { describe, expect, it } from 'vitest';
import { GreetFlag } from '../../src/protocol/codec/constants.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { MembershipEffect, MembershipInput } from '../../src/protocol/greeting/types.js';
import { chainHash, packetId, type MemberId } from '../../src/protocol/ids.js';
import { providers } from '../helpers/providers.js';
import type { SimGroup, SimMember } from '../sim/channel.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

const crypto = providers[0]!;
const ids = (names: readonly string[]) => names as MemberId[];

function isInitial(text: string): boolean {
  try {
    const p = decodePacket(text);
    return p.kind === 'greeting' && (p.greetType & GreetFlag.INIT) !== 0;
  } catch {
    return false;
  }
}

const warningsOf = (m: SimMember): MembershipEffect[] => m.effects.filter((e) => e.kind === 'warning');

/**
 * m00..m03, and m04 in the channel; m01 sleeps through a refresh and the include of m04, then
 * (not caught up yet) proposes `stale` from its old view: a race it lost two operations back,
 * before the newcomer's chain starts.
 */
async function staleProposalAfterNewcomer(seed: number, stale: MembershipInput): Promise<SimGroup> {
  const g = await makeGroup(crypto, 4, seed);
  await g.addMember('m04');
  g.join('m04');
  await g.settle();
  const sleeper = g.member('m01');
  sleeper.paused = true;
  await g.input(g.member('m00'), { kind: 'refresh' });
  await g.settle();
  await g.input(g.member('m02'), { kind: 'include', members: ids(['m04']) });
  await g.settle();
  expect(g.member('m04').state.current?.members).toContain('m04');
  await g.input(sleeper, stale);
  await g.settle(); // the newcomer sees the stale proposal; the sleeper still sleeps
  sleeper.paused = false;
  await g.settle();
  return g;
}

describe('a parent we never saw (README; async-groups rules 2, 5, 11)', () => {
  const cases: readonly [string, MembershipInput][] = [
    ['refresh', { kind: 'refresh' }],
    ['exclude', { kind: 'exclude', members: ids(['m03']) }],
    ['include of the newcomer again', { kind: 'include', members: ids(['m04']) }],
  ];
  for (const [name, stale] of cases) {
    it(`a ${name} that lost the race before a newcomer joined is refused quietly, for everyone`, async () => {
      const g = await staleProposalAfterNewcomer(91, stale);
      const newcomer = g.member('m04');
      // Before: "bad-packet: ... a refresh keeps every member / nonces altered / existing members altered".
      expect(warningsOf(newcomer)).toEqual([]);
      expect(g.warnings()).toEqual([]);
      const rejected = g.member('m01').effects.filter((e) => e.kind === 'proposal-rejected');
      expect(rejected).toHaveLength(1);
      expectAgreement(g, g.honestMembers());
      expect(newcomer.state.current!.members).toHaveLength(5);
    });
  }

  it('the same race, its packet altered on the way: the newcomer still says so (rule 2)', async () => {
    const g = await makeGroup(crypto, 4, 92);
    await g.addMember('m04');
    g.join('m04');
    await g.settle();
    const sleeper = g.member('m01');
    sleeper.paused = true;
    await g.input(g.member('m00'), { kind: 'refresh' });
    await g.settle();
    await g.input(g.member('m02'), { kind: 'include', members: ids(['m04']) });
    await g.settle();
    // The relay flips a bit in the stale refresh's signature.
    g.transformOutgoing = (sender, text) => {
      if (sender !== 'm01' || !isInitial(text)) return undefined;
      const p = decodePacket(text);
      if (p.kind !== 'greeting') return undefined;
      const i = text.length - 8;
      return text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
    };
    await g.input(sleeper, { kind: 'refresh' });
    await g.settle();
    const codes = warningsOf(g.member('m04')).map((e) => (e as { code: string }).code);
    expect(codes.length).toBeGreaterThan(0);
    expect(codes.every((c) => c === 'bad-signature' || c === 'bad-packet')).toBe(true);
  });

  /** The victim's warnings before m02's proposal (at most what the others said before). */
  let warnedBefore = 0;

  /**
   * m00..m03 (m03 a newcomer when `newcomer`). The relay showed m02 an operation nobody else saw
   * (it numbered each member's log on its own, so no seq gap shows): m02's chain goes on from a
   * packet the others never got. Then m02 proposes `next`.
   */
  async function forkedProposer(seed: number, newcomer: boolean, next: MembershipInput, victim: string): Promise<SimGroup> {
    const g = await makeGroup(crypto, newcomer ? 3 : 4, seed);
    if (newcomer) {
      await g.addMember('m03');
      g.join('m03');
      await g.settle();
      await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
      await g.settle();
    }
    const forked = g.member('m02');
    const unseen = { packetId: packetId(g.rng.bytes(32)), chainHash: chainHash(g.rng.bytes(32)) };
    forked.state = { ...forked.state, order: { ...forked.state.order, chain: [...forked.state.order.chain, unseen] } };
    warnedBefore = warningsOf(g.member(victim)).length;
    await g.input(forked, next);
    g.flushOutbox();
    // The victim alone sees the proposal: it must tell at once, not only from what others do next.
    while (await g.deliverOne(g.member(victim)));
    return g;
  }

  it("a member who builds on a history a newcomer never saw, in a proposal that holds the newcomer's slot, still alarms it", async () => {
    const g = await forkedProposer(93, true, { kind: 'refresh' }, 'm03');
    expect(warningsOf(g.member('m03')).length).toBeGreaterThan(warnedBefore);
  });

  it('a member of the group since its start is alarmed by a history it never saw, even in a proposal that excludes it', async () => {
    const g = await forkedProposer(94, false, { kind: 'exclude', members: ids(['m03']) }, 'm03');
    expect(warningsOf(g.member('m03')).length).toBeGreaterThan(warnedBefore);
  });

  it('a newcomer whose include the order refused drops what it built on it when the initiator declares it void (seed 8486)', async () => {
    const g = await makeGroup(crypto, 3, 95);
    const newcomer = await g.addMember('m03');
    g.join('m03');
    await g.settle();
    // m01's exclude is ordered first; m00's include of m03, made from the older view, loses.
    await g.input(g.member('m01'), { kind: 'exclude', members: ids(['m02']) });
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    g.flushOutbox();
    // The newcomer alone runs ahead: it cannot tell, contributes, and holds the include's
    // subsession (provisional: nobody who did not contribute has confirmed it)...
    for (let i = 0; i < 20 && newcomer.state.current === null; i++) {
      g.flushOutbox();
      await g.deliverOne(newcomer);
    }
    expect(newcomer.state.current?.members).toEqual(['m00', 'm01', 'm02', 'm03']);
    // ...and builds on it before anyone else has processed anything: its user refreshes.
    await g.input(newcomer, { kind: 'refresh' });
    g.flushOutbox();
    while (await g.deliverOne(newcomer));
    expect(newcomer.state.current?.kind).toBe('refresh');
    // The others catch up: the include was refused, and m00 declares it void (ABORT_DOWN, REFUSED).
    await g.settle();
    expect(newcomer.effects).toContainEqual({ kind: 'start-over', reason: 'superseded' });
    expect(newcomer.state.current).toBeNull();
    expect(g.warnings()).toEqual([]);
    // Included again from the group's real view: everyone agrees.
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    await g.settle();
    expectAgreement(g, [g.member('m00'), g.member('m01'), newcomer]);
    expect(g.warnings()).toEqual([]);
  });

  /**
   * m00..m03, and m04 in the channel. m01 proposes an include of m04 (`late`) from the head P,
   * but the relay orders it only later; meanwhile m02's refresh R (parent P) is ordered, and
   * m00 includes m04 on R (`ours`). m04 holds `ours` (provisional: nobody who did not contribute
   * has confirmed it yet) when `late` arrives: its parent P is not in m04's chain, which starts
   * at R. `late` lost the race to R, which m04 saw ordered; it must not take it for a refusal of
   * its own include (asleep seed 786: it gave way, contributed to `late`, and every member warned
   * "m04 accepted an operation we refused").
   */
  async function staleIncludeAfterOurs(seed: number, ourParent: 'refresh' | 'include'): Promise<SimGroup> {
    const g = await makeGroup(crypto, 4, seed);
    const newcomer = await g.addMember('m04');
    g.join('m04');
    if (ourParent === 'include') await g.addMember('m05');
    if (ourParent === 'include') g.join('m05');
    await g.settle();
    const m01 = g.member('m01');
    await g.input(m01, { kind: 'include', members: ids(['m04']) });
    const [late] = g.outbox.splice(0, g.outbox.length);
    m01.paused = true; // it sees nothing more until its include is ordered
    if (ourParent === 'refresh') await g.input(g.member('m02'), { kind: 'refresh' });
    else await g.input(g.member('m02'), { kind: 'include', members: ids(['m05']) });
    // Everyone but m01 processes the winner of P (with m05 contributing to the include).
    await g.settle();
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m04']) });
    g.flushOutbox();
    for (let i = 0; i < 20 && newcomer.state.current === null; i++) {
      g.flushOutbox();
      await g.deliverOne(newcomer);
    }
    expect(newcomer.state.current?.members).toContain('m04');
    g.flushOutbox();
    g.post(late![0], late![1]);
    while (await g.deliverOne(newcomer));
    m01.paused = false;
    await g.settle();
    return g;
  }

  for (const winner of ['refresh', 'include'] as const) {
    it(`a newcomer keeps its include when a concurrent include of it, built before the ${winner} its own builds on, comes later (seed 786)`, async () => {
      const g = await staleIncludeAfterOurs(96, winner);
      const newcomer = g.member('m04');
      // Before: "inconsistent-order (m04): m04 accepted an operation we refused", from every member.
      expect(g.warnings()).toEqual([]);
      expect(newcomer.effects.filter((e) => e.kind === 'start-over')).toEqual([]);
      expect(g.member('m01').effects.some((e) => e.kind === 'proposal-rejected')).toBe(true);
      expectAgreement(g, g.honestMembers());
    });
  }

  it('a newcomer still gives way to an include built on a head after its own include\'s parent (the order refused its include)', async () => {
    const g = await makeGroup(crypto, 4, 97);
    const newcomer = await g.addMember('m04');
    g.join('m04');
    await g.settle();
    // m01 sleeps through m02's refresh and then, from its old view, includes m04: refused by the order.
    const m01 = g.member('m01');
    m01.paused = true;
    await g.input(g.member('m02'), { kind: 'refresh' });
    await g.settle();
    m01.paused = false;
    await g.input(m01, { kind: 'include', members: ids(['m04']) });
    m01.paused = true;
    g.flushOutbox();
    for (let i = 0; i < 20 && newcomer.state.current === null; i++) {
      g.flushOutbox();
      await g.deliverOne(newcomer);
    }
    expect(newcomer.state.current?.initiator).toBe('m01');
    // The others, up to date, refuse it and include m04 from the real head before m01 wakes.
    await g.settle();
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m04']) });
    await g.settle();
    expect(newcomer.effects).toContainEqual({ kind: 'start-over', reason: 'superseded' });
    m01.paused = false;
    await g.settle();
    expect(g.warnings()).toEqual([]);
    expectAgreement(g, g.honestMembers());
  });
});
