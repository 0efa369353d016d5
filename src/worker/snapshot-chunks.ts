/**
 * Session snapshots stored in pieces (persist before send, without rewriting history each step).
 *
 * A snapshot holds every accepted message of every subsession, so writing it whole at every step
 * costs O(conversation) per message (75 KB at 200 messages, measured by bench:client). Accepted
 * messages are append-only (a subsession's transcript in acceptance order, mpENC §3.4), so they go
 * into immutable chunks of SNAPSHOT_CHUNK_MESSAGES in the `sessionChunks` store, written once; the
 * `sessions` record keeps the rest of the snapshot with each subsession's tail (fewer than a chunk)
 * and its chunk count. A step writes the record and at most one new chunk, in the same
 * transaction. Restoring reassembles the exact snapshot.
 *
 * The ack monitor's lists of fully acknowledged messages and of relay orders grow the same way
 * (one entry per accepted message, never removed: AckMonitor.accepted): at 150 messages they were
 * 16 KB of the 24 KB rewritten at every step. They go into chunks of SNAPSHOT_CHUNK_ENTRIES too.
 *
 * If the engine ever rewrites history (prunes or reorders a transcript), the chunk boundaries no
 * longer match what was written: that list's chunks are all written again.
 *
 * Two more lists grow with every message not yet acknowledged by everyone, but are not
 * append-only: the packets kept for resends (`packets`) and the ack monitor's per-message state
 * (`acks.tracked`, which changes as acks arrive). After a night away every message waits for the
 * readers still asleep, so they grew ~0.7 KB per message and a catch-up of 10,000 re-sealed
 * megabytes at every page (issue 12). They go into keyed chunks: an entry joins the newest chunk
 * when it first appears and stays in its chunk; a step writes only the chunks whose entries
 * changed (compared with what was written, entry by entry), deletes the chunks that emptied, and
 * the record lists the chunk numbers to read back. New entries always go to the newest chunk, so
 * the chunks in number order are the list in its order; if the order ever differs, the list is
 * chunked afresh.
 *
 * The newest (open) chunk of a keyed list is stored in the `sessions` record itself (`open`, in
 * the chunk's stored form), not in `sessionChunks`: it changes at nearly every step (each message
 * joins it, each ack changes it), and the record is written at every step anyway, so storing it
 * apart cost two more seals and two more IndexedDB requests per step for the same bytes
 * (bench:client: in a chat where everyone is online every unacknowledged message is in the open
 * chunk, and each send, echo and receive step wrote both its chunks; now a step writes no chunk).
 * A chunk goes to `sessionChunks` once it closes (SNAPSHOT_CHUNK_ENTRIES entries joined it), and
 * again only when its entries change. Records written before hold the open chunk in
 * `sessionChunks` and no `open`; they read back the same.
 */
import type { SessionSnapshot } from '../protocol/session/index.js';
import type { Batch, ClientStore } from '../store/client-store.js';

/** Messages per chunk: a chunk is written once when it fills; the tail is rewritten each step. */
export const SNAPSHOT_CHUNK_MESSAGES = 64;
/**
 * Entries per chunk of the ack lists (~45 bytes each: ~3 KB a chunk). Small, so the part rewritten
 * at every step stays a few KB: at 256 a conversation of 200 messages still rewrote both lists whole.
 */
export const SNAPSHOT_CHUNK_ENTRIES = 64;

type Subsnapshot = SessionSnapshot['subsessions'][number];
type Message = Subsnapshot['messages'][number];

type Acks = Subsnapshot['acks'];

/**
 * A subsession as stored: its messages after the chunks, and how many chunks precede them; the
 * same for the ack lists (`ackChunks`, absent in records written before they were chunked).
 */
export type StoredSubsession = Subsnapshot & {
  readonly chunks: number;
  readonly ackChunks?: { readonly fullyAcked: number; readonly orders: number };
  /** The chunk numbers of `packets` and `acks.tracked`, in order (absent: both are inline, as before). */
  readonly keyedChunks?: { readonly packets: readonly number[]; readonly tracked: readonly number[] };
  /** The open chunk of `packets` and of `acks.tracked` (stored form: `encode`), after the chunks listed in `keyedChunks`. */
  readonly open?: { readonly packets: unknown; readonly tracked: unknown };
};
export type StoredSnapshot = Omit<SessionSnapshot, 'subsessions'> & { readonly subsessions: readonly StoredSubsession[] };

