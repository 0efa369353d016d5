import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { providers } from '../helpers/providers.js';
import { SimGroup } from '../sim/channel.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

describe.each(providers)('greeting start ($name)', (crypto) => {
  it.each([2, 3, 5, 8])('start with %i members: everyone agrees', async (n) => {
    const g = await makeGroup(crypto, n, 1);
    expectAgreement(g, g.honestMembers());
    expect(g.warnings()).toEqual([]);
  });
});

describe('greeting start, sizes 2..16 (noble)', () => {
  it('every size agrees on members, sid, group key and chain hash', async () => {
    for (let n = 2; n <= 16; n++) {
      const g = await makeGroup(providers[0]!, n, 100 + n);
      expectAgreement(g, g.honestMembers());
      expect(g.warnings()).toEqual([]);
    }
  });

  it('a lagging channel gives the same result', async () => {
    const g = new SimGroup({ crypto: providers[0]!, seed: 7, lag: 0.5 });
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (const n of names) {
      await g.addMember(n);
      g.join(n);
    }
    await g.settle();
    await g.input(g.member('c'), { kind: 'start', others: names.filter((x) => x !== 'c') as never });
    await g.settle();
    expectAgreement(g, g.honestMembers());
    const first = g.member('a').state.current!;
    expect(first.members[0]).toBe('c');
    expect(bytesEqual(first.groupKey!, g.member('e').state.current!.groupKey!)).toBe(true);
  });
});
