/**
 * Issue 9 §3 deniability (mpENC §6.1, §6.1.1): "published keys forge nothing new".
 *
 * Alice makes every change (the member who is always online), bob and carol confirm them, dave
 * joins at k2. Every member who was in the subsession before confirms each new one, initiator
 * included (async-groups rule 5, `finish` in greeting/outcome.ts), and that confirmation carries
 * a fresh signing key; a member's key of subsession k is published once k is over and acked and
 * k+1, which still lists it, is replaced in turn (one subsession late). With the keys that are
 * then public, an insider (who holds every message key and key-confirmation key of k) makes:
 * - data packets "by" each member of k0 and k1, valid under the published key;
 * - the same under those keys in k2 and k3, where the members sign with their renewed keys;
 * - a confirmation of k0 "by alice", signed with her published key of k0, complete in every
 *   byte (its KEY_CONFIRMATION MAC included), renewing her key there to one of the forger's,
 *   and then a data packet under that key.
 * Every member refuses each (nothing delivered, nothing sent) and is left exactly as a run
 * without it would leave it (the harness's twin, issue 9 §1); the members of the subsession say
 * so. Receivers refuse what comes from a subsession whose members all published (§6.1). This is
 * today's engine, no protocol change: the forged confirmation is refused by the membership's
 * `revoked` check (greeting/flow-v2.ts onConfirmationV2; mutant `published-key-confirms`), the
 * data by the session's per-author mark (session/inbound.ts; mutant `published-key-accepted`).
 */
