/**
 * Receives while the app is closed (issue 12 §4): with each read-only fetch token the worker left
 * in the `fetchTokens` store, read the channel's new events from the relay and store them in the
 * `inbox` store exactly as they came (ciphertext), one record per page read (InboxPageRecord).
 * The app processes that store first when it opens, so the conversation is there at once, offline
 * too. The token reads and can do nothing else (src/relay/README.md "Fetch tokens"); nothing here
 * can decrypt what it stores.
 */
import { INBOX_PAGE_EVENTS, inboxEvents, inboxLastSeq, type FetchTokenRecord, type InboxPageRecord, type InboxRecord } from '../src/shared/client-db.js';
import { RELAY_HEADERS, relayEventsPath, type ReadEventsResponse, type RelayEvent } from '../src/shared/relay-api.js';
import { committed, getAll, openClientDb, settled, type ServiceWorkerDeps } from './client-db.js';

/** Events asked for per read (the relay caps a page at maxReadEvents, 500, and ~1 MiB): one inbox record at most. */
const PAGE_EVENTS = INBOX_PAGE_EVENTS;
/**
 * Most events the inbox store holds: about 20 MB of ciphertext. An app left closed for very long
 * stops filling storage there; it reads the rest from the relay when it opens.
 */
export const MAX_INBOX_EVENTS = 20_000;
/** Channels read at once: a few requests in flight, not one per group. */
const CONCURRENT_CHANNELS = 4;

export interface FetchResult {
  /** Events stored in the inbox this time. */
  readonly stored: number;
  /** Of those, what others wrote that should wake a person (PacketEvent.wake, inbox deposits). */
  readonly news: number;
  /** Channels that had news. */
  readonly channelsWithNews: readonly string[];
  /** True when a read failed for the network or a busy relay: worth trying again later. */
  readonly retry: boolean;
}

/**
 * Reads every channel we hold a live token for, the ones in `first` (a push's hint) first.
 * Resumes after the newest event already in the inbox, or the engine's position (`afterSeq`).
 */
export async function fetchIntoInbox(deps: ServiceWorkerDeps, first: readonly string[] = []): Promise<FetchResult> {
  const db = await openClientDb(deps.indexedDB);
  if (db === null) return { stored: 0, news: 0, channelsWithNews: [], retry: false };
  try {
    const now = deps.now();
    const tokens = (await getAll<FetchTokenRecord>(db, 'fetchTokens')).filter((t) => t.expiresAtMs > now);
    const rank = (t: FetchTokenRecord) => (first.includes(t.channel) ? 0 : 1);
    tokens.sort((a, b) => rank(a) - rank(b));
    const room = await Room.of(db);
    const results: ChannelResult[] = [];
    const queue = [...tokens];
    const readNext = async (): Promise<void> => {
      for (let token = queue.shift(); token !== undefined; token = queue.shift()) {
        const result = await readChannel(db, deps, token, room);
        results.push(result);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENT_CHANNELS }, readNext));
    return {
      stored: results.reduce((n, r) => n + r.stored, 0),
      news: results.reduce((n, r) => n + r.news, 0),
      channelsWithNews: results.filter((r) => r.news > 0).map((r) => r.channel),
      retry: results.some((r) => r.retry),
    };
  } finally {
    db.close();
  }
}

interface ChannelResult {
  readonly channel: string;
  readonly stored: number;
  readonly news: number;
  readonly retry: boolean;
}

/** What others wrote that should wake a person: a message (wake) or an inbox deposit. */
export function isNews(event: RelayEvent, self: string | undefined): boolean {
  if (event.type !== 'packet') return false;
  if (event.author === null) return true;
  return event.wake === true && event.author !== self;
}

/**
 * The room left under MAX_INBOX_EVENTS. Counting the events means reading the records, so it is
 * only done when the record count alone (each at most INBOX_PAGE_EVENTS) cannot rule out a full
 * store: an inbox of a few pages is never read here.
 */
class Room {
  private constructor(
    private readonly db: IDBDatabase,
    /** Events stored: exact, or (until `exact`) the most the records can hold. */
    private stored: number,
    private exact: boolean,
  ) {}

  static async of(db: IDBDatabase): Promise<Room> {
    const records = await settled(db.transaction('inbox', 'readonly').objectStore('inbox').count());
    return new Room(db, records * INBOX_PAGE_EVENTS, records === 0);
  }

  /** Events that may still be stored, up to `wanted` (counted exactly first if the bound says fewer). */
  async take(wanted: number): Promise<number> {
    if (!this.exact && MAX_INBOX_EVENTS - this.stored < wanted) {
      this.exact = true;
      // A page added before this read has its write transaction already (add() is followed by it
      // at once), so the read sees it; what other channels add while it runs is added on top.
      const before = this.stored;
      const records = await getAll<InboxRecord>(this.db, 'inbox');
      this.stored = records.reduce((n, r) => n + inboxEvents(r).length, 0) + (this.stored - before);
    }
    return Math.max(0, Math.min(wanted, MAX_INBOX_EVENTS - this.stored));
  }

  /** `n` events stored: call just before creating the transaction that puts them. */
  add(n: number): void {
    this.stored += n;
  }

  get full(): boolean {
    return this.exact && this.stored >= MAX_INBOX_EVENTS;
  }
}

async function readChannel(db: IDBDatabase, deps: ServiceWorkerDeps, token: FetchTokenRecord, room: Room): Promise<ChannelResult> {
  let after = Math.max(token.afterSeq, await newestInboxSeq(db, token.channel));
  let stored = 0;
  let news = 0;
  for (;;) {
    if (room.full) return { channel: token.channel, stored, news, retry: false };
    let response: Response;
    try {
      response = await deps.fetch(token.relay + relayEventsPath(token.channel, after, PAGE_EVENTS), {
        headers: { [RELAY_HEADERS.fetchToken]: token.token },
      });
    } catch {
      return { channel: token.channel, stored, news, retry: true };
    }
    // 403: the token died (expired, revoked, or we left): the worker makes a new one when it runs.
    if (!response.ok) return { channel: token.channel, stored, news, retry: response.status === 429 || response.status >= 500 };
    const page = (await response.json()) as ReadEventsResponse;
    const events = page.events.slice(0, await room.take(Math.min(page.events.length, INBOX_PAGE_EVENTS)));
    if (events.length === 0) return { channel: token.channel, stored, news, retry: false };
    // The page as one record (the relay sends a page in seq order).
    const record: InboxPageRecord = { relay: token.relay, channel: token.channel, seq: events[0]!.seq, lastSeq: events[events.length - 1]!.seq, events, fetchedAtMs: deps.now() };
    room.add(events.length);
    const tx = db.transaction('inbox', 'readwrite');
    tx.objectStore('inbox').put(record);
    await committed(tx);
    stored += events.length;
    news += events.filter((e) => isNews(e, token.member)).length;
    after = events[events.length - 1]!.seq;
    if (!page.more) return { channel: token.channel, stored, news, retry: false };
  }
}

/** The newest seq of this channel already in the inbox store (0 if none): the last event of its last record. */
async function newestInboxSeq(db: IDBDatabase, channel: string): Promise<number> {
  const range = IDBKeyRange.bound([channel, -Infinity], [channel, Infinity]);
  const cursor = await settled(db.transaction('inbox', 'readonly').objectStore('inbox').openCursor(range, 'prev'));
  const record = cursor?.value as InboxRecord | undefined;
  return record === undefined ? 0 : inboxLastSeq(record);
}