const chunkPrefix = (conversationId: string, subsession: number) => `${conversationId}/${subsession}`;

/** One append-only list of a subsession, stored in chunks under its own key prefix. */
interface ChunkedList<T> {
  readonly suffix: string;
  readonly size: number;
  /** Names an entry (compared at each chunk's end to tell that history did not change). */
  readonly key: (entry: T) => string;
  /** A chunk's entries as stored (default: as they are); `decode` reads both forms back. */
  readonly encode?: (entries: readonly T[]) => unknown;
  readonly decode?: (stored: unknown) => T[];
}

/**
 * A chunk of accepted messages as stored since schema v5 (`MESSAGES.encode`): the authors once,
 * sorted, each message as [id, author index, parents, body], a chat payload's body as its text
 * alone. The author's member id (43 characters) and the field names were ~70 of the ~250 bytes
 * per message (bench:catchup). A chunk that would not read back exactly this way is stored plain,
 * as before v5; both forms are read.
 */
interface CompactMessages {
  readonly v: 1;
  readonly a: readonly string[];
  readonly e: readonly (readonly [string, number, readonly string[], Message['body'] | string])[];
}

const MESSAGE_FIELDS = ['id', 'author', 'parents', 'body'];
const PAYLOAD_FIELDS = ['type', 'text'];
const sameKeys = (value: object, keys: readonly string[]): boolean => {
  const own = Object.keys(value);
  return own.length === keys.length && own.every((k, i) => k === keys[i]);
};
const isPayloadText = (body: Message['body']): body is Message['body'] & { readonly text: string } =>
  body.type === 'payload' && sameKeys(body, PAYLOAD_FIELDS) && typeof (body as { text?: unknown }).text === 'string';

function encodeMessages(entries: readonly Message[]): unknown {
  const compactable = (m: Message) =>
    sameKeys(m, MESSAGE_FIELDS) && typeof m.id === 'string' && typeof m.author === 'string' && Array.isArray(m.parents) && m.parents.every((p) => typeof p === 'string') && typeof m.body === 'object' && m.body !== null && !Array.isArray(m.body);
  if (entries.length === 0 || !entries.every(compactable)) return entries;
  const a = [...new Set(entries.map((m) => m.author as string))].sort();
  const index = new Map(a.map((name, i) => [name, i]));
  const compact: CompactMessages = { v: 1, a, e: entries.map((m) => [m.id, index.get(m.author)!, m.parents, isPayloadText(m.body) ? m.body.text : m.body] as const) };
  return compact;
}

function decodeMessages(stored: unknown): Message[] {
  if (Array.isArray(stored)) return stored as Message[];
  const compact = stored as CompactMessages;
  if (compact?.v !== 1 || !Array.isArray(compact.a)) throw new Error('messages chunk of an unknown form');
  return compact.e.map(([id, author, parents, body]) => ({ id, author: compact.a[author]!, parents, body: typeof body === 'string' ? { type: 'payload', text: body } : body }) as unknown as Message);
}

const MESSAGES: ChunkedList<Message> = { suffix: '', size: SNAPSHOT_CHUNK_MESSAGES, key: (m) => m.id, encode: encodeMessages, decode: decodeMessages };
const FULLY_ACKED: ChunkedList<Acks['fullyAcked'][number]> = { suffix: '/f', size: SNAPSHOT_CHUNK_ENTRIES, key: (id) => id };
const ORDERS: ChunkedList<Acks['orders'][number]> = { suffix: '/o', size: SNAPSHOT_CHUNK_ENTRIES, key: ([id, order]) => `${id} ${order}` };

/** A list whose entries change or go away, stored in keyed chunks (see the top of the file). */
interface KeyedList<T> {
  readonly suffix: string;
  readonly size: number;
  readonly key: (entry: T) => string;
  /** Whether an entry is unchanged since it was written (default: equal as JSON). */
  readonly same?: (a: T, b: T) => boolean;
  /** A chunk's entries as stored (default: as they are); `decode` reads both forms back. */
  readonly encode?: (entries: readonly T[]) => unknown;
  readonly decode?: (stored: unknown) => T[];
}

type Packet = Subsnapshot['packets'][number];
type Tracked = Acks['tracked'][number];

