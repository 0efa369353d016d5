/**
 * Issue 9 §3 deniability for members who stay (mpENC §6.1.1, §6.1): a member's confirmation of a
 * new subsession (async-groups rule 5) carries a fresh signing key; once the subsession before
 * is over (every member who confirmed it gave its last word, rule 14) and every one of them acked
 * our last message there, we publish our key of it. Receivers then refuse what comes under it;
 * it forges nothing in the next subsessions (they use the renewed keys); a member who slept
 * through it all still reads, in the relay's order, what was sent before the publication.
 */
import { describe, expect, it } from 'vitest';
import { base64Encode, utf8Encode } from '../../src/protocol/bytes.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { openPublishedKey } from '../../src/protocol/packets/published-key.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { forgeAs, publications, signingKeyOf, subsessionOf } from '../helpers/deniability.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const carol = 'carol' as MemberId;
const dave = 'dave' as MemberId;

const keyOf = signingKeyOf;

/** An insider (its saved state) signs a message "by carol" with `seed`, in the subsession that holds `where`. */
const forgeAsCarol = (insider: SessionSnapshot, where: string, seed: Uint8Array, text: string) =>
  forgeAs(crypto, insider, carol, where, seed, text).then(({ packet, validUnderAuthorsKey }) => ({ packet, validUnderCarolsKey: validUnderAuthorsKey }));

