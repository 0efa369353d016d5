/**
 * Every limit of the relay, each with its reason (DESIGN.md §7, STYLE.md: "put a limit on
 * everything"). `RelayLimits` is the configurable object; `DEFAULT_RELAY_LIMITS` the defaults.
 * Tests shrink them through startRelay({ limits }).
 */
import { DEFERRED_POST_MAX_AGE_MS, RELAY_WS_MAX_FRAME_BYTES } from '../shared/relay-api.js';

export interface RelayLimits {
  /**
   * Largest opaque packet, decoded. mpENC packets are a few records of at most 64 KiB each
   * (mpenc-wire.md "Framing"); big content goes to blobs, so 192 KiB is generous.
   */
  readonly maxPacketBytes: number;
  /** Largest JSON request body: a max packet in base64url (4/3) plus JSON framing. */
  readonly maxJsonBodyBytes: number;
  /** Largest blob chunk per PUT: big enough for fast uploads, small enough to buffer in memory. */
  readonly maxBlobChunkBytes: number;
  /** Largest blob (attachments are encrypted files; bigger belongs to another service). */
  readonly maxBlobBytes: number;
  /** An unfinished upload is discarded after this long (resume must happen within it). */
  readonly uploadTtlMs: number;
  /** A stored blob lives this long (attachments are fetched by members soon after posting). */
  readonly blobTtlMs: number;
  /** Most events per read: bounds response size (~maxPacketBytes × this) and work per request. */
  readonly maxReadEvents: number;
  /** Events older than this are deleted even if unread: offline members get a month. */
  readonly maxEventAgeMs: number;
  /** Oldest events are deleted while a channel stores more than this: one noisy channel cannot fill the disk. */
  readonly maxChannelBytes: number;
  /** Accepted clock difference of a signed request: phones' clocks drift, replay window stays short. */
  readonly maxClockSkewMs: number;
  /**
   * Members' request-MAC keys kept per node (mac-keys.ts): a member whose key is not kept costs
   * ~90 µs (Montgomery form and X25519) on its next request instead of ~4 µs (HMAC). Each takes
   * at most ~400 bytes (measured), so 50,000 (the members active at one node at once, with room)
   * is at most ~20 MiB.
   */
  readonly macKeyCacheEntries: number;
  /**
   * Oldest signature accepted on a deferred post (README "Deferred posts"): a message written
   * offline leaves from the service worker, presigned, when the network returns with the app
   * closed. Its nonce is remembered this long (deferred posts only), which bounds the window.
   */
  readonly maxDeferredPostAgeMs: number;
  /** Longest capability lifetime: invites should not live forever. */
  readonly maxCapabilityTtlMs: number;
  /** Most redemptions per capability: an invite link for a big group, bounded. */
  readonly maxCapabilityUses: number;
  /**
   * Token-bucket refill rate per client address (IPv6: per /64), shared by HTTP requests,
   * WebSocket upgrades and WebSocket frames: requests per second.
   */
  readonly rateRequestsPerSecond: number;
  /**
   * Token-bucket size per client address: allows bursts. Big enough for a reconnecting client to
   * resubscribe maxSubscriptionsPerConnection channels at once and still make requests.
   */
  readonly rateBurst: number;
  /** Clients tracked by the rate limiter before the oldest are forgotten: bounds its memory. */
  readonly rateMaxClients: number;
  /** Subscriptions per WebSocket: a user in many groups, bounded. */
  readonly maxSubscriptionsPerConnection: number;
  /** Open WebSockets per relay process: bounds memory and file descriptors. */
  readonly maxConnections: number;
  /** Open WebSockets per client address: one client cannot take all connections (a browser needs one). */
  readonly maxConnectionsPerClient: number;
  /** Open TCP connections (HTTP and WebSocket) per relay process: bounds file descriptors. */
  readonly maxHttpConnections: number;
  /** Open TCP connections per socket address (trusted proxies exempt): a browser uses a handful. */
  readonly maxHttpConnectionsPerClient: number;
  /** Requests being answered at once per client address (counts proxied clients too). */
  readonly maxRequestsInFlightPerClient: number;
  /** A response the client does not read within this long is cut (its buffers are freed). */
  readonly responseDrainTimeoutMs: number;
  /** Most bytes of events per read (HTTP and WebSocket catch-up); at least one event is always returned. */
  readonly maxReadBytes: number;
  /**
   * Largest WebSocket frame from a client: subscribe frames are small, and so is a post of a
   * written message (larger posts go over HTTP: RELAY_WS_MAX_FRAME_BYTES in relay-api.ts).
   */
  readonly maxWsFrameBytes: number;
  /** Refused frames before a connection is closed: a broken or hostile client stops costing work. */
  readonly maxWsBadFrames: number;
  /**
   * Bytes queued for a slow WebSocket: catch-up waits below it, a live event that would pass it
   * drops the connection (1013; the client resumes from its seq).
   */
  readonly maxWsBufferedBytes: number;
  /** Ping interval; a connection that missed one pong is closed (dead peers free their slots). */
  readonly wsPingIntervalMs: number;
  /** How often the retention sweep runs (max age; nonces, capabilities, uploads, blobs expiry). */
  readonly sweepIntervalMs: number;
  /** Longest graceful shutdown before sockets are cut. */
  readonly shutdownGraceMs: number;
  /** Slowest request header/body delivery accepted (slowloris). */
  readonly requestTimeoutMs: number;
  /** Longest fetch-token lifetime: the worker renews it whenever the app runs; older events are gone anyway. */
  readonly maxFetchTokenTtlMs: number;
  /** Live fetch tokens per member and channel (renewals overlap, tabs race); the soonest-expiring go first. */
  readonly maxFetchTokensPerMember: number;
  /** Push coalescing: at most one push per subscription endpoint per this interval; later events wait and share one. */
  readonly pushMinIntervalMs: number;
  /** How long a push service keeps an undelivered push (TTL header): a day; the app catches up on open anyway. */
  readonly pushTtlMs: number;
  /** A push request that takes longer is abandoned (a slow push service must not hold sockets). */
  readonly pushTimeoutMs: number;
  /** Push requests in flight at once, per relay node. */
  readonly pushMaxConcurrent: number;
  /** Endpoints with coalescing state kept in memory; beyond it, new pushes are dropped (logged). */
  readonly pushMaxTrackedEndpoints: number;
  /** Longest push endpoint URL accepted at registration (real ones are a few hundred characters). */
  readonly maxPushEndpointChars: number;
  /** Channels a client address (and, separately, a key) may create at once: quota bucket size. */
  readonly channelQuotaBurst: number;
  /** Channels per hour a client address (and a key) may create once the burst is used. */
  readonly channelQuotaPerHour: number;
  /** Upload bytes a client address (and a key) may announce at once: quota bucket size. */
  readonly uploadQuotaBurstBytes: number;
  /** Upload bytes per hour a client address (and a key) may announce once the burst is used. */
  readonly uploadQuotaBytesPerHour: number;
  /** Below this much free disk in the data dir (SQLite), new content is refused (507 storage-full). */
  readonly minFreeDiskBytes: number;
  /** Above this fraction of Redis maxmemory (when set), new content is refused (507 storage-full). */
  readonly redisMemoryHighWater: number;
  /** Stored event + blob + upload bytes beyond which new content is refused; 0 = no such quota. */
  readonly maxStoredBytes: number;
  /** How often free disk / Redis memory is checked (the result is what /healthz reports). */
  readonly storageCheckIntervalMs: number;
}

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const DAY_MS = 24 * 60 * MINUTE_MS;
const KIB = 1024;
const MIB = 1024 * KIB;

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxPacketBytes: 192 * KIB,
  maxJsonBodyBytes: 272 * KIB,
  maxBlobChunkBytes: 1 * MIB,
  maxBlobBytes: 32 * MIB,
  uploadTtlMs: DAY_MS,
  blobTtlMs: 30 * DAY_MS,
  maxReadEvents: 500,
  maxEventAgeMs: 30 * DAY_MS,
  maxChannelBytes: 64 * MIB,
  maxClockSkewMs: 5 * MINUTE_MS,
  macKeyCacheEntries: 50_000,
  maxDeferredPostAgeMs: DEFERRED_POST_MAX_AGE_MS,
  maxCapabilityTtlMs: 30 * DAY_MS,
  maxCapabilityUses: 1000,
  rateRequestsPerSecond: 50,
  rateBurst: 600,
  rateMaxClients: 100_000,
  maxSubscriptionsPerConnection: 500,
  maxConnections: 10_000,
  maxConnectionsPerClient: 64,
  maxHttpConnections: 20_000,
  maxHttpConnectionsPerClient: 128,
  maxRequestsInFlightPerClient: 64,
  responseDrainTimeoutMs: 30 * SECOND_MS,
  maxReadBytes: 1 * MIB,
  maxWsFrameBytes: RELAY_WS_MAX_FRAME_BYTES,
  maxWsBadFrames: 20,
  maxWsBufferedBytes: 2 * MIB,
  wsPingIntervalMs: 30 * SECOND_MS,
  sweepIntervalMs: MINUTE_MS,
  shutdownGraceMs: 10 * SECOND_MS,
  requestTimeoutMs: 30 * SECOND_MS,
  maxFetchTokenTtlMs: 30 * DAY_MS,
  maxFetchTokensPerMember: 4,
  pushMinIntervalMs: 10 * SECOND_MS,
  pushTtlMs: DAY_MS,
  pushTimeoutMs: 10 * SECOND_MS,
  pushMaxConcurrent: 32,
  pushMaxTrackedEndpoints: 100_000,
  maxPushEndpointChars: 2048,
  channelQuotaBurst: 50,
  channelQuotaPerHour: 60,
  uploadQuotaBurstBytes: 256 * MIB,
  uploadQuotaBytesPerHour: 512 * MIB,
  minFreeDiskBytes: 512 * MIB,
  redisMemoryHighWater: 0.9,
  maxStoredBytes: 0,
  storageCheckIntervalMs: 5 * SECOND_MS,
};

/** The environment variable that overrides limit `name`: maxPacketBytes → RELAY_LIMIT_MAX_PACKET_BYTES. */
export function limitEnvName(name: keyof RelayLimits): string {
  return `RELAY_LIMIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Limits that may be 0 (meaning "off"). */
const ZERO_ALLOWED: ReadonlySet<keyof RelayLimits> = new Set(['maxStoredBytes', 'minFreeDiskBytes']);

/** Limits overridden by RELAY_LIMIT_* variables; throws on a value that is not a positive number. */
export function limitsFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<RelayLimits> {
  const overrides: Partial<Record<keyof RelayLimits, number>> = {};
  for (const name of Object.keys(DEFAULT_RELAY_LIMITS) as (keyof RelayLimits)[]) {
    const text = env[limitEnvName(name)];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0 || (value === 0 && !ZERO_ALLOWED.has(name))) {
      throw new Error(`${limitEnvName(name)} must be a positive number, got ${text}`);
    }
    overrides[name] = value;
  }
  return overrides;
}
