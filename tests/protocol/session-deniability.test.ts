/**
 * Issue 9 §3 deniability (mpENC §6.1.1 "Publish signature keys", §6.1): once a member's shutdown
 * (FIN) is acked by every other member, it publishes its ephemeral signing key (a QUIT_DOWN v2
 * packet signed with its static key); from then on every member refuses data packets under that
 * key, so the key forges nothing new, while the transcript no longer proves who wrote what.
 */
import { describe, expect, it } from 'vitest';
import { base64Encode, utf8Encode } from '../../src/protocol/bytes.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { openPublishedKey, publishedKeyText } from '../../src/protocol/packets/published-key.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionSnapshot, SubsessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { forgeAs, publications, subsessionOf } from '../helpers/deniability.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const carol = 'carol' as MemberId;

async function group(seed: number): Promise<SessionSim> {
  const names = ['alice', 'bob', 'carol'];
  const sim = new SessionSim(crypto, seed, SIM_CONFIG, await greetingMembershipKind(crypto, names));
  for (const n of names) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
  await sim.advance(1_000);
  await sim.act('carol', (s, now) => s.send('carol was here', now));
  await sim.advance(2_000);
  return sim;
}

/**
 * What any insider (here: bob's stored state) can do with carol's published seed: a correctly
 * signed, correctly encrypted v2 packet "by carol" under her next free message key.
 */
async function forgeAsCarol(insider: SessionSnapshot, seed: Uint8Array, text: string): Promise<{ packet: string; sub: SubsessionSnapshot }> {
  const { packet, sub, validUnderAuthorsKey } = await forgeAs(crypto, insider, carol, 'carol was here', seed, text);
  // The forgery is a valid packet of carol's: her (published) key signs it.
  expect(validUnderAuthorsKey).toBe(true);
  return { packet, sub };
}

