/**
 * The relay's JSON wire types (DESIGN.md §3), shared by the relay (src/relay) and its client in the
 * Web Worker (src/worker/relay-client.ts). ES2022 only: types and plain constants, no runtime APIs.
 * The prose version, with routes and status codes, is src/relay/README.md.
 *
 * Encodings: binary values (keys, signatures, nonces, packets, hashes) travel as base64url text
 * without padding; SHA-256 hashes of blobs travel as lowercase hex (64 characters); times are
 * milliseconds since the Unix epoch.
 */

/** API version prefix of every HTTP route. */
export const RELAY_API_PREFIX = '/v1';

/** Domain separation tag at the start of every signed request (see `relaySigningText`). */
export const RELAY_SIGNING_TAG = 'covey-relay-v1';

/** HTTP header names of a signed request and of capability-bearing requests. */
export const RELAY_HEADERS = {
  key: 'covey-key',
  nonce: 'covey-nonce',
  time: 'covey-time',
  signature: 'covey-signature',
  /** Instead of `signature`: an HMAC of the same text under the member's relay MAC key (relay-mac.ts). */
  mac: 'covey-mac',
  capability: 'covey-capability',
  /** A read-only fetch token (GET events only): what the service worker holds instead of a key. */
  fetchToken: 'covey-fetch-token',
} as const;

/** WebSocket subscriptions are signed like an HTTP request with this pseudo-method. */
export const RELAY_SUBSCRIBE_METHOD = 'SUBSCRIBE';

/** A channel member's ed25519 public key (32 bytes), base64url: 43 characters. */
export type MemberKey = string & { readonly __brand: 'MemberKey' };
/** An unguessable channel id: 16 random bytes, base64url (22 characters). */
export type ChannelId = string & { readonly __brand: 'ChannelId' };
/** A bearer secret (32 random bytes, base64url, 43 characters): invite, deposit, upload, blob read or fetch token. */
export type CapabilityToken = string & { readonly __brand: 'CapabilityToken' };
/** SHA-256 of a blob's bytes, lowercase hex. */
export type BlobHash = string & { readonly __brand: 'BlobHash' };

export type ChannelKind = 'group' | 'inbox';
export type CapabilityKind = 'invite' | 'deposit';

/**
 * The text a member signs for a request: the tag, method, path with query, base64url SHA-256 of
 * the exact body bytes (of the empty string when there is no body), nonce and time, one per line.
 * Signature: ed25519 over the UTF-8 bytes of this text.
 */
export function relaySigningText(
  method: string,
  pathWithQuery: string,
  bodySha256Base64Url: string,
  nonce: string,
  timeMs: number,
): string {
  return `${RELAY_SIGNING_TAG}\n${method}\n${pathWithQuery}\n${bodySha256Base64Url}\n${nonce}\n${timeMs}`;
}

/** The path of a packet post (POST): signed by the member, over HTTP or inside a WebSocket `post` frame. */
export function relayPostPath(channelId: string): string {
  return `${RELAY_API_PREFIX}/channels/${channelId}/events`;
}

/** The path signed for a WebSocket subscription to `channelId`. */
export function relaySubscribePath(channelId: string): string {
  return `${RELAY_API_PREFIX}/channels/${channelId}`;
}

/**
 * The path of an events read, as signed by a member or sent with a fetch token (the service
 * worker builds it here: it cannot import the worker's client).
 */
export function relayEventsPath(channelId: string, afterSeq: number, limit?: number): string {
  const query = limit === undefined ? `after=${afterSeq}` : `after=${afterSeq}&limit=${limit}`;
  return `${RELAY_API_PREFIX}/channels/${channelId}/events?${query}`;
}

/**
 * The path of a deferred post (POST, signed earlier by the member, sent later by the keyless
 * service worker; src/relay/README.md "Deferred posts"). A separate path, so a signature made for
 * the ordinary post route can never be stretched to the longer window, nor the other way round.
 */
export function relayDeferredPostPath(channelId: string): string {
  return `${RELAY_API_PREFIX}/channels/${channelId}/deferred-events`;
}

/**
 * Default age up to which the relay accepts a deferred post's signature (`maxDeferredPostAgeMs`):
 * a message written offline still goes out from the service worker when the network returns
 * within two weeks with the app closed; past that the app signs it again when it opens.
 */