/** A kept packet never changes under its id: only which ids are kept does. */
const PACKETS: KeyedList<Packet> = { suffix: '/p', size: SNAPSHOT_CHUNK_ENTRIES, key: ([id]) => id, same: (a, b) => a[0] === b[0] && a[1] === b[1] };

/**
 * A chunk of tracked acks as stored since schema v5 (`TRACKED.encode`). As plain entries, each
 * tracked message spelled out every reader still missing (member ids of 43 characters, sorted)
 * and three 13-digit times: 400–600 bytes per message waiting for anyone, the largest part of
 * what a catch-up stored (bench:catchup: ~37 % of the sealed bytes, more than the packets kept
 * for resends). Compact: the chunk's members once, sorted, and each entry's member lists as
 * indexes into them (so a list read back is sorted again); the times as whole numbers relative to
 * the chunk's first `acceptedAtMs` and to the entry's own; the two flags as bits. ~80 bytes per
 * message. A chunk that would not read back exactly this way (a field this code does not know,
 * times that are not safe integers) is stored plain, as before v5; both forms are read.
 */
interface CompactTracked {
  readonly v: 1;
  /** The members the entries name, sorted. */
  readonly m: readonly string[];
  /** The first entry's acceptedAtMs. */
  readonly b: number;
  /** [id, needed | warned << 1, acceptedAtMs - b, atMs - acceptedAtMs, remaining, owing, gone, resends, nextResendMs - acceptedAtMs]. */
  readonly e: readonly (readonly [string, number, number, number, readonly number[], readonly number[], readonly number[], number, number])[];
}

const TRACKED_FIELDS = ['id', 'needed', 'acceptedAtMs', 'atMs', 'remaining', 'owing', 'gone', 'warned', 'resends', 'nextResendMs'];

/**
 * Whether `t` reads back exactly from the compact form. Runs for every tracked message a catch-up
 * stores (bench:catchup: ~25 ms per 10,000 with a key array, closures and list arrays per entry):
 * no allocation.
 */
function isCompactable(t: Tracked): boolean {
  // Its own fields, exactly TRACKED_FIELDS in that order (Object.keys' order, without the array).
  let n = 0;
  for (const key in t) {
    if (!Object.hasOwn(t, key)) continue;
    if (key !== TRACKED_FIELDS[n]) return false;
    n++;
  }
  return (
    n === TRACKED_FIELDS.length &&
    typeof t.id === 'string' &&
    typeof t.needed === 'boolean' &&
    typeof t.warned === 'boolean' &&
    Number.isSafeInteger(t.acceptedAtMs) &&
    Number.isSafeInteger(t.atMs) &&
    Number.isSafeInteger(t.nextResendMs) &&
    Number.isSafeInteger(t.resends) &&
    sortedNames(t.remaining) &&
    sortedNames(t.owing) &&
    sortedNames(t.gone)
  );
}

/** An array of strings in strictly ascending order. */
function sortedNames(list: unknown): boolean {
  if (!Array.isArray(list)) return false;
  for (let i = 0; i < list.length; i++) {
    const m: unknown = list[i];
    if (typeof m !== 'string' || (i > 0 && !((list[i - 1] as string) < m))) return false;
  }
  return true;
}

/** Each name's index in the chunk's sorted members. */
function indexesOf(list: readonly string[], index: ReadonlyMap<string, number>): number[] {
  const out = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = index.get(list[i]!)!;
  return out;
}

function encodeTracked(entries: readonly Tracked[]): unknown {
  if (entries.length === 0) return entries;
  for (const t of entries) if (!isCompactable(t)) return entries;
  const names = new Set<string>();
  for (const t of entries) {
    for (const m of t.remaining) names.add(m);
    for (const m of t.owing) names.add(m);
    for (const m of t.gone) names.add(m);
  }
  const m = [...names].sort();
  const index = new Map<string, number>();
  for (let i = 0; i < m.length; i++) index.set(m[i]!, i);
  const b = entries[0]!.acceptedAtMs;
  const e: CompactTracked['e'][number][] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const t = entries[i]!;
    const accepted = t.acceptedAtMs - b;
    const at = t.atMs - t.acceptedAtMs;
    const next = t.nextResendMs - t.acceptedAtMs;
    // Differences of safe integers may leave the safe range: then stored plain.
    if (!Number.isSafeInteger(accepted) || !Number.isSafeInteger(at) || !Number.isSafeInteger(next)) return entries;
    e[i] = [t.id, (t.needed ? 1 : 0) | (t.warned ? 2 : 0), accepted, at, indexesOf(t.remaining, index), indexesOf(t.owing, index), indexesOf(t.gone, index), t.resends, next];
  }
  const compact: CompactTracked = { v: 1, m, b, e };
  return compact;
}

