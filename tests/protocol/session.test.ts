import { describe, expect, it } from 'vitest';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { chat3 } from '../helpers/three-members.js';

const crypto = nobleProvider;


describe('Session (mpENC §4.2 HybridSession) with scripted membership', () => {
  it('starts a subsession, delivers messages to everyone and reaches full acks', async () => {
    const sim = await chat3();
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).session.members()).toEqual(['alice', 'bob', 'carol']);
    await sim.act('alice', (s, now) => s.send('hello', now));
    await sim.settle();
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).delivered.map((d) => d.text)).toEqual(['hello']);
    const id = sim.member('alice').delivered[0]!.id;
    expect(sim.member('alice').session.status(id)).toBe('waiting');
    expect(sim.member('alice').session.unacked(id)).toEqual(['bob', 'carol']);
    // bob and carol auto-ack after the batching delay
    await sim.advance(1_000);
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).session.status(id)).toBe('fully-acked');
    expect(sim.member('alice').session.unacked(id)).toEqual([]);
    expect(sim.warnings()).toEqual([]);
  });

  it('a delivered message carries the relay time of its packet (ours: when we sent it)', async () => {
    const sim = await chat3(3);
    const sentAt = sim.nowMs;
    await sim.act('alice', (s, now) => s.send('hello', now));
    const packet = sim.posted[sim.posted.length - 1]!;
    sim.nowMs += 60_000; // the others read it a minute later
    await sim.settle();
    expect(sim.member('alice').delivered[0]!.atMs).toBe(sentAt);
    for (const n of ['bob', 'carol']) expect(sim.member(n).delivered[0]!.atMs, n).toBe(packet.atMs);
  });

  it('replies carry parents; the log order and real parents agree everywhere', async () => {
    const sim = await chat3(2);
    await sim.act('alice', (s, now) => s.send('one', now));
    await sim.act('bob', (s, now) => s.send('concurrent', now));
    await sim.settle();
    await sim.act('carol', (s, now) => s.send('reply', now));
    await sim.settle();
    await sim.advance(2_000);
    const orders = ['alice', 'bob', 'carol'].map((n) => sim.member(n).session.entries().map((e) => e.body.type === 'payload' && e.body.text));
    expect(orders[0]).toEqual(orders[1]);
    expect(orders[0]).toEqual(orders[2]);
    expect(orders[0]![2]).toBe('reply');
    const log = sim.member('alice').session.messages();
    const reply = log.order()[2]!;
    expect(log.parents(reply).length).toBe(2);
    expect(log.ancestors(reply).size).toBe(2);
    expect(sim.warnings()).toEqual([]);
  });

  it('heals a lossy member through resends of others', async () => {
    const sim = await chat3(3);
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('lost for carol', now));
    await sim.settle();
    expect(sim.member('carol').delivered).toEqual([]);
    sim.faults.loss.clear();
    await sim.advance(5_000);
    expect(sim.member('carol').delivered.map((d) => d.text)).toEqual(['lost for carol']);
    const id = sim.member('alice').delivered[0]!.id;
    for (const n of ['alice', 'bob', 'carol']) expect(sim.member(n).session.status(id)).toBe('fully-acked');
    expect(sim.warnings()).toEqual([]);
  });

  it('a reader who says nothing is pending; one who writes long after without acking is late, and named', async () => {
    const sim = await chat3(4);
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('never seen', now));
    await sim.advance(25_000);
    // carol said nothing since (her phone may be asleep): no warning (async-groups rule 14)
    expect(sim.member('alice').warnings).toEqual([]);
    expect(sim.member('alice').session.status(sim.member('alice').delivered[0]!.id)).toBe('waiting');
    await sim.act('carol', (s, now) => s.send('talking without having seen it', now));
    await sim.settle();
    const warning = sim.member('alice').warnings.find((w) => w.kind === 'not-fully-acked');
    expect(warning).toMatchObject({ kind: 'not-fully-acked', missing: ['carol'] });
    const id = sim.member('alice').delivered[0]!.id;
    expect(sim.member('alice').effects.filter((e) => e.kind === 'status' && e.id === id).map((e) => e.kind === 'status' && e.status)).toEqual([
      'waiting',
      'late',
    ]);
    expect(sim.member('alice').session.status(id)).toBe('late');
  });

  it('leaves with a FIN and a consistent close, then leaves the channel', async () => {
    const sim = await chat3(5);
    await sim.act('alice', (s, now) => s.send('bye all', now));
    await sim.settle();
    await sim.act('bob', (s, now) => s.leave(now));
    await sim.advance(3_000);
    const bob = sim.member('bob');
    expect(bob.session.state()).toBe('left');
    expect(bob.effects.some((e) => e.kind === 'notice' && e.notice.kind === 'subsession-closed' && e.notice.consistent)).toBe(true);
    expect(sim.channel).toEqual(['alice', 'carol']);
    expect(sim.member('alice').effects.some((e) => e.kind === 'notice' && e.notice.kind === 'member-parting')).toBe(true);
    await expect(bob.session.send('too late', sim.nowMs)).rejects.toThrow(ProtocolError);
    expect(sim.warnings()).toEqual([]);
  });

  it('switches subsessions when an operation completes; the old one shuts down consistently', async () => {
    const sim = await chat3(6);
    sim.addMember('dave');
    sim.join('dave');
    await sim.act('alice', (s, now) => s.send('before', now));
    await sim.settle();
    await sim.act('bob', (s, now) => s.include(['dave'] as MemberId[], now));
    await sim.settle();
    await sim.act('carol', (s, now) => s.send('after', now));
    await sim.advance(5_000);
    for (const n of ['alice', 'bob', 'carol', 'dave']) {
      expect(sim.member(n).session.members()).toEqual(['alice', 'bob', 'carol', 'dave']);
    }
    expect(sim.member('dave').delivered.map((d) => d.text)).toEqual(['after']);
    expect(sim.member('alice').delivered.map((d) => d.text)).toEqual(['before', 'after']);
    const closed = sim.member('alice').effects.filter((e) => e.kind === 'notice' && e.notice.kind === 'subsession-closed');
    expect(closed).toEqual([{ kind: 'notice', notice: { kind: 'subsession-closed', subsession: 0, consistent: true } }]);
    expect(sim.warnings()).toEqual([]);
  });

  it('never accepts tampered data packets (an alarm at once, rule 12) and ignores replays', async () => {
    const sim = await chat3(7);
    await sim.advance(60_000);
    await sim.act('alice', (s, now) => s.send('genuine', now));
    await sim.settle();
    const genuine = sim.posted.filter((p) => p.text.startsWith('?mpENC:')).at(-1)!;
    // replay: a duplicate, silently ignored
    sim.post('carol' as MemberId, genuine.text);
    await sim.settle();
    expect(sim.member('bob').warnings).toEqual([]);
    // tamper: flip a bit inside the ciphertext; it claims our subsession (its hint) and comes
    // from a member who holds our key, yet verifies under none: an alarm, not a wait
    const chars = [...genuine.text];
    const at = chars.length - 10;
    chars[at] = chars[at] === 'A' ? 'B' : 'A';
    sim.post('carol' as MemberId, chars.join(''));
    await sim.settle();
    expect(sim.member('bob').warnings).toEqual([{ kind: 'fork', sender: 'carol', seq: sim.seq }]);
    expect(sim.member('bob').delivered.map((d) => d.text)).toEqual(['genuine']);
  });

  it('traffic of a subsession we are not in is dropped quietly; a packet of a member of ours that verifies nowhere is an alarm', async () => {
    const sim = await chat3(8);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    await sim.act('alice', (s, now) => s.send('not for dave', now));
    await sim.advance(6 * 60_000);
    expect(sim.member('dave').warnings).toEqual([]);
    expect(sim.member('dave').delivered).toEqual([]);
    // another group's packet, posted in the name of a member of ours who holds our keys: it
    // seals under ours (rule 7), so a packet of it that verifies under none is an alarm (rule 12)
    const other = new SessionSim(crypto, 99);
    for (const n of ['alice', 'bob']) {
      other.addMember(n);
      other.join(n);
    }
    await other.act('alice', (s, now) => s.include(['bob'] as MemberId[], now));
    await other.settle();
    await other.act('alice', (s, now) => s.send('elsewhere', now));
    const foreign = other.posted.filter((p) => p.text.startsWith('?mpENC:')).at(-1)!;
    sim.post('carol' as MemberId, foreign.text);
    await sim.advance(6 * 60_000);
    expect(sim.member('bob').warnings).toEqual([{ kind: 'fork', sender: 'carol', seq: sim.seq }]);
    expect(sim.member('dave').warnings).toEqual([]);
  });

  it("rule 5: a member's data waits for its confirmation (ordered before it), then is accepted", async () => {
    const sim = await chat3(10);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    // carol is asleep: her inbox waits while the others include dave and bob confirms and writes
    const carol = sim.member('carol');
    const stash: typeof carol.inbox = [];
    await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
    for (let i = 0; i < 200; i++) {
      stash.push(...carol.inbox.splice(0));
      if (!(await sim.deliverOne())) break;
    }
    await sim.act('bob', (s, now) => s.send('from bob', now));
    stash.push(...carol.inbox.splice(0));
    // she wakes, and the transport shows her bob's message before his confirmation (Covey's
    // relay never does: this is the gate doing its job)
    const confirm = stash.findIndex((e) => e.kind === 'packet' && e.sender === 'bob' && e.text.startsWith('?covey-test-confirm:'));
    expect(confirm).toBeGreaterThanOrEqual(0);
    const data = stash.pop()!;
    stash.splice(confirm, 0, data);
    const before = carol.delivered.length;
    for (const event of stash.slice(0, confirm + 1)) await sim.apply(carol, await carol.session.receive(event, sim.nowMs));
    expect(carol.delivered.length).toBe(before); // held: bob has not confirmed yet
    carol.inbox.push(...stash.slice(confirm + 1));
    await sim.settle();
    expect(carol.delivered.slice(before).map((d) => d.text)).toEqual(['from bob']);
    expect(carol.warnings).toEqual([]);
  });

  it('issue 8 point 4: the FIN shutdown of the old subsession waits for no sleeper; the new one is used at once', async () => {
    const sim = await chat3(12);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    const carol = sim.member('carol');
    const stash: typeof carol.inbox = [];
    const withoutCarol = async () => {
      for (let i = 0; i < 10_000; i++) {
        stash.push(...carol.inbox.splice(0));
        if (!(await sim.deliverOne())) return;
      }
    };
    await sim.act('alice', (s, now) => s.send('before', now));
    await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
    await withoutCarol();
    // carol sleeps through the include: the others moved on without her FIN or her confirmation
    await sim.act('bob', (s, now) => s.send('while carol sleeps', now));
    await withoutCarol();
    for (const n of ['alice', 'bob', 'dave']) expect(sim.member(n).session.members(), n).toEqual(['alice', 'bob', 'carol', 'dave']);
    for (const n of ['alice', 'dave']) expect(sim.member(n).delivered.map((d) => d.text), n).toContain('while carol sleeps');
    // The old subsession is still shutting down (carol's last word is missing): not closed, not blocking.
    const closed = (n: string) => sim.member(n).effects.filter((e) => e.kind === 'notice' && e.notice.kind === 'subsession-closed');
    expect(closed('alice')).toEqual([]);
    // carol wakes: she catches up, confirms, sends her last word; everyone closes the old one consistently.
    carol.inbox.push(...stash);
    await sim.advance(5_000);
    expect(carol.delivered.map((d) => d.text)).toEqual(['before', 'while carol sleeps']);
    for (const n of ['alice', 'bob', 'carol']) expect(closed(n), n).toEqual([{ kind: 'notice', notice: { kind: 'subsession-closed', subsession: 0, consistent: true } }]);
    expect(sim.warnings()).toEqual([]);
  });

  it('rule 5: a member active in a subsession whose confirmation never comes is a warning; one who said nothing since is not', async () => {
    const sim = await chat3(11);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    // carol sleeps through dave's include; bob confirms and writes; dave confirms and says nothing
    const carol = sim.member('carol');
    const stash: typeof carol.inbox = [];
    await sim.act('alice', (s, now) => s.include(['dave'] as MemberId[], now));
    for (let i = 0; i < 200; i++) {
      stash.push(...carol.inbox.splice(0));
      if (!(await sim.deliverOne())) break;
    }
    await sim.act('bob', (s, now) => s.send('from bob', now));
    stash.push(...carol.inbox.splice(0));
    // bob's confirmation never reaches carol (lost, or withheld by the relay): only his message does
    const isConfirmation = (e: (typeof stash)[number], who: string) => e.kind === 'packet' && e.sender === who && e.text.startsWith('?covey-test-confirm:');
    expect(stash.some((e) => isConfirmation(e, 'bob'))).toBe(true);
    const before = carol.delivered.length;
    for (const event of stash.filter((e) => !isConfirmation(e, 'bob'))) await sim.apply(carol, await carol.session.receive(event, sim.nowMs));
    expect(carol.delivered.length).toBe(before); // held until his confirmation
    expect(carol.warnings).toEqual([]); // waiting is not yet a warning
    const config = carol.session.config;
    const later = sim.nowMs + config.pendingExpiryMs + 1;
    await sim.apply(carol, await carol.session.tick(later));
    // bob was active in the new subsession but never confirmed it: a warning naming him, and his
    // message is never shown; dave, who confirmed and then said nothing, is no warning at all.
    expect(carol.warnings.map((w) => w.kind)).toEqual(['unconfirmed-author']);
    expect(carol.warnings[0]).toMatchObject({ author: 'bob' });
    expect(carol.delivered.length).toBe(before);
  });

});

