/**
 * Tunables of a Session, as one object (ts-mls style "limits as a config object"). Tests and the
 * simulator shrink the times; the worker uses the defaults.
 */
import { DEFAULT_PRESENCE, type PresenceConfig } from '../presence/presence-tracker.js';
import { DEFAULT_RELIABILITY, type ReliabilityConfig } from '../reliability/config.js';
import { MAX_PENDING_MESSAGES, PENDING_EXPIRY_MS } from '../transcript/pending.js';
import { MAX_UNDECRYPTABLE_PACKETS, UNDECRYPTABLE_EXPIRY_MS } from './undecryptable.js';

export interface SessionConfig {
  readonly reliability: ReliabilityConfig;
  readonly presence: PresenceConfig;
  /** mpENC §3.5 shutdown: how long a parting subsession waits for consistency before closing anyway. */
  readonly finTimeoutMs: number;
  readonly maxPendingMessages: number;
  readonly pendingExpiryMs: number;
  readonly maxUndecryptablePackets: number;
  readonly undecryptableExpiryMs: number;
}

export const DEFAULT_SESSION_CONFIG: SessionConfig = {
  reliability: DEFAULT_RELIABILITY,
  presence: DEFAULT_PRESENCE,
  finTimeoutMs: 2 * DEFAULT_RELIABILITY.ackTimeoutMs,
  maxPendingMessages: MAX_PENDING_MESSAGES,
  pendingExpiryMs: PENDING_EXPIRY_MS,
  maxUndecryptablePackets: MAX_UNDECRYPTABLE_PACKETS,
  undecryptableExpiryMs: UNDECRYPTABLE_EXPIRY_MS,
};
