/**
 * The client's IndexedDB database (issue 10 §4; DESIGN.md §4): one typed `DBSchema`, migrations
 * as `if (oldVersion < N)` steps.
 *
 * Three kinds of store:
 * - `meta`: the wrapped data key and the engine epoch. No plaintext of any kind.
 * - Sealed stores (`profile`, `contacts`, `requests`, `invitations`, `conversations`, `sessions`,
 *   `timeline`, `drafts`, `seen`): every value is a `Sealed` record, AES-GCM under the data key
 *   with the store name and key as associated data (a record cannot be moved to another key).
 *   Keys are random ids or counters; no index reads a sealed value.
 * - Transit stores (`outbox`, `inbox`, `fetchTokens`, shapes in src/shared/client-db.ts): relay
 *   ciphertext as-is, so the service worker can move it without keys.
 *
 * History: v1 (the first layout: meta, profile, contacts, conversations, sessions, timeline,
 * outbox, inbox); v2 added requests, invitations, drafts, seen, fetchTokens and the outbox's
 * by-channel index; v3 added sessionChunks (a session's accepted messages in fixed chunks, so a
 * step rewrites only what changed); v4: a timeline record may be a pack (client-store.ts
 * `TimelinePack`: consecutive positions appended by one step, sealed as ONE record at the
 * fractional key [conversationId, first - 0.5]; one seal and one put per message was the store's
 * part of a catch-up, bench:catchup). No store changes: records written before stay valid; the
 * version keeps an older build, which would not read packs, from opening the database.
 * v5: session chunks of accepted messages and of tracked acks may be compact (src/worker/
 * snapshot-chunks.ts: members named once per chunk, times as differences; the tracked acks
 * were the largest part of what a catch-up stored, bench:catchup), and a timeline pack of items
 * with the same fields may hold them as rows (client-store.ts TimelineRowsPack: the field names
 * once). No store changes, nothing to convert: records written before stay valid and are read as
 * they are; the version keeps an older build, which would read neither, from opening the database.
 * v6: an inbox record may be a page of events (src/shared/client-db.ts InboxPageRecord: the
 * service worker stores one record per page it reads, not one per event; bench:catchup). No store
 * change, nothing to convert: per-event records are read as they are; the version keeps an older
 * build, which would take a page record for one event, from opening the database.
 * v7: a session record's ack monitors may leave us out of each tracked message's remaining
 * readers (src/protocol/reliability/ack-monitor.ts AckMonitorSnapshot.selfImplicit: our own ack
 * no longer rewrites every stored chunk of tracked acks, bench:catchup). No store change, nothing
 * to convert: snapshots written before name us and are read as they are; the version keeps an
 * older build, which would take us for having acked everything (no ack sent, delivery shown), from
 * opening the database.
 */
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb';
import { CLIENT_DB_NAME, OUTBOX_BY_CHANNEL_INDEX, TRANSIT_STORES, type FetchTokenRecord, type InboxRecord, type OutboxRecord } from '../shared/client-db.js';

export { CLIENT_DB_NAME };
export const CLIENT_DB_VERSION = 7;

/** An encrypted value: AES-256-GCM, 12-byte IV, tag appended. */
export interface Sealed {
  readonly iv: Uint8Array;
  readonly ct: Uint8Array;
}

/** meta 'keys': the data key, wrapped (vault.ts). */
export interface KeysRecord {
  readonly version: 1;
  /** Non-extractable AES-GCM key: wraps the data key (or the passphrase-wrapped data key). */
  readonly deviceKey: CryptoKey;
  readonly wrapped: Sealed;
  /** Set when a passphrase locks the store: `wrapped` then holds AES-GCM(PBKDF2 key, data key). */
  readonly passphrase: { readonly salt: Uint8Array; readonly iterations: number } | null;
}

/** meta 'engine': bumped by each engine that starts; a write from an older engine is refused. */
export interface EngineRecord {
  readonly epoch: number;
  readonly startedAtMs: number;
}