function decodeTracked(stored: unknown): Tracked[] {
  if (Array.isArray(stored)) return stored as Tracked[];
  const compact = stored as CompactTracked;
  if (compact?.v !== 1) throw new Error('tracked acks chunk of an unknown form');
  const names = (list: readonly number[]) => list.map((i) => compact.m[i]!);
  return compact.e.map(([id, flags, accepted, at, remaining, owing, gone, resends, next]): Tracked => {
    const acceptedAtMs = compact.b + accepted;
    return { id, needed: (flags & 1) !== 0, acceptedAtMs, atMs: acceptedAtMs + at, remaining: names(remaining), owing: names(owing), gone: names(gone), warned: (flags & 2) !== 0, resends, nextResendMs: acceptedAtMs + next } as unknown as Tracked;
  });
}

const TRACKED: KeyedList<Tracked> = { suffix: '/t', size: SNAPSHOT_CHUNK_ENTRIES, key: (t) => t.id, encode: encodeTracked, decode: decodeTracked };

/** What is stored of one keyed list: each entry's chunk, each chunk's entries as written. */
interface KeyedState<T> {
  readonly chunkOf: Map<string, number>;
  readonly written: Map<number, readonly T[]>;
  /** The chunk new entries join, and how many ever joined it (it closes at the list's size). */
  open: number;
  joined: number;
}

/**
 * Whether two JSON values are equal (snapshots are plain JSON: objects, arrays, strings, numbers,
 * booleans, null). Runs over every kept packet and tracked ack at every step: no allocation.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let count = 0;
  for (const k in x) {
    if (!(k in y) || !sameJson(x[k], y[k])) return false;
    count++;
  }
  for (const _ in y) count--;
  return count === 0;
}

function sameEntries<T>(list: KeyedList<T>, a: readonly T[], b: readonly T[]): boolean {
  if (list.same === undefined) return sameJson(a, b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!list.same(a[i]!, b[i]!)) return false;
  return true;
}

/** Remembers which chunks of one conversation are stored (by the key of each chunk's last entry). */
export class SnapshotChunks {
  /** Per list (`<subsession index><suffix>`): the key of every stored chunk's last entry, in order. */
  private readonly stored = new Map<string, string[]>();
  /** Per keyed list (`<subsession index><suffix>`): what its chunks hold as written. */
  private readonly keyed = new Map<string, KeyedState<unknown>>();

  constructor(private readonly conversationId: string) {}

  /** Splits `snapshot` for storage: new chunks go into `batch`; returns the record to store. */
  split(snapshot: SessionSnapshot, batch: Batch): StoredSnapshot {
    const subsessions = snapshot.subsessions.map((sub): StoredSubsession => {
      const messages = this.splitList(MESSAGES, sub.index, sub.messages, batch);
      const acks = sub.acks as Acks | undefined;
      if (acks?.fullyAcked === undefined || acks.orders === undefined) return { ...sub, messages: messages.tail, chunks: messages.chunks };
      const fullyAcked = this.splitList(FULLY_ACKED, sub.index, acks.fullyAcked, batch);
      const orders = this.splitList(ORDERS, sub.index, acks.orders, batch);
      if (sub.packets === undefined || acks.tracked === undefined) {
        return { ...sub, messages: messages.tail, chunks: messages.chunks, acks: { ...acks, fullyAcked: fullyAcked.tail, orders: orders.tail }, ackChunks: { fullyAcked: fullyAcked.chunks, orders: orders.chunks } };
      }
      const packets = this.splitKeyed(PACKETS, sub.index, sub.packets, batch);
      const tracked = this.splitKeyed(TRACKED, sub.index, acks.tracked, batch);
      return {
        ...sub,
        messages: messages.tail,
        chunks: messages.chunks,
        acks: { ...acks, fullyAcked: fullyAcked.tail, orders: orders.tail, tracked: [] },
        ackChunks: { fullyAcked: fullyAcked.chunks, orders: orders.chunks },
        packets: [],
        keyedChunks: { packets: packets.chunks, tracked: tracked.chunks },
        open: { packets: packets.open, tracked: tracked.open },
      };
    });
    return { ...snapshot, subsessions };
  }

