/**
 * MessageLog (mpENC §4.3): the user-level view of the transcripts of every subsession. It keeps
 * content messages only (flow-control messages such as acks and heartbeats are filtered out while
 * causal order is retained) and linearises them for display.
 *
 * The display order is a deterministic linear extension of the causal order: messages sort by
 * (subsession, depth, id), where depth is the longest parent path to a root. Depth depends only on
 * a message's ancestors, so every member shows the same order whatever the delivery order, and a
 * message's key never changes once accepted: arrivals only insert, never reorder what is shown
 * (mpENC §2.3 "Real parents of a message": a late concurrent message may land above newer ones,
 * which the UI annotates through `hasHiddenParents`).
 */
import { assert } from '../errors.js';
import type { MemberId, MessageKey } from './ids.js';
import type { Transcript } from './transcript.js';

export interface LogEntry<Body> {
  readonly id: MessageKey;
  readonly subsession: number;
  readonly author: MemberId;
  readonly body: Body;
  readonly depth: number;
}

export class MessageLog<Body> {
  /** By subsession index; undefined once pruned. */
  private readonly transcripts: (Transcript<Body> | undefined)[] = [];
  private readonly shown: LogEntry<Body>[] = [];
  private readonly byId = new Map<MessageKey, LogEntry<Body>>();
  /** Per transcript message: its maximal content ancestors-or-self (computed at acceptance). */
  private readonly contentMax = new Map<MessageKey, readonly MessageKey[]>();
  private readonly subsessionOfId = new Map<MessageKey, number>();
  /** Per content message: its real parents (computed once, at acceptance). */
  private readonly contentParents = new Map<MessageKey, readonly MessageKey[]>();

  constructor(private readonly isContent: (body: Body) => boolean) {}

  /** Registers the transcript of a new subsession; returns its index (creation order). */
  addSubsession(transcript: Transcript<Body>): number {
    this.transcripts.push(transcript);
    return this.transcripts.length - 1;
  }

  /** Keeps numbering in step for a subsession that is not in memory (pruned before a restore). */
  skipSubsession(index: number): void {
    assert(index === this.transcripts.length, 'subsessions are skipped in order');
    this.transcripts.push(undefined);
  }

  /**
   * Issue 8: a subsession pruned from memory leaves the log (the worker keeps what it showed);
   * its number stays taken.
   */
  dropSubsession(index: number): void {
    const transcript = this.transcripts[index];
    if (transcript === undefined) return;
    for (const id of transcript.ids()) {
      this.subsessionOfId.delete(id);
      this.contentMax.delete(id);
      this.contentParents.delete(id);
      this.byId.delete(id);
    }
    this.transcripts[index] = undefined;
    const kept = this.shown.filter((e) => e.subsession !== index);
    this.shown.length = 0;
    this.shown.push(...kept);
  }

  subsessionCount(): number {
    return this.transcripts.length;
  }

  transcript(subsession: number): Transcript<Body> {
    const t = this.transcripts[subsession];
    if (t === undefined) assert(false, `no subsession ${subsession}`);
    return t;
  }

  /**
   * Must be told of every message accepted into a registered transcript, in acceptance order.
   * Returns the display position when it is a content message, else undefined.
   */
  accepted(subsession: number, id: MessageKey): number | undefined {
    const transcript = this.transcript(subsession);
    const message = transcript.get(id);
    if (this.subsessionOfId.has(id)) assert(false, `message ${id} reported twice to the log`);
    this.subsessionOfId.set(id, subsession);
    // (A loop, not flatMap: this runs for every message of a catch-up.)
    const candidates: MessageKey[] = [];
    for (const p of message.parents) {
      const max = this.contentMax.get(p);
      if (max !== undefined) for (const c of max) candidates.push(c);
    }
    const inherited = this.maximal(transcript, candidates);
    if (!this.isContent(message.body)) {
      this.contentMax.set(id, inherited);
      return undefined;
    }
    this.contentMax.set(id, [id]);
    this.contentParents.set(id, inherited);
    const entry: LogEntry<Body> = {
      id,
      subsession,
      author: message.author,
      body: message.body,
      depth: transcript.entry(id).depth,
    };
    this.byId.set(id, entry);
    const at = this.insertionPoint(entry);
    if (at === this.shown.length) this.shown.push(entry);
    else this.shown.splice(at, 0, entry);
    return at;
  }

