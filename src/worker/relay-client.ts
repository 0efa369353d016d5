/**
 * Typed client of the relay API (src/relay/README.md, wire types in src/shared/relay-api.ts), for
 * the Web Worker and for tests. Runtime services are injected: `fetch`, the WebSocket
 * constructor (browser WebSocket, or the `ws` package in Node), the signer of the member's
 * per-channel ed25519 key, HMAC, the clock and randomness. Every member request is proven over
 * method, path, body hash, nonce and time (README "Authentication"): with a request MAC
 * (src/shared/relay-mac.ts) once the relay's auth key is known and the signer can derive its MAC
 * key, else with a signature (relay-mac-keys.ts says when).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { base64UrlDecode, base64UrlEncode, utf8Decode, utf8Encode } from '../protocol/bytes.js';
import type { PresignedPost } from '../shared/client-db.js';
import {
  RELAY_ERROR_STATUS,
  RELAY_HEADERS,
  RELAY_SUBSCRIBE_METHOD,
  RELAY_WS_MAX_FRAME_BYTES,
  relayDeferredPostPath,
  relayEventsPath,
  relayPostPath,
  relaySigningText,
  relaySubscribePath,
  type AckCursorResponse,
  type BlobHash,
  type CapabilityKind,
  type CapabilityToken,
  type ChannelId,
  type ChannelInfoResponse,
  type ChannelKind,
  type CreateCapabilityResponse,
  type CreateChannelResponse,
  type CreateFetchTokenResponse,
  type DeferredPostRequest,
  type DepositResponse,
  type ErrorFrame,
  type FrameProof,
  type FinalizeUploadResponse,
  type HealthResponse,
  type JoinResponse,
  type MemberKey,
  type PostFrame,
  type PostPacketRequest,
  type PostPacketResponse,
  type ReadEventsResponse,
  type RegisterPushRequest,
  type RegisterPushResponse,
  type RevokeCapabilityResponse,
  type RevokeFetchTokensResponse,
  type RelayErrorCode,
  type RelayEvent,
  type RemoveMemberResponse,
  type ServerFrame,
  type SubscribeFrame,
  type UploadStatusResponse,
  type VapidKeyResponse,
} from '../shared/relay-api.js';
import { RelayMacKeys, type MacProofKey } from './relay-mac-keys.js';
import type { RelaySigner } from './relay-signer.js';

export type { RelaySigner } from './relay-signer.js';

/** Options of a post: idempotency and the rule 7 condition (src/relay/README.md "Conditional posts"). */
export interface PostOptions {
  /** Makes a retry idempotent (same author + postId → the first seq, `duplicate: true`). */
  readonly postId?: string;
  /**
   * Conditional post (async-groups.md rule 7): the seq up to which this packet's sealer had
   * processed the channel. Refused with RelayClientError code 'membership-changed' (409) if a
   * member left after it: catch up, re-seal, post again.
   */
  readonly ifNoLeaveAfter?: number;
  /** Wake members who are away (Web Push): what a person wrote, not protocol traffic. */
  readonly wake?: boolean;
}

/**
 * A packet post signed (or MAC'd) ahead of sending (RelayClient.signPost), held in memory only.
 * It goes over HTTP or, as a `post` frame, over the open WebSocket (the same request either way).
 */
export interface SignedPost {
  readonly channel: ChannelId;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The signature's time (the relay refuses it once older than its clock-skew window). */
  readonly signedAtMs: number;
  /**
   * Set when proven with a MAC: the relay auth key it was made under and the signer, to prove it
   * again if the relay refuses it as 'bad-signature' (its key changed).
   */
  readonly mac?: { readonly authKey: string; readonly signer: RelaySigner };
}

/** The part of the WebSocket API the client uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  /** `code`: the close code (RFC 6455 §7.4), when the implementation gives one. */
  addEventListener(type: 'close', listener: (event: { readonly code?: number }) => void): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `cache: 'no-cache'`: not from the HTTP cache (the relay's auth key after a refused MAC, relay-mac-keys.ts). */
export type FetchLike = (input: string, init: { method: string; headers: Record<string, string>; body?: Uint8Array; cache?: 'no-cache' }) => Promise<Response>;

/**
 * Posts over an open WebSocket (RelaySubscription.post): undefined when there is none to use (the
 * post then goes over HTTP); resolves null when the socket closed before the answer (the post
 * then goes over HTTP, the same signed request: the relay takes its nonce once).
 */
export type SocketPoster = (signed: SignedPost) => Promise<PostPacketResponse | null> | undefined;

export interface RelayClientOptions {
  /** The relay's origin, e.g. https://relay.example (no path: the path is what gets signed). */
  readonly baseUrl: string;
  readonly fetch: FetchLike;
  /** Where `postSigned` (and `post`) try first: the subscription's open socket (relays.ts). */
  readonly postOverSocket?: SocketPoster;
  readonly WebSocket?: WebSocketConstructor;
  /** Default signer; methods and subscriptions may use another (one key per channel). */
  readonly signer?: RelaySigner;
  readonly now?: () => number;
  /** Nonce randomness; default crypto.getRandomValues. */
  readonly randomBytes?: (length: number) => Uint8Array;
  /** HMAC-SHA256 of request MACs (the worker passes its crypto provider's); default noble. */
  readonly hmacSha256?: (key: Uint8Array, data: Uint8Array) => Promise<Uint8Array>;
  /**
   * The relay's auth key and the MAC keys derived from it: one per relay, shared by the
   * `withSigner` copies (the constructor makes it when absent).
   */
  readonly macKeys?: RelayMacKeys;
}

/** The proof headers of one request, and the auth key of its MAC (undefined: signed). */
interface Proven {
  readonly headers: Record<string, string>;
  readonly authKey: string | undefined;
}

/** A non-2xx answer from the relay. */
export class RelayClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: RelayErrorCode | 'unknown',
    message: string,
  ) {
    super(message);
    this.name = 'RelayClientError';
  }
}