  private splitList<T>(list: ChunkedList<T>, index: number, entries: readonly T[], batch: Batch): { tail: T[]; chunks: number } {
    const full = Math.floor(entries.length / list.size);
    const name = `${index}${list.suffix}`;
    let known = this.stored.get(name) ?? [];
    // History changed under stored chunks (never today): write them all again.
    if (known.length > full || known.some((key, c) => list.key(entries[(c + 1) * list.size - 1]!) !== key)) known = [];
    for (let c = known.length; c < full; c++) {
      const chunk = entries.slice(c * list.size, (c + 1) * list.size);
      batch.put('sessionChunks', [chunkPrefix(this.conversationId, index) + list.suffix, c], list.encode === undefined ? chunk : list.encode(chunk));
      known = [...known, list.key(chunk.at(-1)!)];
    }
    this.stored.set(name, known);
    return { tail: entries.slice(full * list.size), chunks: full };
  }

  /**
   * Writes the closed chunks of a keyed list that changed, deletes those that emptied; returns
   * their numbers in order, and the open chunk in its stored form (it goes in the record).
   */
  private splitKeyed<T>(list: KeyedList<T>, index: number, entries: readonly T[], batch: Batch): { chunks: number[]; open: unknown } {
    const name = `${index}${list.suffix}`;
    const prefix = chunkPrefix(this.conversationId, index) + list.suffix;
    let state = (this.keyed.get(name) as KeyedState<T> | undefined) ?? { chunkOf: new Map(), written: new Map(), open: 0, joined: 0 };
    let chunks = this.assign(list, state, entries);
    if (chunks === null) {
      // The order changed under the chunks (never today): chunk the list afresh after the old ones.
      const after = Math.max(-1, ...state.written.keys()) + 1;
      for (const c of state.written.keys()) batch.delete('sessionChunks', [prefix, c]);
      state = { chunkOf: new Map(), written: new Map(), open: after, joined: 0 };
      chunks = this.assign(list, state, entries)!;
    }
    const { numbers, groups } = chunks;
    const stored = (entries: readonly T[]) => (list.encode === undefined ? entries : list.encode(entries));
    // The open chunk is the newest: the last group, if any entry is in it (it goes in the record).
    const closed = numbers.at(-1) === state.open ? numbers.length - 1 : numbers.length;
    for (let i = 0; i < closed; i++) {
      const c = numbers[i]!;
      const before = state.written.get(c);
      if (before !== undefined && sameEntries(list, before, groups[i]!)) continue;
      batch.put('sessionChunks', [prefix, c], stored(groups[i]!));
      state.written.set(c, groups[i]!);
    }
    if (state.written.size > closed) {
      const kept = new Set(numbers.slice(0, closed));
      for (const c of state.written.keys()) {
        if (kept.has(c)) continue;
        batch.delete('sessionChunks', [prefix, c]);
        state.written.delete(c);
      }
    }
    this.keyed.set(name, state as KeyedState<unknown>);
    return { chunks: numbers.slice(0, closed), open: stored(closed < numbers.length ? groups[closed]! : []) };
  }

  /**
   * Each entry's chunk (a new entry joins the open chunk): the chunk numbers in order and each
   * one's entries; null when an entry would land in an earlier chunk than the one before it (the
   * order changed).
   */
  private assign<T>(list: KeyedList<T>, state: KeyedState<T>, entries: readonly T[]): { numbers: number[]; groups: T[][] } | null {
    const numbers: number[] = [];
    const groups: T[][] = [];
    const knownBefore = state.chunkOf.size;
    let known = 0;
    let last = -1;
    for (const entry of entries) {
      const key = list.key(entry);
      let c = state.chunkOf.get(key);
      if (c === undefined) {
        if (state.joined >= list.size) {
          state.open += 1;
          state.joined = 0;
        }
        c = state.open;
        state.joined += 1;
        state.chunkOf.set(key, c);
      } else known++;
      if (c < last) return null;
      if (c !== last) {
        numbers.push(c);
        groups.push([entry]);
        last = c;
      } else groups[groups.length - 1]!.push(entry);
    }
    // Entries went (acked by all): forget their chunks.
    if (known < knownBefore) {
      state.chunkOf.clear();
      for (let i = 0; i < numbers.length; i++) for (const entry of groups[i]!) state.chunkOf.set(list.key(entry), numbers[i]!);
    }
    return { numbers, groups };
  }

