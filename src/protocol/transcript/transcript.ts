/**
 * The causal transcript of one subsession (mpENC §3.4, §4.3 "Transcript").
 *
 * Messages form a DAG through their parent references. The transcript is append-only and only
 * ever holds messages whose parents it already holds, so acceptance order is a topological order.
 * Two rules keep the references logically consistent (mpENC §3.4):
 *  - a message's parents form an anti-chain: none is an ancestor of another;
 *  - an author's own messages form a line: each new message of A has A's previous one as an
 *    ancestor.
 *
 * Ancestor queries are O(1) through a per-message vector clock: `clock[a]` is the position (1-based)
 * of author a's latest message among the message's ancestors-or-self. Because every author's
 * messages form a line, m is an ancestor-or-self of x exactly when `seq(m) <= clock(x)[author(m)]`.
 * A subsession has a fixed, bounded membership, so each clock has at most MAX members entries.
 */
import { ProtocolError, assert } from '../errors.js';
import { MAX_MESSAGE_PARENTS } from '../codec/limits.js';
import type { MemberId, MessageKey } from './ids.js';
import type { TranscriptMessage } from './message.js';

// mpENC §3.4: a message's parents are at most one per author (an anti-chain of lines); the codec
// bounds the MESSAGE_PARENT records by the same limit before we do any work.
export { MAX_MESSAGE_PARENTS };

export interface TranscriptEntry<Body = unknown> {
  readonly message: TranscriptMessage<Body>;
  /** Position in local acceptance order, 0-based (a topological order). */
  readonly index: number;
  /** Position in the author's own line, 1-based. */
  readonly authorSeq: number;
  /** Longest path to a root: 0 for a message without parents. Deterministic for every member. */
  readonly depth: number;
  /** Per author slot: the author's latest ancestor-or-self position (see the module comment). */
  readonly clock: Uint32Array;
}

/** What `check` says about a message before it is added. */
export type CheckResult =
  | { readonly kind: 'ready' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'missing-parents'; readonly missing: readonly MessageKey[] };

const READY: CheckResult = { kind: 'ready' };

export class Transcript<Body = unknown> {
  readonly members: readonly MemberId[];
  private readonly authorSlot = new Map<MemberId, number>();
  private readonly entries = new Map<MessageKey, TranscriptEntry<Body>>();
  private readonly order: MessageKey[] = [];
  private readonly lines: MessageKey[][] = [];
  private readonly childIds = new Map<MessageKey, MessageKey[]>();
  /** The maximal messages (no children yet): the parents of the next message we write. */
  private readonly max = new Set<MessageKey>();

  constructor(members: readonly MemberId[]) {
    assert(new Set(members).size === members.length, 'transcript members must be distinct');
    this.members = [...members];
    members.forEach((member, slot) => {
      this.authorSlot.set(member, slot);
      this.lines.push([]);
    });
  }

  get size(): number {
    return this.order.length;
  }

  has(id: MessageKey): boolean {
    return this.entries.has(id);
  }

  get(id: MessageKey): TranscriptMessage<Body> {
    return this.entry(id).message;
  }

  entry(id: MessageKey): TranscriptEntry<Body> {
    const entry = this.entries.get(id);
    // (`if`, not assert(cond, `...`): the message string is built only on failure; this runs
    // many times per message of a catch-up.)
    if (entry === undefined) assert(false, `message ${id} is not in the transcript`);
    return entry;
  }

  /** All message ids in acceptance order (a topological order). */
  ids(): readonly MessageKey[] {
    return this.order;
  }

  /** Readers of a message: every subsession member except its author (mpenc-wire.md). */
  readers(id: MessageKey): MemberId[] {
    const author = this.get(id).author;
    return this.members.filter((m) => m !== author);
  }

  parents(id: MessageKey): readonly MessageKey[] {
    return this.get(id).parents;
  }

  children(id: MessageKey): readonly MessageKey[] {
    this.entry(id);
    return this.childIds.get(id) ?? [];
  }

  /** The current maximal messages, in acceptance order: parents for a message we write now. */
  frontier(): MessageKey[] {
    return [...this.max].sort((a, b) => this.entry(a).index - this.entry(b).index);
  }

  /** The author's messages in order (their line). */
  byAuthor(author: MemberId): readonly MessageKey[] {
    const slot = this.authorSlot.get(author);
    return slot === undefined ? [] : (this.lines[slot] ?? []);
  }

  lastBy(author: MemberId): MessageKey | undefined {
    const line = this.byAuthor(author);
    return line[line.length - 1];
  }

  /** True when `a` is a strict ancestor of `b`. */
  isAncestor(a: MessageKey, b: MessageKey): boolean {
    return a !== b && this.isAncestorOrSelf(a, b);
  }

  isAncestorOrSelf(a: MessageKey, b: MessageKey): boolean {
    const ea = this.entry(a);
    const eb = this.entry(b);
    const slot = this.slotOf(ea.message.author);
    return ea.authorSeq <= (eb.clock[slot] ?? 0);
  }