export const DEFERRED_POST_MAX_AGE_MS = 14 * 24 * 60 * 60 * 1000;

// ---- events --------------------------------------------------------------------------------

interface EventBase {
  /** Relay-assigned, starts at 1, +1 per event: the channel's single order (DESIGN.md §3). */
  readonly seq: number;
  /** Relay clock when the event was appended. */
  readonly timeMs: number;
}

/** `member` joined (the creator joins at seq 1 when the channel is created). */
export interface MemberJoinedEvent extends EventBase {
  readonly type: 'member-joined';
  readonly member: MemberKey;
}

/** `member` left (`by === member`) or was removed by member `by`. */
export interface MemberLeftEvent extends EventBase {
  readonly type: 'member-left';
  readonly member: MemberKey;
  readonly by: MemberKey;
}

/** A packet (opaque ciphertext, base64url). `author` is null for an inbox deposit. */
export interface PacketEvent extends EventBase {
  readonly type: 'packet';
  readonly author: MemberKey | null;
  readonly packet: string;
  /**
   * Present when the author asked to wake members who are away (`wake` on the post): a message a
   * person wrote, not an ack, heartbeat or key exchange. Web Push is sent for these and for inbox
   * deposits only, and the service worker counts them for its notification.
   */
  readonly wake?: true;
}

export type RelayEvent = MemberJoinedEvent | MemberLeftEvent | PacketEvent;

// ---- HTTP requests and responses -----------------------------------------------------------

/** POST /v1/channels (signed by the creator's channel key). */
export interface CreateChannelRequest {
  readonly kind: ChannelKind;
}
export interface CreateChannelResponse {
  readonly channelId: ChannelId;
  readonly kind: ChannelKind;
  /** The creator's member-joined event (seq 1). */
  readonly event: MemberJoinedEvent;
}

export interface MemberInfo {
  readonly key: MemberKey;
  /** Seq of this member's member-joined event. */
  readonly joinedSeq: number;
  /** Highest seq this member acknowledged as read. */
  readonly cursor: number;
}

/** GET /v1/channels/:id (signed, member). */
export interface ChannelInfoResponse {
  readonly channelId: ChannelId;
  readonly kind: ChannelKind;
  readonly owner: MemberKey;
  /** Seq of the newest event (0 never happens: creation appends seq 1). */
  readonly headSeq: number;
  /** Seq of the oldest event still stored (headSeq + 1 when retention removed them all). */
  readonly firstSeq: number;
  /**
   * Seq of the newest member-left event ever appended (0: nobody ever left). A conditional post
   * (`ifNoLeaveAfter`) is refused when this is greater than its condition.
   */
  readonly lastLeftSeq: number;
  readonly members: readonly MemberInfo[];
}

/** POST /v1/channels/:id/capabilities (signed, member; inbox: owner only). */
export interface CreateCapabilityRequest {
  /** 'invite' for group channels, 'deposit' for inboxes. */
  readonly kind: CapabilityKind;
  /** Lifetime from now; capped by MAX_CAPABILITY_TTL_MS. */
  readonly ttlMs: number;
  /** How many times it may be redeemed; capped by MAX_CAPABILITY_USES. */
  readonly uses: number;
}
export interface CreateCapabilityResponse {
  readonly capability: CapabilityToken;
  readonly kind: CapabilityKind;
  readonly expiresAtMs: number;
  readonly uses: number;
}

/** POST /v1/channels/:id/join (signed by the joining key). */
export interface JoinRequest {
  readonly capability: CapabilityToken;
}
export interface JoinResponse {
  /** The member-joined event, or for a key already in the channel its original one. */
  readonly joinedSeq: number;
  readonly event: MemberJoinedEvent | null;
}

/** DELETE /v1/channels/:id/members/:key (signed, member; own key = leave). */
export interface RemoveMemberResponse {
  readonly event: MemberLeftEvent;
}

