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
import { contributorText } from '../../src/protocol/greeting/wire.js';
import { bytesEqual } from '../../src/protocol/bytes.js';
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


  it('replayed greeting from an earlier operation: the members who saw it warn; the ongoing include goes on', async () => {
    const g = await makeGroup(crypto, 3, 43);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const old = g.log.map((e) => e.event).find((e) => e.kind === 'packet' && greetingOf(e.text)?.greetType === GreetType.INIT_PARTICIPANT_UP)!;
    const fx = await run(g, async () => {
      await g.input(g.member('m02'), { kind: 'include', members: ids(['m03']) });
      g.flushOutbox();
      if (old.kind === 'packet') g.post(old.sender, old.text); // replayed right after the initial packet
    });
    // The newcomer never saw the original, so only the members can tell: an operation must end
    // the same way for everyone (rule 1), so a packet outside it does not fail it.
    for (const id of ['m00', 'm01', 'm02'] as MemberId[]) expect(fx.get(id)!.some((e) => e.kind === 'warning' && e.code === 'replay'), id).toBe(true);
    expectAgreement(g, g.honestMembers());
    expect(g.member('m00').state.current!.members).toContain('m03');
  });

  it('replayed initial packet of the ongoing include: everyone fails it', async () => {
    const g = await makeGroup(crypto, 3, 143);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m02'), { kind: 'include', members: ids(['m03']) });
      const [sender, text] = g.outbox[0]!;
      g.flushOutbox();
      g.post(sender, text);
    });
    for (const [id, f] of fx) {
      expect(f.some((e) => e.kind === 'warning' && e.code === 'replay'), id).toBe(true);
      expect(f.some((e) => e.kind === 'operation-failed'), id).toBe(true);
    }
    expectIntact(g, before);
  });

  it('forged SOURCE: a channel member posting as the awaited newcomer fails the include', async () => {
    const g = await makeGroup(crypto, 3, 44);
    await g.addMember('eve', false);
    await g.addMember('m03');
    g.join('eve');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
      const initial = greetingOf(g.outbox[0]![1])!;
      g.flushOutbox();
      // eve posts a downflow in m03's name before m03's own.
      const forged = await signGreeting(crypto, g.rng.bytes(32), {
        ...initial,
        greetType: GreetType.INCLUDE_AUX_PARTICIPANT_DOWN,
        source: 'm03' as MemberId,
        dest: null,
        metadata: undefined,
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


  it('low-order point in one slot from a malicious newcomer: that member warns and starts over, never using the key', async () => {
    const g = await makeGroup(crypto, 3, 47);
    const joiner = await g.addMember('m03');
    g.join('m03');
    await g.settle();
    g.transformOutgoingAsync = async (sender, text) => {
      const p = greetingOf(text);
      if (sender !== 'm03' || p?.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN || p.intKeys[0]?.every((b) => b === 0)) return undefined;
      const intKeys = p.intKeys.map((k, i) => (i === 0 ? new Uint8Array(32) : k)); // u = 0: small order, in m00's slot only
      return contributorText(crypto, joiner.staticSeed, { ...p, intKeys });
    };
    const fx = await run(g, () => g.input(g.member('m01'), { kind: 'include', members: ids(['m03']) }).then(() => undefined));
    const victim = fx.get('m00' as MemberId)!;
    expect(victim.some((e) => e.kind === 'warning' && e.code === 'low-order-point')).toBe(true);
    expect(victim.some((e) => e.kind === 'start-over')).toBe(true);
    expect(succeeded(victim)).toBe(false);
    // Rule 1: the downflow is final for the others; the victim never held a key of their subsession.
    for (const n of ['m01', 'm02', 'm03']) expect(g.member(n).state.current?.members, n).toContain('m03');
    expect(g.member('m00').state.current).toBeNull();
  });

  // Issue 9 §2 (rule 4): a member handed a different key finds out at once, from the final
  // packet's KEY_CONFIRMATION, not later through the others' confirmations or unreadable traffic.
  // A valid point (not small-order) so that only the MAC can tell. Mutants
  // `downflow-key-confirmation-unchecked`, `initial-final-key-confirmation-unchecked`.
  it("another valid point in one slot of a newcomer's last downflow: that member's key confirmation fails at the downflow itself; it warns and starts over, never using the key", async () => {
    const g = await makeGroup(crypto, 3, 52);
    const joiner = await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const other = await crypto.x25519PublicKey(new Uint8Array(32).fill(5));
    g.transformOutgoingAsync = async (sender, text) => {
      const p = greetingOf(text);
      if (sender !== 'm03' || p?.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN || bytesEqual(p.intKeys[0]!, other)) return undefined;
      return contributorText(crypto, joiner.staticSeed, { ...p, intKeys: p.intKeys.map((k, i) => (i === 0 ? other : k)) }); // m00's slot only
    };
    const fx = await run(g, () => g.input(g.member('m01'), { kind: 'include', members: ids(['m03']) }).then(() => undefined));
    const victim = fx.get('m00' as MemberId)!;
    expect(succeeded(victim)).toBe(false);
    expect(victim.some((e) => e.kind === 'warning' && e.code === 'key-mismatch' && e.member === null)).toBe(true);
    expect(victim.some((e) => e.kind === 'start-over')).toBe(true);
    // At once: its first warning is its own key's, before any other member's confirmation could tell it.
    expect(victim.find((e) => e.kind === 'warning')).toMatchObject({ code: 'key-mismatch', member: null });
    for (const n of ['m01', 'm02', 'm03']) expect(g.member(n).state.current?.members, n).toContain('m03');
    expect(g.member('m00').state.current).toBeNull();
  });

  it("an insider's refresh with another valid point in one member's slot: that member's key confirmation fails at the refresh packet; it warns and starts over, never using the key", async () => {
    const g = await makeGroup(crypto, 3, 53);
    const insider = g.member('m01');
    const other = await crypto.x25519PublicKey(new Uint8Array(32).fill(6));
    g.transformOutgoingAsync = async (sender, text) => {
      const p = greetingOf(text);
      if (sender !== 'm01' || p?.greetType !== GreetType.REFRESH_AUX_INITIATOR_DOWN || bytesEqual(p.intKeys[0]!, other)) return undefined;
      return contributorText(crypto, insider.staticSeed, { ...p, intKeys: p.intKeys.map((k, i) => (i === 0 ? other : k)) }); // m00's slot only
    };
    const fx = await run(g, async () => {
      await g.input(insider, { kind: 'refresh' });
      insider.honest = false; // from here on the attacker drives it (it posts the altered packet)
    });
    const victim = fx.get('m00' as MemberId)!;
    expect(succeeded(victim)).toBe(false);
    expect(victim.find((e) => e.kind === 'warning')).toMatchObject({ code: 'key-mismatch', member: null });
    expect(victim.some((e) => e.kind === 'start-over')).toBe(true);
    expect(g.member('m00').state.current).toBeNull();
    // The others took the refresh (final at its initial packet, rule 1).
    expect(succeeded(fx.get('m02' as MemberId)!)).toBe(true);
  });

  it('withheld final packet to one member: she warns at the next event and starts over; the others go on and exclude her', async () => {
    const g = await makeGroup(crypto, 3, 48);
    const victim = g.member('m02');
    const oldKey = victim.state.current!.groupKey!;
    g.onOrder = (_index, _sender, text) => {
      if (greetingOf(text)?.greetType !== GreetType.REFRESH_AUX_INITIATOR_DOWN) return;
      return [{ kind: 'withhold', member: victim.id }]; // the refresh is final at its initial packet
    };
    const fx = await run(g, () => g.input(g.member('m00'), { kind: 'refresh' }).then(() => undefined));
    g.onOrder = null;
    const vf = fx.get(victim.id)!;
    expect(vf.some((e) => e.kind === 'warning' && e.code === 'events-withheld')).toBe(true);
    expect(vf.some((e) => e.kind === 'start-over')).toBe(true);
    expect(succeeded(vf)).toBe(false);
    expect(victim.state.current).toBeNull();
    // The victim asked to be included again: the others excluded it (it stays in the channel).
    const rest = ['m00', 'm01'].map((n) => g.member(n));
    expectAgreement(g, rest);
    expect(g.channel).toContain(victim.id);
    expect(bytesEqual(rest[0]!.state.current!.groupKey!, oldKey)).toBe(false);
  });

  it('two orders shown to two members: the one shown the swapped order warns and starts over', async () => {
    const g = await makeGroup(crypto, 3, 49);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'refresh' });
      await g.input(g.member('m01'), { kind: 'refresh' });
      // The relay orders m00's proposal first, but shows m01 the two swapped.
      const first = g.log.length;
      g.manipulations.set(first, [{ kind: 'swap-with-next', member: 'm01' as MemberId }]);
      g.flushOutbox();
    });
    const f = fx.get('m01' as MemberId)!;
    expect(f.some((e) => e.kind === 'warning')).toBe(true);
    expect(f.some((e) => e.kind === 'start-over')).toBe(true);
    expectAgreement(g, ['m00', 'm02'].map((n) => g.member(n)));
    expect(g.member('m01').state.current).toBeNull();
  });

  it('greeting metadata altered in transit to a joiner (re-signed): the joiner refuses it at once; the include times out', async () => {
    const g = await makeGroup(crypto, 3, 50);
    await g.addMember('m03');
    g.join('m03');
    await g.settle();
    const before = snapshot(g);
    const fx = await run(g, async () => {
      await g.input(g.member('m00'), { kind: 'include', members: ids(['m03']) });
      const [, text] = g.outbox[0]!;
      const p = greetingOf(text)!;
      // The relay forges the history it shows the joiner and re-signs: it holds no member's
      // static key, which signs a contributor's packet (rule 2).
      const metadata = { ...p.metadata!, chainHash: g.rng.bytes(32) as never };
      const forged = await contributorText(crypto, g.rng.bytes(32), { ...p, metadata });
      g.manipulations.set(g.log.length, [{ kind: 'replace', member: 'm03' as MemberId, text: forged }]);
      g.flushOutbox();
    });
    expect(fx.get('m03' as MemberId)!.some((e) => e.kind === 'warning' && e.code === 'bad-signature')).toBe(true);
    for (const [id, f] of fx) expect(succeeded(f), id).toBe(false);
    expect(fx.get('m00' as MemberId)!.some((e) => e.kind === 'operation-failed' && e.abortReason === AbortReason.TIMEOUT)).toBe(true);
    expect(g.member('m03').state.op).toBeNull();
    expectIntact(g, before, ['m00', 'm01', 'm02'].map((n) => g.member(n)));
  });

  it('no attack: a refresh completes while a member sleeps; it derives the key when it wakes, without warnings', async () => {
    const g = await makeGroup(crypto, 3, 51);
    const slow = g.member('m02');
    slow.paused = true; // offline: stays in the channel, processes nothing until it comes back
    const fx = await run(g, () => g.input(g.member('m00'), { kind: 'refresh' }).then(() => undefined));
    expect(succeeded(fx.get('m00' as MemberId)!)).toBe(true);
    slow.paused = false;
    await g.settle(); // comes back and catches up in order
    for (const m of g.honestMembers()) expect(warned(m.effects), m.id).toBe(false);
    expectAgreement(g, g.honestMembers());
    // Everyone's confirmation (rule 5) reached everyone, the sleeper's too.
    for (const m of g.honestMembers()) expect([...m.state.current!.confirmed].sort()).toEqual(['m00', 'm01', 'm02']);
  });
});
