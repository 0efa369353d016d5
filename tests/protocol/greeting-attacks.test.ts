/**
 * Attacks on membership operations (issue 3): each must fail the operation with a security
 * warning and leave every honest member's subsession and contributions exactly as they were.
 */
import { describe, expect, it } from 'vitest';
import { GreetType } from '../../src/protocol/codec/constants.js';
import type { GreetingPacket } from '../../src/protocol/codec/greeting.js';
import { decodePacket, encodePacket } from '../../src/protocol/codec/packet.js';
import { AbortReason } from '../../src/protocol/greeting/wire.js';
import type { MembershipEffect } from '../../src/protocol/greeting/types.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { signGreeting } from '../../src/protocol/packets/greeting-signature.js';
import { OPERATION_TIMEOUT_MS } from '../../src/protocol/limits.js';
import { providers } from '../helpers/providers.js';
import { SimGroup, type SimMember } from '../sim/channel.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

const crypto = providers[0]!;
const ids = (names: readonly string[]) => names as MemberId[];

function greetingOf(text: string): GreetingPacket | null {
  try {
    const p = decodePacket(text);
    return p.kind === 'greeting' ? p : null;
  } catch {
    return null;
  }
}

function snapshot(g: SimGroup): Map<MemberId, unknown> {
  return new Map(g.honestMembers().map((m) => [m.id, { current: m.state.current, own: m.state.own }]));
}

function expectIntact(g: SimGroup, before: Map<MemberId, unknown>, who: readonly SimMember[] = g.honestMembers()): void {
  for (const m of who) {
    expect({ current: m.state.current, own: m.state.own }, `${m.id} state changed`).toEqual(before.get(m.id));
    expect(m.state.op, `${m.id} still in an operation`).toBeNull();
  }
}

const effectsSince = (m: SimMember, from: number): MembershipEffect[] => m.effects.slice(from);

/** Runs `attack`, then lets timeouts fire, and returns each member's new effects. */
async function run(g: SimGroup, attack: () => Promise<void>): Promise<Map<MemberId, MembershipEffect[]>> {
  const marks = new Map(g.honestMembers().map((m) => [m.id, m.effects.length]));
  await attack();
  await g.settle();
  await g.advance(OPERATION_TIMEOUT_MS + 1);
  await g.settle();
  return new Map(g.honestMembers().map((m) => [m.id, effectsSince(m, marks.get(m.id)!)]));
}

const warned = (fx: readonly MembershipEffect[]) => fx.some((e) => e.kind === 'warning');
const succeeded = (fx: readonly MembershipEffect[]) => fx.some((e) => e.kind === 'subsession');

