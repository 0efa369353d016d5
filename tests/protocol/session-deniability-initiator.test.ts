/**
 * Issue 9 §3 deniability for members who contribute instead of confirming (mpENC §6.1.1): an
 * initiator lists a fresh signing key in its own slot of its proposal (a newcomer in its own
 * contribution), bound by its static-key signature (async-groups rule 2), so that its key of the
 * subsession before is published once that one is over, as a confirming member's is. Without it,
 * a member who initiates every operation (the one always online) kept one key for ever, never
 * published: its whole transcript stayed provable.
 *
 * And "published keys forge nothing new" for greeting packets: a confirmation forged under a
 * published key (which would hand its forger the member's next key) is refused by every member,
 * whose state is then exactly that of a run without it (but for the replay memory of its
 * signature), as are data packets under the published key or under the key the forgery names.
 */
import { describe, expect, it } from 'vitest';
import { base64Decode, base64Encode, bytesEqual } from '../../src/protocol/bytes.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { CONFIRM_TYPE, greeting, isKeyOf } from '../../src/protocol/greeting/helpers.js';
import { memberKeyConfirmation, greetingText } from '../../src/protocol/greeting/wire.js';
import type { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionSnapshot, SubsessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { forgeAs, publications, signingKeyOf, subsessionOf } from '../helpers/deniability.js';
import { HARMLESS_TEXT, SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const alice = 'alice' as MemberId;
const names = ['alice', 'bob', 'carol', 'dave'];

/**
 * Alice does every operation, as the member who is always online would: she starts the group
 * with bob and carol (k0), refreshes (k1), includes dave (k2) and refreshes again (k3); everyone
 * writes in each.
 */
async function aliceInitiatesEverything(seed: number): Promise<SessionSim> {
  const sim = new SessionSim(crypto, seed, SIM_CONFIG, await greetingMembershipKind(crypto, names));
  for (const n of names) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  const talk = async (where: string, who: readonly string[]) => {
    for (const n of who) {
      await sim.act(n, (s, now) => s.send(`${n} in ${where}`, now));
      await sim.advance(2_000);
    }
  };
  await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
  await sim.advance(2_000);
  await talk('k0', ['alice', 'bob', 'carol']);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  await talk('k1', ['alice', 'bob', 'carol']);
  await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
  await sim.advance(5_000);
  await talk('k2', ['alice', 'bob', 'carol', 'dave']);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  await talk('k3', ['alice', 'bob', 'carol', 'dave']);
  return sim;
}

/** The subsessions k0..k3 of a member's snapshot, by the messages they hold. */
function subsessions(snapshot: SessionSnapshot): SubsessionSnapshot[] {
  return ['k0', 'k1', 'k2', 'k3'].map((k) => subsessionOf(snapshot, `bob in ${k}`));
}

describe('deniability for initiators and newcomers: a fresh signing key in their own slot (issue 9 §3)', () => {
  it('a member who initiates every operation gets a key per subsession, and her keys of the subsessions that are over are published', async () => {
    const sim = await aliceInitiatesEverything(31);
    const view = sim.member('bob').session.snapshot();
    const [k0, k1, k2, k3] = subsessions(view);
    const keys = [k0, k1, k2, k3].map((k) => signingKeyOf(k!, alice));
    // Before: one key in all four (she never confirmed, so she never renewed).
    expect(new Set(keys).size).toBe(4);
    // Dave, a newcomer of k2, lists a key of his own there, and no one else's.
    const daves = signingKeyOf(k2!, 'dave' as MemberId);
    for (const k of [k0, k1, k2]) for (const m of ['alice', 'bob', 'carol'] as MemberId[]) expect(signingKeyOf(k!, m)).not.toBe(daves);

    // Each operation of hers lists a fresh key in her slot: none she signed with in the subsession before.
    const bobs = (sim.member('bob').membership as GreetingMembership).machine;
    const made = [...bobs.recent, bobs.current!].filter((sub) => sub.members.includes(alice)).slice(-4);
    expect(made.map((sub) => base64Encode(sub.sid))).toEqual([k0, k1, k2, k3].map((k) => k!.setup.sessionId));
    for (let n = 1; n < 4; n++) {
      const listed = made[n]!.ephemeralPubKeys[made[n]!.members.indexOf(alice)]!;
      expect(isKeyOf(made[n - 1]!, alice, listed)).toBe(false);
    }

    const hers = publications(sim).filter((p) => p.sender === alice).map((p) => base64Encode(p.pub));
    // Her keys of k0, k1 and k2 are published: each once its subsession was over (k2 closed when
    // the others confirmed k3 with their last word in k2), not one operation later.
    expect(hers).toContain(keys[0]);
    expect(hers).toContain(keys[1]);
    expect(hers).toContain(keys[2]);
    // No key still in use (k3's) was published by anyone.
    for (const p of publications(sim)) for (const m of names as MemberId[]) expect(base64Encode(p.pub)).not.toBe(signingKeyOf(k3!, m));
    for (const n of ['bob', 'carol']) {
      const theirs = subsessions(sim.member(n).session.snapshot());
      for (const k of [0, 1, 2]) expect(theirs[k]!.published).toContain(alice);
    }
    expect(subsessionOf(sim.member('dave').session.snapshot(), 'bob in k2').published).toContain(alice);
    // Everyone read everything, with no warning.
    for (const n of names) {
      const texts = sim.member(n).delivered.map((d) => d.text);
      for (const t of ['alice in k2', 'dave in k2', 'alice in k3', 'carol in k3']) expect(texts).toContain(t);
    }
    expect(sim.warnings()).toEqual([]);

    // An insider (bob) forges alice in k0 with her published key: a valid packet, refused by every member of k0.
    const published = publications(sim).find((p) => p.sender === alice && base64Encode(p.pub) === keys[0])!;
    const forged = await forgeAs(crypto, sim.member('bob').session.snapshot(), alice, 'bob in k0', published.seed, 'alice never wrote this');
    expect(forged.validUnderAuthorsKey).toBe(true);
    const attack = sim.inject('published-key-forgery', 'bob' as MemberId, forged.packet, undefined);
    await sim.advance(5_000);
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('alice never wrote this');
    expect(attack.outcomes.filter((o) => o.delivered > 0 || !o.stateMatches)).toEqual([]);
  });

  it('a confirmation forged under a published key is refused by every member, who are left as in a run without it', async () => {
    const sim = await aliceInitiatesEverything(32);
    const k0 = subsessions(sim.member('bob').session.snapshot())[0]!;
    const a0 = publications(sim).find((p) => p.sender === alice && base64Encode(p.pub) === signingKeyOf(k0, alice));
    expect(a0).toBeDefined();

    // Bob, an insider, holds k0's key-confirmation key: he makes alice's confirmation of k0
    // complete in every byte, renewing her key there to one of his, signed with her published key
    // (she contributed to k0, so she never sent one of her own: it is no replay).
    const bobs = (sim.member('bob').membership as GreetingMembership).machine;
    const target = [...bobs.recent, bobs.current!].find((s) => bytesEqual(s.sid, base64Decode(k0.setup.sessionId)))!;
    expect(target.confirmKey).not.toBeNull();
    const takeoverSeed = new Uint8Array(32).fill(7);
    const takeover = await crypto.ed25519PublicKey(takeoverSeed);
    const keyConfirmation = await memberKeyConfirmation(crypto, target.confirmKey!, alice, target, takeover);
    const fields = greeting(CONFIRM_TYPE[target.kind], alice, null, [], [], [], [takeover], { opRef: target.opRef, keyConfirmation });
    const confirmation = await greetingText(crypto, a0!.seed, fields);
    // The control: without the mark of the publication, it is a valid confirmation that takes her key over.
    const unmarked = await afterPacket(sim, 'carol', confirmation, (state) => delete state['revoked']);
    expect(unmarked.effects.some((e) => e.kind === 'warn')).toBe(false);
    expect(signingKeyOf(unmarked.snapshot.subsessions.find((x) => x.index === k0.index)!, alice)).toBe(base64Encode(takeover));

    // Every member (alice herself included) refuses it and is left as a run without it would leave it.
    for (const n of names) {
      const { effects, snapshot, twin } = await afterPacket(sim, n, confirmation);
      expect(effects.some((e) => e.kind === 'deliver')).toBe(false);
      expect(effects.filter((e) => e.kind === 'send')).toEqual([]);
      expect(effects.some((e) => e.kind === 'warn')).toBe(true);
      // (The only difference: its signature joins the replay memory, so a repeat is known at once.)
      expect(withoutReplayMemory(snapshot)).toEqual(withoutReplayMemory(twin));
    }

    // In the relay's order, the forged confirmation and then a message "by alice" in k0 under the
    // key it names: nobody takes either; her key of k0 stays the published one everywhere.
    const underTakeover = await forgeAs(crypto, sim.member('bob').session.snapshot(), alice, 'bob in k0', takeoverSeed, 'alice, taken over');
    const attacks = [sim.inject('published-key-confirmation', alice, confirmation, undefined)];
    await sim.advance(5_000);
    attacks.push(sim.inject('published-key-takeover', alice, underTakeover.packet, undefined));
    await sim.advance(5_000);
    for (const attack of attacks) {
      expect(attack.outcomes.map((o) => o.member).sort()).toEqual([...names].sort());
      expect(attack.outcomes.filter((o) => o.delivered > 0 || o.sent > 0)).toEqual([]);
    }
    expect(attacks[1]!.outcomes.filter((o) => !o.stateMatches)).toEqual([]);
    for (const n of names) expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('alice, taken over');
    for (const n of ['alice', 'bob', 'carol']) expect(signingKeyOf(subsessions(sim.member(n).session.snapshot())[0]!, alice)).toBe(base64Encode(a0!.pub));
  });
});

/**
 * What `member` does with `text` from alice as the next relay event, and what a twin restored
 * from the same state does with a harmless packet in its place (issue 9: "the victim's state
 * must match a run without it"). `edit` changes the membership state of both before.
 */
async function afterPacket(sim: SessionSim, member: string, text: string, edit?: (state: Record<string, unknown>) => void) {
  const saved = JSON.parse(JSON.stringify(sim.member(member).session.snapshot())) as SessionSnapshot & { membership: { state: Record<string, unknown> } };
  edit?.(saved.membership.state);
  const run = async (packet: string) => {
    const snapshot = JSON.parse(JSON.stringify(saved)) as SessionSnapshot;
    const random = seededRandom(99).bytes;
    const session = Session.restore(snapshot, { crypto, random }, sim.membershipKind.restore(snapshot.membership, member as MemberId, crypto, random), SIM_CONFIG, { atHead: true });
    const effects = await session.receive({ kind: 'packet', seq: sim.seq + 1, sender: alice, text: packet, atMs: sim.nowMs }, sim.nowMs);
    return { effects, snapshot: session.snapshot() };
  };
  const attacked = await run(text);
  const twin = await run(HARMLESS_TEXT);
  return { ...attacked, twin: twin.snapshot };
}

function withoutReplayMemory(snapshot: SessionSnapshot): unknown {
  const copy = JSON.parse(JSON.stringify({ ...snapshot, lastTimerMs: null })) as { membership: { state: Record<string, unknown> } };
  delete copy.membership.state['seen'];
  return copy;
}
