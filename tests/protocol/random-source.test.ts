/**
 * Issue 9 §2, random source: the engine refuses a random source that repeats (random.ts
 * checkedRandom, used by the Session for IVs and by the membership for contributions), so a
 * stuck or replayed generator never seals two packets with one IV or contributes twice.
 */
import { describe, expect, it } from 'vitest';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import { createMembership } from '../../src/protocol/greeting/machine.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { checkedRandom, RANDOM_CHECKED_MIN_BYTES, RANDOM_REPEAT_WINDOW, type RandomSource } from '../../src/protocol/random.js';
import { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { Session } from '../../src/protocol/session/session.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { SessionSim } from '../sim/session-harness.js';

/** A generator replayed from the start every `period` draws (a VM snapshot, a stuck seed). */
function cycling(seed: number, period: number): RandomSource {
  let rng = seededRandom(seed);
  let n = 0;
  return (length) => {
    if (n++ % period === 0) rng = seededRandom(seed);
    return rng.bytes(length);
  };
}

describe('checkedRandom (issue 9 §2)', () => {
  it('passes an honest source, refuses a repeat, an all-zero draw and a short answer', () => {
    const honest = checkedRandom(seededRandom(1).bytes);
    for (let i = 0; i < 2 * RANDOM_REPEAT_WINDOW; i++) honest(12);
    const replay = checkedRandom(cycling(2, 3));
    replay(12);
    replay(32);
    replay(12);
    expect(() => replay(12)).toThrow(expect.objectContaining({ code: 'bad-random' }));
    expect(() => checkedRandom((n) => new Uint8Array(n))(32)).toThrow(expect.objectContaining({ code: 'bad-random' }));
    expect(() => checkedRandom(() => new Uint8Array(4))(12)).toThrow(expect.objectContaining({ code: 'bad-random' }));
    // Short draws (retry jitter) may repeat honestly.
    const short = checkedRandom(() => new Uint8Array(RANDOM_CHECKED_MIN_BYTES - 1).fill(7));
    short(RANDOM_CHECKED_MIN_BYTES - 1);
    expect(short(RANDOM_CHECKED_MIN_BYTES - 1)).toHaveLength(RANDOM_CHECKED_MIN_BYTES - 1);
  });
});

describe('Session with a repeating random source', () => {
  it('refuses to seal with a repeated IV: no packet leaves, the others never see two packets with one IV', async () => {
    const sim = new SessionSim(nobleProvider, 61);
    for (const n of ['alice', 'bob']) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(['bob'] as MemberId[], now));
    await sim.settle();
    const alice = sim.member('alice');
    // The app restarts with a generator that replays itself every 2 draws.
    alice.rng.bytes = cycling(9, 2);
    sim.restartFrom('alice', alice.session.snapshot());
    await sim.act('alice', (s, now) => s.send('one', now));
    await sim.act('alice', (s, now) => s.send('two', now));
    const posted = sim.posted.length;
    await expect(sim.act('alice', (s, now) => s.send('three', now))).rejects.toMatchObject({ code: 'bad-random' });
    expect(sim.posted.length).toBe(posted);
    await sim.settle();
    const ivs = sim.dataPackets().filter((p) => p.sender === 'alice').map((p) => {
      const packet = decodePacket(p.text);
      return packet.kind === 'data' ? Buffer.from(packet.iv).toString('hex') : '';
    });
    expect(new Set(ivs).size).toBe(ivs.length);
    expect(sim.member('bob').delivered.map((d) => d.text)).toEqual(['one', 'two']);
  });

  it('the membership refuses to contribute twice with one draw', async () => {
    const random = cycling(5, 4);
    const deps = { crypto: nobleProvider, random, keys: { staticKey: () => undefined } };
    const alice = new GreetingMembership(createMembership({ self: 'alice' as MemberId, staticSeed: seededRandom(3).bytes(32) }), deps);
    const session = new Session('alice' as MemberId, { crypto: nobleProvider, random }, alice);
    await session.receive({ kind: 'joined', seq: 1, joined: ['alice'] as MemberId[], members: ['alice'] as MemberId[] }, 0);
    let refused = false;
    for (let i = 0; i < 6 && !refused; i++) {
      try {
        await session.refresh(i);
      } catch (e) {
        expect(e).toMatchObject({ code: expect.stringMatching(/bad-random|invalid-state/) });
        refused = (e as { code: string }).code === 'bad-random';
      }
    }
    expect(refused).toBe(true);
  });
});
