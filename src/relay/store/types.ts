/**
 * The relay's storage interface (DESIGN.md §3). Two implementations: SQLite (./sqlite.ts, the
 * default) and Redis (./redis.ts, several relay nodes). Both pass tests/relay/contract.ts.
 *
 * Division of labour: the HTTP layer (src/relay/routes) parses, authenticates (signatures,
 * timestamps) and applies limits; the store keeps state and makes each method ONE atomic step,
 * so that two relay nodes on one Redis, or a crash at any moment, never leave half an operation.
 * Every method that changes state is durable when its promise resolves (SQLite: the WAL is
 * fdatasynced first; Redis: appendfsync always), because the relay acknowledges right after.
 * A store that cannot reach its storage throws `StoreUnavailableError` (the relay answers 503
 * `store-unavailable`: nothing was acknowledged, the client retries later).
 *
 * Secrets are never stored: capabilities (invite, deposit, upload, blob read) are stored and looked
 * up by `CapabilityHash` = SHA-256 of the token, computed by the caller.
 * Binary values are Uint8Array; keys and ids are the wire strings of src/shared/relay-api.ts.
 */
import type {
  BlobHash,
  CapabilityKind,
  ChannelId,
  ChannelKind,
  MemberInfo,
  MemberKey,
  RelayEvent,
} from '../../shared/relay-api.js';

/** SHA-256 of a capability token's UTF-8 text, lowercase hex (64 characters). */
export type CapabilityHash = string & { readonly __brand: 'CapabilityHash' };

export interface ChannelRecord {
  readonly channelId: ChannelId;
  readonly kind: ChannelKind;
  /** The creator; for an inbox the only member and the only reader. */
  readonly owner: MemberKey;
  readonly createdAtMs: number;
  /** Seq of the newest event ever appended (retention never lowers it). */
  readonly headSeq: number;
  /** Oldest stored seq; headSeq + 1 when every event was removed by retention. */
  readonly firstSeq: number;
  /** Sum of `eventSizeBytes` over stored events (retention's max-bytes input). */
  readonly storedBytes: number;
  readonly memberCount: number;
  /** Seq of the newest member-left event ever appended; 0 when nobody ever left (conditional posts). */
  readonly lastLeftSeq: number;
}

/** What a new event says; the store assigns seq and timeMs. */
export type NewEvent =
  | { readonly type: 'member-joined'; readonly member: MemberKey }
  | { readonly type: 'member-left'; readonly member: MemberKey; readonly by: MemberKey }
  | { readonly type: 'packet'; readonly author: MemberKey | null; readonly packet: string; readonly wake?: true };

/**
 * Bytes an event counts against its channel's max-bytes limit: the packet's base64url length plus
 * a fixed overhead for the row. Both stores use this function so retention agrees across stores.
 */
export function eventSizeBytes(event: NewEvent | RelayEvent): number {
  const EVENT_OVERHEAD_BYTES = 64;
  return EVENT_OVERHEAD_BYTES + (event.type === 'packet' ? event.packet.length : 0);
}

export interface CapabilityRecord {
  readonly hash: CapabilityHash;
  readonly channelId: ChannelId;
  readonly kind: CapabilityKind;
  readonly expiresAtMs: number;
  /** Remaining redemptions (> 0 while usable). */
  readonly usesLeft: number;
  /**
   * The member who made it. A capability lives only while its maker is still the member it was
   * when it made it (bound to its joinedSeq): a removed member cannot rejoin with an invite it
   * minted, an inbox owner who left takes its deposit capabilities with it (issue 13).
   */
  readonly creator: MemberKey;
}

export interface UploadRecord {
  /** Hash of the upload token. */
  readonly id: CapabilityHash;
  readonly channelId: ChannelId;
  readonly sha256: BlobHash;
  readonly size: number;
  /** Bytes received so far, always contiguous from 0. */
  readonly received: number;
  readonly expiresAtMs: number;
}

/**
 * A read-only fetch token (issue 12 §4), stored by hash. It reads `channelId` as `member` and only
 * while that member is still the same member: it is bound to the member's joinedSeq, so leaving
 * (or being removed) and rejoining does not revive it.
 */
export interface FetchTokenRecord {
  readonly hash: CapabilityHash;
  readonly channelId: ChannelId;
  readonly member: MemberKey;
  readonly expiresAtMs: number;
}

