/**
 * One connection per relay (issue 10 §7 "several relays": a channel lives on its creator's relay,
 * and the client talks to each channel's relay). Each `RelayLink` holds the HTTP client and one
 * WebSocket subscription for every channel we read there (which also carries our posts while it
 * is open), and reports its state for the `app` view (connected / connecting / offline).
 */
import type { ChannelId, ErrorFrame, RelayEvent } from '../shared/relay-api.js';
import type { ClientDeps } from './deps.js';
import { RelayClient, type FetchLike, type RelaySigner, type RelaySubscription, type SignedPost } from './relay-client.js';

export interface RelayLinkHandlers {
  onEvent(relay: string, channel: ChannelId, event: RelayEvent): void;
  onRemoved(relay: string, channel: ChannelId): void;
  onState(relay: string): void;
  /** A refused subscription (e.g. 'forbidden': we are no longer a member). */
  onRefused(relay: string, frame: ErrorFrame): void;
  /** (Re)subscribed: the relay's head and oldest event it still holds for us (async-groups rules 6, 11). */
  onSubscribed?(relay: string, channel: ChannelId, headSeq: number, firstSeq: number): void;
}

/**
 * A relay request that gets no answer is given up after this (then retried like a network
 * failure): without it one hung request would stall a channel's outbox for good.
 */
export const RELAY_REQUEST_TIMEOUT_MS = 30_000;

function withTimeout(fetch: FetchLike): FetchLike {
  return (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(RELAY_REQUEST_TIMEOUT_MS) } as typeof init);
}

export class RelayLink {
  readonly client: RelayClient;
  private subscription: RelaySubscription | null = null;
  private readonly channels = new Map<ChannelId, { afterSeq: number; signer: RelaySigner }>();
  state: 'connected' | 'connecting' | 'offline' = 'connecting';
  problem: string | null = null;
  private everConnected = false;

  constructor(
    readonly url: string,
    private readonly deps: ClientDeps,
    private readonly handlers: RelayLinkHandlers,
  ) {
    this.client = new RelayClient({
      baseUrl: url,
      fetch: withTimeout(deps.fetch),
      WebSocket: deps.WebSocket,
      now: deps.now,
      randomBytes: (n) => deps.crypto.randomBytes(n),
      // Request MACs through the provider: noble for their ~130-byte texts, or WebCrypto where
      // it is faster at that size (select.ts; its imported HMAC keys are cached, key-cache.ts).
      hmacSha256: (key, data) => deps.crypto.hmacSha256(key, data),
      // Posts go over the socket we read on while it is open: no new HTTP request (nor, in the
      // browser, a service-worker fetch event) on a message's path; over HTTP otherwise.
      ...(deps.socketPosts === false ? {} : { postOverSocket: (signed: SignedPost) => this.subscription?.post(signed) }),
    });
  }

  /** Reads `channel` from after `afterSeq` (again, if it was read already: a restart). */
  watch(channel: ChannelId, afterSeq: number, signer: RelaySigner): void {
    this.channels.set(channel, { afterSeq, signer });
    this.connect().add(channel, afterSeq, signer);
  }

  unwatch(channel: ChannelId): void {
    this.channels.delete(channel);
    this.subscription?.remove(channel);
  }

  /** Network trouble seen by an HTTP request (the socket reports its own). */
  reportFailure(problem: string): void {
    if (this.state === 'connected' && this.subscription !== null) return; // the socket is fine
    this.state = 'offline';
    this.problem = problem;
    this.handlers.onState(this.url);
  }

  /**
   * A request did not reach the relay at all (fetch failed): the network is gone, whatever the
   * socket seems to say (a socket can look open for minutes after the network dropped, and
   * emulated offline leaves it open). Drop it and reconnect with backoff: the state turns
   * 'offline' until a new connection opens, so the app shows what waits, and Background Sync is
   * asked for.
   */
  reportUnreachable(problem: string): void {
    this.problem = problem;
    if (this.subscription !== null && this.state === 'connected') this.subscription.reconnect();
    else this.reportFailure(problem);
  }

  /** The network may be back (the browser's `online`): try the relay now, not after the backoff. */
  reconnectNow(): void {
    this.subscription?.reconnectNow();
  }

  close(): void {
    this.subscription?.close();
    this.subscription = null;
  }

  private connect(): RelaySubscription {
    if (this.subscription !== null) return this.subscription;
    this.subscription = this.client.subscribe({
      onEvent: (channel, event) => this.handlers.onEvent(this.url, channel, event),
      onSubscribed: (channel, headSeq, firstSeq) => this.handlers.onSubscribed?.(this.url, channel, headSeq, firstSeq),
      onRemoved: (channel) => {
        this.channels.delete(channel);
        this.handlers.onRemoved(this.url, channel);
      },
      onError: (frame) => {
        if (frame.channel !== undefined && (frame.code === 'forbidden' || frame.code === 'bad-signature')) this.handlers.onRefused(this.url, frame);
      },
      onConnection: (state) => {
        if (state === 'open') {
          this.everConnected = true;
          this.state = 'connected';
          this.problem = null;
        } else {
          this.state = this.everConnected ? 'offline' : 'connecting';
          this.problem = `Cannot reach ${new URL(this.url).host}; retrying`;
        }
        this.handlers.onState(this.url);
      },
    });
    return this.subscription;
  }
}
