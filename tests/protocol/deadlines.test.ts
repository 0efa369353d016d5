/** DeadlineHeap (src/protocol/deadlines.ts): earliest first, equal deadlines in the tie-break's order whatever the history. */
import { describe, expect, it } from 'vitest';
import { DeadlineHeap } from '../../src/protocol/deadlines.js';

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A deterministic shuffle (xorshift) of `items`. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed | 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('DeadlineHeap', () => {
  it('takes due keys earliest first, equal deadlines in tie-break order, however the heap was filled', () => {
    // 200 keys on 5 deadlines, with rescheduled and deleted keys along the way (stale entries).
    const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    const deadline = (key: string): number => (Number(key.slice(1)) * 7) % 5;
    const expected = [...keys].filter((k) => !k.endsWith('3')).sort((a, b) => deadline(a) - deadline(b) || byKey(a, b));
    for (let seed = 1; seed <= 20; seed++) {
      const heap = new DeadlineHeap<string>(byKey);
      for (const key of shuffled(keys, seed)) heap.set(key, 100 + seed); // later replaced
      for (const key of shuffled(keys, seed * 31)) heap.set(key, deadline(key));
      for (const key of keys) if (key.endsWith('3')) heap.delete(key);
      expect(heap.next()).toBe(0);
      expect(heap.takeDue(2)).toEqual(expected.filter((k) => deadline(k) <= 2));
      expect(heap.takeDue(10)).toEqual(expected.filter((k) => deadline(k) > 2));
      expect(heap.size).toBe(0);
    }
  });

  it('keeps the tie-break order when keys are only added (no rebuild of the heap)', () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (let seed = 1; seed <= 20; seed++) {
      const heap = new DeadlineHeap<string>(byKey);
      for (const key of shuffled(keys, seed)) heap.set(key, 7);
      expect(heap.takeDue(7)).toEqual(keys);
    }
  });

  it('without a tie-break still takes due keys earliest first', () => {
    const heap = new DeadlineHeap<string>();
    for (const [key, at] of [['a', 3], ['b', 1], ['c', 2], ['d', 1]] as const) heap.set(key, at);
    heap.set('c', 0);
    const due = heap.takeDue(5);
    expect(due[0]).toBe('c');
    expect(new Set(due.slice(1, 3))).toEqual(new Set(['b', 'd']));
    expect(due[3]).toBe('a');
  });
});
