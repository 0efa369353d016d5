/**
 * Tunables of a Session, as one object (ts-mls style "limits as a config object"). Tests and the
 * simulator shrink the times; the worker uses the defaults.
 */
import { DEFAULT_PRESENCE, type PresenceConfig } from '../presence/presence-tracker.js';
import { DEFAULT_RELIABILITY, type ReliabilityConfig } from '../reliability/config.js';
import { MAX_PENDING_MESSAGES, PENDING_EXPIRY_MS } from '../transcript/pending.js';

export interface SessionConfig {
  readonly reliability: ReliabilityConfig;
  readonly presence: PresenceConfig;
  /** mpENC §3.5 shutdown when we leave: how long we wait for the online members' acks of our FIN. */
  readonly finTimeoutMs: number;
  readonly maxPendingMessages: number;
  /** How long a message waits for missing parents, or for its author's confirmation (rule 5). */
  readonly pendingExpiryMs: number;
  /**
   * receiveAll starts the signature checks of this many data packets ahead of the one it
   * processes (issue 8; 0: one check at a time, in order). The results and effects are the same
   * for any value; only how many checks are in flight at once changes, and so the wall time of
   * a catch-up where the platform checks off the calling thread (Firefox and WebKit; Chromium's
   * WebCrypto checks Ed25519 synchronously on the calling thread: 2,000 checks issued at once
   * from a dedicated worker took 162 ms of its time and were all settled when issued, README
   * bench:catchup 2026-12-04).
   */
  readonly verifyAhead: number;
}

/**
 * receiveAll's default look-ahead: enough to keep an off-thread WebCrypto busy, few enough that
 * a page's memory stays small.
 */
export const VERIFY_AHEAD = 32;

export const DEFAULT_SESSION_CONFIG: SessionConfig = {
  reliability: DEFAULT_RELIABILITY,
  presence: DEFAULT_PRESENCE,
  finTimeoutMs: 2 * DEFAULT_RELIABILITY.ackTimeoutMs,
  maxPendingMessages: MAX_PENDING_MESSAGES,
  pendingExpiryMs: PENDING_EXPIRY_MS,
  verifyAhead: VERIFY_AHEAD,
};