describe('attacks on membership operations', () => {
  it('altered INT_KEY in a downflow: the include fails for everyone, with warnings', async () => {
    const g = await makeGroup(crypto, 3, 41);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    g.transformOutgoing = (sender, text) => {
      const p = greetingOf(text);
      if (sender !== 'm03' || p?.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN) return undefined;
      const intKeys = p.intKeys.map((k, i) => (i === 0 && k !== null ? k.map((b, j) => (j === 5 ? b ^ 1 : b)) : k));
      return encodePacket({ ...p, intKeys });
    };
    const fx = await run(g, () => g.input(g.member('m01'), { kind: 'include', members: ids(['m03']) }).then(() => undefined));
    for (const [id, f] of fx) {
      expect(succeeded(f), id).toBe(false);
      if (id !== 'm03') expect(warned(f), id).toBe(true);
    }
    expectIntact(g, before, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
  });

  it('reordered MEMBER list: the initial packet is refused by all, with warnings', async () => {
    const g = await makeGroup(crypto, 4, 42);
    const before = snapshot(g);
    g.transformOutgoing = (sender, text) => {
      const p = greetingOf(text);
      if (p?.greetType !== GreetType.EXCLUDE_AUX_INITIATOR_DOWN) return undefined;
      const members = [...p.members];
      [members[0], members[1]] = [members[1]!, members[0]!];
      return encodePacket({ ...p, members });
    };
    const fx = await run(g, () => g.input(g.member('m00'), { kind: 'exclude', members: ids(['m03']) }).then(() => undefined));
    for (const [id, f] of fx) {
      expect(warned(f), id).toBe(true);
      expect(succeeded(f), id).toBe(false);
    }
    expect(fx.get('m00' as MemberId)!.some((e) => e.kind === 'proposal-rejected')).toBe(true);
    expectIntact(g, before);
  });

  it('replayed greeting from an earlier operation: the ongoing refresh is aborted', async () => {
    const g = await makeGroup(crypto, 3, 43);
    const old = g.log.map((e) => e.event).find((e) => e.kind === 'packet' && greetingOf(e.text)?.greetType === GreetType.INIT_PARTICIPANT_CONFIRM_DOWN)!;
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m02'), { kind: 'refresh' });
      g.flushOutbox();
      if (old.kind === 'packet') g.post(old.sender, old.text); // replayed right after the initial packet
    });
    for (const [id, f] of fx) {
      expect(f.some((e) => e.kind === 'warning' && e.code === 'replay'), id).toBe(true);
      expect(f.some((e) => e.kind === 'operation-failed'), id).toBe(true);
    }
    expectIntact(g, before);
  });

  it('forged SOURCE: a channel member posting as another fails the operation', async () => {
    const g = await makeGroup(crypto, 3, 44);
    await g.addMember('eve', false);
    g.join('eve');
    await g.settle();
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'refresh' });
      const initial = greetingOf(g.outbox[0]![1])!;
      g.flushOutbox();
      // eve posts a confirmation in m01's name, before m01's own.
      const forged = await signGreeting(crypto, g.rng.bytes(32), {
        ...initial,
        greetType: GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN,
        source: 'm01' as MemberId,
        intKeys: [],
        metadata: undefined,
        sessionSignature: g.rng.bytes(64),
        opRef: g.rng.bytes(32) as never,
      } as never);
      g.post('eve', encodePacket(forged));
    });
    for (const [id, f] of fx) {
      expect(f.some((e) => e.kind === 'warning' && e.code === 'forged-source'), id).toBe(true);
      expect(succeeded(f), id).toBe(false);
    }
    expectIntact(g, before);
  });

  it('wrong static key: a member signing with a key that is not its identity fails the start', async () => {
    const h = new SimGroup({ crypto, seed: 46 });
    for (const n of ['a', 'b', 'c']) {
      await h.addMember(n);
      h.join(n);
    }
    await h.settle();
    const impostor = h.member('b');
    impostor.state = { ...impostor.state, staticSeed: h.rng.bytes(32) }; // not the key in the directory
    const before = snapshot(h);
    const fx = await run(h, () => h.input(h.member('a'), { kind: 'start', others: ids(['b', 'c']) }).then(() => undefined));
    for (const id of ['a', 'c'] as MemberId[]) {
      expect(fx.get(id)!.some((e) => e.kind === 'warning' && e.code === 'bad-signature'), id).toBe(true);
    }
    for (const [id, f] of fx) expect(succeeded(f), id).toBe(false);
    expectIntact(h, before);
  });

  it('low-order point from a malicious insider: the include fails with low-order warnings', async () => {
    const g = await makeGroup(crypto, 3, 47);
    const joiner = await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    g.transformOutgoingAsync = async (sender, text) => {
      const p = greetingOf(text);
      if (sender !== 'm03' || p?.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN || p.intKeys[0]?.every((b) => b === 0)) return undefined;
      const intKeys = p.intKeys.map((k, i) => (i === 0 ? new Uint8Array(32) : k)); // u = 0: small order
      return encodePacket(await signGreeting(crypto, joiner.state.ephemeral!.seed, { ...p, intKeys }));
    };
    const fx = await run(g, () => g.input(g.member('m01'), { kind: 'include', members: ids(['m03']) }).then(() => undefined));
    expect(fx.get('m00' as MemberId)!.some((e) => e.kind === 'warning' && e.code === 'low-order-point')).toBe(true);
    for (const [id, f] of fx) expect(succeeded(f), id).toBe(false);
    expectIntact(g, before, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
  });

  it('withheld final packet to one member: she fails and warns, the others find out at the next operation', async () => {
    const g = await makeGroup(crypto, 3, 48);
    const victim = g.member('m02');
    const before = snapshot(g);
    let confirms = 0;
    g.onOrder = (_index, _sender, text) => {
      if (greetingOf(text)?.greetType !== GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN) return;
      confirms++;
      // The refresh needs m01's and m02's confirmations; withhold the last one from m02.
      return confirms === 2 ? [{ kind: 'withhold', member: victim.id }] : undefined;
    };
    const fx = await run(g, () => g.input(g.member('m00'), { kind: 'refresh' }).then(() => undefined));
    g.onOrder = null;
    const vf = fx.get(victim.id)!;
    expect(vf.some((e) => e.kind === 'warning' && e.code === 'events-withheld')).toBe(true);
    expect(vf.some((e) => e.kind === 'operation-failed')).toBe(true);
    expectIntact(g, before, [victim]);
    // The next operation cannot pass unnoticed: the victim refuses its unknown parent and says
    // so; the others' operation fails with a warning.
    const marks = new Map(g.honestMembers().map((m) => [m.id, m.effects.length]));
    const mid = snapshot(g);
    await g.input(g.member('m01'), { kind: 'refresh' });
    await g.settle();
    for (const m of g.honestMembers()) {
      const f = effectsSince(m, marks.get(m.id)!);
      expect(warned(f), m.id).toBe(true);
      expect(succeeded(f), m.id).toBe(false);
    }
    expectIntact(g, mid);
  });

  it('two different orders shown to two members: every member warns, both operations fail', async () => {
    const g = await makeGroup(crypto, 3, 49);
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'refresh' });
      await g.input(g.member('m01'), { kind: 'refresh' });
      // The relay orders m00's proposal first, but shows m01 the two swapped.
      const first = g.log.length;
      g.manipulations.set(first, [{ kind: 'swap-with-next', member: 'm01' as MemberId }]);
      g.flushOutbox();
    });
    for (const [id, f] of fx) {
      expect(f.some((e) => e.kind === 'warning' && (e.code === 'inconsistent-order' || e.code === 'peer-alarm')), id).toBe(true);
      expect(succeeded(f), id).toBe(false);
    }
    expectIntact(g, before);
  });

  it('greeting metadata altered in transit to a joiner (re-signed): the members warn, nobody succeeds', async () => {
    const g = await makeGroup(crypto, 3, 50);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
      const [, text] = g.outbox[0]!;
      const p = greetingOf(text)!;
      // The relay forges the history it shows the joiner, and re-signs with a key of its own in
      // place of the initiator's (the joiner cannot know the real one yet).
      const fakeSeed = g.rng.bytes(32);
      const fakePub = await crypto.ed25519PublicKey(fakeSeed);
      const metadata = { ...p.metadata!, chainHash: g.rng.bytes(32) as never };
      const forged = encodePacket(await signGreeting(crypto, fakeSeed, { ...p, metadata, pubKeys: p.pubKeys.map((k, i) => (i === 0 ? fakePub : k)) }));
      g.manipulations.set(g.log.length, [{ kind: 'replace', member: 'm03' as MemberId, text: forged }]);
      g.flushOutbox();
    });
    for (const [id, f] of fx) {
      // The joiner cannot tell (it never saw the real history); the members see its packets
      // name an operation they never accepted.
      if (id !== 'm03') expect(warned(f), id).toBe(true);
      expect(succeeded(f), id).toBe(false);
    }
    expect(g.member('m03').state.op).toBeNull();
    expectIntact(g, before, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
  });

  it('no attack: a timeout abort ends a stalled operation the same way for everyone, without warnings', async () => {
    const g = await makeGroup(crypto, 3, 51);
    const before = snapshot(g);
    const slow = g.member('m02');
    slow.paused = true; // offline: stays in the channel, processes nothing until it comes back
    const fx = await run(g, () => g.input(g.member('m00'), { kind: 'refresh' }).then(() => undefined));
    slow.paused = false;
    await g.settle(); // comes back and catches up in order
    for (const [id, f] of fx) expect(warned(f), id).toBe(false);
    expect(slow.effects.some((e) => e.kind === 'operation-failed' && e.abortReason === AbortReason.TIMEOUT)).toBe(true);
    expectIntact(g, before);
    expectAgreement(g, g.honestMembers());
  });
});