import { describe, expect, it } from 'vitest';
import { base64Decode, base64Encode, bytesEqual } from '../../src/protocol/bytes.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { CONFIRM_TYPE, greeting } from '../../src/protocol/greeting/helpers.js';
import { greetingText, memberKeyConfirmation } from '../../src/protocol/greeting/wire.js';
import type { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionSnapshot, SubsessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { forgeAs, publications, signingKeyOf, subsessionOf } from '../helpers/deniability.js';
import { HARMLESS_TEXT, SIM_CONFIG, SessionSim, type InjectedAttack } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const alice = 'alice' as MemberId;
const bob = 'bob' as MemberId;
const carol = 'carol' as MemberId;
const dave = 'dave' as MemberId;
const names = ['alice', 'bob', 'carol', 'dave'];
const founders = [alice, bob, carol];

/** Alice starts the group with bob and carol (k0), refreshes (k1), includes dave (k2), refreshes (k3); everyone writes in each. */
async function aliceMakesEveryChange(seed: number): Promise<SessionSim> {
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
  await sim.act('alice', (s, now) => s.include([bob, carol], now));
  await sim.advance(2_000);
  await talk('k0', founders);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  await talk('k1', founders);
  await sim.act('alice', (s, now) => s.include([dave], now));
  await sim.advance(5_000);
  await talk('k2', names);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  await talk('k3', names);
  return sim;
}

const subsessions = (snapshot: SessionSnapshot): SubsessionSnapshot[] => ['k0', 'k1', 'k2', 'k3'].map((k) => subsessionOf(snapshot, `bob in ${k}`));

/** The published seed of `member`'s signing key `pub` (base64), if it was published. */
function publishedSeed(sim: SessionSim, member: MemberId, pub: string): Uint8Array | undefined {
  return publications(sim).find((p) => p.sender === member && base64Encode(p.pub) === pub)?.seed;
}

/** No member delivered or sent anything for the attack, and each is left as a run without it (the harness's twin). */
function refusedByAll(attack: InjectedAttack): void {
  expect(attack.outcomes.map((o) => o.member).sort()).toEqual([...names].sort());
  expect(attack.outcomes.filter((o) => o.inactive || o.delivered !== 0 || o.sent !== 0 || !o.stateMatches)).toEqual([]);
}

describe('published keys forge nothing new (issue 9 §3, mpENC §6.1)', () => {
  it('every member, the initiator of every change included, publishes its key of k once k is over and the subsession after it is replaced', async () => {
    const sim = await aliceMakesEveryChange(41);
    const [k0, k1, k2, k3] = subsessions(sim.member('bob').session.snapshot());
    // Alice contributed to every change and confirmed each (but k0, her start): a key per subsession.
    expect(new Set([k0, k1, k2, k3].map((k) => signingKeyOf(k!, alice))).size).toBe(4);
    for (const [k, where] of [[k0!, 'k0'], [k1!, 'k1']] as const) {
      for (const m of founders) {
        const pub = signingKeyOf(k, m);
        expect(publishedSeed(sim, m, pub), `${m}'s key of ${where}`).toBeDefined();
        // Every member who holds k marked it, and k closed consistent there (its shutdown acked by all who confirmed it).
        for (const n of founders) {
          const theirs = subsessionOf(sim.member(n).session.snapshot(), `bob in ${where}`);
          expect(theirs.published ?? []).toContain(m);
          expect(theirs.phase).toEqual({ kind: 'closed', consistent: true });
        }
      }
    }
    // One subsession late: the key of k0 only after k2 was installed, the key of k1 only after k3.
    const bobs = (sim.member('bob').membership as GreetingMembership).machine;
    const finalSeqOf = (k: SubsessionSnapshot): number => [...bobs.recent, bobs.current!].find((s) => base64Encode(s.sid) === k.setup.sessionId)!.finalSeq!;
    for (const [k, madeAfter] of [[k0, k2], [k1, k3]] as const) {
      for (const m of founders) {
        const seq = publications(sim).find((p) => p.sender === m && base64Encode(p.pub) === signingKeyOf(k!, m))!.seq;
        expect(seq).toBeGreaterThan(finalSeqOf(madeAfter!));
        // ...and no later for the initiator than for the others: alice's key of k0 before k3 was made.
        if (k === k0) expect(seq).toBeLessThan(finalSeqOf(k3!));
      }
    }
    // No key still listed by the current subsession (k3), nor one k3 lists (the keys of k2), was published.
    for (const p of publications(sim)) {
      for (const m of names as MemberId[]) {
        for (const k of [k2, k3]) expect(base64Encode(p.pub)).not.toBe(signingKeyOf(k!, m));
      }
    }
    expect(sim.warnings()).toEqual([]);
  });

  it('a data packet made with a published key is refused by every member, whose state is that of a run without it; in k1, where every member published, nothing verifies any more', async () => {
    const sim = await aliceMakesEveryChange(42);
    const [k0, k1] = subsessions(sim.member('bob').session.snapshot());
    const attacks: InjectedAttack[] = [];
    for (const [k, where] of [[k0, 'k0'], [k1, 'k1']] as const) {
      for (const author of founders) {
        const seed = publishedSeed(sim, author, signingKeyOf(k!, author))!;
        // The insider: any other founder (each holds every message key of k).
        const insider = founders.find((m) => m !== author)!;
        const forged = await forgeAs(crypto, sim.member(insider).session.snapshot(), author, `bob in ${where}`, seed, `forged ${author} in ${where}`);
        // A valid packet of the author's in k: before the publication, every member would have read it.
        expect(forged.validUnderAuthorsKey).toBe(true);
        const warned = new Map(founders.map((n) => [n, sim.member(n).warnings.length]));
        const attack = sim.inject('published-key-forgery', insider, forged.packet, undefined);
        await sim.advance(5_000);
        refusedByAll(attack);
        // The members of k say so, typed; dave (never in k) drops it as traffic of a subsession he is not in.
        for (const n of founders) expect(attack.outcomes.find((o) => o.member === n)!.signalled).toBe(true);
        for (const n of founders) expect(sim.member(n).warnings.slice(warned.get(n)).map((w) => (w.kind === 'rejected' ? w.code : w.kind))).toEqual(['key-published']);
        attacks.push(attack);
      }
    }
    // The same published keys in k2 and k3: the members sign there with their renewed keys, so the forgeries do not even verify.
    for (const where of ['k2', 'k3']) {
      for (const author of founders) {
        const seed = publishedSeed(sim, author, signingKeyOf(k0!, author))!;
        const forged = await forgeAs(crypto, sim.member('dave').session.snapshot(), author, `bob in ${where}`, seed, `forged ${author} in ${where}`);
        expect(forged.validUnderAuthorsKey).toBe(false);
        const attack = sim.inject('published-key-forgery', dave, forged.packet, undefined);
        await sim.advance(5_000);
        refusedByAll(attack);
        attacks.push(attack);
      }
    }
    for (const n of names) {
      const texts = sim.member(n).delivered.map((d) => d.text);
      expect(texts.filter((t) => t.startsWith('forged'))).toEqual([]);
      // (Everything genuine was read, by dave from k2 on.)
      for (const t of ['alice in k2', 'dave in k2', 'carol in k3']) expect(texts).toContain(t);
    }
    expect(attacks.length).toBe(12);
  });

  it('a confirmation forged with a published key (a key takeover) is refused by every member, who are left as in a run without it', async () => {
    const sim = await aliceMakesEveryChange(43);
    const k0 = subsessions(sim.member('bob').session.snapshot())[0]!;
    const a0Seed = publishedSeed(sim, alice, signingKeyOf(k0, alice));
    expect(a0Seed).toBeDefined();

    // Bob, an insider, holds k0's key-confirmation key: he makes alice's confirmation of k0
    // complete in every byte, renewing her key there to one of his, signed with her published
    // key (she started k0, so she never confirmed it: it is no replay).
    const bobs = (sim.member('bob').membership as GreetingMembership).machine;
    const target = [...bobs.recent, bobs.current!].find((s) => bytesEqual(s.sid, base64Decode(k0.setup.sessionId)))!;
    expect(target.confirmKey).not.toBeNull();
    expect(target.finned).not.toContain(alice);
    const takeoverSeed = new Uint8Array(32).fill(7);
    const takeover = await crypto.ed25519PublicKey(takeoverSeed);
    const keyConfirmation = await memberKeyConfirmation(crypto, target.confirmKey!, alice, target, takeover);
    const fields = greeting(CONFIRM_TYPE[target.kind], alice, null, [], [], [], [takeover], { opRef: target.opRef, keyConfirmation });
    const confirmation = await greetingText(crypto, a0Seed!, fields);

    // The control: without the mark of the publication (`revoked`), it is a valid confirmation
    // that hands her key of k0 to bob.
    const unmarked = await afterPacket(sim, 'carol', confirmation, (state) => delete state['revoked']);
    expect(unmarked.effects.some((e) => e.kind === 'warn')).toBe(false);
    expect(signingKeyOf(unmarked.snapshot.subsessions.find((x) => x.index === k0.index)!, alice)).toBe(base64Encode(takeover));
    expect(withoutReplayMemory(unmarked.snapshot)).not.toEqual(withoutReplayMemory(unmarked.twin));

    // Every member (alice herself included) refuses it and is left as a run without it would leave it.
    for (const n of names) {
      const { effects, snapshot, twin } = await afterPacket(sim, n, confirmation);
      expect(effects.some((e) => e.kind === 'deliver')).toBe(false);
      expect(effects.filter((e) => e.kind === 'send')).toEqual([]);
      // Said so by every member of k0 (dave, included later, never held k0: quiet).
      if (n !== 'dave') expect(effects.some((e) => e.kind === 'warn' && e.warning.kind === 'membership' && e.warning.text.includes('key-published'))).toBe(true);
      // (The only difference: its signature joins the replay memory, so a repeat is known at once.)
      expect(withoutReplayMemory(snapshot)).toEqual(withoutReplayMemory(twin));
    }

    // In the relay's order, the forged confirmation and then a message "by alice" in k0 under the
    // key it names: nobody takes either; her key of k0 stays the published one everywhere.
    const underTakeover = await forgeAs(crypto, sim.member('bob').session.snapshot(), alice, 'bob in k0', takeoverSeed, 'alice, taken over');
    const confirmed = sim.inject('published-key-confirmation', alice, confirmation, undefined);
    await sim.advance(5_000);
    const data = sim.inject('published-key-takeover', alice, underTakeover.packet, undefined);
    await sim.advance(5_000);
    for (const attack of [confirmed, data]) {
      expect(attack.outcomes.map((o) => o.member).sort()).toEqual([...names].sort());
      expect(attack.outcomes.filter((o) => o.delivered !== 0 || o.sent !== 0)).toEqual([]);
    }
    refusedByAll(data);
    for (const n of names) expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('alice, taken over');
    for (const n of founders) expect(signingKeyOf(subsessions(sim.member(n).session.snapshot())[0]!, alice)).toBe(signingKeyOf(k0, alice));
  });

  it("a confirmation not signed with the member's key (an insider's key takeover, nothing published) is refused by every member, who are left as in a run without it", async () => {
    const sim = await aliceMakesEveryChange(44);
    const k2 = subsessions(sim.member('bob').session.snapshot())[2]!;
    // Dave joined at k2 (his contribution's key is listed there, never published: k3 lists it) and never confirmed it.
    expect(publishedSeed(sim, dave, signingKeyOf(k2, dave))).toBeUndefined();
    const bobs = (sim.member('bob').membership as GreetingMembership).machine;
    const target = [...bobs.recent, bobs.current!].find((s) => bytesEqual(s.sid, base64Decode(k2.setup.sessionId)))!;
    expect(target.finned).not.toContain(dave);
    // Bob makes dave's confirmation of k2 with a valid MAC, renewing dave's key to his own, signed with that key.
    const takeoverSeed = new Uint8Array(32).fill(8);
    const takeover = await crypto.ed25519PublicKey(takeoverSeed);
    const keyConfirmation = await memberKeyConfirmation(crypto, target.confirmKey!, dave, target, takeover);
    const fields = greeting(CONFIRM_TYPE[target.kind], dave, null, [], [], [], [takeover], { opRef: target.opRef, keyConfirmation });
    const confirmation = await greetingText(crypto, takeoverSeed, fields);
    for (const n of names) {
      const { effects, snapshot, twin } = await afterPacket(sim, n, confirmation, undefined, dave);
      expect(effects.some((e) => e.kind === 'deliver')).toBe(false);
      expect(effects.filter((e) => e.kind === 'send')).toEqual([]);
      expect(effects.some((e) => e.kind === 'warn' && e.warning.kind === 'membership' && e.warning.text.includes('bad-signature'))).toBe(true);
      expect(withoutReplayMemory(snapshot)).toEqual(withoutReplayMemory(twin));
    }
    // In the relay's order, then a message "by dave" in k2 under the key it names: refused by all.
    const underTakeover = await forgeAs(crypto, sim.member('bob').session.snapshot(), dave, 'bob in k2', takeoverSeed, 'dave, taken over');
    sim.inject('forged-confirmation', dave, confirmation, undefined);
    await sim.advance(5_000);
    const data = sim.inject('takeover', dave, underTakeover.packet, undefined);
    await sim.advance(5_000);
    refusedByAll(data);
    for (const n of names) expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('dave, taken over');
    for (const n of names) expect(signingKeyOf(subsessionOf(sim.member(n).session.snapshot(), 'bob in k2'), dave)).toBe(signingKeyOf(k2, dave));
  });
});

/**
 * What `member` does with `text` from `sender` (alice) as the next relay event, and what a twin restored
 * from the same state does with a harmless packet in its place (issue 9: "the victim's state
 * must match a run without it"). `edit` changes the membership state of both before.
 */
async function afterPacket(sim: SessionSim, member: string, text: string, edit?: (state: Record<string, unknown>) => void, sender: MemberId = alice) {
  const saved = JSON.parse(JSON.stringify(sim.member(member).session.snapshot())) as SessionSnapshot & { membership: { state: Record<string, unknown> } };
  edit?.(saved.membership.state);
  const run = async (packet: string) => {
    const snapshot = JSON.parse(JSON.stringify(saved)) as SessionSnapshot;
    const random = seededRandom(99).bytes;
    const session = Session.restore(snapshot, { crypto, random }, sim.membershipKind.restore(snapshot.membership, member as MemberId, crypto, random), SIM_CONFIG, { atHead: true });
    const effects = await session.receive({ kind: 'packet', seq: sim.seq + 1, sender, text: packet, atMs: sim.nowMs }, sim.nowMs);
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
