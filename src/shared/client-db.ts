/**
 * The part of the client's IndexedDB database that the service worker reads and writes without
 * keys (DESIGN.md §4, §6; issue 10 §4): relay ciphertext stored as-is. The worker owns the
 * database (src/store/schema.ts: one typed DBSchema, all migrations); sw/ imports only this file.
 *
 * Rules for the service worker:
 * - Open the database WITHOUT a version (`indexedDB.open(CLIENT_DB_NAME)`). If `upgradeneeded`
 *   fires, the database does not exist yet: abort that transaction and do nothing (the worker
 *   creates it). Close it on `versionchange`, so the worker can migrate.
 * - Touch only the stores named here, and only as described below. Every other store holds
 *   records encrypted under a key the service worker never has.
 *
 * Records hold no plaintext: packets are mpENC ciphertext (base64url, exactly as the relay
 * carries them), ids are random, and channel ids and relay URLs are what the relay already knows.
 */
import type { CapabilityToken, ChannelId, MemberKey, RelayEvent } from './relay-api.js';

export const CLIENT_DB_NAME = 'covey';

/**
 * The Web Lock held by the tab that runs the engine (src/worker/engine-host.ts). While it is held
 * the engine reads live and processes news itself: the service worker leaves the inbox alone.
 */
export const ENGINE_LOCK_NAME = 'covey-engine';

/** Store names the service worker may use. */
export const TRANSIT_STORES = {
  /** Packets to post, in order of `queuedAtMs` per channel. Key: `postId`. */
  outbox: 'outbox',
  /**
   * Relay events fetched but not yet processed by the engine: one record per page read
   * (InboxPageRecord; older builds wrote one per event, InboxEventRecord). Key: [`channel`, `seq`].
   */
  inbox: 'inbox',
  /** Read-only fetch tokens, one per channel we read. Key: `channel`. */
  fetchTokens: 'fetchTokens',
} as const;

/** Index of the outbox by channel then queue time: posts of one channel leave in order. */
export const OUTBOX_BY_CHANNEL_INDEX = 'byChannel';

/**
 * A packet waiting to be posted. The worker writes it in the same transaction that stores the
 * session state which produced it (persist before send); it is deleted once the relay accepted
 * it (201, or 200 with duplicate: true for a retried `postId`).
 */
export interface OutboxRecord {
  /** Idempotency key of the post (relay README: 1..64 of [A-Za-z0-9_-]); random, 22 characters. */
  readonly postId: string;
  /** The relay's origin, e.g. https://relay.example. */
  readonly relay: string;
  readonly channel: ChannelId;
  /** The packet bytes, base64url, exactly as to be posted. */
  readonly packet: string;
  /**
   * async-groups rule 7: the channel seq up to which the sealer had processed events; sent as
   * `ifNoLeaveAfter`. A 409 `membership-changed` means the packet must be re-sealed by the worker:
   * leave the record for it.
   */
  readonly ifNoLeaveAfter: number | null;
  /**
   * async-groups rule 7: the subsession (index) a data packet was sealed under. Before posting,
   * the worker asks the engine whether that subsession is still the current one
   * (`Session.canPost`); if an operation replaced it meanwhile, the packet is dropped and its
   * message sealed again. Absent on membership packets and on records from before this field.
   */
  readonly sealedUnder?: number;
  readonly queuedAtMs: number;
  /** Posted with `wake` (a message a person wrote; PostPacketRequest.wake). Absent: false. */
  readonly wake?: boolean;
  /**
   * A deferred post signed in advance by the worker for exactly this packet, postId and
   * `ifNoLeaveAfter`, or null (membership packets, which must reach the order whatever happened,
   * are never presigned). The service worker sends it as is (see `PresignedPost`).
   */
  readonly presigned: PresignedPost | null;
  /** Failed attempts so far (for backoff); the worker and the service worker both update it. */
  readonly attempts: number;
}

/**
 * `POST <relay><relayDeferredPostPath(channel)>` with these headers and this body, exactly. The
 * relay accepts the signature up to DEFERRED_POST_MAX_AGE_MS after `signedAtMs` and its nonce once
 * (src/relay/README.md "Deferred posts"); on any refusal (401 stale or replayed, 409
 * membership-changed, 403) leave the record for the worker, which holds the key and decides.
 */
export interface PresignedPost {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly signedAtMs: number;
}

/**
 * Most events one inbox record holds: one read of the relay (its maxReadEvents, 500; a page is
 * also at most ~1 MiB). Bounded so that one record is one bounded structured clone for the worker,
 * and so that a crash while a record is half processed costs at most one page processed again
 * (its record is deleted only with the last of its events; the events before drop by seq).
 */
export const INBOX_PAGE_EVENTS = 500;

/**
 * A page of relay events the service worker fetched in one read, stored as one record (not one
 * record per event: 10,000 records cost IndexedDB more to read and delete than a whole catch-up
 * writes, bench:catchup). Key: [`channel`, `seq`], `seq` being its first event's. The worker
 * deletes it in the transaction that stores the processing of its last event.
 */
export interface InboxPageRecord {
  readonly relay: string;
  readonly channel: ChannelId;
  /** The seq of its first event (the key). */
  readonly seq: number;
  /** The seq of its last event. */
  readonly lastSeq: number;
  /** 1..INBOX_PAGE_EVENTS events in seq order, exactly as the relay sent them (packets are base64url ciphertext). */
  readonly events: readonly RelayEvent[];
  readonly fetchedAtMs: number;
}

/**
 * One relay event per record: what builds before the page records wrote. An app upgraded with
 * such records in its inbox still processes them (both forms are read; nothing converts them).
 */
export interface InboxEventRecord {
  readonly relay: string;
  readonly channel: ChannelId;
  readonly seq: number;
  /** The event exactly as the relay sent it (packet events carry base64url ciphertext). */
  readonly event: RelayEvent;
  readonly fetchedAtMs: number;
}

/** A record of the inbox store: relay events fetched (by the service worker), not yet processed. */
export type InboxRecord = InboxPageRecord | InboxEventRecord;

/** The events of an inbox record, in seq order (either form). */
export function inboxEvents(record: InboxRecord): readonly RelayEvent[] {
  return 'events' in record ? record.events : [record.event];
}

/** The seq of an inbox record's last event (either form). */
export function inboxLastSeq(record: InboxRecord): number {
  return 'events' in record ? record.lastSeq : record.seq;
}

/**
 * A read-only fetch token (relay README "fetch tokens"), made by the worker for each channel it
 * reads, so the service worker can fetch `GET /v1/channels/:id/events?after=N` with the
 * `covey-fetch-token` header while the app is closed. The service worker fetches after
 * max(`afterSeq`, the newest inbox seq of that channel) and writes what it gets to the inbox.
 */
export interface FetchTokenRecord {
  readonly channel: ChannelId;
  readonly relay: string;
  readonly token: CapabilityToken;
  readonly expiresAtMs: number;
  /** The newest seq the engine has processed in this channel (the worker keeps it current). */
  readonly afterSeq: number;
  /**
   * Our member key in this channel (the relay names it as the author of our own packets; public),
   * so the service worker counts only what others wrote. Added later: older records lack it.
   */
  readonly member?: MemberKey;
}
