/**
 * A min-heap of deadlines keyed by an id, for the engine's timers (issue 8 hot path: the ack
 * monitor used to scan every tracked message on each `nextDeadlineMs` call, which made a
 * catch-up of n messages cost O(n²)).
 *
 * `set(key, atMs)` replaces the key's deadline; `delete(key)` drops it. Both are O(log n): old
 * heap entries stay in the heap and are skipped when they surface (lazy deletion), and the heap
 * is rebuilt when stale entries outnumber live ones, so it never holds more than about twice the
 * live keys. `next()` is O(1) amortised, `takeDue(nowMs)` O(k log n) for k due keys.
 *
 * Equal deadlines come out in `tieBreak`'s order when one is given; without it their order
 * depends on the history of sets and deletes (so two heaps with the same deadlines, filled in
 * another order, may answer `takeDue` in another order).
 */

interface Entry<K> {
  readonly atMs: number;
  readonly key: K;
  /** Which `set` of the key made this entry; an older one is stale. */
  readonly version: number;
}

export class DeadlineHeap<K> {
  private heap: Entry<K>[] = [];
  private readonly live = new Map<K, { atMs: number; version: number }>();
  private versions = 0;

  /** `tieBreak`: orders keys of equal deadlines (negative: `a` first). */
  constructor(private readonly tieBreak?: (a: K, b: K) => number) {}

  get size(): number {
    return this.live.size;
  }

  has(key: K): boolean {
    return this.live.has(key);
  }

  get(key: K): number | undefined {
    return this.live.get(key)?.atMs;
  }

  set(key: K, atMs: number): void {
    const version = ++this.versions;
    this.live.set(key, { atMs, version });
    this.push({ atMs, key, version });
    this.compactIfStale();
  }

  delete(key: K): void {
    if (this.live.delete(key)) this.compactIfStale();
  }

  clear(): void {
    this.heap = [];
    this.live.clear();
  }

  /** The earliest live deadline. */
  next(): number | undefined {
    this.dropStaleTop();
    return this.heap[0]?.atMs;
  }

  /** Removes and returns the keys due at `nowMs`, earliest first (equal ones by `tieBreak`). */
  takeDue(nowMs: number): K[] {
    const out: K[] = [];
    for (;;) {
      this.dropStaleTop();
      const top = this.heap[0];
      if (top === undefined || top.atMs > nowMs) return out;
      this.pop();
      this.live.delete(top.key);
      out.push(top.key);
    }
  }

  /** Live keys with their deadlines (any order). */
  entries(): [K, number][] {
    return [...this.live].map(([k, v]) => [k, v.atMs]);
  }

  /** Whether `a` comes out before `b`. */
  private before(a: Entry<K>, b: Entry<K>): boolean {
    if (a.atMs !== b.atMs) return a.atMs < b.atMs;
    return this.tieBreak !== undefined && this.tieBreak(a.key, b.key) < 0;
  }

  private isStale(e: Entry<K>): boolean {
    return this.live.get(e.key)?.version !== e.version;
  }

  private dropStaleTop(): void {
    while (this.heap.length > 0 && this.isStale(this.heap[0]!)) this.pop();
  }

  private compactIfStale(): void {
    if (this.heap.length <= 64 || this.heap.length <= 2 * this.live.size) return;
    this.heap = this.heap.filter((e) => !this.isStale(e));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(e: Entry<K>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.down(0);
  }

  private down(start: number): void {
    const h = this.heap;
    const e = h[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.before(h[r]!, h[l]!) ? r : l;
      if (!this.before(h[c]!, e)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