export interface CoveyDb extends DBSchema {
  meta: { key: 'keys'; value: KeysRecord } | { key: 'engine'; value: EngineRecord };
  profile: { key: string; value: Sealed };
  contacts: { key: string; value: Sealed };
  requests: { key: string; value: Sealed };
  invitations: { key: string; value: Sealed };
  conversations: { key: string; value: Sealed };
  sessions: { key: string; value: Sealed };
  /**
   * Key [conversationId, position]: messages and notices in display order; since v4 also packs at
   * [conversationId, first - 0.5] (client-store.ts TimelinePack), never at a whole position.
   */
  timeline: { key: [string, number]; value: Sealed };
  drafts: { key: string; value: Sealed };
  /** Key ["<conversationId>/<subsession>", chunk]: immutable chunks of accepted messages. */
  sessionChunks: { key: [string, number]; value: Sealed };
  /** Ids of inbox messages already processed (replay protection); key: hex hash. */
  seen: { key: string; value: Sealed };
  outbox: { key: string; value: OutboxRecord; indexes: { [OUTBOX_BY_CHANNEL_INDEX]: [string, number] } };
  inbox: { key: [string, number]; value: InboxRecord };
  fetchTokens: { key: string; value: FetchTokenRecord };
}

export type StoreName = StoreNames<CoveyDb>;
/** Stores whose values are Sealed. */
export type SealedStoreName = 'profile' | 'contacts' | 'requests' | 'invitations' | 'conversations' | 'sessions' | 'sessionChunks' | 'timeline' | 'drafts' | 'seen';
export const SEALED_STORES: readonly SealedStoreName[] = ['profile', 'contacts', 'requests', 'invitations', 'conversations', 'sessions', 'sessionChunks', 'timeline', 'drafts', 'seen'];
export type CoveyDatabase = IDBPDatabase<CoveyDb>;

/** The migrations, one step per version (idb README). Runs inside the versionchange transaction. */
export function upgradeCoveyDb(
  db: IDBPDatabase<CoveyDb>,
  oldVersion: number,
  newVersion: number | null,
  tx: IDBPTransaction<CoveyDb, StoreName[], 'versionchange'>,
): void {
  // Each step runs once, in order; bounded by newVersion so a test can build an old layout.
  const target = newVersion ?? CLIENT_DB_VERSION;
  if (oldVersion < 1 && target >= 1) {
    db.createObjectStore('meta');
    db.createObjectStore('profile');
    db.createObjectStore('contacts');
    db.createObjectStore('conversations');
    db.createObjectStore('sessions');
    db.createObjectStore('timeline');
    db.createObjectStore(TRANSIT_STORES.outbox, { keyPath: 'postId' });
    db.createObjectStore(TRANSIT_STORES.inbox, { keyPath: ['channel', 'seq'] });
  }
  if (oldVersion < 2 && target >= 2) {
    db.createObjectStore('requests');
    db.createObjectStore('invitations');
    db.createObjectStore('drafts');
    db.createObjectStore('seen');
    db.createObjectStore(TRANSIT_STORES.fetchTokens, { keyPath: 'channel' });
    tx.objectStore('outbox').createIndex(OUTBOX_BY_CHANNEL_INDEX, ['channel', 'queuedAtMs']);
  }
  if (oldVersion < 3 && target >= 3) {
    db.createObjectStore('sessionChunks');
  }
  if (oldVersion < 4 && target >= 4) {
    // Timeline packs (client-store.ts TimelinePack): no layout change, nothing to convert; single
    // records written before are read as they are.
  }
  if (oldVersion < 5 && target >= 5) {
    // Compact session chunks (src/worker/snapshot-chunks.ts) and timeline packs as rows
    // (client-store.ts TimelineRowsPack): no layout change, nothing to convert; records written
    // before are read as they are.
  }
  if (oldVersion < 6 && target >= 6) {
    // Inbox records as pages of events (src/shared/client-db.ts InboxPageRecord): no layout
    // change, nothing to convert; per-event records written before are read as they are.
  }
  if (oldVersion < 7 && target >= 7) {
    // Ack monitor snapshots without us in `remaining` (AckMonitorSnapshot.selfImplicit): no
    // layout change, nothing to convert; snapshots written before are read as they are.
  }
}
