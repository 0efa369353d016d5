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
export type StoredSubsession = Subsnapshot & { readonly chunks: number; readonly ackChunks?: { readonly fullyAcked: number; readonly orders: number } };
export type StoredSnapshot = Omit<SessionSnapshot, 'subsessions'> & { readonly subsessions: readonly StoredSubsession[] };

const chunkPrefix = (conversationId: string, subsession: number) => `${conversationId}/${subsession}`;

/** One append-only list of a subsession, stored in chunks under its own key prefix. */
interface ChunkedList<T> {
  readonly suffix: string;
  readonly size: number;
  /** Names an entry (compared at each chunk's end to tell that history did not change). */
  readonly key: (entry: T) => string;
}

const MESSAGES: ChunkedList<Message> = { suffix: '', size: SNAPSHOT_CHUNK_MESSAGES, key: (m) => m.id };
const FULLY_ACKED: ChunkedList<Acks['fullyAcked'][number]> = { suffix: '/f', size: SNAPSHOT_CHUNK_ENTRIES, key: (id) => id };
const ORDERS: ChunkedList<Acks['orders'][number]> = { suffix: '/o', size: SNAPSHOT_CHUNK_ENTRIES, key: ([id, order]) => `${id} ${order}` };

/** Remembers which chunks of one conversation are stored (by the key of each chunk's last entry). */
export class SnapshotChunks {
  /** Per list (`<subsession index><suffix>`): the key of every stored chunk's last entry, in order. */
  private readonly stored = new Map<string, string[]>();

  constructor(private readonly conversationId: string) {}

  /** Splits `snapshot` for storage: new chunks go into `batch`; returns the record to store. */
  split(snapshot: SessionSnapshot, batch: Batch): StoredSnapshot {
    const subsessions = snapshot.subsessions.map((sub): StoredSubsession => {
      const messages = this.splitList(MESSAGES, sub.index, sub.messages, batch);
      const acks = sub.acks as Acks | undefined;
      if (acks?.fullyAcked === undefined || acks.orders === undefined) return { ...sub, messages: messages.tail, chunks: messages.chunks };
      const fullyAcked = this.splitList(FULLY_ACKED, sub.index, acks.fullyAcked, batch);
      const orders = this.splitList(ORDERS, sub.index, acks.orders, batch);
      return {
        ...sub,
        messages: messages.tail,
        chunks: messages.chunks,
        acks: { ...acks, fullyAcked: fullyAcked.tail, orders: orders.tail },
        ackChunks: { fullyAcked: fullyAcked.chunks, orders: orders.chunks },
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
      batch.put('sessionChunks', [chunkPrefix(this.conversationId, index) + list.suffix, c], chunk);
      known = [...known, list.key(chunk.at(-1)!)];
    }
    this.stored.set(name, known);
    return { tail: entries.slice(full * list.size), chunks: full };
  }

  private async joinList<T>(store: ClientStore, list: ChunkedList<T>, index: number, count: number, tail: readonly T[]): Promise<T[]> {
    const prefix = chunkPrefix(this.conversationId, index) + list.suffix;
    const chunks = count === 0 ? [] : await store.range<T[]>('sessionChunks', prefix);
    if (chunks.length < count || chunks.slice(0, count).some(([c], i) => c !== i)) throw new Error(`session chunks of ${prefix} are missing`);
    this.stored.set(
      `${index}${list.suffix}`,
      chunks.slice(0, count).map(([, entries]) => list.key(entries.at(-1)!)),
    );
    return [...chunks.slice(0, count).flatMap(([, entries]) => entries), ...tail];
  }

  /** Reassembles a stored snapshot (and learns which chunks exist). */
  async join(store: ClientStore, stored: StoredSnapshot): Promise<SessionSnapshot> {
    const subsessions: Subsnapshot[] = [];
    for (const sub of stored.subsessions) {
      const { chunks, ackChunks, ...rest } = sub;
      const messages = await this.joinList(store, MESSAGES, sub.index, chunks, sub.messages);
      if (ackChunks === undefined) {
        subsessions.push({ ...rest, messages });
        continue;
      }
      const fullyAcked = await this.joinList(store, FULLY_ACKED, sub.index, ackChunks.fullyAcked, sub.acks.fullyAcked);
      const orders = await this.joinList(store, ORDERS, sub.index, ackChunks.orders, sub.acks.orders);
      subsessions.push({ ...rest, messages, acks: { ...sub.acks, fullyAcked, orders } });
    }
    return { ...stored, subsessions };
  }
}