/** Nonce: 16 random bytes (README: 16..64 base64url characters). */
const NONCE_BYTES = 16;
/** Default blob chunk: below the relay's MAX_BLOB_CHUNK_BYTES (1 MiB). */
const DEFAULT_CHUNK_BYTES = 512 * 1024;
/** Attempts per chunk before uploadBlob gives up (each retry resumes from the relay's offset). */
const CHUNK_ATTEMPTS = 5;
/** Pages readAll fetches at most: bounds one call (500 events per page). */
const READ_ALL_MAX_PAGES = 1000;
/**
 * A post over the socket that gets no answer in this time fails like a timed-out fetch (an Error
 * named TimeoutError): the outbox retries it with the same postId and drops the socket.
 */
export const SOCKET_POST_TIMEOUT_MS = 30_000;
/** The close code for a frame over the receiver's limit (RFC 6455 §7.4.1, "Message Too Big"). */
const CLOSE_MESSAGE_TOO_BIG = 1009;
/** Reconnect backoff: first delay, cap. Jittered ±50 %. */
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 30_000;
/**
 * Resending subscribes the relay refused as rate-limited (its budget per address is shared with
 * HTTP requests): first delay and cap, jittered ±50 %.
 */
const RESUBSCRIBE_BASE_MS = 1_000;
const RESUBSCRIBE_MAX_MS = 30_000;

/**
 * Request bodies at most this long are hashed in this thread (noble), longer ones by WebCrypto:
 * a WebCrypto call is a round trip to another thread (~50 µs in Node, more in a busy browser), on
 * the path of every post; noble hashes a post's few hundred bytes in microseconds. The crossover
 * measured for the hybrid provider (src/protocol/crypto/select.ts) is 4–8 KiB.
 */
const INLINE_SHA256_MAX_BYTES = 8192;

