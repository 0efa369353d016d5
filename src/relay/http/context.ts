/** What every route handler gets: the request, its parsed URL and body, and the relay's parts. */
import type { IncomingHttpHeaders } from 'node:http';
import type { RelayLimits } from '../limits.js';
import type { RelayMetrics } from '../metrics.js';
import type { ChannelId, MemberLeftEvent } from '../../shared/relay-api.js';
import type { Quotas } from '../quotas.js';
import type { StorageGuard } from '../storage-guard.js';
import type { RelayStore, RetentionPolicy } from '../store/types.js';
import type { WebPushService } from '../web-push/dispatcher.js';
import type { MacChecker } from '../mac-keys.js';
import type { SignatureVerifier } from '../signature-pool.js';

export interface RelayDeps {
  readonly store: RelayStore;
  readonly limits: RelayLimits;
  readonly metrics: RelayMetrics;
  /** The relay clock (tests inject a fake one). */
  readonly now: () => number;
  /** Web Push (undefined when the operator turned it off: RELAY_PUSH=off). */
  readonly webPush: WebPushService | undefined;
  /** Refuses new content when storage is low (507 storage-full). */
  readonly storage: StorageGuard;
  /** Channel and upload quotas per client address and per key. */
  readonly quotas: Quotas;
  /** Tells live WebSocket subscriptions of a removed member on this node to end (issue 13 "Broken" 2). */
  readonly memberRemoved: (channelId: ChannelId, event: MemberLeftEvent) => void;
  /** Where request signatures are checked: worker threads (RELAY_VERIFY_THREADS), or undefined for inline. */
  readonly verifier: SignatureVerifier | undefined;
  /** Checks request MACs (on the event loop: ~4 µs each) under the relay auth key. */
  readonly macs: MacChecker;
}

export function retentionPolicy(limits: RelayLimits): RetentionPolicy {
  return { maxEventAgeMs: limits.maxEventAgeMs, maxChannelBytes: limits.maxChannelBytes };
}

export interface RequestContext {
  /** The request's headers (a post over the WebSocket carries its signature or MAC headers in the frame). */
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  /** Path with query exactly as sent: what the client signed. */
  readonly pathWithQuery: string;
  readonly query: URLSearchParams;
  readonly body: Uint8Array;
  readonly nowMs: number;
  readonly deps: RelayDeps;
  /** The client's address key (http/client-address.ts): quotas and rate limits. */
  readonly client: string;
}

/**
 * A handler's answer: JSON, raw bytes, or a byte stream of known length (blob reads): `next(offset)`
 * gives the bytes from `offset` on (at most one stored chunk; empty at the end). The server
 * pulls the next piece only once the client has taken the last one (backpressure), so a client
 * that does not read holds one piece in the relay, not the whole blob.
 */
export type Reply =
  | { readonly status: number; readonly json: unknown; readonly headers?: Record<string, string> }
  | { readonly status: number; readonly bytes: Uint8Array; readonly headers?: Record<string, string> }
  | {
      readonly status: number;
      readonly length: number;
      readonly next: (offset: number) => Promise<Uint8Array>;
      readonly headers?: Record<string, string>;
    };