describe('Session save and load (mpENC §6.3)', () => {
  it('restores an identical session: same snapshot, same behaviour', async () => {
    const sim = await chat3(10);
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('one', now));
    await sim.act('bob', (s, now) => s.send('two', now));
    await sim.settle();
    sim.faults.loss.clear();
    const alice = sim.member('alice');
    const before = JSON.stringify(alice.session.snapshot());
    expect(sim.restart('alice')).toBe(true);
    expect(JSON.stringify(alice.session.snapshot())).toBe(before);
    expect(sim.restart('carol')).toBe(true);
    await sim.advance(10_000);
    // 'one' and 'two' are concurrent: their display order is by message id (the same everywhere).
    const orders = ['alice', 'bob', 'carol'].map((n) => sim.member(n).session.entries().map((e) => e.body.type === 'payload' && e.body.text));
    expect([...orders[0]!].sort()).toEqual(['one', 'two']);
    for (const order of orders) expect(order).toEqual(orders[0]);
    expect(sim.warnings()).toEqual([]);
  });

  it('keeps buffered packets across a restart', async () => {
    const sim = await chat3(11);
    const bob = sim.member('bob');
    const carol = sim.member('carol');
    await sim.act('alice', (s, now) => s.send('first', now));
    const first = bob.inbox.pop()!;
    // carol reads alice's message and replies to it
    for (const event of carol.inbox.splice(0)) await sim.apply(carol, await carol.session.receive(event, sim.nowMs));
    await sim.act('carol', (s, now) => s.send('second', now));
    const second = bob.inbox.pop()!;
    // bob gets the reply first: it waits for its parent, across a restart
    await sim.apply(bob, await bob.session.receive(second, sim.nowMs));
    expect(bob.delivered).toEqual([]);
    expect(bob.session.snapshot().subsessions[0]!.pending.length).toBe(1);
    expect(sim.restart('bob')).toBe(true);
    await sim.apply(bob, await bob.session.receive(first, sim.nowMs));
    expect(bob.delivered.map((d) => d.text)).toEqual(['first', 'second']);
    await sim.advance(10_000);
    expect(sim.warnings()).toEqual([]);
  });

  it('refuses a snapshot of another version', async () => {
    const sim = await chat3(12);
    const snapshot = { ...sim.member('alice').session.snapshot(), version: 99 } as unknown as SessionSnapshot;
    expect(() => Session.restore(snapshot, { crypto, random: () => new Uint8Array() }, sim.member('alice').membership)).toThrow(ProtocolError);
  });
});

