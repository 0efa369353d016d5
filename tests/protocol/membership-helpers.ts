/** Shared helpers of the membership tests: build a started group, check agreement. */
import { expect } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { SimGroup, type SimMember } from '../sim/channel.js';

export const NAMES = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}`);

/** n members join the channel and the first starts the group. */
export async function makeGroup(crypto: CryptoProvider, n: number, seed: number): Promise<SimGroup> {
  const g = new SimGroup({ crypto, seed });
  const names = NAMES.slice(0, n);
  for (const name of names) {
    await g.addMember(name);
    g.join(name);
  }
  await g.settle();
  await g.input(g.member(names[0]!), { kind: 'start', others: names.slice(1) as MemberId[] });
  await g.settle();
  return g;
}

/** Everyone in `members` holds the same subsession: members, sid, group key, chain hash, keys. */
export function expectAgreement(g: SimGroup, members: readonly SimMember[]): void {
  const first = members[0]!.state.current;
  expect(first, `${members[0]!.id} has no subsession`).not.toBeNull();
  for (const m of members) {
    const cur = m.state.current;
    expect(cur, `${m.id} has no subsession`).not.toBeNull();
    expect(cur!.members).toEqual(first!.members);
    expect(bytesEqual(cur!.sid, first!.sid)).toBe(true);
    expect(bytesEqual(cur!.groupKey!, first!.groupKey!)).toBe(true);
    expect(bytesEqual(cur!.chainHash, first!.chainHash)).toBe(true);
    expect(cur!.ephemeralPubKeys.every((k, i) => bytesEqual(k, first!.ephemeralPubKeys[i]!))).toBe(true);
    expect(m.state.op).toBeNull();
  }
  expect([...first!.members].sort()).toEqual(members.map((m) => m.id).sort());
  void g;
}
