/**
 * Issue 8 "What must hold" 1 (async-groups rules 1 and 5): only the members who must contribute
 * act. With CLIQUES AKA, the existing members of an include, and everyone but the initiator of
 * an exclude or refresh, contribute nothing: operations complete while they sleep, and each
 * computes every new key from the downflows when it wakes, after several operations in a row.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { INCLUDE_GATHER_MS, OPERATION_TIMEOUT_MS } from '../../src/protocol/limits.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { providers } from '../helpers/providers.js';
import type { SimMember } from '../sim/channel.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

const crypto = providers[0]!;
const ids = (names: readonly string[]) => names as MemberId[];

/** `awake` hold one finished subsession of `expected` members (no operation running). */
function finishedAmong(awake: readonly SimMember[], expected: readonly string[]): void {
  const first = awake[0]!.state.current!;
  for (const m of awake) {
    const cur = m.state.current!;
    expect(m.state.op, `${m.id} still in an operation`).toBeNull();
    expect([...cur.members].sort(), m.id).toEqual([...expected].sort());
    expect(bytesEqual(cur.sid, first.sid) && bytesEqual(cur.groupKey!, first.groupKey!) && bytesEqual(cur.chainHash, first.chainHash), m.id).toBe(true);
  }
}

describe('operations while members sleep (issue 8, point 1)', () => {
  it('include, exclude and refresh complete with the sleepers contributing nothing; woken, they derive every key', async () => {
    const g = await makeGroup(crypto, 5, 81);
    await g.addMember('m05');
    g.join('m05');
    await g.settle();
    const sleepers = ['m02', 'm03'].map((n) => g.member(n));
    const before = new Map(sleepers.map((m) => [m.id, m.state.current!.groupKey!]));
    for (const m of sleepers) m.paused = true; // phones off: in the channel, processing nothing

    // Include: the initiator and the newcomer act; the sleeping members are not waited for.
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m05']) });
    await g.settle();
    finishedAmong(['m00', 'm01', 'm04', 'm05'].map((n) => g.member(n)), ['m00', 'm01', 'm02', 'm03', 'm04', 'm05']);
    const afterInclude = g.member('m00').state.current!.groupKey!;

    // Exclude: the initiator alone.
    await g.input(g.member('m01'), { kind: 'exclude', members: ids(['m04']) });
    await g.settle();
    finishedAmong(['m00', 'm01', 'm05'].map((n) => g.member(n)), ['m00', 'm01', 'm02', 'm03', 'm05']);

    // Refresh: the initiator alone.
    await g.input(g.member('m05'), { kind: 'refresh' });
    await g.settle();
    finishedAmong(['m00', 'm01', 'm05'].map((n) => g.member(n)), ['m00', 'm01', 'm02', 'm03', 'm05']);
    const final = g.member('m00').state.current!.groupKey!;
    expect(bytesEqual(final, afterInclude)).toBe(false);

    // The sleepers did nothing meanwhile: still on the old key.
    for (const m of sleepers) expect(bytesEqual(m.state.current!.groupKey!, before.get(m.id)!), m.id).toBe(true);

    // They wake: three operations in a row, in order, from their stored contributions.
    for (const m of sleepers) m.paused = false;
    await g.settle();
    const members = ['m00', 'm01', 'm02', 'm03', 'm05'].map((n) => g.member(n));
    expectAgreement(g, members);
    for (const m of sleepers) expect(bytesEqual(m.state.current!.groupKey!, final), m.id).toBe(true);
    // Their late confirmations (rule 5) reach everyone.
    for (const m of members) expect([...m.state.current!.confirmed].sort(), m.id).toEqual(['m00', 'm01', 'm02', 'm03', 'm05']);
    expect(g.warnings()).toEqual([]);
  });

  it('point 5: a proposal made from a stale view is refused by ServerOrder, says so, and is never retried', async () => {
    const g = await makeGroup(crypto, 4, 82);
    const stale = g.member('m01');
    stale.paused = true; // asleep: it will not see m00's refresh before it proposes
    await g.input(g.member('m00'), { kind: 'refresh' });
    await g.settle();
    const packetsBefore = g.log.filter((e) => e.event.kind === 'packet' && e.event.sender === 'm01').length;
    // It wakes and, before processing anything, its user excludes m02 (a view two keys old).
    const fx = await g.input(stale, { kind: 'exclude', members: ids(['m02']) });
    expect(fx.some((e) => e.kind === 'send')).toBe(true);
    stale.paused = false;
    await g.settle();
    const rejections = stale.effects.filter((e) => e.kind === 'proposal-rejected');
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ operation: 'exclude' });
    expect((rejections[0] as { reason: string }).reason).toMatch(/nothing was retried/);
    // Hours pass: nothing is proposed again on its own (mpENC §6.1.1 footnote).
    await g.advance(10 * OPERATION_TIMEOUT_MS);
    await g.settle();
    const sent = g.log.filter((e) => e.event.kind === 'packet' && e.event.sender === 'm01').length - packetsBefore;
    // Its refused proposal, and its confirmation of m00's refresh (rule 5): nothing else.
    expect(sent).toBe(2);
    expectAgreement(g, g.honestMembers());
    expect(g.member('m00').state.current!.members).toContain('m02');
    expect(g.warnings()).toEqual([]);
  });

  it('point 1 (rule 10): newcomers who join close together are included together, by the inviter, while others sleep', async () => {
    const g = await makeGroup(crypto, 3, 83);
    for (const m of g.honestMembers()) m.state = { ...m.state, autoInclude: true };
    g.member('m02').paused = true; // asleep: proposes nothing, is not waited for
    const inviter = g.member('m01');
    await g.input(inviter, { kind: 'invited', untilMs: g.nowMs + 24 * 3_600_000 });
    const marks = new Map(g.honestMembers().map((m) => [m.id, m.effects.length]));
    for (const n of ['m03', 'm04']) {
      const m = await g.addMember(n);
      m.state = { ...m.state, autoInclude: true };
    }
    g.join('m03');
    await g.settle();
    await g.advance(INCLUDE_GATHER_MS / 4); // the second accepts the invitation a moment later
    g.join('m04');
    await g.settle();
    await g.advance(INCLUDE_GATHER_MS);
    await g.settle();
    await g.advance(INCLUDE_GATHER_MS);
    await g.settle();
    // One include of both, proposed by the inviter; nobody else proposed one.
    const accepted = (n: string) => g.member(n).effects.slice(marks.get(n as MemberId) ?? 0).filter((e) => e.kind === 'operation-accepted');
    expect(accepted('m00')).toHaveLength(1);
    expect(accepted('m00')[0]).toMatchObject({ operation: 'include', initiator: 'm01', members: ['m00', 'm01', 'm02', 'm03', 'm04'] });
    finishedAmong(['m00', 'm01', 'm03', 'm04'].map((n) => g.member(n)), ['m00', 'm01', 'm02', 'm03', 'm04']);
    g.member('m02').paused = false;
    await g.settle();
    expectAgreement(g, g.honestMembers());
    expect(g.warnings()).toEqual([]);
  });
});
