/**
 * Per-client token buckets (issue 5 §7: rate per client). A client is its remote address. The map
 * is bounded (limits.rateMaxClients): when full, the least recently seen client is forgotten,
 * which only ever gives that client a fresh bucket.
 */

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxClients: number,
  ) {}

  /**
   * Takes `cost` tokens (default 1) for `client`; returns 0 if allowed, else seconds until they
   * are available (nothing is taken then). A cost above the burst can never be paid.
   */
  take(client: string, nowMs: number, cost = 1): number {
    let bucket = this.buckets.get(client);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxClients) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
      bucket = { tokens: this.burst, updatedMs: nowMs };
    } else {
      this.buckets.delete(client); // re-insert below: Map order is recency order
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * this.perSecond);
      bucket.updatedMs = nowMs;
    }
    this.buckets.set(client, bucket);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return 0;
    }
    return Math.max(1, Math.ceil((cost - bucket.tokens) / this.perSecond));
  }

  /** Gives back tokens taken for a request that was then refused for another reason. */
  refund(client: string, cost: number): void {
    const bucket = this.buckets.get(client);
    if (bucket !== undefined) bucket.tokens = Math.min(this.burst, bucket.tokens + cost);
  }
}
