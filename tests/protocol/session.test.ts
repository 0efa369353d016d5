import { describe, expect, it } from 'vitest';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { SessionSim } from '../sim/session-harness.js';

const crypto = nobleProvider;

async function chat3(seed = 1) {
  const sim = new SessionSim(crypto, seed);
  for (const n of ['alice', 'bob', 'carol']) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
  await sim.settle();
  return sim;
}

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

  it('warns, naming the member, when a reader never acks', async () => {
    const sim = await chat3(4);
    sim.faults.loss.set('carol' as MemberId, 1);
    await sim.act('alice', (s, now) => s.send('never seen', now));
    await sim.advance(25_000);
    const warning = sim.member('alice').warnings.find((w) => w.kind === 'not-fully-acked');
    expect(warning).toMatchObject({ kind: 'not-fully-acked', missing: ['carol'] });
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

  it('rejects forged and tampered data packets with a warning, and ignores replays', async () => {
    const sim = await chat3(7);
    await sim.act('alice', (s, now) => s.send('genuine', now));
    await sim.settle();
    const genuine = sim.posted.find((p) => p.text.startsWith('?mpENC:'))!;
    // replay: a duplicate, silently ignored
    sim.post('carol' as MemberId, genuine.text);
    // tamper: flip a bit inside the ciphertext
    const chars = [...genuine.text];
    const at = chars.length - 10;
    chars[at] = chars[at] === 'A' ? 'B' : 'A';
    sim.post('carol' as MemberId, chars.join(''));
    await sim.settle();
    expect(sim.member('bob').delivered.map((d) => d.text)).toEqual(['genuine']);
    expect(sim.member('bob').warnings.map((w) => w.kind)).toEqual(['rejected']);
  });

  it('messages that decrypt nowhere wait for their subsession, and expire with a warning', async () => {
    const sim = await chat3(8);
    sim.addMember('dave');
    sim.join('dave');
    await sim.settle();
    // dave sees a data packet of a subsession he is not in: it waits, then expires
    await sim.act('alice', (s, now) => s.send('not for dave', now));
    await sim.advance(6 * 60_000);
    // alice's message and the two auto-acks of it
    expect(sim.member('dave').warnings.map((w) => w.kind)).toEqual(Array(3).fill('undecryptable-expired'));
    expect(sim.member('dave').delivered).toEqual([]);
  });
});