  /** The stored chunks `numbers` of a keyed list, then its open chunk `open` (from the record; absent in older records). */
  private async joinKeyed<T>(store: ClientStore, list: KeyedList<T>, index: number, numbers: readonly number[], open: unknown): Promise<T[]> {
    const prefix = chunkPrefix(this.conversationId, index) + list.suffix;
    const read = numbers.length === 0 ? [] : await store.range<unknown>('sessionChunks', prefix);
    const decode = (value: unknown) => (list.decode === undefined ? (value as T[]) : list.decode(value));
    const found = new Map(read.map(([c, value]) => [c, decode(value)]));
    const inline = open === undefined ? [] : decode(open);
    // The open chunk goes on after the stored ones (a record written before the open chunk was
    // kept in it has none: the next entry opens a new chunk).
    const state: KeyedState<T> = { chunkOf: new Map(), written: new Map(), open: Math.max(-1, ...numbers) + 1, joined: inline.length };
    const out: T[] = [];
    for (const c of numbers) {
      const entries = found.get(c);
      if (entries === undefined) throw new Error(`session chunk ${c} of ${prefix} is missing`);
      state.written.set(c, entries);
      for (const entry of entries) state.chunkOf.set(list.key(entry), c);
      out.push(...entries);
    }
    for (const entry of inline) state.chunkOf.set(list.key(entry), state.open);
    out.push(...inline);
    this.keyed.set(`${index}${list.suffix}`, state as KeyedState<unknown>);
    return out;
  }

  private async joinList<T>(store: ClientStore, list: ChunkedList<T>, index: number, count: number, tail: readonly T[]): Promise<T[]> {
    const prefix = chunkPrefix(this.conversationId, index) + list.suffix;
    const read = count === 0 ? [] : await store.range<unknown>('sessionChunks', prefix);
    const chunks = read.map(([c, value]): [number, T[]] => [c, list.decode === undefined ? (value as T[]) : list.decode(value)]);
    if (chunks.length < count || chunks.slice(0, count).some(([c], i) => c !== i)) throw new Error(`session chunks of ${prefix} are missing`);
    this.stored.set(
      `${index}${list.suffix}`,
      chunks.slice(0, count).map(([, entries]) => list.key(entries.at(-1)!)),
    );
    return [...chunks.slice(0, count).flatMap(([, entries]) => entries), ...tail];
  }

  /** Reassembles a stored snapshot (and learns which chunks exist). */
  async join(store: ClientStore, stored: StoredSnapshot): Promise<SessionSnapshot> {
    // Every list of every subsession is read at once: each read is a round trip to IndexedDB's
    // thread, and one after another they kept a cold start waiting (bench:catchup trace).
    const subsessions = await Promise.all(
      stored.subsessions.map(async (sub): Promise<Subsnapshot> => {
        const { chunks, ackChunks, keyedChunks, open, ...rest } = sub;
        if (ackChunks === undefined) return { ...rest, messages: await this.joinList(store, MESSAGES, sub.index, chunks, sub.messages) };
        if (keyedChunks === undefined) {
          const [messages, fullyAcked, orders] = await Promise.all([
            this.joinList(store, MESSAGES, sub.index, chunks, sub.messages),
            this.joinList(store, FULLY_ACKED, sub.index, ackChunks.fullyAcked, sub.acks.fullyAcked),
            this.joinList(store, ORDERS, sub.index, ackChunks.orders, sub.acks.orders),
          ]);
          return { ...rest, messages, acks: { ...sub.acks, fullyAcked, orders } };
        }
        const [messages, fullyAcked, orders, packets, tracked] = await Promise.all([
          this.joinList(store, MESSAGES, sub.index, chunks, sub.messages),
          this.joinList(store, FULLY_ACKED, sub.index, ackChunks.fullyAcked, sub.acks.fullyAcked),
          this.joinList(store, ORDERS, sub.index, ackChunks.orders, sub.acks.orders),
          this.joinKeyed(store, PACKETS, sub.index, keyedChunks.packets, open?.packets),
          this.joinKeyed(store, TRACKED, sub.index, keyedChunks.tracked, open?.tracked),
        ]);
        return { ...rest, messages, packets, acks: { ...sub.acks, fullyAcked, orders, tracked } };
      }),
    );
    return { ...stored, subsessions };
  }
}
