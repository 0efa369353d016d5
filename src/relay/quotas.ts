/**
 * Quotas on what costs the relay storage (issue 13 "Weak"): channels created and upload bytes
 * announced, per client address AND per signing key, each a token bucket refilled per hour.
 * In memory, per relay node (with N nodes a client gets up to N times the quota; the rate limit
 * and the storage high-water mark still hold). Channel keys are per channel, so the per-key
 * quota mostly catches one key used for many channels; the per-address one does the work.
 */
import type { MemberKey } from '../shared/relay-api.js';
import { RelayError } from './http/errors.js';
import type { RelayLimits } from './limits.js';
import { RateLimiter } from './rate-limit.js';

const HOUR_S = 3600;

export class Quotas {
  private readonly channels: RateLimiter;
  private readonly uploads: RateLimiter;

  constructor(limits: RelayLimits) {
    this.channels = new RateLimiter(limits.channelQuotaPerHour / HOUR_S, limits.channelQuotaBurst, limits.rateMaxClients);
    this.uploads = new RateLimiter(limits.uploadQuotaBytesPerHour / HOUR_S, limits.uploadQuotaBurstBytes, limits.rateMaxClients);
  }

  /** One more channel by this client and key, or 429 quota-exceeded. */
  channel(client: string, key: MemberKey, nowMs: number): void {
    this.charge(this.channels, client, key, 1, nowMs, 'channels');
  }

  /** `bytes` more upload bytes by this client and key, or 429 quota-exceeded. */
  upload(client: string, key: MemberKey, bytes: number, nowMs: number): void {
    this.charge(this.uploads, client, key, bytes, nowMs, 'upload bytes');
  }

  private charge(buckets: RateLimiter, client: string, key: MemberKey, cost: number, nowMs: number, what: string): void {
    if (cost <= 0) return;
    const byAddress = buckets.take(`a:${client}`, nowMs, cost);
    if (byAddress > 0) throw new RelayError('quota-exceeded', `quota of ${what} per client used up`, { 'retry-after': String(byAddress) });
    const byKey = buckets.take(`k:${key}`, nowMs, cost);
    if (byKey > 0) {
      buckets.refund(`a:${client}`, cost);
      throw new RelayError('quota-exceeded', `quota of ${what} per key used up`, { 'retry-after': String(byKey) });
    }
  }
}