/** POST /v1/channels/:id/events (signed, member). */
export interface PostPacketRequest {
  /** Opaque packet bytes, base64url; at most MAX_PACKET_BYTES decoded. */
  readonly packet: string;
  /**
   * Optional client-chosen id (1..64 characters of [A-Za-z0-9_-]) that makes a retried post
   * idempotent: the same author posting the same postId again gets the first seq back.
   */
  readonly postId?: string;
  /**
   * Conditional post (async-groups.md rule 7): the seq up to which the sealer had processed the
   * channel's events when it sealed this packet (so at least its newest member-left event). The
   * relay refuses the post with 409 `membership-changed` if any member left after that seq,
   * checked atomically with the append. Omitted: unconditional.
   */
  readonly ifNoLeaveAfter?: number;
  /**
   * Wake members who are away (Web Push, the service worker's notification count): true for what
   * a person wrote; omitted for protocol traffic (acks, heartbeats, key exchange), which would
   * otherwise wake every closed phone in the group each minute. Visible to the relay.
   */
  readonly wake?: boolean;
}
/**
 * POST /v1/channels/:id/deferred-events (signed by a member, up to maxDeferredPostAgeMs before it
 * arrives): a conditional, idempotent post only, so replaying it is harmless and it can never land
 * after a member-left its sealer had not seen (async-groups.md rule 7).
 */
export interface DeferredPostRequest {
  readonly packet: string;
  readonly postId: string;
  readonly ifNoLeaveAfter: number;
  readonly wake?: boolean;
}
export interface PostPacketResponse {
  readonly seq: number;
  readonly timeMs: number;
  /** True when this postId was already stored (nothing new was appended). */
  readonly duplicate: boolean;
}

/** POST /v1/channels/:id/deposit (capability header `covey-capability`, no signature). */
export interface DepositRequest {
  readonly packet: string;
}
export type DepositResponse = Omit<PostPacketResponse, 'duplicate'>;

/** GET /v1/channels/:id/events?after=N&limit=M (signed, member). */
export interface ReadEventsResponse {
  /** Events with seq > after, in order, at most `limit`. */
  readonly events: readonly RelayEvent[];
  readonly headSeq: number;
  /** Oldest stored seq: if greater than after + 1, retention removed events this reader missed. */
  readonly firstSeq: number;
  /** True when more events follow the last one returned. */
  readonly more: boolean;
}

/** PUT /v1/channels/:id/cursor (signed, member). */
export interface AckCursorRequest {
  readonly seq: number;
}
export interface AckCursorResponse {
  /** The stored cursor: max(old cursor, min(seq, headSeq)). */
  readonly cursor: number;
}

/** POST /v1/channels/:id/uploads (signed, member). */
export interface CreateUploadRequest {
  readonly sha256: BlobHash;
  readonly size: number;
}
export interface UploadStatusResponse {
  /** The upload's own capability: PUT chunks, GET status and finalize with it. */
  readonly upload: CapabilityToken;
  readonly sha256: BlobHash;
  readonly size: number;
  /** Bytes received so far: the offset of the next chunk. */
  readonly offset: number;
  readonly expiresAtMs: number;
}

/** POST /v1/uploads/:upload/finalize. */
export interface FinalizeUploadResponse {
  readonly sha256: BlobHash;
  readonly size: number;
  /** Send with GET /v1/blobs/:sha256 in the `covey-capability` header. */
  readonly readCapability: CapabilityToken;
  readonly expiresAtMs: number;
}

/** POST /v1/channels/:id/fetch-tokens (signed, member): a read-only token for this member and channel. */
export interface CreateFetchTokenRequest {
  /** Lifetime from now; capped by maxFetchTokenTtlMs. */
  readonly ttlMs: number;
}
export interface CreateFetchTokenResponse {
  /**
   * Send as the `covey-fetch-token` header of GET /v1/channels/:id/events (and nothing else):
   * reads this channel's events as this member, from its join on. Dies when it expires, is
   * revoked, or the member leaves or is removed.
   */
  readonly token: CapabilityToken;
  readonly expiresAtMs: number;
}

/** POST /v1/channels/:id/fetch-tokens/revoke (signed, member): one token, or all of the signer's. */
export interface RevokeFetchTokensRequest {
  /** The token to revoke; omitted: every fetch token of the signer in this channel. */
  readonly token?: CapabilityToken;
}
export interface RevokeFetchTokensResponse {
  /** How many tokens were revoked (0: unknown, expired, already revoked or someone else's). */
  readonly revoked: number;
}

