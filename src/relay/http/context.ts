/** What every route handler gets: the request, its parsed URL and body, and the relay's parts. */
import type { IncomingMessage } from 'node:http';
import type { RelayLimits } from '../limits.js';
import type { RelayMetrics } from '../metrics.js';
import type { RelayStore, RetentionPolicy } from '../store/types.js';
import type { WebPushService } from '../web-push/dispatcher.js';

export interface RelayDeps {
  readonly store: RelayStore;
  readonly limits: RelayLimits;
  readonly metrics: RelayMetrics;
  /** The relay clock (tests inject a fake one). */
  readonly now: () => number;
  /** Web Push (undefined when the operator turned it off: RELAY_PUSH=off). */
  readonly webPush: WebPushService | undefined;
}

export function retentionPolicy(limits: RelayLimits): RetentionPolicy {
  return { maxEventAgeMs: limits.maxEventAgeMs, maxChannelBytes: limits.maxChannelBytes };
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly method: string;
  /** Path with query exactly as sent: what the client signed. */
  readonly pathWithQuery: string;
  readonly query: URLSearchParams;
  readonly body: Uint8Array;
  readonly nowMs: number;
  readonly deps: RelayDeps;
}

/** A handler's answer: JSON, or raw bytes (blob reads). */
export type Reply =
  | { readonly status: number; readonly json: unknown }
  | { readonly status: number; readonly bytes: Uint8Array; readonly headers?: Record<string, string> };