describe('deniability: published signing keys (mpENC §6.1.1)', () => {
  it('a member whose FIN all acked publishes its key; a message forged with it is refused by every member', async () => {
    const sim = await group(11);
    await sim.act('carol', (s, now) => s.leave(now));
    await sim.advance(60_000);
    expect(sim.channel).not.toContain(carol);
    // (The others publish their keys of the subsession carol left once it is over: issue 9 §3
    // for members who stay, tests/protocol/session-deniability-stay.test.ts.)
    const pubs = publications(sim).filter((p) => p.sender === carol);
    expect(pubs.length).toBe(1);
    // It is carol's, signed by her static key, and carries the seed of her signing key there.
    const event = sim.posted.find((e) => e.seq === pubs[0]!.seq)!;
    const packet = decodePacket(event.text);
    if (packet.kind !== 'greeting') throw new Error('not a greeting');
    // (greetingMembershipKind's static seeds: SHA-256("static:" ‖ name).)
    const staticPub = await crypto.ed25519PublicKey(await crypto.sha256(utf8Encode('static:carol')));
    const pub = await openPublishedKey(crypto, packet, carol, staticPub);
    for (const n of ['alice', 'bob']) {
      const sub = subsessionOf(sim.member(n).session.snapshot(), 'carol was here');
      expect(sub.setup.signingKeys.find(([m]) => m === carol)![1]).toBe(base64Encode(pub));
      expect(sub.published).toContain(carol);
    }
    // An insider forges "carol" with the published seed: every member refuses it, typed.
    const { packet: forged } = await forgeAsCarol(sim.member('bob').session.snapshot(), packet.signingKey!, 'forged by a published key');
    const before = sim.warnings().length;
    const attack = sim.inject('published-key-forgery', 'bob' as MemberId, forged, undefined);
    await sim.advance(5_000);
    for (const n of ['alice', 'bob']) {
      expect(sim.member(n).delivered.map((d) => d.text)).not.toContain('forged by a published key');
      expect(sim.member(n).warnings.some((w) => w.kind === 'rejected' && w.code === 'key-published')).toBe(true);
    }
    expect(attack.outcomes.map((o) => o.delivered)).toEqual([0, 0]);
    expect(sim.warnings().slice(before).every((w) => w.kind === 'rejected' && w.code === 'key-published')).toBe(true);

    // The mark survives a restart: a session restored from alice's snapshot refuses it too.
    const snapshot = sim.member('alice').session.snapshot();
    const restoredRandom = seededRandom(4).bytes;
    const restored = Session.restore(snapshot, { crypto, random: restoredRandom }, sim.membershipKind.restore(snapshot.membership, 'alice' as MemberId, crypto, restoredRandom), SIM_CONFIG, { atHead: true });
    const again = await restored.receive({ kind: 'packet', seq: sim.seq + 1, sender: 'bob' as MemberId, text: forged, atMs: sim.nowMs }, sim.nowMs);
    expect(again.some((e) => e.kind === 'deliver')).toBe(false);
    expect(again.some((e) => e.kind === 'warn' && e.warning.kind === 'rejected' && e.warning.code === 'key-published')).toBe(true);
    // Control: the same state without the publication's mark accepts the forgery (it is valid).
    const unmarked = JSON.parse(JSON.stringify(snapshot)) as SessionSnapshot;
    for (const sub of unmarked.subsessions) delete (sub as { published?: unknown }).published;
    const random = seededRandom(5).bytes;
    const twin = Session.restore(unmarked, { crypto, random }, sim.membershipKind.restore(unmarked.membership, 'alice' as MemberId, crypto, random), SIM_CONFIG, { atHead: true });
    const effects = await twin.receive({ kind: 'packet', seq: sim.seq + 1, sender: 'bob' as MemberId, text: forged, atMs: sim.nowMs }, sim.nowMs);
    expect(effects.some((e) => e.kind === 'deliver' && e.message.text === 'forged by a published key')).toBe(true);
  });

  it.each([
    ['online, but its copy of the FIN is lost (the shutdown times out)', 0],
    ['asleep (not awaited: the shutdown closes without its ack)', 300_000],
  ])('a member whose FIN is not acked by all publishes nothing, and still leaves: bob %s', async (_, sleepMs) => {
    const sim = await group(12);
    // Bob never gets carol's FIN; with sleepMs he also fell silent long enough to count as away.
    sim.faults.loss.set('bob' as MemberId, 1);
    await sim.advance(sleepMs);
    const leaving = sim.member('carol').effects.length;
    await sim.act('carol', (s, now) => s.leave(now));
    await sim.advance(SIM_CONFIG.finTimeoutMs + 10_000);
    expect(sim.channel).not.toContain(carol);
    const closed = sim.member('carol').effects.slice(leaving).flatMap((e) => (e.kind === 'notice' && e.notice.kind === 'subsession-closed' ? [e.notice.consistent] : []));
    expect(closed).toEqual([sleepMs === 0 ? false : true]);
    expect(publications(sim).filter((p) => p.sender === carol)).toEqual([]);
    for (const n of ['alice', 'bob']) expect(subsessionOf(sim.member(n).session.snapshot(), 'carol was here').published ?? []).not.toContain(carol);
  });

  it('a publication counts only signed by its sender\'s static key, with the seed of the key it names', async () => {
    const seedOf = (n: string) => crypto.sha256(utf8Encode(`static:${n}`));
    const carolStatic = await seedOf('carol');
    const carolPub = await crypto.ed25519PublicKey(carolStatic);
    const ephSeed = await crypto.sha256(utf8Encode('ephemeral'));
    const eph = { seed: ephSeed, pub: await crypto.ed25519PublicKey(ephSeed) };
    const greeting = (text: string) => {
      const p = decodePacket(text);
      if (p.kind !== 'greeting') throw new Error('not a greeting');
      return p;
    };
    const good = greeting(await publishedKeyText(crypto, carolStatic, carol, eph));
    expect(await openPublishedKey(crypto, good, carol, carolPub)).toEqual(eph.pub);
    // Signed by someone else's static key (bob's), naming carol: refused.
    const byBob = greeting(await publishedKeyText(crypto, await seedOf('bob'), carol, eph));
    await expect(openPublishedKey(crypto, byBob, carol, carolPub)).rejects.toMatchObject({ code: 'bad-signature' });
    // Posted by another member than its SOURCE: refused.
    await expect(openPublishedKey(crypto, good, 'bob' as MemberId, carolPub)).rejects.toMatchObject({ code: 'unknown-member' });
    // A seed that is not that of the named public key (it would retire a key nobody can use): refused.
    const other = await crypto.sha256(utf8Encode('other'));
    const mismatched = greeting(await publishedKeyText(crypto, carolStatic, carol, { seed: other, pub: eph.pub }));
    await expect(openPublishedKey(crypto, mismatched, carol, carolPub)).rejects.toMatchObject({ code: 'bad-key' });
  });
});