/** alice, bob, carol, dave: a group (k0); dave's phone sleeps; alice refreshes (k1); carol writes; alice refreshes (k2); bob refreshes (k3). */
async function history(seed: number): Promise<SessionSim> {
  const names = ['alice', 'bob', 'carol', 'dave'];
  const sim = new SessionSim(crypto, seed, SIM_CONFIG, await greetingMembershipKind(crypto, names));
  for (const n of names) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  await sim.act('alice', (s, now) => s.include(['bob', 'carol', 'dave'] as MemberId[], now));
  await sim.advance(1_000);
  await sim.act('carol', (s, now) => s.send('carol in k0', now));
  await sim.advance(2_000);
  sim.asleep.add(dave);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(2_000);
  await sim.act('carol', (s, now) => s.send('carol in k1', now));
  await sim.advance(2_000);
  await sim.act('bob', (s, now) => s.send('bob in k1', now));
  await sim.advance(2_000);
  await sim.act('alice', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  await sim.act('carol', (s, now) => s.send('carol in k2', now));
  await sim.advance(5_000);
  // k2 lists carol's key of k1 as hers until her confirmation renews it, and a proposal made
  // before that renewal was seen may list it again: it is free once k3 replaces k2.
  await sim.act('bob', (s, now) => s.refresh(now));
  await sim.advance(5_000);
  return sim;
}

describe('deniability for members who stay: a signing key per subsession (issue 9 §3)', () => {
  it('carol publishes her key of k1 once k1 is over and acked and no later subsession lists it; k1-messages under it are refused after', async () => {
    const sim = await history(21);
    const alice = sim.member('alice').session.snapshot();
    const k1 = subsessionOf(alice, 'carol in k1');
    const k2 = subsessionOf(alice, 'carol in k2');
    // Her confirmation of k2 renewed her key: k1 and k2 have different keys of hers.
    expect(keyOf(k2, carol)).not.toBe(keyOf(k1, carol));
    const pubs = publications(sim).filter((p) => p.sender === carol);
    expect(pubs.map((p) => base64Encode(p.pub))).toContain(keyOf(k1, carol));
    const published = pubs.find((p) => base64Encode(p.pub) === keyOf(k1, carol))!;
    // The publication is hers (static key) and comes after her last message of k1 in the relay order.
    const event = sim.posted.find((e) => e.seq === published.seq)!;
    const packet = decodePacket(event.text);
    if (packet.kind !== 'greeting') throw new Error('not a greeting');
    const staticPub = await crypto.ed25519PublicKey(await crypto.sha256(utf8Encode('static:carol')));
    expect(base64Encode(await openPublishedKey(crypto, packet, carol, staticPub))).toBe(keyOf(k1, carol));
    const lastOfCarolInK1 = sim.posted.filter((e) => e.sender === carol && e.seq < published.seq);
    expect(lastOfCarolInK1.length).toBeGreaterThan(0);
    // Nobody published a key still in use: no key of the current subsession (k3) was published.
    const k3 = alice.subsessions.find((s) => s.index === Math.max(...alice.subsessions.map((x) => x.index)))!;
    expect(k3.index).toBeGreaterThan(k2.index);
    for (const p of publications(sim)) for (const m of ['alice', 'bob', 'carol', 'dave'] as MemberId[]) expect(base64Encode(p.pub)).not.toBe(keyOf(k3, m));
    for (const n of ['alice', 'bob']) expect(subsessionOf(sim.member(n).session.snapshot(), 'carol in k1').published).toContain(carol);

    // An insider (bob's state) forges carol in k1 with her published seed: a valid packet, refused by all who are awake.
    const forgedK1 = await forgeAsCarol(sim.member('bob').session.snapshot(), 'carol in k1', published.seed, 'forged in k1');
    expect(forgedK1.validUnderCarolsKey).toBe(true);
    const before = sim.warnings().length;
    const attack = sim.inject('published-key-forgery', 'bob' as MemberId, forgedK1.packet, undefined);
    await sim.advance(5_000);
    for (const n of ['alice', 'bob']) {
      expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('forged in k1');
      expect(sim.member(n).warnings.some((w) => w.kind === 'rejected' && w.code === 'key-published')).toBe(true);
    }
    expect(attack.outcomes.filter((o) => o.delivered > 0)).toEqual([]);
    expect(sim.warnings().slice(before).every((w) => w.kind === 'rejected' && w.code === 'key-published')).toBe(true);
  });

  it('the published key forges nothing in k2 or later (k4): her messages there are signed with the renewed keys', async () => {
    const sim = await history(22);
    const carolsK1 = publications(sim).find((p) => p.sender === carol && base64Encode(p.pub) === keyOf(subsessionOf(sim.member('alice').session.snapshot(), 'carol in k1'), carol));
    expect(carolsK1).toBeDefined();
    const forgedK2 = await forgeAsCarol(sim.member('bob').session.snapshot(), 'carol in k2', carolsK1!.seed, 'forged in k2');
    expect(forgedK2.validUnderCarolsKey).toBe(false);
    sim.inject('published-key-forgery', 'bob' as MemberId, forgedK2.packet, undefined);
    await sim.advance(5_000);
    // One more subsession (k4): carol renews again; the k1 key signs nothing there either.
    await sim.act('bob', (s, now) => s.refresh(now));
    await sim.advance(5_000);
    await sim.act('carol', (s, now) => s.send('carol in k4', now));
    await sim.advance(5_000);
    const forgedK4 = await forgeAsCarol(sim.member('bob').session.snapshot(), 'carol in k4', carolsK1!.seed, 'forged in k4');
    expect(forgedK4.validUnderCarolsKey).toBe(false);
    sim.inject('published-key-forgery', 'bob' as MemberId, forgedK4.packet, undefined);
    await sim.advance(5_000);
    for (const n of ['alice', 'bob']) {
      const texts = sim.member(n).delivered.map((d) => d.text);
      expect(texts).toContain('carol in k4');
      expect(texts).not.toContain('forged in k2');
      expect(texts).not.toContain('forged in k4');
    }
  });

  it('a saved state from before renewals (no ownKeys, renewal, revoked, signingKeys) restores: its member confirms and renews, and is read', async () => {
    const names = ['alice', 'bob', 'carol'];
    const sim = new SessionSim(crypto, 24, SIM_CONFIG, await greetingMembershipKind(crypto, names));
    for (const n of names) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
    await sim.advance(2_000);
    // Bob's saved state in the format of before issue 9 §3's renewal: none of the new fields.
    const old = JSON.parse(JSON.stringify(sim.member('bob').session.snapshot())) as SessionSnapshot & { membership: { state: Record<string, unknown> } };
    const state = old.membership.state;
    for (const field of ['ownKeys', 'renewal', 'revoked']) delete state[field];
    for (const sub of [state['current'], ...(state['recent'] as unknown[])] as (Record<string, unknown> | null)[]) if (sub !== null) delete sub['signingKeys'];
    sim.restartFrom('bob', old);
    await sim.advance(2_000);
    await sim.act('alice', (s, now) => s.refresh(now));
    await sim.advance(5_000);
    await sim.act('bob', (s, now) => s.send('bob after restoring an old state', now));
    await sim.advance(5_000);
    const k1 = subsessionOf(sim.member('alice').session.snapshot(), 'bob after restoring an old state');
    expect(keyOf(k1, 'bob' as MemberId)).not.toBe(keyOf(sim.member('alice').session.snapshot().subsessions[0]!, 'bob' as MemberId));
    for (const n of ['alice', 'carol']) expect(sim.member(n).delivered.map((d) => d.text)).toContain('bob after restoring an old state');
    expect(sim.warnings()).toEqual([]);
  });

  it('dave, asleep through it all, wakes later: he reads what came before the publication, in order, with no warning', async () => {
    const sim = await history(23);
    expect(publications(sim).some((p) => p.sender === carol)).toBe(true);
    const warned = sim.member('dave').warnings.length;
    sim.asleep.delete(dave);
    await sim.advance(30_000);
    await sim.act('carol', (s, now) => s.send('carol after dave woke', now));
    await sim.advance(30_000);
    const texts = sim.member('dave').delivered.map((d) => d.text);
    for (const t of ['carol in k0', 'carol in k1', 'bob in k1', 'carol in k2', 'carol after dave woke']) expect(texts).toContain(t);
    expect(sim.member('dave').warnings.slice(warned)).toEqual([]);
    // And nobody else was warned about anything in the whole run.
    expect(sim.warnings()).toEqual([]);
  });
});