/** Where to send a member's Web Push for one channel (the browser's PushSubscription). */
export interface PushSubscriptionRecord {
  /** https URL of the push service (validated by the caller). */
  readonly endpoint: string;
  /** base64url, 65-byte uncompressed P-256 point. */
  readonly p256dh: string;
  /** base64url, 16 bytes. */
  readonly auth: string;
}

/** A member of a channel with a push subscription, and whether it has a live WebSocket subscription. */
export interface PushTarget {
  readonly member: MemberKey;
  readonly subscription: PushSubscriptionRecord;
  /** True while some relay node holds a WebSocket subscription of this member to this channel. */
  readonly online: boolean;
}

/** The relay's VAPID key pair (RFC 8292), base64url: public = 65-byte point, private = 32-byte scalar. */
export interface VapidKeys {
  readonly publicKey: string;
  readonly privateKey: string;
}

/** A request's replay-protection nonce, recorded until `expiresAtMs` (see `useNonce`). */
export interface NonceUse {
  readonly key: MemberKey;
  readonly nonce: string;
  readonly expiresAtMs: number;
}

/** Retention limits (src/relay/limits.ts), passed in so tests can shrink them. */
export interface RetentionPolicy {
  /** Events older than this are removed even if unread. */
  readonly maxEventAgeMs: number;
  /** Oldest events are removed while a channel's storedBytes exceeds this. */
  readonly maxChannelBytes: number;
}

/** Outcome of a guarded write: ok, or the reason it was refused (the state is unchanged). */
export type StoreResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: StoreRefusal };
/**
 * - not-member: the acting key is not a member of that channel, or the channel does not exist
 *   (the caller must not be able to tell these apart).
 * - no-target: the member to remove is not in the channel.
 * - invalid-capability: unknown hash, other channel, wrong kind, expired, or no uses left.
 * - offset-mismatch: a chunk's offset is not the upload's `received`.
 * - too-large: a chunk would go beyond the upload's announced size.
 * - not-found: no such upload.
 * - membership-changed: a conditional append's channel had a member leave after its condition.
 * - replayed-nonce: the append's (key, nonce) was already used.
 */
export type StoreRefusal =
  | 'replayed-nonce'
  | 'not-member'
  | 'no-target'
  | 'invalid-capability'
  | 'offset-mismatch'
  | 'too-large'
  | 'not-found'
  | 'membership-changed';

/**
 * Called for every event appended through this store, on every node (Redis: via pub/sub).
 * `frame`, when given, is the JSON text of the WebSocket frame `{type: 'event', channel, event}`
 * for this event, ready to send (the Redis store publishes it whole, so no node re-serializes).
 */
export type EventListener = (channelId: ChannelId, event: RelayEvent, frame?: string) => void;