/** GET /v1/push/key: the relay's VAPID public key, the `applicationServerKey` of PushManager.subscribe. */
export interface VapidKeyResponse {
  /** Uncompressed P-256 point (65 bytes), base64url. */
  readonly publicKey: string;
}

/**
 * PUT /v1/channels/:id/push (signed, member): where to wake this member for this channel, from
 * `PushSubscription.toJSON()`. One subscription per member and channel (a new one replaces it).
 */
export interface RegisterPushRequest {
  readonly endpoint: string;
  readonly keys: {
    /** The subscription's P-256 public key: uncompressed point (65 bytes), base64url. */
    readonly p256dh: string;
    /** The subscription's auth secret: 16 bytes, base64url. */
    readonly auth: string;
  };
}
export interface RegisterPushResponse {
  /** True after PUT, false after DELETE. */
  readonly registered: boolean;
}

/**
 * The decrypted payload of every Web Push the relay sends: no message content, only which
 * channels have new events (so the service worker fetches those with their fetch tokens).
 */
export interface PushWakePayload {
  readonly type: 'covey-wake';
  /** Channels with new events for this subscription since its last push (at most a few dozen). */
  readonly channels: readonly ChannelId[];
}

/** Room for new content, as of the relay's last check (see src/relay/README.md "Storage high-water mark"). */
export interface StorageStatus {
  /** False while new content is refused with 507 storage-full. */
  readonly writable: boolean;
  /** Why not writable: 'disk-low' | 'memory-high' | 'stored-bytes-quota'. */
  readonly reason?: string;
  /** Free bytes of the data dir's file system (SQLite). */
  readonly freeBytes?: number;
  /** Redis used memory and maxmemory (when set). */
  readonly usedBytes?: number;
  readonly limitBytes?: number;
  /** Stored event bytes (the quota's measure). */
  readonly storedBytes?: number;
}

export interface HealthResponse {
  readonly ok: true;
  readonly store: string;
  readonly storage: StorageStatus;
}

/** POST /v1/channels/:id/capabilities/revoke (signed, member): revokes an invite or deposit capability of this channel. */
export interface RevokeCapabilityRequest {
  readonly capability: CapabilityToken;
}
export interface RevokeCapabilityResponse {
  /** 1 when revoked, 0 when unknown, expired or another channel's. */
  readonly revoked: number;
}

// ---- WebSocket frames (GET /v1/ws, JSON text frames) ---------------------------------------

/**
 * The relay's default largest client frame (`maxWsFrameBytes`; a bigger one closes the socket
 * with 1009). Small, because every open socket may hold one partly received frame. Clients post
 * over the socket only frames up to this size, larger packets over HTTP.
 */
export const RELAY_WS_MAX_FRAME_BYTES = 4096;

/**
 * What proves a frame came from `key`: an Ed25519 signature or a request MAC (relay-mac.ts) over
 * the same signing text, exactly one of the two, as the `covey-signature` / `covey-mac` headers.
 */
export type FrameProof = { readonly signature: string; readonly mac?: never } | { readonly mac: string; readonly signature?: never };

/**
 * Subscribe to `channel` from `afterSeq`, signed like a request (method SUBSCRIBE, empty body).
 * `batch`: the stored events (the catch-up) may come several to an `events` frame; without it,
 * each comes in its own `event` frame, as relays and clients before it did.
 */
export type SubscribeFrame = {
  readonly type: 'subscribe';
  readonly channel: ChannelId;
  readonly afterSeq: number;
  readonly batch?: boolean;
  readonly key: MemberKey;
  readonly nonce: string;
  readonly timeMs: number;
} & FrameProof;
export interface UnsubscribeFrame {
  readonly type: 'unsubscribe';
  readonly channel: ChannelId;
}
export interface PingFrame {
  readonly type: 'ping';
}
/**
 * A packet post over the open socket: exactly the request POST /v1/channels/:channel/events, its
 * body (a PostPacketRequest's JSON, the exact bytes signed, as UTF-8 text) and its signature
 * headers carried in the frame, signed with method POST and path `relayPostPath(channel)`. The
 * relay answers `posted` (or an `error` frame) with the same `id`; a signed post may go either
 * way, and its nonce is used up by whichever arrives first.
 */