  get size(): number {
    return this.shown.length;
  }

  has(id: MessageKey): boolean {
    return this.byId.has(id);
  }

  get(id: MessageKey): LogEntry<Body> {
    const entry = this.byId.get(id);
    if (entry === undefined) assert(false, `message ${id} is not in the log`);
    return entry;
  }

  /** Content messages in display order. */
  entries(): readonly LogEntry<Body>[] {
    return this.shown;
  }

  order(): MessageKey[] {
    return this.shown.map((e) => e.id);
  }

  subsessionOf(id: MessageKey): number {
    const s = this.subsessionOfId.get(id);
    if (s === undefined) assert(false, `message ${id} is not in the log`);
    return s;
  }

  /** mpENC §2.3 "Real parents": the latest content messages the author had seen. */
  parents(id: MessageKey): MessageKey[] {
    this.get(id);
    return [...this.contentParents.get(id)!];
  }

  /** Content ancestors of a message: everything else is greyed out when it is selected (§2.3). */
  ancestors(id: MessageKey): Set<MessageKey> {
    const entry = this.get(id);
    const all = this.transcript(entry.subsession).ancestors(id);
    return new Set([...all].filter((a) => this.byId.has(a)));
  }

  /** §2.3(b): the real parents differ from {the message shown just above}. */
  hasHiddenParents(id: MessageKey, position?: number): boolean {
    const entry = this.get(id);
    // The caller usually knows the position (accepted() returned it): no O(n) search then.
    const at = position !== undefined && this.shown[position] === entry ? position : this.positionOf(entry);
    const parents = this.contentParents.get(id)!;
    const above = this.shown[at - 1];
    if (above === undefined || above.subsession !== this.get(id).subsession) return parents.length > 0;
    return parents.length !== 1 || parents[0] !== above.id;
  }

  readers(id: MessageKey): MemberId[] {
    return this.transcript(this.get(id).subsession).readers(id);
  }

  /** §2.3 "Messages not yet acknowledged": readers whose ack we have not seen. */
  unacked(id: MessageKey): MemberId[] {
    return this.transcript(this.get(id).subsession).unackedBy(id);
  }

  private maximal(transcript: Transcript<Body>, candidates: readonly MessageKey[]): MessageKey[] {
    if (candidates.length <= 1) return [...candidates]; // (most messages: one content ancestor line)
    const unique = candidates.length <= FEW_CANDIDATES ? candidates.filter((c, i) => candidates.indexOf(c) === i) : [...new Set(candidates)];
    const out = unique.filter((c) => !unique.some((d) => d !== c && transcript.isAncestor(c, d)));
    // By id: the same answer for every member, whatever the delivery order. (Distinct strings, so
    // `<` orders them as the default sort does; a few are put in place, with no sort's work array.)
    if (out.length > FEW_CANDIDATES) return out.sort((a, b) => (a < b ? -1 : 1));
    for (let i = 1; i < out.length; i++) {
      const c = out[i]!;
      let j = i - 1;
      for (; j >= 0 && out[j]! > c; j--) out[j + 1] = out[j]!;
      out[j + 1] = c;
    }
    return out;
  }

  /** Display position of a shown entry, by binary search on the display order. */
  private positionOf(entry: LogEntry<Body>): number {
    const at = this.insertionPoint(entry);
    assert(this.shown[at] === entry, 'entry is shown');
    return at;
  }

  private insertionPoint(entry: LogEntry<Body>): number {
    // Most messages go last (a catch-up appends): one comparison before the search.
    const last = this.shown[this.shown.length - 1];
    if (last === undefined || compareEntries(last, entry) < 0) return this.shown.length;
    let lo = 0;
    let hi = this.shown.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareEntries(this.shown[mid]!, entry) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Up to this many candidates, duplicates are found by scanning (no Set); past it, O(n) with one. */
const FEW_CANDIDATES = 8;

function compareEntries(a: LogEntry<unknown>, b: LogEntry<unknown>): number {
  if (a.subsession !== b.subsession) return a.subsession - b.subsession;
  if (a.depth !== b.depth) return a.depth - b.depth;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
