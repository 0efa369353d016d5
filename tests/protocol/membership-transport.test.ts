/** Transport integration rules (mpENC §3.3) on the simulated channel. */
import { describe, expect, it } from 'vitest';
import type { MemberId } from '../../src/protocol/ids.js';
import { OPERATION_TIMEOUT_MS, OPERATION_WAIT_LIMIT_MS } from '../../src/protocol/limits.js';
import { AbortReason } from '../../src/protocol/greeting/wire.js';
import { providers } from '../helpers/providers.js';
import { SimGroup } from '../sim/channel.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

const crypto = providers[0]!;
const ids = (names: readonly string[]) => names as MemberId[];

describe('transport integration (mpENC §3.3)', () => {
  it('a start whose targets are not all in the channel is refused', async () => {
    const g = new SimGroup({ crypto, seed: 61 });
    for (const n of ['a', 'b', 'c']) await g.addMember(n);
    g.join('a');
    g.join('b');
    await g.settle();
    const fx = await g.input(g.member('a'), { kind: 'start', others: ids(['b', 'c']) });
    expect(fx.map((e) => e.kind)).toEqual(['intent-refused']);
  });

  it('a target that is not in the channel when the first packet arrives: ignored by everyone', async () => {
    const g = await makeGroup(crypto, 3, 62);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = new Map(['m00', 'm01', 'm02'].map((m) => [m, g.member(m).state.current]));
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    g.leave('m03'); // ordered before the include packet
    await g.settle();
    for (const m of ['m00', 'm01', 'm02']) expect(g.member(m).state.current).toBe(before.get(m));
    expect(g.member('m00').effects.some((e) => e.kind === 'proposal-rejected')).toBe(true);
    expect(g.warnings()).toEqual([]);
  });

  it('a target leaving mid-operation fails it for everyone, then is excluded automatically', async () => {
    const g = await makeGroup(crypto, 4, 63);
    await g.addMember('m04');
    g.join('m04');
    await g.settle();
    g.member('m04').paused = true; // the newcomer is not back yet: the include waits for it
    const before = g.member('m00').state.current;
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m04']) });
    await g.run(1); // the include is ordered and seen
    g.leave('m03');
    await g.settle();
    for (const m of ['m00', 'm01', 'm02']) {
      const f = g.member(m).effects;
      expect(f.some((e) => e.kind === 'operation-failed' && e.reason === 'member-left'), m).toBe(true);
    }
    // ...and the automatic exclusion of m03 followed, agreed by all who remain.
    const all = ['m00', 'm01', 'm02'].map((n) => g.member(n));
    expectAgreement(g, all);
    expect(all[0]!.state.current!.members).toEqual(ids(['m00', 'm01', 'm02']));
    expect(all[0]!.state.current).not.toBe(before);
    expect(g.warnings()).toEqual([]);
  });

  it('we never exclude ourselves; leaving the channel makes us solo', async () => {
    const g = await makeGroup(crypto, 3, 64);
    const fx = await g.input(g.member('m01'), { kind: 'exclude', members: ids(['m01']) });
    expect(fx.map((e) => e.kind)).toEqual(['intent-refused']);
    g.leave('m01');
    await g.settle();
    expect(g.member('m01').state.current).toBeNull();
    const rest = ['m00', 'm02'].map((n) => g.member(n));
    expectAgreement(g, rest);
    expect(rest[0]!.state.current!.members).toEqual(ids(['m00', 'm02']));
  });

  it('concurrent proposals: one wins, the others are rejected, everyone agrees', async () => {
    const g = await makeGroup(crypto, 4, 65);
    await g.input(g.member('m00'), { kind: 'refresh' });
    await g.input(g.member('m01'), { kind: 'exclude', members: ids(['m02']) });
    await g.input(g.member('m03'), { kind: 'refresh' });
    await g.settle();
    const rejected = ['m01', 'm03'].filter((n) => g.member(n).effects.some((e) => e.kind === 'proposal-rejected'));
    expect(rejected).toEqual(['m01', 'm03']);
    expectAgreement(g, g.honestMembers());
    expect(g.warnings()).toEqual([]);
  });

  it('joins and leaves of bystanders during an operation change nothing', async () => {
    const g = await makeGroup(crypto, 3, 66);
    await g.addMember('x');
    await g.input(g.member('m02'), { kind: 'refresh' });
    await g.run(1);
    g.join('x');
    await g.run(1);
    g.leave('x');
    await g.settle();
    expectAgreement(g, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
    expect(g.member('m00').effects.filter((e) => e.kind === 'subsession')).toHaveLength(2);
    expect(g.warnings()).toEqual([]);
  });

  it('an include waits for a newcomer who is offline: no 2-minute timeout, the 14-day limit aborts it', async () => {
    const g = await makeGroup(crypto, 3, 67);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    g.member('m03').paused = true; // accepted the invitation, then the phone slept
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    await g.settle();
    await g.advance(OPERATION_TIMEOUT_MS + 1);
    await g.settle();
    // Waiting is a state (async-groups rule 9): nothing failed.
    for (const m of ['m00', 'm01', 'm02']) expect(g.member(m).state.op?.kind, m).toBe('include');
    await g.advance(OPERATION_WAIT_LIMIT_MS);
    await g.settle();
    g.member('m03').paused = false;
    await g.settle();
    for (const m of g.honestMembers()) expect(m.effects.some((e) => e.kind === 'operation-failed' && e.reason === 'aborted'), m.id).toBe(true);
    expectAgreement(g, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
    expect(g.warnings()).toEqual([]);
  });

  it('a newcomer who is online but never answers: its include is aborted by the initiator after 2 minutes', async () => {
    const g = await makeGroup(crypto, 3, 68);
    await g.addMember('m03', false); // in the channel and shown online, but never acts
    g.join('m03');
    await g.settle();
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    await g.settle();
    await g.advance(OPERATION_TIMEOUT_MS + 1);
    await g.settle();
    for (const n of ['m00', 'm01', 'm02']) {
      expect(g.member(n).effects.some((e) => e.kind === 'operation-failed' && e.abortReason === AbortReason.TIMEOUT), n).toBe(true);
    }
    expectAgreement(g, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
    expect(g.warnings()).toEqual([]);
  });

  it('any member may abort a waiting include; only the initiator aborts one that is not waiting', async () => {
    const g = await makeGroup(crypto, 3, 69);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    g.member('m03').paused = true;
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
    await g.settle();
    const fx = await g.input(g.member('m01'), { kind: 'abort' });
    expect(fx.some((e) => e.kind === 'send')).toBe(true);
    await g.settle();
    for (const n of ['m00', 'm01', 'm02']) expect(g.member(n).state.op, n).toBeNull();
    const refused = await g.input(g.member('m01'), { kind: 'abort' });
    expect(refused.map((e) => e.kind)).toEqual(['intent-refused']);
  });

  it('retry without the newcomer who never came: the include is aborted and proposed again without it', async () => {
    const g = await makeGroup(crypto, 3, 70);
    for (const n of ['m03', 'm04']) {
      await g.addMember(n);
      g.join(n);
    }
    await g.settle();
    g.member('m04').paused = true; // m03 is back, m04 is not
    await g.input(g.member('m00'), { kind: 'include', members: ids(['m03', 'm04']) });
    await g.settle();
    expect(g.member('m00').state.op?.nextIndex).toBe(4); // m03 contributed; waiting for m04
    await g.input(g.member('m00'), { kind: 'retry-without-missing' });
    await g.settle();
    const all = ['m00', 'm01', 'm02', 'm03'].map((n) => g.member(n));
    expectAgreement(g, all);
    expect(g.warnings()).toEqual([]);
  });
});
