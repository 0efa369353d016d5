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
 * If the engine ever rewrites history (prunes or reorders a transcript), the chunk boundaries no
 * longer match what was written: that subsession's chunks are all written again.
 */
import type { SessionSnapshot } from '../protocol/session/index.js';
import type { Batch, ClientStore } from '../store/client-store.js';

/** Messages per chunk: a chunk is written once when it fills; the tail is rewritten each step. */
export const SNAPSHOT_CHUNK_MESSAGES = 64;

type Subsnapshot = SessionSnapshot['subsessions'][number];
type Message = Subsnapshot['messages'][number];

/** A subsession as stored: its messages after the chunks, and how many chunks precede them. */
export type StoredSubsession = Subsnapshot & { readonly chunks: number };
export type StoredSnapshot = Omit<SessionSnapshot, 'subsessions'> & { readonly subsessions: readonly StoredSubsession[] };

const chunkPrefix = (conversationId: string, subsession: number) => `${conversationId}/${subsession}`;

/** Remembers which chunks of one conversation are stored (by the id of each chunk's last message). */
export class SnapshotChunks {
  /** Per subsession index: the last message id of every stored chunk, in order. */
  private readonly stored = new Map<number, string[]>();

  constructor(private readonly conversationId: string) {}

  /** Splits `snapshot` for storage: new chunks go into `batch`; returns the record to store. */
  split(snapshot: SessionSnapshot, batch: Batch): StoredSnapshot {
    const subsessions = snapshot.subsessions.map((sub): StoredSubsession => {
      const full = Math.floor(sub.messages.length / SNAPSHOT_CHUNK_MESSAGES);
      let known = this.stored.get(sub.index) ?? [];
      // History changed under stored chunks (never today): write them all again.
      if (known.length > full || known.some((id, c) => sub.messages[(c + 1) * SNAPSHOT_CHUNK_MESSAGES - 1]?.id !== id)) known = [];
      for (let c = known.length; c < full; c++) {
        const chunk = sub.messages.slice(c * SNAPSHOT_CHUNK_MESSAGES, (c + 1) * SNAPSHOT_CHUNK_MESSAGES);
        batch.put('sessionChunks', [chunkPrefix(this.conversationId, sub.index), c], chunk);
        known = [...known, chunk.at(-1)!.id];
      }
      this.stored.set(sub.index, known);
      return { ...sub, messages: sub.messages.slice(full * SNAPSHOT_CHUNK_MESSAGES), chunks: full };
    });
    return { ...snapshot, subsessions };
  }

  /** Reassembles a stored snapshot (and learns which chunks exist). */
  async join(store: ClientStore, stored: StoredSnapshot): Promise<SessionSnapshot> {
    const subsessions: Subsnapshot[] = [];
    for (const sub of stored.subsessions) {
      const chunks = sub.chunks === 0 ? [] : await store.range<Message[]>('sessionChunks', chunkPrefix(this.conversationId, sub.index));
      if (chunks.length < sub.chunks || chunks.slice(0, sub.chunks).some(([c], i) => c !== i)) {
        throw new Error(`session chunks of ${this.conversationId}/${sub.index} are missing`);
      }
      const messages = chunks.slice(0, sub.chunks).flatMap(([, m]) => m);
      this.stored.set(
        sub.index,
        chunks.slice(0, sub.chunks).map(([, m]) => m.at(-1)!.id),
      );
      const { chunks: _chunks, ...rest } = sub;
      subsessions.push({ ...rest, messages: [...messages, ...sub.messages] });
    }
    return { ...stored, subsessions };
  }
}