  /** Every strict ancestor of a message, found by walking parents (bounded by the size). */
  ancestors(id: MessageKey): Set<MessageKey> {
    const seen = new Set<MessageKey>();
    const stack = [...this.get(id).parents];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...this.get(next).parents);
    }
    return seen;
  }

  /**
   * mpENC §3.5: a reader acks a message by writing any message that has it as an ancestor; the
   * author trivially has it.
   */
  ackedBy(id: MessageKey, member: MemberId): boolean {
    const entry = this.entry(id);
    if (entry.message.author === member) return true;
    const last = this.lastBy(member);
    if (last === undefined) return false;
    const slot = this.slotOf(entry.message.author);
    return entry.authorSeq <= (this.entry(last).clock[slot] ?? 0);
  }

  /** Readers that have not acked the message yet (as far as this transcript shows). */
  unackedBy(id: MessageKey): MemberId[] {
    return this.readers(id).filter((r) => !this.ackedBy(id, r));
  }

  /**
   * Validates a message against the rules without changing anything. Throws ProtocolError for a
   * message that can never be accepted; says 'missing-parents' when it must wait.
   */
  check(message: TranscriptMessage<Body>): CheckResult {
    const result = this.validate(message);
    return result.kind === 'ready' ? READY : result;
  }

  /** `check`, keeping the merged clock of a ready message for `add` (computed once). */
  private validate(message: TranscriptMessage<Body>): Exclude<CheckResult, { kind: 'ready' }> | { readonly kind: 'ready'; readonly clock: Uint32Array } {
    if (this.entries.has(message.id)) return { kind: 'duplicate' };
    if (!this.authorSlot.has(message.author)) {
      throw new ProtocolError('unknown-member', `author ${message.author} is not a member of this subsession`);
    }
    if (message.parents.length > MAX_MESSAGE_PARENTS) {
      throw new ProtocolError('limit-exceeded', `${message.parents.length} parents > ${MAX_MESSAGE_PARENTS}`);
    }
    // (Pairwise: the list is short, and this runs for every message of a catch-up.)
    const parents = message.parents;
    for (let i = 0; i < parents.length; i++) {
      for (let j = i + 1; j < parents.length; j++) if (parents[i] === parents[j]) throw new ProtocolError('bad-value', 'a parent is referenced twice');
    }
    if (parents.includes(message.id)) {
      throw new ProtocolError('inconsistent', 'a message cannot be its own parent');
    }
    if (!parents.every((p) => this.entries.has(p))) return { kind: 'missing-parents', missing: parents.filter((p) => !this.entries.has(p)) };

    // mpENC §3.4: parents form an anti-chain. Pairwise with O(1) ancestor tests; the count is
    // bounded by MAX_MESSAGE_PARENTS and in practice by the number of authors.
    for (const p of message.parents) {
      for (const q of message.parents) {
        if (p !== q && this.isAncestor(p, q)) {
          throw new ProtocolError('inconsistent', `parent ${p} is an ancestor of parent ${q}`);
        }
      }
    }
    // mpENC §3.4: the author's own messages form a line.
    const clock = this.mergedClock(message.parents);
    const slot = this.slotOf(message.author);
    const ownLine = this.lines[slot]!;
    if ((clock[slot] ?? 0) !== ownLine.length) {
      throw new ProtocolError(
        'inconsistent',
        `message of ${message.author} does not follow the author's previous message (fork of the author's line)`,
      );
    }
    return { kind: 'ready', clock };
  }

  /**
   * Adds a message whose parents are all present. Returns false for a duplicate. Validation happens
   * before any change, so a rejected message leaves the transcript untouched.
   */
  add(message: TranscriptMessage<Body>): boolean {
    const result = this.validate(message);
    if (result.kind === 'duplicate') return false;
    assert(result.kind === 'ready', 'add() needs every parent present; check() first');
    this.insert(message, result.clock);
    return true;
  }

  /**
   * check() and add() in one validation (issue 8: a catch-up ran every rule twice per message):
   * adds the message when it is ready, else says why not. Throws what check() throws.
   */
  offer(message: TranscriptMessage<Body>): CheckResult {
    const result = this.validate(message);
    if (result.kind !== 'ready') return result;
    this.insert(message, result.clock);
    return READY;
  }

  private insert(message: TranscriptMessage<Body>, clock: Uint32Array): void {
    const slot = this.slotOf(message.author);
    const line = this.lines[slot]!;
    const authorSeq = line.length + 1;
    clock[slot] = authorSeq;
    let depth = 0;
    for (const p of message.parents) depth = Math.max(depth, this.entry(p).depth + 1);

    const frozen: TranscriptMessage<Body> = Object.freeze({
      id: message.id,
      author: message.author,
      parents: Object.freeze([...message.parents]),
      body: message.body,
    });
    this.entries.set(message.id, { message: frozen, index: this.order.length, authorSeq, depth, clock });
    this.order.push(message.id);
    line.push(message.id);
    for (const p of message.parents) {
      const list = this.childIds.get(p);
      if (list === undefined) this.childIds.set(p, [message.id]);
      else list.push(message.id);
      // A maximal element that becomes an ancestor must be a direct parent (else its child on the
      // path would already have removed it), so removing the parents keeps `max` exact.
      this.max.delete(p);
    }
    this.max.add(message.id);
  }

  private slotOf(author: MemberId): number {
    const slot = this.authorSlot.get(author);
    if (slot === undefined) assert(false, `unknown author ${author}`);
    return slot;
  }

  private mergedClock(parents: readonly MessageKey[]): Uint32Array {
    const clock = new Uint32Array(this.members.length);
    for (const p of parents) {
      const pc = this.entry(p).clock;
      for (let i = 0; i < clock.length; i++) if (pc[i]! > clock[i]!) clock[i] = pc[i]!;
    }
    return clock;
  }
}
