import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_MESSAGE_PARENTS, Transcript } from '../../src/protocol/transcript/transcript.js';
import { PendingMessages } from '../../src/protocol/transcript/pending.js';
import { ingest } from '../../src/protocol/transcript/ingest.js';
import { MessageLog } from '../../src/protocol/transcript/message-log.js';
import type { TranscriptMessage } from '../../src/protocol/transcript/message.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { randomDag, type Body } from './transcript-dag.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';

const [alice, bob, carol, mallory] = ['alice', 'bob', 'carol', 'mallory'].map((x) => memberId(x)) as [MemberId, MemberId, MemberId, MemberId];

const members = [alice, bob, carol];
const msg = (id: string, author: string, parents: string[], text = id): TranscriptMessage<Body> => ({
  id,
  author: memberId(author),
  parents,
  body: { kind: 'payload', text },
});

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return undefined;
}

describe('Transcript rules (mpENC §3.4)', () => {
  it('accepts a message whose parents are present and tracks the frontier', () => {
    const t = new Transcript<Body>(members);
    expect(t.add(msg('a1', alice, []))).toBe(true);
    expect(t.add(msg('b1', bob, ['a1']))).toBe(true);
    expect(t.add(msg('c1', carol, ['a1']))).toBe(true);
    expect(t.frontier()).toEqual(['b1', 'c1']);
    expect(t.add(msg('a2', alice, ['b1', 'c1']))).toBe(true);
    expect(t.frontier()).toEqual(['a2']);
    expect(t.isAncestor('a1', 'a2')).toBe(true);
    expect(t.isAncestor('b1', 'c1')).toBe(false);
    expect(t.isAncestor('a2', 'a2')).toBe(false);
    expect([...t.ancestors('a2')].sort()).toEqual(['a1', 'b1', 'c1']);
    expect(t.children('a1')).toEqual(['b1', 'c1']);
    expect(t.entry('a2').depth).toBe(2);
  });

  it('ignores duplicates', () => {
    const t = new Transcript<Body>(members);
    t.add(msg('a1', alice, []));
    expect(t.add(msg('a1', alice, []))).toBe(false);
    expect(t.size).toBe(1);
  });

  it('reports missing parents without changing anything', () => {
    const t = new Transcript<Body>(members);
    expect(t.check(msg('b1', bob, ['a1']))).toEqual({ kind: 'missing-parents', missing: ['a1'] });
    expect(t.size).toBe(0);
  });

  it('rejects parents that are not an anti-chain', () => {
    const t = new Transcript<Body>(members);
    t.add(msg('a1', alice, []));
    t.add(msg('b1', bob, ['a1']));
    expect(code(() => t.add(msg('c1', carol, ['a1', 'b1'])))).toBe('inconsistent');
    expect(t.has('c1')).toBe(false);
  });

  it("rejects a fork of an author's own line", () => {
    const t = new Transcript<Body>(members);
    t.add(msg('a1', alice, []));
    t.add(msg('b1', bob, []));
    // alice's second message must have a1 as an ancestor
    expect(code(() => t.add(msg('a2', alice, ['b1'])))).toBe('inconsistent');
    expect(code(() => t.add(msg('a2', alice, [])))).toBe('inconsistent');
    expect(t.add(msg('a2', alice, ['a1', 'b1']))).toBe(true);
  });

  it('rejects unknown authors, repeated parents, self-parents and too many parents', () => {
    const t = new Transcript<Body>(members);
    t.add(msg('a1', alice, []));
    expect(code(() => t.add(msg('m1', mallory, [])))).toBe('unknown-member');
    expect(code(() => t.add(msg('b1', bob, ['a1', 'a1'])))).toBe('bad-value');
    expect(code(() => t.add(msg('b1', bob, ['b1'])))).toBe('inconsistent');
    const many = Array.from({ length: MAX_MESSAGE_PARENTS + 1 }, (_, i) => `p${i}`);
    expect(code(() => t.add(msg('b1', bob, many)))).toBe('limit-exceeded');
  });

  it('derives acks from parents: a reader acks by writing any later message (mpENC §3.5)', () => {
    const t = new Transcript<Body>(members);
    t.add(msg('a1', alice, []));
    expect(t.readers('a1')).toEqual([bob, carol]);
    expect(t.unackedBy('a1')).toEqual([bob, carol]);
    t.add(msg('b1', bob, ['a1']));
    expect(t.unackedBy('a1')).toEqual([carol]);
    t.add(msg('c1', carol, ['b1']));
    expect(t.unackedBy('a1')).toEqual([]);
    expect(t.ackedBy('b1', alice)).toBe(false);
  });

  it('scales: 10,000 messages from 5 authors with O(1) ancestor queries', () => {
    const authors = ['a', 'b', 'c', 'd', 'e'].map((x) => memberId(x));
    const t = new Transcript<Body>(authors);
    for (let i = 0; i < 10_000; i++) {
      const author = authors[i % 5]!;
      t.add({ id: `m${i}`, author, parents: t.frontier(), body: { kind: 'ack' } });
    }
    expect(t.size).toBe(10_000);
    expect(t.isAncestor('m0', 'm9999')).toBe(true);
    expect(t.unackedBy('m9990')).toEqual([]);
    expect(t.unackedBy('m9999')).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('pending messages and ingest', () => {
  it('parks out-of-order messages and releases them in causal order', () => {
    const t = new Transcript<Body>(members);
    const pending = new PendingMessages<Body, string>();
    const item = (m: TranscriptMessage<Body>) => ({ message: m, extra: `pkt-${m.id}`, receivedAtMs: 0 });
    const r1 = ingest(t, pending, item(msg('c1', carol, ['b1'])));
    expect(r1.buffered).toBe(true);
    const r2 = ingest(t, pending, item(msg('b1', bob, ['a1'])));
    expect(r2.buffered).toBe(true);
    expect(ingest(t, pending, item(msg('b1', bob, ['a1']))).duplicate).toBe(true);
    const r3 = ingest(t, pending, item(msg('a1', alice, [])));
    expect(r3.accepted.map((i) => i.message.id)).toEqual(['a1', 'b1', 'c1']);
    expect(pending.size).toBe(0);
  });

  it('re-parks a message still missing another parent, and rejects rule breakers on release', () => {
    const t = new Transcript<Body>(members);
    const pending = new PendingMessages<Body, null>();
    const item = (m: TranscriptMessage<Body>) => ({ message: m, extra: null, receivedAtMs: 0 });
    ingest(t, pending, item(msg('c1', carol, ['a1', 'b1'])));
    ingest(t, pending, item(msg('x1', carol, ['a1', 'a2']))); // will violate the anti-chain
    expect(ingest(t, pending, item(msg('a1', alice, []))).accepted.map((i) => i.message.id)).toEqual(['a1']);
    expect(pending.has('c1')).toBe(true);
    const r = ingest(t, pending, item(msg('a2', alice, ['a1'])));
    expect(r.rejected.map((x) => [x.item.message.id, x.error.code])).toEqual([['x1', 'inconsistent']]);
    expect(ingest(t, pending, item(msg('b1', bob, []))).accepted.map((i) => i.message.id)).toEqual(['b1', 'c1']);
  });

  it('bounds the buffer and expires entries', () => {
    const pending = new PendingMessages<Body, null>(2, 1000);
    const t = new Transcript<Body>(members);
    ingest(t, pending, { message: msg('x', bob, ['p1']), extra: null, receivedAtMs: 0 });
    ingest(t, pending, { message: msg('y', bob, ['p2']), extra: null, receivedAtMs: 500 });
    const full = ingest(t, pending, { message: msg('z', carol, ['p3']), extra: null, receivedAtMs: 600 });
    expect(full.rejected.map((r) => r.error.code)).toEqual(['limit-exceeded']);
    expect(full.buffered).toBe(false);
    expect(pending.nextExpiryMs()).toBe(1000);
    expect(pending.expire(999)).toEqual([]);
    expect(pending.expire(1000).map((i) => i.message.id)).toEqual(['x']);
    expect(pending.size).toBe(1);
    expect(pending.release('p1')).toEqual([]);
  });
});

describe('MessageLog (mpENC §4.3, §2.3)', () => {
  it('real parents of a merge are the maximal content ancestors, sorted by id whatever their order', () => {
    const four = [alice, bob, carol, mallory];
    for (const order of [['z1', 'm1', 'b1'], ['b1', 'z1', 'm1'], ['m1', 'b1', 'z1']]) {
      const t = new Transcript<Body>(four);
      const log = new MessageLog<Body>((b) => b.kind === 'payload');
      const s = log.addSubsession(t);
      const add = (m: TranscriptMessage<Body>) => {
        t.add(m);
        log.accepted(s, m.id);
      };
      add(msg('a0', alice, []));
      // Three concurrent lines (ids not in author order), one behind an ack, then a merge.
      add(msg('z1', bob, ['a0']));
      add(msg('m1', carol, ['a0']));
      add(msg('b1', mallory, ['a0']));
      add({ id: 'k1', author: bob, parents: ['z1'], body: { kind: 'ack' } });
      const byId: Record<string, string> = { z1: 'k1', m1: 'm1', b1: 'b1' };
      add(msg('a1', alice, order.map((p) => byId[p]!)));
      expect(log.parents('a1')).toEqual(['b1', 'm1', 'z1']);
    }
  });

  it('filters flow-control messages, keeps real parents and ancestors', () => {
    const t = new Transcript<Body>(members);
    const log = new MessageLog<Body>((b) => b.kind === 'payload');
    const s = log.addSubsession(t);
    const add = (m: TranscriptMessage<Body>) => {
      t.add(m);
      log.accepted(s, m.id);
    };
    add(msg('a1', alice, []));
    add({ id: 'b1', author: bob, parents: ['a1'], body: { kind: 'ack' } });
    add(msg('c1', carol, ['a1']));
    add(msg('a2', alice, ['b1', 'c1']));
    expect(log.order()).toEqual(['a1', 'c1', 'a2']);
    expect(log.parents('a2')).toEqual(['c1']);
    expect(log.parents('c1')).toEqual(['a1']);
    expect([...log.ancestors('a2')].sort()).toEqual(['a1', 'c1']);
    expect(log.hasHiddenParents('a2')).toBe(false);
    expect(log.readers('a2')).toEqual([bob, carol]);
    expect(log.unacked('a1')).toEqual([]);
    expect(log.unacked('a2')).toEqual([bob, carol]);
  });

  it('annotates a message whose parents are not the one shown above it', () => {
    const t = new Transcript<Body>(members);
    const log = new MessageLog<Body>((b) => b.kind === 'payload');
    const s = log.addSubsession(t);
    for (const m of [msg('a1', alice, []), msg('a2', alice, ['a1']), msg('b1', bob, ['a1'])]) {
      t.add(m);
      log.accepted(s, m.id);
    }
    expect(log.order()).toEqual(['a1', 'a2', 'b1']);
    expect(log.hasHiddenParents('b1')).toBe(true);
    expect(log.hasHiddenParents('a2')).toBe(false);
  });

  it('orders subsessions one after the other', () => {
    const log = new MessageLog<Body>((b) => b.kind === 'payload');
    const t0 = new Transcript<Body>(members);
    const t1 = new Transcript<Body>([alice, bob]);
    const s0 = log.addSubsession(t0);
    const s1 = log.addSubsession(t1);
    t1.add(msg('z1', alice, []));
    log.accepted(s1, 'z1');
    t0.add(msg('a1', bob, []));
    log.accepted(s0, 'a1');
    expect(log.order()).toEqual(['a1', 'z1']);
    expect(log.subsessionOf('z1')).toBe(1);
  });
});

describe('DAG properties (fast-check)', () => {
  it('any delivery order yields the same accepted set and the same log order; nothing before its parents', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 60 }), (seed, count) => {
        const rng = seededRandom(seed);
        const authors = ['m1', 'm2', 'm3', 'm4'].map((x) => memberId(x));
        const dag = randomDag(authors, count, rng.int);
        const run = (delivery: TranscriptMessage<Body>[]) => {
          const t = new Transcript<Body>(authors);
          const pending = new PendingMessages<Body, null>();
          const log = new MessageLog<Body>((b) => b.kind === 'payload');
          const s = log.addSubsession(t);
          for (const m of delivery) {
            const r = ingest(t, pending, { message: m, extra: null, receivedAtMs: 0 });
            expect(r.rejected).toEqual([]);
            for (const a of r.accepted) {
              for (const p of a.message.parents) expect(t.has(p)).toBe(true);
              const before = log.order();
              log.accepted(s, a.message.id);
              // stable: arrivals only insert; what was shown keeps its relative order
              expect(log.order().filter((id) => id !== a.message.id)).toEqual(before);
            }
          }
          expect(pending.size).toBe(0);
          return { ids: [...t.ids()].sort(), order: log.order(), parents: log.order().map((id) => log.parents(id)) };
        };
        const inOrder = run(dag);
        const shuffled = [...dag];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        // deliver some twice, too
        const withDuplicates = [...shuffled, ...shuffled.filter(() => rng.int(4) === 0)];
        const other = run(withDuplicates);
        expect(other).toEqual(inOrder);
        expect(inOrder.ids.length).toBe(dag.length);
      }),
      { numRuns: 150 },
    );
  });

  it('vector-clock ancestry agrees with a graph walk', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
        const rng = seededRandom(seed);
        const authors = ['m1', 'm2', 'm3'].map((x) => memberId(x));
        const dag = randomDag(authors, 40, rng.int);
        const t = new Transcript<Body>(authors);
        for (const m of dag) t.add(m);
        for (let k = 0; k < 30; k++) {
          const a = dag[rng.int(dag.length)]!.id;
          const b = dag[rng.int(dag.length)]!.id;
          expect(t.isAncestor(a, b)).toBe(t.ancestors(b).has(a));
        }
      }),
      { numRuns: 100 },
    );
  });
});