/**
 * The storage could not be reached or refused to serve (a Redis node down, the cluster without
 * coverage for the channel's slot, a failed fdatasync). Nothing was acknowledged; the relay
 * answers 503 `store-unavailable` with a retry-after.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

export interface RelayStore {
  /** Short name for logs, /healthz and metrics ('sqlite', 'redis'). */
  readonly name: string;

  /**
   * Optional: the server says how to tell that it is idle (no request other than the one at hand
   * is being served). A store may then do short blocking work on the event loop instead of a trip
   * to the thread pool (sqlite.ts: a lone write's fdatasync). Without it, a store never does.
   */
  idleWhen?(idle: () => boolean): void;

  // ---- channels and membership ---------------------------------------------------------------

  /**
   * Creates channel `channelId` (fresh, unguessable, made by the caller) with `owner` as its first
   * member, appending `member-joined` at seq 1. Throws if the id exists (a bug: ids are 128-bit random).
   */
  createChannel(channelId: ChannelId, kind: ChannelKind, owner: MemberKey, nowMs: number): Promise<RelayEvent>;

  /** The channel, or undefined. */
  getChannel(channelId: ChannelId): Promise<ChannelRecord | undefined>;

  /** The member record of `key` in `channelId`, or undefined (also when the channel does not exist). */
  getMember(channelId: ChannelId, key: MemberKey): Promise<MemberInfo | undefined>;

  /** Current members in join order (empty when the channel does not exist). */
  listMembers(channelId: ChannelId): Promise<MemberInfo[]>;

  /**
   * Atomically: if `key` is already a member, returns its record and `event: null` WITHOUT using
   * the capability (join is idempotent, so a retry after a lost response is safe). Otherwise
   * checks that capability `capHash` exists, is for `channelId`, has kind 'invite', is unexpired
   * at nowMs and has usesLeft > 0; uses one; adds the member with cursor = its joinedSeq - 1;
   * appends `member-joined`. Refusal: 'invalid-capability'.
   */
  joinWithCapability(
    channelId: ChannelId,
    key: MemberKey,
    capHash: CapabilityHash,
    nowMs: number,
  ): Promise<StoreResult<{ readonly member: MemberInfo; readonly event: RelayEvent | null }>>;

  /**
   * Atomically: `actor` must be a member ('not-member'), `target` must be a member ('no-target');
   * removes target, its fetch tokens and its push subscription, sets lastLeftSeq, and appends
   * `member-left` {member: target, by: actor}. actor === target is leaving.
   * When that was the last member, the whole channel is deleted in the same step (log, cursors,
   * tokens, push subscriptions): nobody can read it or join it again (its capabilities died with
   * their makers), so keeping it would only fill the disk. Listeners still get the member-left.
   */
  removeMember(channelId: ChannelId, actor: MemberKey, target: MemberKey, nowMs: number): Promise<StoreResult<RelayEvent>>;

  // ---- the event log -------------------------------------------------------------------------

  /**
   * Atomically, in ONE step (for Redis: one script, one round trip): if `nonce` is set, records it as
   * `useNonce(…, channelId)` would, refusing 'replayed-nonce' when it was used (before any other check, whatever
   * the outcome of the rest). If `asMember` is set, it must be a member ('not-member'), checked in the same step as
   * the append so a removed member can never post after its member-left event. If `capability` is
   * set (inbox deposits), it must open this channel with that kind (as `useCapability`), and one of
   * its uses is taken in the same step ('invalid-capability'). If `postId` is set
   * and (channel, author, postId) was already appended, returns that event with `duplicate: true`
   * and appends nothing. If `ifNoLeaveAfter` is set and the channel's lastLeftSeq is greater, refuses
   * 'membership-changed' (async-groups.md rule 7; after the duplicate check, so a retry of a post
   * that was accepted still gets its seq). Otherwise assigns seq = headSeq + 1 and timeMs = nowMs,
   * stores the event, adds eventSizeBytes to storedBytes, and notifies listeners (after it is
   * durable). With `retention`, then trims the channel as `trim` does, in the same step (at most
   * a bounded number of events: the sweep does the rest of a long backlog).
   * `hasPushSubscriptions` says whether any member of the channel has a Web Push subscription
   * (so the caller looks up push targets only when there is someone to wake).
   */
  appendEvent(
    channelId: ChannelId,
    event: NewEvent,
    nowMs: number,
    options?: {
      readonly nonce?: NonceUse;
      readonly asMember?: MemberKey;
      readonly postId?: string;
      readonly ifNoLeaveAfter?: number;
      readonly capability?: { readonly hash: CapabilityHash; readonly kind: CapabilityKind };
      readonly retention?: RetentionPolicy;
    },
  ): Promise<StoreResult<{ readonly event: RelayEvent; readonly duplicate: boolean; readonly hasPushSubscriptions: boolean }>>;

  /**
   * Up to `limit` stored events with seq > afterSeq, ascending, consecutive (no gaps: retention only
   * removes a prefix), stopping before the event that would take the total past `maxBytes`
   * (eventSizeBytes each; the first event is always returned). Empty when the channel does not exist.
   */
  readEvents(channelId: ChannelId, afterSeq: number, limit: number, maxBytes: number): Promise<RelayEvent[]>;

  /**
   * Sets member `key`'s cursor to max(cursor, min(seq, headSeq)) and returns it; undefined when
   * not a member. Does NOT trim: the caller calls `trim` afterwards.
   */
  ackCursor(channelId: ChannelId, key: MemberKey, seq: number): Promise<number | undefined>;

  /**
   * Retention for one channel, in one atomic step: removes every stored event with
   * seq <= min(cursor over current members) (events all members have read; none when there are no
   * members), then events with timeMs < nowMs - maxEventAgeMs, then the oldest events while
   * storedBytes > maxChannelBytes. Always a prefix of the log; headSeq never changes.
   * Returns how many events were removed.
   */
  trim(channelId: ChannelId, policy: RetentionPolicy, nowMs: number): Promise<number>;

  // ---- capabilities and nonces ---------------------------------------------------------------

  /**
   * Atomically: `record.creator` must be a member ('not-member'); stores the capability bound to
   * the creator's current joinedSeq. Throws if the hash exists (a bug: tokens are 256-bit random).
   */
  putCapability(record: CapabilityRecord): Promise<StoreResult<void>>;

  /**
   * Read-only: true if capability `capHash` is for `channelId`, has `kind`, is unexpired at nowMs,
   * has uses left, and its creator is still the member that made it. (Checked before a deposit's
   * body is even parsed; the use is taken atomically by appendEvent.)
   */
  checkCapability(capHash: CapabilityHash, channelId: ChannelId, kind: CapabilityKind, nowMs: number): Promise<boolean>;

  /** Deletes capability `capHash` if it belongs to `channelId`; returns 1 if it did, else 0. */
  revokeCapability(capHash: CapabilityHash, channelId: ChannelId): Promise<number>;

  /**
   * Replay protection: records (key, nonce) until expiresAtMs and returns true if it was new,
   * false if already recorded (a replay). Atomic across nodes (Redis: ZADD NX). `channelId`: the
   * channel the signed request is about, if any; a store may keep the nonce with that channel (the
   * Redis store does: a request about a channel then needs only that channel's node). The same
   * signed request always names the same channel, so a replay is always caught.
   * Durability, the one exception to the rule above: the nonce must be durable no later than the
   * next state change that this request makes (SQLite commits nonce-only batches without fsync;
   * the request's own write fsyncs it). It must survive a process crash either way.
   */
  useNonce(key: MemberKey, nonce: string, expiresAtMs: number, channelId?: ChannelId): Promise<boolean>;

  // ---- read-only fetch tokens (issue 12 §4) ---------------------------------------------------

  /**
   * Atomically: `record.member` must be a member of `record.channelId` ('not-member'); stores the
   * token bound to the member's current joinedSeq; then deletes this member's expired tokens in the
   * channel and, beyond `maxPerMember`, those that expire soonest.
   */
  putFetchToken(record: FetchTokenRecord, maxPerMember: number, nowMs: number): Promise<StoreResult<void>>;

  /**
   * The member that token `hash` reads `channelId` as: only if the token exists for that channel,
   * is unexpired at nowMs, and its member is still a member with the joinedSeq the token was bound
   * to. Undefined otherwise (one answer for every failure).
   */
  useFetchToken(hash: CapabilityHash, channelId: ChannelId, nowMs: number): Promise<MemberInfo | undefined>;

  /** Deletes `member`'s fetch token `hash` in the channel, or all of its tokens there; returns how many. */
  revokeFetchTokens(channelId: ChannelId, member: MemberKey, hash?: CapabilityHash): Promise<number>;

  // ---- Web Push (issue 12 §5) ----------------------------------------------------------------

  /** Atomically: if `member` is a member, sets its push subscription for the channel (replacing one); else false. */
  putPushSubscription(channelId: ChannelId, member: MemberKey, subscription: PushSubscriptionRecord): Promise<boolean>;

  /** Deletes the member's push subscription in the channel; with `endpoint`, only if it is still that one. */
  deletePushSubscription(channelId: ChannelId, member: MemberKey, endpoint?: string): Promise<void>;

  /** Every push subscription of the channel's members, with their WebSocket presence. */
  pushTargets(channelId: ChannelId): Promise<PushTarget[]>;

  /**
   * A WebSocket subscription of `member` to the channel started (+1) or ended (-1) on this node.
   * Presence is not durable: it dies with the node (Redis: with the node's heartbeat).
   */
  setOnline(channelId: ChannelId, member: MemberKey, delta: 1 | -1): Promise<void>;

  /**
   * The relay's VAPID keys: the stored ones, or `candidate`, stored atomically on first use (two
   * nodes starting at once agree on one pair: every node must sign for the same public key).
   */
  vapidKeys(candidate: VapidKeys): Promise<VapidKeys>;

  // ---- blobs (content-addressed, chunked uploads with resume) --------------------------------

  /** Stores a new upload with received = 0. */
  createUpload(record: UploadRecord): Promise<void>;

  /** The upload if it exists and has not expired at nowMs. */
  getUpload(id: CapabilityHash, nowMs: number): Promise<UploadRecord | undefined>;

  /**
   * Atomically appends `bytes` at `offset`: refuses 'not-found' (no such upload, or expired),
   * 'offset-mismatch' when offset !== received, 'too-large' when received + bytes.length > size.
   * Returns the new `received`.
   */
  appendUploadChunk(id: CapabilityHash, offset: number, bytes: Uint8Array, nowMs: number): Promise<StoreResult<number>>;

  /**
   * Up to `maxBytes` of the upload's received bytes from `offset` (fewer at a stored chunk's end;
   * empty at the end), or undefined when there is no such upload. The caller hashes them piece by
   * piece: a 32 MiB upload never sits in memory whole.
   */
  readUploadRange(id: CapabilityHash, offset: number, maxBytes: number): Promise<Uint8Array | undefined>;

  /** Deletes the upload and its chunks (on hash mismatch). */
  deleteUpload(id: CapabilityHash): Promise<void>;

  /**
   * Atomically turns complete upload `id` into blob `sha256` (the caller checked the hash; if the
   * blob is already stored its bytes stay and its expiry becomes the later of the two), stores a
   * read capability `readCapHash` for it, and deletes the upload. False when the upload is gone.
   */
  finalizeUpload(id: CapabilityHash, sha256: BlobHash, readCapHash: CapabilityHash, expiresAtMs: number): Promise<boolean>;

  /**
   * The blob that read capability `readCapHash` opens, if unexpired at nowMs and if it is blob
   * `sha256` (the one requested; a store may look only where that blob lives): { sha256, size }.
   * The caller compares sha256 with the requested hash in constant time, then streams it with
   * readBlobRange.
   */
  openBlob(
    sha256: BlobHash,
    readCapHash: CapabilityHash,
    nowMs: number,
  ): Promise<{ readonly sha256: BlobHash; readonly size: number } | undefined>;

  /** Up to `maxBytes` of blob `sha256` from `offset` (fewer at a stored chunk's end; empty at the end or when gone). */
  readBlobRange(sha256: BlobHash, offset: number, maxBytes: number): Promise<Uint8Array>;

  // ---- housekeeping, notification, lifecycle -------------------------------------------------

  /**
   * Periodic sweep: `trim` every channel with the policy, delete channels without members, and
   * delete expired nonces, capabilities, fetch tokens, uploads and blobs. Returns the number of
   * events removed. Bounded work per call is fine.
   */
  sweep(policy: RetentionPolicy, nowMs: number): Promise<number>;

  /**
   * Registers a listener for appended events, returns its unsubscribe function. Listeners get
   * each event after it is durable; per channel in seq order as seen by this node. Delivery is a
   * hint: a listener may miss or see an event twice and must fall back to readEvents when it sees
   * a gap. When events may have been missed with no later event to show the gap (the Redis pub/sub
   * connection dropped and came back), the store calls `onResync`: the listener then reads every
   * channel it follows up to its head. Listeners must not throw.
   */
  subscribe(listener: EventListener, onResync?: () => void): () => void;

  /**
   * Counts for /metrics and the storage quota: channels, stored events and their bytes. Kept as
   * counters updated with each write (O(1) to read: no scan of the log, issue 13 "Broken" 4).
   */
  stats(): Promise<{ readonly channels: number; readonly events: number; readonly bytes: number }>;

  /**
   * Room left for the data: free bytes of the data dir's file system (SQLite), or Redis memory
   * used and its maxmemory (when set). Undefined fields are unknown (an in-memory store).
   */
  storageUsage(): Promise<StorageUsage>;

  /** Flushes and releases everything; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

export interface StorageUsage {
  readonly freeBytes?: number;
  readonly usedBytes?: number;
  readonly limitBytes?: number;
}

/** Makes a store (tests pass one to startRelay; main.ts picks SQLite or Redis). */
export type StoreFactory = () => Promise<RelayStore>;