export type PostFrame = {
  readonly type: 'post';
  /** The client's request id (a safe integer ≥ 0), echoed in the answer. */
  readonly id: number;
  readonly channel: ChannelId;
  readonly body: string;
  readonly key: MemberKey;
  readonly nonce: string;
  readonly timeMs: number;
} & FrameProof;
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | PostFrame;

export interface SubscribedFrame {
  readonly type: 'subscribed';
  readonly channel: ChannelId;
  readonly headSeq: number;
  readonly firstSeq: number;
}
export interface EventFrame {
  readonly type: 'event';
  readonly channel: ChannelId;
  readonly event: RelayEvent;
}
/**
 * Stored events of a catch-up, for a subscribe with `batch`: consecutive, in seq order, never
 * empty, and never the member's own `member-left` (that one comes in an `event` frame, then
 * `unsubscribed`). One frame per read of the store, so a reader of 10,000 queued events handles
 * tens of frames instead of 10,000: the per-frame cost in a browser (a network-service message,
 * a task, a parse) was most of the relay catch-up's time over the inbox's (bench:catchup).
 */
export interface EventsFrame {
  readonly type: 'events';
  readonly channel: ChannelId;
  readonly events: readonly RelayEvent[];
}
/** The subscription ended: the member was removed or left (reason 'removed'). */
export interface UnsubscribedFrame {
  readonly type: 'unsubscribed';
  readonly channel: ChannelId;
  readonly reason: 'removed' | 'requested';
}
export interface PongFrame {
  readonly type: 'pong';
}
/** A `post` frame's packet is stored: what the HTTP post answers, with the frame's id. */
export interface PostedFrame extends PostPacketResponse {
  readonly type: 'posted';
  readonly id: number;
}
/**
 * A refused frame; `channel` is set when it concerned one subscription, `id` when it answers a
 * `post` frame (its `code` is the HTTP route's for the same refusal).
 */
export interface ErrorFrame {
  readonly type: 'error';
  readonly code: RelayErrorCode;
  readonly error: string;
  readonly channel?: ChannelId;
  readonly id?: number;
}
export type ServerFrame = SubscribedFrame | EventFrame | EventsFrame | UnsubscribedFrame | PongFrame | PostedFrame | ErrorFrame;

// ---- errors --------------------------------------------------------------------------------

/** Error body of every non-2xx response: `{ "error": "human text", "code": "..." }`. */
export interface RelayErrorBody {
  readonly error: string;
  readonly code: RelayErrorCode;
}

/** Every error code with its HTTP status. */
export const RELAY_ERROR_STATUS = {
  'bad-request': 400, // malformed JSON, field or parameter
  'bad-signature': 401, // missing or invalid auth headers or signature
  unauthorized: 401, // /metrics without its operator token
  'stale-timestamp': 401, // covey-time outside MAX_CLOCK_SKEW_MS of the relay clock
  'replayed-nonce': 401, // this key already used this nonce
  forbidden: 403, // not a member, not the owner, or no such channel (indistinguishable on purpose)
  'invalid-capability': 403, // unknown, expired, used up, or for another channel/blob
  'not-found': 404, // unknown route, upload or blob
  'method-not-allowed': 405,
  'offset-mismatch': 409, // chunk offset is not the upload's current offset (GET status, resume)
  'membership-changed': 409, // conditional post: a member left after the post's ifNoLeaveAfter
  'body-too-large': 413, // request body over its route's limit
  'unsupported-media-type': 415,
  'hash-mismatch': 422, // finalized upload's SHA-256 differs from the announced one
  'rate-limited': 429, // too many requests from this client; retry later
  'quota-exceeded': 429, // channel or upload quota of this client address or key used up; retry later
  'storage-full': 507, // the relay is out of storage: new content refused (leave, read, ack still work)
  internal: 500,
  'too-many-connections': 503,
  'shutting-down': 503,
  'store-unavailable': 503, // the storage holding this channel is unreachable (a Redis node down): retry later
  // WebSocket-only codes (sent in error frames):
  'too-many-subscriptions': 429,
} as const satisfies Record<string, number>;

export type RelayErrorCode = keyof typeof RELAY_ERROR_STATUS;
