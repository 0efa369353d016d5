/**
 * Smoke tests of the ts-mls baseline (bench/mls.ts, bench/protocol-greet-mls.ts) on tiny groups:
 * the work really happens (every member ends in the same epoch with the same authenticator,
 * messages decrypt to what was sent) and results have the shape the benchmarks print. No timing
 * claims: only that timings are finite and non-negative.
 */
import { describe, expect, it } from 'vitest';
import { mlsAddOne, mlsCatchUp, mlsMessages, mlsRemoveOne, mlsStartGroup, mlsStartGroupWithState, type Timing } from '../../bench/mls.js';
import { GREET_MLS_TABLE_HEADERS, runGreetMlsBaseline } from '../../bench/protocol-greet-mls.js';

function expectTiming(t: Timing): void {
  expect(Number.isFinite(t.cpuMs) && t.cpuMs >= 0).toBe(true);
  expect(Number.isFinite(t.wallMs) && t.wallMs > 0).toBe(true);
}

describe('ts-mls baseline', () => {
  it('starts a group of 3: everyone joins epoch 1 and agrees', async () => {
    const r = await mlsStartGroup(3);
    expect(r).toMatchObject({ n: 3, members: 3, epoch: 1, agreed: true });
    expectTiming(r.timing);
    expectTiming(r.keyPackages);
  });

  it('a group of 1 is just createGroup (epoch 0)', async () => {
    expect(await mlsStartGroup(1)).toMatchObject({ n: 1, members: 1, epoch: 0, agreed: true });
  });

  it('adds and removes one, each from the same group (states are forked, not shared)', async () => {
    const { group } = await mlsStartGroupWithState(3);
    const added = await mlsAddOne(3, group);
    expect(added).toMatchObject({ n: 3, members: 4, epoch: 2, agreed: true });
    const removed = await mlsRemoveOne(3, group);
    expect(removed).toMatchObject({ n: 3, members: 2, epoch: 2, agreed: true });
    expect(removed.keyPackages).toEqual({ cpuMs: 0, wallMs: 0 });
    // The group given is left as it was: it can still add from epoch 1.
    expect(await mlsAddOne(3, group)).toMatchObject({ members: 4, epoch: 2, agreed: true });
    await expect(mlsAddOne(4, group)).rejects.toThrow(RangeError);
  });

  it('builds its own group when none is given', async () => {
    expect(await mlsAddOne(2)).toMatchObject({ n: 2, members: 3, epoch: 2, agreed: true });
    expect(await mlsRemoveOne(2)).toMatchObject({ n: 2, members: 1, epoch: 2, agreed: true });
    await expect(mlsRemoveOne(1)).rejects.toThrow(RangeError);
  });

  it('application messages decrypt to what was sent; per-message figures divide the totals', async () => {
    const r = await mlsMessages(5, { members: 3, warmup: 2 });
    expect(r).toMatchObject({ members: 3, count: 5, allDelivered: true });
    expectTiming(r.send);
    expectTiming(r.receive);
    expect(r.sendPerMessageMs.cpuMs).toBeCloseTo(r.send.cpuMs / 5, 9);
    expect(r.receivePerMessageMs.wallMs).toBeCloseTo(r.receive.wallMs / 10, 9);
  });

  it('catch-up: one member processes a queue from several authors, in order', async () => {
    const r = await mlsCatchUp(9, 3);
    expect(r).toMatchObject({ messages: 9, authors: 3, allDelivered: true });
    expect(r.msgsPerSec).toBeGreaterThan(0);
  });

  it('the greet baseline reports start, add and remove rows and a JSON-safe summary', async () => {
    const b = await runGreetMlsBaseline({ start: [2, 3], change: [3, 2] });
    expect(b.start.map((r) => [r.n, r.members, r.agreed])).toEqual([
      [2, 2, true],
      [3, 3, true],
    ]);
    expect(b.add.map((r) => [r.n, r.members, r.agreed])).toEqual([
      [3, 4, true],
      [2, 3, true],
    ]);
    expect(b.remove.map((r) => [r.n, r.members, r.agreed])).toEqual([
      [3, 2, true],
      [2, 1, true],
    ]);
    expect(b.rows).toHaveLength(6);
    for (const row of b.rows) expect(row).toHaveLength(GREET_MLS_TABLE_HEADERS.length);
    const json = JSON.parse(JSON.stringify(b.json)) as Record<string, Record<string, { cpuMs: number; agreed: boolean }>>;
    expect(Object.keys(json['start']!)).toEqual(['2', '3']);
    expect(json['add']!['3']!.agreed).toBe(true);
    expect(json['remove']!['2']!.cpuMs).toBeGreaterThanOrEqual(0);
  });
});