describe('Session warnings and presence (mpENC §2.3, §3.5, §4.3)', () => {
  it('a shutdown that cannot reach consistency closes with a warning naming who is missing', async () => {
    const sim = await chat3(20);
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.leave(now));
    await sim.advance(40_000);
    const alice = sim.member('alice');
    expect(alice.session.state()).toBe('left');
    expect(alice.warnings).toContainEqual({ kind: 'shutdown-inconsistent', subsession: 0, missing: ['carol'] });
  });

  it('a message whose parent never comes expires with a warning', async () => {
    const config = { ...SIM_CONFIG, reliability: { ...SIM_CONFIG.reliability, maxResends: 0 }, pendingExpiryMs: 10_000 };
    const sim = new SessionSim(crypto, 21, config);
    for (const n of ['alice', 'bob', 'carol']) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
    await sim.settle();
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('parent', now));
    await sim.settle();
    sim.faults.loss.clear();
    await sim.act('bob', (s, now) => s.send('child', now));
    await sim.advance(11_000);
    expect(sim.member('carol').warnings.map((w) => w.kind)).toContain('missing-parents-expired');
    expect(sim.member('carol').delivered).toEqual([]);
  });

  it('heartbeats keep members present; a silent member is reported expired, then back', async () => {
    const config = { ...SIM_CONFIG, presence: { heartbeatIntervalMs: 1_000, expiryMs: 4_000 } };
    const sim = new SessionSim(crypto, 23, config);
    for (const n of ['alice', 'bob', 'carol']) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
    await sim.advance(10_000);
    expect(sim.member('alice').session.expired()).toEqual([]);
    const heartbeats = sim.posted.filter((p) => p.sender === 'bob').length;
    expect(heartbeats).toBeGreaterThan(3);
    // carol's packets stop reaching alice
    sim.faults.loss.set('alice' as MemberId, 1);
    await sim.advance(6_000);
    expect(sim.member('alice').session.expired()).toEqual(['bob', 'carol']);
    const notices = sim.member('alice').effects.filter((e) => e.kind === 'notice' && e.notice.kind === 'presence');
    expect(notices.length).toBeGreaterThan(0);
    sim.faults.loss.clear();
    await sim.advance(3_000);
    expect(sim.member('alice').session.expired()).toEqual([]);
  });

  it('a manual explicit ack acks everything seen, and needs no ack itself', async () => {
    const sim = await chat3(25);
    await sim.act('bob', (s, now) => s.send('please ack', now));
    await sim.settle();
    const id = sim.member('bob').delivered[0]!.id;
    await sim.act('alice', (s, now) => s.ack(now));
    await sim.settle();
    expect(sim.member('bob').session.unacked(id)).toEqual(['carol']);
    const ackId = sim.member('alice').session.transcripts()[0]!.lastBy('alice' as MemberId)!;
    expect(sim.member('alice').session.transcripts()[0]!.get(ackId).body).toEqual({ type: 'explicit-ack', manual: true });
    expect(sim.member('bob').session.status(ackId)).toBe('none');
    await sim.advance(1_000);
    expect(sim.member('bob').session.status(id)).toBe('fully-acked');
  });

  it('refuses user actions the session cannot take now', async () => {
    const sim = new SessionSim(crypto, 24);
    sim.addMember('alice');
    sim.join('alice');
    await sim.settle();
    const alice = sim.member('alice').session;
    await expect(alice.send('nobody to read it', sim.nowMs)).rejects.toMatchObject({ code: 'invalid-state' });
    await expect(alice.exclude(['alice'] as MemberId[], sim.nowMs)).rejects.toMatchObject({ code: 'invalid-state' });
    expect(alice.members()).toEqual(['alice']);
    // leaving with no subsession leaves the channel at once
    const effects = await alice.leave(sim.nowMs);
    expect(effects.map((e) => e.kind)).toEqual(['leave', 'notice']);
  });
});
