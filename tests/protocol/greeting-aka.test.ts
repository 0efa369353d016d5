import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { deriveGroupKey } from '../../src/protocol/packets/group-key.js';
import { providers } from '../helpers/providers.js';
import { stolenScalars, tryScalar } from '../helpers/stolen-key.js';
import { expectAgreement, makeGroup, NAMES } from './membership-helpers.js';
import type { SimGroup, SimMember } from '../sim/channel.js';

const ids = (names: readonly string[]) => names as MemberId[];

async function addToChannel(g: SimGroup, names: readonly string[]): Promise<void> {
  for (const n of names) {
    await g.addMember(n);
    g.join(n);
  }
  await g.settle();
}

function inSession(g: SimGroup): SimMember[] {
  return g.honestMembers().filter((m) => m.state.current !== null);
}

describe.each(providers)('include, exclude, refresh ($name)', (crypto) => {
  it.each([1, 2, 5])('include %i at once: everyone agrees, joiners cannot derive the old key', async (k) => {
    const g = await makeGroup(crypto, 3, 10 + k);
    const oldKey = g.member('m00').state.current!.groupKey!;
    const joiners = NAMES.slice(3, 3 + k);
    await addToChannel(g, joiners);
    await g.input(g.member('m01'), { kind: 'include', members: ids(joiners) });
    await g.settle();
    const all = inSession(g);
    expect(all).toHaveLength(3 + k);
    expectAgreement(g, all);
    const cur = g.member('m00').state.current!;
    expect(cur.members).toEqual(ids([...NAMES.slice(0, 3), ...joiners]));
    expect(bytesEqual(cur.groupKey!, oldKey)).toBe(false);
    // A joiner applying its contributions to any slot of the old list gets nothing it can use.
    for (const j of joiners) {
      const own = g.member(j).state.own!.contributions;
      const oldLists = g.member('m00').state.current!.intKeys;
      for (let slot = 0; slot < 3; slot++) {
        for (const x of stolenScalars(own)) {
          const point = await tryScalar(crypto, x, oldLists[slot]!);
          expect(point !== null && bytesEqual(await deriveGroupKey(crypto, point), oldKey)).toBe(false);
        }
      }
    }
    expect(g.warnings()).toEqual([]);
  });

  it('exclude one, then several: the excluded cannot derive the new key', async () => {
    const g = await makeGroup(crypto, 6, 21);
    await g.input(g.member('m02'), { kind: 'exclude', members: ids(['m04']) });
    await g.settle();
    expect(g.member('m04').effects.some((e) => e.kind === 'excluded')).toBe(true);
    expect(g.channel).not.toContain('m04'); // kicked (mpENC §3.3)
    let all = inSession(g);
    expect(all.map((m) => m.id).sort()).toEqual(ids(['m00', 'm01', 'm02', 'm03', 'm05']));
    expectAgreement(g, all);
    await g.input(g.member('m00'), { kind: 'exclude', members: ids(['m01', 'm05']) });
    await g.settle();
    all = inSession(g);
    expect(all.map((m) => m.id).sort()).toEqual(ids(['m00', 'm02', 'm03']));
    expectAgreement(g, all);
    expect(g.warnings()).toEqual([]);
  });

  it('an excluded member applying its contributions to the new list gets a different key', async () => {
    const g = await makeGroup(crypto, 3, 22);
    const victim = g.member('m02');
    const victimOwn = victim.state.own!.contributions;
    await g.input(g.member('m00'), { kind: 'exclude', members: ids(['m02']) });
    await g.settle();
    const cur = g.member('m00').state.current!;
    for (let slot = 0; slot < cur.intKeys.length; slot++) {
      for (const x of stolenScalars(victimOwn)) {
        const point = await tryScalar(crypto, x, cur.intKeys[slot]!);
        expect(point !== null && bytesEqual(await deriveGroupKey(crypto, point), cur.groupKey!)).toBe(false);
      }
    }
  });

  it('exclude down to one member is one packet', async () => {
    const g = await makeGroup(crypto, 2, 23);
    await g.input(g.member('m00'), { kind: 'exclude', members: ids(['m01']) });
    await g.settle();
    expect(g.member('m00').state.current!.members).toEqual(ids(['m00']));
    expect(g.member('m01').state.current).toBeNull();
  });

  it('refresh: same members, new key, new sid (async-groups rule 3: a fresh initiator nonce)', async () => {
    const g = await makeGroup(crypto, 4, 24);
    const before = g.member('m03').state.current!;
    await g.input(g.member('m03'), { kind: 'refresh' });
    await g.settle();
    const all = inSession(g);
    expectAgreement(g, all);
    const after = g.member('m00').state.current!;
    expect(after.members).toEqual(before.members);
    expect(bytesEqual(after.sid, before.sid)).toBe(false);
    const i = after.members.indexOf('m03' as MemberId);
    expect(bytesEqual(after.nonces[i]!, before.nonces[i]!)).toBe(false);
    expect(after.nonces.filter((n, j) => j !== i).every((n, j) => bytesEqual(n, before.nonces.filter((_, k) => k !== i)[j]!))).toBe(true);
    expect(bytesEqual(after.groupKey!, before.groupKey!)).toBe(false);
    expect(g.warnings()).toEqual([]);
  });
});

describe('chains of mixed operations (noble)', () => {
  it('20 random operations: agreement after each, no warnings', async () => {
    const crypto = providers[0]!;
    const g = await makeGroup(crypto, 4, 31);
    const rng = g.rng;
    let next = 4;
    for (let i = 0; i < 20; i++) {
      const members = inSession(g);
      const actor = rng.pick(members);
      const others = members.filter((m) => m !== actor).map((m) => m.id);
      const choice = rng.int(3);
      if (choice === 0 && members.length < 8) {
        const k = 1 + rng.int(2);
        const joiners = NAMES.slice(next, next + k);
        next += k;
        await addToChannel(g, joiners);
        await g.input(actor, { kind: 'include', members: ids(joiners) });
      } else if (choice === 1 && others.length > 1) {
        await g.input(actor, { kind: 'exclude', members: [rng.pick(others)] });
      } else {
        await g.input(actor, { kind: 'refresh' });
      }
      await g.settle();
      expectAgreement(g, inSession(g));
    }
    expect(g.warnings()).toEqual([]);
  });
});
