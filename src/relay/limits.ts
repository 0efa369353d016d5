/**
 * Every limit of the relay, each with its reason (DESIGN.md §7, STYLE.md: "put a limit on
 * everything"). `RelayLimits` is the configurable object; `DEFAULT_RELAY_LIMITS` the defaults.
 * Tests shrink them through startRelay({ limits }).
 */

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
  /** Longest capability lifetime: invites should not live forever. */
  readonly maxCapabilityTtlMs: number;
  /** Most redemptions per capability: an invite link for a big group, bounded. */
  readonly maxCapabilityUses: number;
  /** Token-bucket refill rate per client (remote address): requests per second. */
  readonly rateRequestsPerSecond: number;
  /** Token-bucket size per client: allows bursts (opening the app reads many channels). */
  readonly rateBurst: number;
  /** Clients tracked by the rate limiter before the oldest are forgotten: bounds its memory. */
  readonly rateMaxClients: number;
  /** Subscriptions per WebSocket: a user in many groups, bounded. */
  readonly maxSubscriptionsPerConnection: number;
  /** Open WebSockets per relay process: bounds memory and file descriptors. */
  readonly maxConnections: number;
  /** Open WebSockets per client address: one client cannot take all connections. */
  readonly maxConnectionsPerClient: number;
  /** Largest WebSocket frame from a client: subscribe frames are small. */
  readonly maxWsFrameBytes: number;
  /** Refused frames before a connection is closed: a broken or hostile client stops costing work. */
  readonly maxWsBadFrames: number;
  /** Bytes buffered for a slow WebSocket before it is dropped (it resumes from its seq later). */
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
  maxCapabilityTtlMs: 30 * DAY_MS,
  maxCapabilityUses: 1000,
  rateRequestsPerSecond: 50,
  rateBurst: 200,
  rateMaxClients: 100_000,
  maxSubscriptionsPerConnection: 500,
  maxConnections: 10_000,
  maxConnectionsPerClient: 2_000,
  maxWsFrameBytes: 4 * KIB,
  maxWsBadFrames: 20,
  maxWsBufferedBytes: 8 * MIB,
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
};

/** The environment variable that overrides limit `name`: maxPacketBytes → RELAY_LIMIT_MAX_PACKET_BYTES. */
export function limitEnvName(name: keyof RelayLimits): string {
  return `RELAY_LIMIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Limits overridden by RELAY_LIMIT_* variables; throws on a value that is not a positive number. */
export function limitsFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<RelayLimits> {
  const overrides: Partial<Record<keyof RelayLimits, number>> = {};
  for (const name of Object.keys(DEFAULT_RELAY_LIMITS) as (keyof RelayLimits)[]) {
    const text = env[limitEnvName(name)];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${limitEnvName(name)} must be a positive number, got ${text}`);
    overrides[name] = value;
  }
  return overrides;
}