async function sha256Base64Url(bytes: Uint8Array): Promise<string> {
  if (bytes.length <= INLINE_SHA256_MAX_BYTES) return base64UrlEncode(nobleSha256(bytes));
  return base64UrlEncode(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

/** A refusal that a MAC under a relay's old auth key gets (relay-mac-keys.ts `refused`). */
function isProofRefused(error: unknown): boolean {
  return error instanceof RelayClientError && error.code === 'bad-signature';
}

async function sha256Hex(bytes: Uint8Array): Promise<BlobHash> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('') as BlobHash;
}

export interface SubscriptionHandlers {
  /** Each event once, in seq order per channel. */
  onEvent(channel: ChannelId, event: RelayEvent): void;
  /** Subscribed (or re-subscribed after a reconnect); headSeq/firstSeq as the relay reports. */
  onSubscribed?(channel: ChannelId, headSeq: number, firstSeq: number): void;
  /** The member was removed from the channel; the subscription is dropped. */
  onRemoved?(channel: ChannelId): void;
  /** A refused frame (e.g. 'forbidden' for a channel we are not in). */
  onError?(frame: ErrorFrame): void;
  /** Connection state changes. */
  onConnection?(state: 'open' | 'closed'): void;
}

export interface RelaySubscription {
  /** Adds (or restarts) a channel from afterSeq. */
  add(channel: ChannelId, afterSeq: number, signer?: RelaySigner): void;
  remove(channel: ChannelId): void;
  /** Last seq delivered per channel: persist it to resume later. */
  positions(): ReadonlyMap<ChannelId, number>;
  /**
   * Connects now instead of waiting out the backoff (the browser says the network is back), with
   * the backoff reset. Does nothing while connected or connecting.
   */
  reconnectNow(): void;
  /**
   * Posts over the open socket (a `post` frame, src/relay/README.md "WebSocket"): undefined when
   * the socket is not open or the frame would be over RELAY_WS_MAX_FRAME_BYTES (post over HTTP
   * then); resolves the relay's answer, or null when the socket closes first (nothing known:
   * post again, the postId makes it once); rejects with RelayClientError for a refusal (the HTTP
   * route's code and status) or an Error named TimeoutError after SOCKET_POST_TIMEOUT_MS.
   */
  post(signed: SignedPost): Promise<PostPacketResponse | null> | undefined;
  /**
   * Treats the current connection as dead (a request just failed to reach the relay): reports
   * 'closed' and reconnects with backoff, resuming every channel from its last seq.
   */
  reconnect(): void;
  close(): void;
}

export class RelayClient {
  private readonly options: RelayClientOptions & { readonly macKeys: RelayMacKeys };
  private readonly now: () => number;
  private readonly random: (length: number) => Uint8Array;
  private readonly hmac: (key: Uint8Array, data: Uint8Array) => Promise<Uint8Array>;

  constructor(options: RelayClientOptions) {
    this.now = options.now ?? (() => Date.now());
    this.options = { ...options, macKeys: options.macKeys ?? new RelayMacKeys(options.baseUrl, options.fetch, this.now) };
    this.random = options.randomBytes ?? ((length) => crypto.getRandomValues(new Uint8Array(length)));
    this.hmac = options.hmacSha256 ?? (async (key, data) => hmac(nobleSha256, key, data));
  }

  private get macKeys(): RelayMacKeys {
    return this.options.macKeys;
  }

  /** The same relay with another default signer (each channel has its own key). */
  withSigner(signer: RelaySigner): RelayClient {
    return new RelayClient({ ...this.options, signer });
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private signerOr(signer: RelaySigner | undefined): RelaySigner {
    const chosen = signer ?? this.options.signer;
    if (chosen === undefined) throw new TypeError('RelayClient: this request needs a signer');
    return chosen;
  }

  /** Headers proving with a signature that `signer` sent this exact request (what every relay takes). */
  async signHeaders(signer: RelaySigner, method: string, path: string, body: Uint8Array): Promise<Record<string, string>> {
    return this.proofHeaders(signer, undefined, method, path, body);
  }

  /**
   * Headers proving that `signer` sent this exact request: a MAC when the relay's auth key is
   * known and the signer can derive its MAC key, else a signature (relay-mac-keys.ts).
   */
  private async prove(signer: RelaySigner, method: string, path: string, body: Uint8Array): Promise<Proven> {
    const mac = await this.macKeys.proofKey(signer);
    return { headers: await this.proofHeaders(signer, mac, method, path, body), authKey: mac?.authKey };
  }

  private async proofHeaders(signer: RelaySigner, mac: MacProofKey | undefined, method: string, path: string, body: Uint8Array): Promise<Record<string, string>> {
    const nonce = base64UrlEncode(this.random(NONCE_BYTES));
    const timeMs = Math.floor(this.now());
    const text = utf8Encode(relaySigningText(method, path, await sha256Base64Url(body), nonce, timeMs));
    const proof: Record<string, string> =
      mac === undefined
        ? { [RELAY_HEADERS.signature]: base64UrlEncode(await signer.sign(text)) }
        : { [RELAY_HEADERS.mac]: base64UrlEncode(await this.hmac(mac.macKey, text)) };
    return {
      [RELAY_HEADERS.key]: signer.publicKey,
      [RELAY_HEADERS.nonce]: nonce,
      [RELAY_HEADERS.time]: String(timeMs),
      ...proof,
    };
  }

  private async send(
    method: string,
    path: string,
    options: { json?: unknown; bytes?: Uint8Array; signer?: RelaySigner | null; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    let body: Uint8Array | undefined;
    const headers: Record<string, string> = { ...options.headers };
    if (options.json !== undefined) {
      body = utf8Encode(JSON.stringify(options.json));
      headers['content-type'] = 'application/json';
    } else if (options.bytes !== undefined) {
      body = options.bytes;
      headers['content-type'] = 'application/octet-stream';
    }
    if (options.signer === null) return this.fetchChecked(method, path, headers, body);
    const signer = this.signerOr(options.signer);
    const proven = await this.prove(signer, method, path, body ?? new Uint8Array(0));
    try {
      return await this.fetchChecked(method, path, { ...headers, ...proven.headers }, body);
    } catch (error) {
      if (proven.authKey === undefined || !isProofRefused(error)) throw error;
      // MAC'd under a key the relay no longer has: fetch it again, prove afresh, once.
      this.macKeys.refused(proven.authKey);
      const again = await this.prove(signer, method, path, body ?? new Uint8Array(0));
      return this.fetchChecked(method, path, { ...headers, ...again.headers }, body);
    }
  }

  /** Sends a request as it is; a non-2xx answer throws RelayClientError. */
  private async fetchChecked(method: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined): Promise<Response> {
    const response = await this.options.fetch(this.options.baseUrl + path, { method, headers, ...(body === undefined ? {} : { body }) });
    if (!response.ok) {
      let code: RelayErrorCode | 'unknown' = 'unknown';
      let message = `HTTP ${response.status}`;
      try {
        const error = (await response.json()) as { code?: RelayErrorCode; error?: string };
        code = error.code ?? code;
        message = error.error ?? message;
      } catch {
        // Not a relay error body (a proxy page?): keep the status.
      }
      throw new RelayClientError(response.status, code, message);
    }
    return response;
  }

  private async json<T>(method: string, path: string, options: Parameters<RelayClient['send']>[2] = {}): Promise<T> {
    return (await (await this.send(method, path, options)).json()) as T;
  }

  // ---- channels ------------------------------------------------------------------------------

  createChannel(kind: ChannelKind, signer?: RelaySigner): Promise<CreateChannelResponse> {
    return this.json('POST', '/v1/channels', { json: { kind }, ...(signer ? { signer } : {}) });
  }

  channelInfo(channel: ChannelId, signer?: RelaySigner): Promise<ChannelInfoResponse> {
    return this.json('GET', `/v1/channels/${channel}`, signer ? { signer } : {});
  }

  createCapability(
    channel: ChannelId,
    request: { kind: CapabilityKind; ttlMs: number; uses: number },
    signer?: RelaySigner,
  ): Promise<CreateCapabilityResponse> {
    return this.json('POST', `/v1/channels/${channel}/capabilities`, { json: request, ...(signer ? { signer } : {}) });
  }

  /** Revokes an invite (or deposit capability) of this channel; any member holding it may. */
  revokeCapability(channel: ChannelId, capability: CapabilityToken, signer?: RelaySigner): Promise<RevokeCapabilityResponse> {
    return this.json('POST', `/v1/channels/${channel}/capabilities/revoke`, { json: { capability }, ...(signer ? { signer } : {}) });
  }

  join(channel: ChannelId, capability: CapabilityToken, signer?: RelaySigner): Promise<JoinResponse> {
    return this.json('POST', `/v1/channels/${channel}/join`, { json: { capability }, ...(signer ? { signer } : {}) });
  }

  removeMember(channel: ChannelId, member: MemberKey, signer?: RelaySigner): Promise<RemoveMemberResponse> {
    return this.json('DELETE', `/v1/channels/${channel}/members/${member}`, signer ? { signer } : {});
  }

  leave(channel: ChannelId, signer?: RelaySigner): Promise<RemoveMemberResponse> {
    return this.removeMember(channel, this.signerOr(signer).publicKey, signer);
  }

  /**
   * Posts opaque packet bytes. The third argument is a postId (a retry with it is idempotent) or
   * PostOptions, which can also make the post conditional on no member having left (rule 7).
   */
  async post(channel: ChannelId, packet: Uint8Array, options?: string | PostOptions, signer?: RelaySigner): Promise<PostPacketResponse> {
    return this.postSigned(await this.signPost(channel, packet, options, signer));
  }

  /**
   * The request `post` would send, signed now and sent later by `postSigned` (the outbox signs
   * while the step that made the packet commits, so the post leaves the moment the commit is
   * done). Kept in memory only; the relay accepts it within its clock-skew window, once (nonce).
   */
  async signPost(channel: ChannelId, packet: Uint8Array, options?: string | PostOptions, signer?: RelaySigner): Promise<SignedPost> {
    const { postId, ifNoLeaveAfter, wake } = typeof options === 'string' ? { postId: options, ifNoLeaveAfter: undefined, wake: undefined } : (options ?? {});
    const json: PostPacketRequest = {
      packet: base64UrlEncode(packet),
      ...(postId === undefined ? {} : { postId }),
      ...(ifNoLeaveAfter === undefined ? {} : { ifNoLeaveAfter }),
      ...(wake === true ? { wake } : {}),
    };
    return this.provePost(channel, relayPostPath(channel), utf8Encode(JSON.stringify(json)), this.signerOr(signer));
  }

  private async provePost(channel: ChannelId, path: string, body: Uint8Array, signer: RelaySigner): Promise<SignedPost> {
    const proven = await this.prove(signer, 'POST', path, body);
    return {
      channel,
      path,
      headers: { 'content-type': 'application/json', ...proven.headers },
      body,
      signedAtMs: Number(proven.headers[RELAY_HEADERS.time]),
      ...(proven.authKey === undefined ? {} : { mac: { authKey: proven.authKey, signer } }),
    };
  }

  /**
   * Sends a post made by `signPost`: over the open WebSocket when there is one (`postOverSocket`),
   * else, or when that socket closes before the answer, over HTTP. A MAC the relay refuses as
   * 'bad-signature' (its auth key changed) is made again and the post sent once more: the same
   * body, so the same postId (idempotent), with a fresh nonce.
   */
  async postSigned(signed: SignedPost): Promise<PostPacketResponse> {
    try {
      return await this.postOnce(signed);
    } catch (error) {
      if (signed.mac === undefined || !isProofRefused(error)) throw error;
      this.macKeys.refused(signed.mac.authKey);
      return this.postOnce(await this.provePost(signed.channel, signed.path, signed.body, signed.mac.signer));
    }
  }

  private async postOnce(signed: SignedPost): Promise<PostPacketResponse> {
    const overSocket = await this.options.postOverSocket?.(signed);
    if (overSocket !== undefined && overSocket !== null) return overSocket;
    return (await (await this.fetchChecked('POST', signed.path, { ...signed.headers }, signed.body)).json()) as PostPacketResponse;
  }

  /** The `post` frame of a signed post: the same request, its headers as fields. */
  static postFrame(signed: SignedPost, id: number): PostFrame {
    return {
      type: 'post',
      id,
      channel: signed.channel,
      body: utf8Decode(signed.body),
      key: (signed.headers[RELAY_HEADERS.key] ?? '') as MemberKey,
      nonce: signed.headers[RELAY_HEADERS.nonce] ?? '',
      timeMs: signed.signedAtMs,
      ...frameProof(signed.headers),
    };
  }

  /**
   * A conditional, idempotent post signed now and sent later by someone who holds no key (the
   * service worker, from the outbox: src/shared/client-db.ts `presigned`) to the deferred route,
   * which accepts the signature for up to DEFERRED_POST_MAX_AGE_MS (relay README "Deferred posts").
   * Always a signature, never a MAC: it may be sent an hour later, after the relay's auth key
   * changed, by a service worker that could not prove it again; and it is the rare path.
   */
  async presignDeferredPost(
    channel: ChannelId,
    packet: Uint8Array,
    options: { readonly postId: string; readonly ifNoLeaveAfter: number; readonly wake?: boolean },
    signer?: RelaySigner,
  ): Promise<PresignedPost> {
    const json: DeferredPostRequest = {
      packet: base64UrlEncode(packet),
      postId: options.postId,
      ifNoLeaveAfter: options.ifNoLeaveAfter,
      ...(options.wake === true ? { wake: true } : {}),
    };
    const body = JSON.stringify(json);
    const headers = await this.signHeaders(this.signerOr(signer), 'POST', relayDeferredPostPath(channel), utf8Encode(body));
    return { headers: { ...headers, 'content-type': 'application/json' }, body, signedAtMs: Number(headers[RELAY_HEADERS.time]) };
  }

  read(channel: ChannelId, after: number, limit?: number, signer?: RelaySigner): Promise<ReadEventsResponse> {
    return this.json('GET', relayEventsPath(channel, after, limit), signer ? { signer } : {});
  }

  // ---- read-only fetch tokens (for the service worker, which holds no keys) -------------------

  /** A token that reads this channel's events as the signer, and nothing else (README "Fetch tokens"). */
  createFetchToken(channel: ChannelId, ttlMs: number, signer?: RelaySigner): Promise<CreateFetchTokenResponse> {
    return this.json('POST', `/v1/channels/${channel}/fetch-tokens`, { json: { ttlMs }, ...(signer ? { signer } : {}) });
  }

  /** Revokes one of the signer's fetch tokens in the channel, or all of them when `token` is omitted. */
  revokeFetchTokens(channel: ChannelId, token?: CapabilityToken, signer?: RelaySigner): Promise<RevokeFetchTokensResponse> {
    return this.json('POST', `/v1/channels/${channel}/fetch-tokens/revoke`, {
      json: token === undefined ? {} : { token },
      ...(signer ? { signer } : {}),
    });
  }

  /** Reads events with a fetch token instead of a signature (what the service worker does). */
  readWithFetchToken(channel: ChannelId, token: CapabilityToken, after: number, limit?: number): Promise<ReadEventsResponse> {
    return this.json('GET', relayEventsPath(channel, after, limit), { signer: null, headers: { [RELAY_HEADERS.fetchToken]: token } });
  }

  // ---- Web Push registration ------------------------------------------------------------------

  /** The relay's VAPID public key: pass it (decoded) as applicationServerKey to PushManager.subscribe. */
  vapidKey(): Promise<VapidKeyResponse> {
    return this.json('GET', '/v1/push/key', { signer: null });
  }

  /** Registers the browser's PushSubscription (its toJSON()) for the signer in this channel (replaces an earlier one). */
  registerPush(channel: ChannelId, subscription: RegisterPushRequest, signer?: RelaySigner): Promise<RegisterPushResponse> {
    const json: RegisterPushRequest = { endpoint: subscription.endpoint, keys: { p256dh: subscription.keys.p256dh, auth: subscription.keys.auth } };
    return this.json('PUT', `/v1/channels/${channel}/push`, { json, ...(signer ? { signer } : {}) });
  }

  /** Stops push for the signer in this channel. */
  unregisterPush(channel: ChannelId, signer?: RelaySigner): Promise<RegisterPushResponse> {
    return this.json('DELETE', `/v1/channels/${channel}/push`, signer ? { signer } : {});
  }

  /** Reads every page after `after` (bounded by READ_ALL_MAX_PAGES). */
  async readAll(channel: ChannelId, after: number, signer?: RelaySigner): Promise<RelayEvent[]> {
    const events: RelayEvent[] = [];
    let from = after;
    for (let page = 0; page < READ_ALL_MAX_PAGES; page++) {
      const response = await this.read(channel, from, undefined, signer);
      events.push(...response.events);
      const last = response.events.at(-1);
      if (!response.more || last === undefined) break;
      from = last.seq;
    }
    return events;
  }

  ackCursor(channel: ChannelId, seq: number, signer?: RelaySigner): Promise<AckCursorResponse> {
    return this.json('PUT', `/v1/channels/${channel}/cursor`, { json: { seq }, ...(signer ? { signer } : {}) });
  }

  /** Deposits into an inbox with its deposit capability (no signature: anyone holding it may). */
  deposit(channel: ChannelId, capability: CapabilityToken, packet: Uint8Array): Promise<DepositResponse> {
    return this.json('POST', `/v1/channels/${channel}/deposit`, {
      json: { packet: base64UrlEncode(packet) },
      signer: null,
      headers: { [RELAY_HEADERS.capability]: capability },
    });
  }

  health(): Promise<HealthResponse> {
    return this.json('GET', '/healthz', { signer: null });
  }

  // ---- blobs ---------------------------------------------------------------------------------

  createUpload(channel: ChannelId, sha256: BlobHash, size: number, signer?: RelaySigner): Promise<UploadStatusResponse> {
    return this.json('POST', `/v1/channels/${channel}/uploads`, { json: { sha256, size }, ...(signer ? { signer } : {}) });
  }

  uploadStatus(upload: CapabilityToken): Promise<UploadStatusResponse> {
    return this.json('GET', `/v1/uploads/${upload}`, { signer: null });
  }

  putChunk(upload: CapabilityToken, offset: number, bytes: Uint8Array): Promise<UploadStatusResponse> {
    return this.json('PUT', `/v1/uploads/${upload}?offset=${offset}`, { bytes, signer: null });
  }

  finalizeUpload(upload: CapabilityToken): Promise<FinalizeUploadResponse> {
    return this.json('POST', `/v1/uploads/${upload}/finalize`, { signer: null });
  }

  /**
   * Uploads `bytes` in chunks; after a failed chunk it asks the relay for the offset and resumes
   * from there. Pass `resume` (an upload token from an earlier attempt) to continue that upload.
   */
  async uploadBlob(
    channel: ChannelId,
    bytes: Uint8Array,
    options: { chunkBytes?: number; resume?: CapabilityToken; signer?: RelaySigner } = {},
  ): Promise<FinalizeUploadResponse> {
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const status =
      options.resume !== undefined
        ? await this.uploadStatus(options.resume)
        : await this.createUpload(channel, await sha256Hex(bytes), bytes.length, options.signer);
    let offset = status.offset;
    let failures = 0;
    while (offset < bytes.length) {
      try {
        offset = (await this.putChunk(status.upload, offset, bytes.subarray(offset, offset + chunkBytes))).offset;
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures >= CHUNK_ATTEMPTS) throw error;
        offset = (await this.uploadStatus(status.upload)).offset;
      }
    }
    return this.finalizeUpload(status.upload);
  }

  async readBlob(sha256: BlobHash, readCapability: CapabilityToken): Promise<Uint8Array> {
    const response = await this.send('GET', `/v1/blobs/${sha256}`, { signer: null, headers: { [RELAY_HEADERS.capability]: readCapability } });
    return new Uint8Array(await response.arrayBuffer());
  }

  // ---- push ----------------------------------------------------------------------------------

  /** A subscribe frame for `channel` from `afterSeq`, MAC'd or signed as a request would be. */
  async subscribeFrame(channel: ChannelId, afterSeq: number, signer?: RelaySigner): Promise<SubscribeFrame> {
    return (await this.proveSubscribe(channel, afterSeq, signer)).frame;
  }

  /** The frame, and the auth key of its MAC (undefined: signed). */
  private async proveSubscribe(channel: ChannelId, afterSeq: number, signer?: RelaySigner): Promise<{ frame: SubscribeFrame; authKey: string | undefined }> {
    const chosen = this.signerOr(signer);
    const proven = await this.prove(chosen, RELAY_SUBSCRIBE_METHOD, relaySubscribePath(channel), new Uint8Array(0));
    const frame: SubscribeFrame = {
      type: 'subscribe',
      channel,
      afterSeq,
      // The catch-up in `events` frames (handled below): tens of frames for 10,000 queued events.
      batch: true,
      key: chosen.publicKey,
      nonce: proven.headers[RELAY_HEADERS.nonce] ?? '',
      timeMs: Number(proven.headers[RELAY_HEADERS.time]),
      ...frameProof(proven.headers),
    };
    return { frame, authKey: proven.authKey };
  }

  /**
   * One WebSocket for many channels. Each channel resumes from the last seq delivered; on a lost
   * connection it reconnects with jittered exponential backoff and re-subscribes from there.
   */
  subscribe(handlers: SubscriptionHandlers): RelaySubscription {
    const WebSocketImpl = this.options.WebSocket;
    if (WebSocketImpl === undefined) throw new TypeError('RelayClient: subscribe needs a WebSocket constructor');
    const wsUrl = `${this.options.baseUrl.replace(/^http/, 'ws')}/v1/ws`;
    /**
     * `macAuthKey`: the auth key of the last subscribe frame sent MAC'd (undefined: signed);
     * `macRetried`: a MAC'd subscribe of it was refused and sent again since it was last confirmed.
     */
    const channels = new Map<ChannelId, { seq: number; signer: RelaySigner | undefined; macAuthKey?: string | undefined; macRetried?: boolean }>();
    let socket: WebSocketLike | undefined;
    let open = false;
    let closed = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** Channels the relay confirmed on the current connection; the rest may need a resend. */
    const confirmed = new Set<ChannelId>();
    let resubscribeAttempt = 0;
    let resubscribeTimer: ReturnType<typeof setTimeout> | undefined;
    /** Posts sent on the current socket and not yet answered, by frame id. */
    const posts = new Map<number, { resolve(answer: PostPacketResponse | null): void; reject(error: Error): void; timer: ReturnType<typeof setTimeout> }>();
    let nextPostId = 0;
    /**
     * False once a socket of this relay closed with 1009 (a frame over its maxWsFrameBytes, set
     * below RELAY_WS_MAX_FRAME_BYTES by its operator): only post frames come near that size, and
     * each would cost a closed socket and a resubscribe, so posts go over HTTP from then on.
     */
    let postFrames = true;
    /** The socket is gone: no answer will come for its posts (each goes again, over HTTP). */
    const abandonPosts = (): void => {
      for (const pending of posts.values()) {
        clearTimeout(pending.timer);
        pending.resolve(null);
      }
      posts.clear();
    };
    const answerPost = (id: number, settle: (pending: { resolve(answer: PostPacketResponse | null): void; reject(error: Error): void }) => void): void => {
      const pending = posts.get(id);
      if (pending === undefined) return;
      posts.delete(id);
      clearTimeout(pending.timer);
      settle(pending);
    };
    const jitter = (): number => 0.5 + (this.random(1)[0] ?? 128) / 255;
    /** A rate-limited frame names no channel: resend, later, every subscribe not yet confirmed. */
    const scheduleResubscribe = (): void => {
      if (resubscribeTimer !== undefined || closed) return;
      const delay = Math.min(RESUBSCRIBE_MAX_MS, RESUBSCRIBE_BASE_MS * 2 ** resubscribeAttempt) * jitter();
      resubscribeAttempt += 1;
      resubscribeTimer = setTimeout(() => {
        resubscribeTimer = undefined;
        for (const channel of channels.keys()) if (!confirmed.has(channel)) sendSubscribe(channel);
      }, delay);
    };

    const sendSubscribe = (channel: ChannelId): void => {
      const entry = channels.get(channel);
      const current = socket;
      if (entry === undefined || current === undefined || !open) return;
      this.proveSubscribe(channel, entry.seq, entry.signer).then(
        ({ frame, authKey }) => {
          if (current !== socket || !open || channels.get(channel) !== entry) return;
          entry.macAuthKey = authKey;
          current.send(JSON.stringify(frame));
        },
        (error: unknown) => handlers.onError?.({ type: 'error', code: 'bad-signature', error: String(error), channel }),
      );
    };

    /** An event of a subscribed channel, once and in order: one at or below its seq is a repeat. */
    const deliver = (channel: ChannelId, event: RelayEvent): void => {
      const entry = channels.get(channel);
      if (entry === undefined || event.seq <= entry.seq) return;
      entry.seq = event.seq;
      handlers.onEvent(channel, event);
    };

    const onFrame = (frame: ServerFrame): void => {
      switch (frame.type) {
        case 'event':
          deliver(frame.channel, frame.event);
          return;
        case 'events':
          // Not an array: a malformed frame from the relay, ignored like an unknown one.
          if (Array.isArray(frame.events)) for (const event of frame.events) deliver(frame.channel, event);
          return;
        case 'subscribed': {
          attempt = 0;
          resubscribeAttempt = 0;
          confirmed.add(frame.channel);
          const entry = channels.get(frame.channel);
          if (entry !== undefined) entry.macRetried = false;
          handlers.onSubscribed?.(frame.channel, frame.headSeq, frame.firstSeq);
          return;
        }
        case 'unsubscribed':
          if (frame.reason === 'removed') {
            channels.delete(frame.channel);
            handlers.onRemoved?.(frame.channel);
          }
          return;
        case 'posted':
          answerPost(frame.id, (p) => p.resolve({ seq: frame.seq, timeMs: frame.timeMs, duplicate: frame.duplicate }));
          return;
        case 'error':
          // The answer to a post: the same refusal as over HTTP, its status from the code.
          if (frame.id !== undefined) {
            answerPost(frame.id, (p) => p.reject(new RelayClientError(RELAY_ERROR_STATUS[frame.code] ?? 0, frame.code, frame.error)));
            return;
          }
          // A MAC'd subscribe refused (the relay's auth key changed): fetch the key again and
          // send it once more, MAC'd under the new key or signed, before calling it a refusal.
          if (frame.code === 'bad-signature' && frame.channel !== undefined) {
            const entry = channels.get(frame.channel);
            if (entry?.macAuthKey !== undefined && entry.macRetried !== true) {
              entry.macRetried = true;
              this.macKeys.refused(entry.macAuthKey);
              sendSubscribe(frame.channel);
              return;
            }
          }
          // Refusals that a fresh signature fixes: the relay's budget (rate-limited), and a
          // subscribe signed before a clock jump or held up on a loaded device past the relay's
          // timestamp window (stale-timestamp) or seen twice (replayed-nonce). Left alone, that
          // channel would never be subscribed again on this connection.
          if (frame.code === 'rate-limited' || frame.code === 'stale-timestamp' || frame.code === 'replayed-nonce') scheduleResubscribe();
          handlers.onError?.(frame);
          return;
        case 'pong':
          return;
      }
    };

    /** The current socket is gone (closed, or given up on): say so and reconnect with backoff. */
    const lost = (): void => {
      open = false;
      socket = undefined;
      abandonPosts();
      handlers.onConnection?.('closed');
      if (closed) return;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** attempt);
      attempt += 1;
      timer = setTimeout(connect, delay * jitter());
    };

    const connect = (): void => {
      if (closed) return;
      const ws = new WebSocketImpl(wsUrl);
      socket = ws;
      ws.addEventListener('open', () => {
        if (socket !== ws) return;
        open = true;
        confirmed.clear();
        handlers.onConnection?.('open');
        for (const channel of channels.keys()) sendSubscribe(channel);
      });
      ws.addEventListener('message', (event) => {
        if (socket !== ws || typeof event.data !== 'string') return;
        try {
          onFrame(JSON.parse(event.data) as ServerFrame);
        } catch {
          // A frame we cannot parse is the relay's bug; the next event or reconnect recovers.
        }
      });
      ws.addEventListener('error', () => {
        // 'close' follows.
      });
      ws.addEventListener('close', (event) => {
        if (event.code === CLOSE_MESSAGE_TOO_BIG) postFrames = false;
        if (socket === ws) lost();
      });
    };
    connect();

    return {
      add: (channel, afterSeq, signer) => {
        channels.set(channel, { seq: afterSeq, signer });
        // The auth key is fetched while the socket opens, so that the first subscribes are MAC'd.
        if ((signer ?? this.options.signer)?.macKey !== undefined) this.macKeys.prefetch();
        confirmed.delete(channel);
        sendSubscribe(channel);
      },
      remove: (channel) => {
        channels.delete(channel);
        if (socket !== undefined && open) socket.send(JSON.stringify({ type: 'unsubscribe', channel }));
      },
      positions: () => new Map([...channels].map(([channel, entry]) => [channel, entry.seq])),
      post: (signed) => {
        const current = socket;
        if (current === undefined || !open || closed || !postFrames) return undefined;
        const id = nextPostId++;
        const frame = JSON.stringify(RelayClient.postFrame(signed, id));
        if (frame.length > RELAY_WS_MAX_FRAME_BYTES) return undefined;
        return new Promise<PostPacketResponse | null>((resolve, reject) => {
          const timer = setTimeout(() => {
            answerPost(id, (p) => {
              const error = new Error(`no answer to a post over the socket in ${SOCKET_POST_TIMEOUT_MS} ms`);
              error.name = 'TimeoutError';
              p.reject(error);
            });
          }, SOCKET_POST_TIMEOUT_MS);
          posts.set(id, { resolve, reject, timer });
          try {
            current.send(frame);
          } catch {
            answerPost(id, (p) => p.resolve(null));
          }
        });
      },
      reconnect: () => {
        const dead = socket;
        if (closed || dead === undefined) return;
        lost();
        dead.close(4000, 'request failed: reconnecting');
      },
      reconnectNow: () => {
        if (closed || socket !== undefined || timer === undefined) return;
        clearTimeout(timer);
        timer = undefined;
        attempt = 0;
        connect();
      },
      close: () => {
        closed = true;
        if (timer !== undefined) clearTimeout(timer);
        if (resubscribeTimer !== undefined) clearTimeout(resubscribeTimer);
        abandonPosts();
        socket?.close(1000, 'client closed');
        socket = undefined;
      },
    };
  }
}

/** A frame's proof from a request's headers: its MAC, or else its signature. */
function frameProof(headers: Readonly<Record<string, string>>): FrameProof {
  const mac = headers[RELAY_HEADERS.mac];
  return mac !== undefined ? { mac } : { signature: headers[RELAY_HEADERS.signature] ?? '' };
}

/** Decodes a packet event's payload. */
export function packetBytes(event: RelayEvent & { type: 'packet' }): Uint8Array {
  return base64UrlDecode(event.packet);
}
