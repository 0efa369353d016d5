/**
 * Refuses new content before the disk (or Redis memory) fills (issue 13 "Weak"): checks every
 * `storageCheckIntervalMs` the free space of the data dir (SQLite), Redis used memory against its
 * maxmemory, and the stored event bytes against `maxStoredBytes`. While over a mark, posts,
 * deposits, new channels and uploads get 507 `storage-full`; leaving, removing, reading and acking
 * (which frees space) still work. /healthz and /metrics show the last check, from memory.
 */
import type { StorageStatus } from '../shared/relay-api.js';
import { RelayError } from './http/errors.js';
import type { RelayLimits } from './limits.js';
import type { Logger } from './log.js';
import type { RelayStore } from './store/types.js';

export interface StoredCounts {
  readonly channels: number;
  readonly events: number;
  readonly bytes: number;
}

export class StorageGuard {
  private current: StorageStatus = { writable: true };
  private counts: StoredCounts = { channels: 0, events: 0, bytes: 0 };
  private timer: ReturnType<typeof setInterval> | undefined;
  private checking: Promise<void> | undefined;
  private checkedAtMs = 0;

  constructor(
    private readonly store: RelayStore,
    private readonly limits: RelayLimits,
    private readonly logger: Logger,
  ) {}

  /** Checks once now, then every storageCheckIntervalMs. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.limits.storageCheckIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** The last check (what /healthz reports). */
  status(): StorageStatus {
    return this.current;
  }

  /** The store's counts at the last check (what /metrics reports: no store call per scrape). */
  stored(): StoredCounts {
    return this.counts;
  }

  /** Throws 507 storage-full while over a mark. */
  requireRoom(): void {
    if (!this.current.writable) {
      throw new RelayError('storage-full', `the relay is out of storage (${this.current.reason ?? 'full'}); try again later`);
    }
  }

  /** Checks again if the last check is older than `maxAgeMs` (what a /metrics scrape asks: at most one check per interval, whatever the callers). */
  async fresh(maxAgeMs: number): Promise<void> {
    if (performance.now() - this.checkedAtMs > maxAgeMs) await this.check();
  }

  /** Runs one check (one at a time); failures keep the last status and are logged. */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runCheck(): Promise<void> {
    this.checkedAtMs = performance.now();
    try {
      const [usage, counts] = await Promise.all([this.store.storageUsage(), this.store.stats()]);
      this.counts = counts;
      const { limits } = this;
      let reason: string | undefined;
      if (usage.freeBytes !== undefined && usage.freeBytes < limits.minFreeDiskBytes) reason = 'disk-low';
      else if (usage.usedBytes !== undefined && usage.limitBytes !== undefined && usage.usedBytes > limits.redisMemoryHighWater * usage.limitBytes) {
        reason = 'memory-high';
      } else if (limits.maxStoredBytes > 0 && counts.bytes > limits.maxStoredBytes) reason = 'stored-bytes-quota';
      const next: StorageStatus = {
        writable: reason === undefined,
        ...(reason === undefined ? {} : { reason }),
        ...(usage.freeBytes === undefined ? {} : { freeBytes: usage.freeBytes }),
        ...(usage.usedBytes === undefined ? {} : { usedBytes: usage.usedBytes }),
        ...(usage.limitBytes === undefined ? {} : { limitBytes: usage.limitBytes }),
        storedBytes: counts.bytes,
      };
      if (next.writable !== this.current.writable) {
        if (next.writable) this.logger.warn('storage has room again: accepting new content', { ...next });
        else this.logger.error('storage high-water mark reached: refusing new content', { ...next });
      }
      this.current = next;
    } catch (error) {
      this.logger.error('storage check failed', { error: String(error) });
    }
  }
}
