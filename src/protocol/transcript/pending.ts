/**
 * Verified messages whose parents have not arrived yet (mpENC §3.4, §2.3 "Messages received
 * out-of-order": they wait, rather than show early).
 *
 * Bounded in count, and each entry expires: a parent that never comes must not pin memory, and the
 * user is warned (the caller turns an expiry into a warning effect).
 */
import { ProtocolError } from '../errors.js';
import type { MessageKey } from './ids.js';
import type { TranscriptMessage } from './message.js';

/** Room for a burst of reordering across a few busy members, far above an honest relay's need. */
export const MAX_PENDING_MESSAGES = 1024;
/** A missing parent has this long to arrive (resends run every few seconds, catch-up is in order). */
export const PENDING_EXPIRY_MS = 5 * 60_000;

export interface PendingItem<Body, Extra> {
  readonly message: TranscriptMessage<Body>;
  /** Whatever the caller needs again at acceptance (the packet text, for resends). */
  readonly extra: Extra;
  readonly receivedAtMs: number;
}

export class PendingMessages<Body, Extra> {
  private readonly items = new Map<MessageKey, PendingItem<Body, Extra>>();
  /** missing parent id → ids of the items waiting for it. */
  private readonly waiters = new Map<MessageKey, Set<MessageKey>>();

  constructor(
    readonly maxItems: number = MAX_PENDING_MESSAGES,
    readonly expiryMs: number = PENDING_EXPIRY_MS,
  ) {}

  get size(): number {
    return this.items.size;
  }

  has(id: MessageKey): boolean {
    return this.items.has(id);
  }

  list(): PendingItem<Body, Extra>[] {
    return [...this.items.values()];
  }

  /** Parks an item until `missing` all arrive. A duplicate is ignored (returns false). */
  add(item: PendingItem<Body, Extra>, missing: readonly MessageKey[]): boolean {
    const id = item.message.id;
    if (this.items.has(id)) return false;
    if (this.items.size >= this.maxItems) {
      throw new ProtocolError('limit-exceeded', `more than ${this.maxItems} messages wait for missing parents`);
    }
    this.items.set(id, item);
    for (const parent of missing) {
      let set = this.waiters.get(parent);
      if (set === undefined) this.waiters.set(parent, (set = new Set()));
      set.add(id);
    }
    return true;
  }

  /** Items that waited on `arrived`, removed from the buffer: the caller re-checks each. */
  release(arrived: MessageKey): PendingItem<Body, Extra>[] {
    const ids = this.waiters.get(arrived);
    if (ids === undefined) return [];
    this.waiters.delete(arrived);
    const out: PendingItem<Body, Extra>[] = [];
    for (const id of [...ids].sort()) {
      const item = this.take(id);
      if (item !== undefined) out.push(item);
    }
    return out;
  }

  /** Removes and returns the items older than the expiry, oldest first. */
  expire(nowMs: number): PendingItem<Body, Extra>[] {
    const out: PendingItem<Body, Extra>[] = [];
    for (const [id, item] of this.items) {
      if (nowMs - item.receivedAtMs >= this.expiryMs) {
        this.take(id);
        out.push(item);
      }
    }
    return out;
  }

  /** The earliest time an item expires, for the caller's timer. */
  nextExpiryMs(): number | undefined {
    let next: number | undefined;
    for (const item of this.items.values()) {
      const at = item.receivedAtMs + this.expiryMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  private take(id: MessageKey): PendingItem<Body, Extra> | undefined {
    const item = this.items.get(id);
    if (item === undefined) return undefined;
    this.items.delete(id);
    for (const parent of item.message.parents) {
      const set = this.waiters.get(parent);
      if (set === undefined) continue;
      set.delete(id);
      if (set.size === 0) this.waiters.delete(parent);
    }
    return item;
  }
}
