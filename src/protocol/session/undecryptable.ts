/**
 * Data packets that decrypt in no subsession we hold yet (mpENC §4.2 receive handler, step 5):
 * they may belong to a subsession whose operation we have not finished, so they wait and are
 * retried whenever a subsession starts. Bounded in count and age; an expired packet is a warning.
 */
import type { ChannelPacket } from '../channel.js';

/** A handful of operations' worth of early messages; beyond that something is wrong. */
export const MAX_UNDECRYPTABLE_PACKETS = 256;
/** Long enough for a slow membership operation (OPERATION_TIMEOUT_MS is 2 minutes) to finish. */
export const UNDECRYPTABLE_EXPIRY_MS = 5 * 60_000;

export interface WaitingPacket {
  readonly event: ChannelPacket;
  readonly receivedAtMs: number;
  /**
   * Whether we should have been able to read it: we were in a subsession long enough for the
   * traffic of subsessions before ours to be over. Only then is its expiry a warning; a member
   * waiting to be included, or just included, sees others' traffic it is not meant to read.
   */
  readonly expected: boolean;
}

export class UndecryptablePackets {
  private items: WaitingPacket[] = [];

  constructor(
    readonly maxItems: number = MAX_UNDECRYPTABLE_PACKETS,
    readonly expiryMs: number = UNDECRYPTABLE_EXPIRY_MS,
  ) {}

  get size(): number {
    return this.items.length;
  }

  has(text: string): boolean {
    return this.items.some((i) => i.event.text === text);
  }

  /** Adds a packet; returns the oldest one when the buffer overflows (the caller warns). */
  add(item: WaitingPacket): WaitingPacket | undefined {
    if (this.has(item.event.text)) return undefined;
    this.items.push(item);
    return this.items.length > this.maxItems ? this.items.shift() : undefined;
  }

  /** Takes every packet out, oldest first, for a retry. */
  drain(): WaitingPacket[] {
    const all = this.items;
    this.items = [];
    return all;
  }

  expire(nowMs: number): WaitingPacket[] {
    const expired = this.items.filter((i) => nowMs - i.receivedAtMs >= this.expiryMs);
    this.items = this.items.filter((i) => nowMs - i.receivedAtMs < this.expiryMs);
    return expired;
  }

  nextExpiryMs(): number | undefined {
    const first = this.items[0];
    return first === undefined ? undefined : first.receivedAtMs + this.expiryMs;
  }

  list(): readonly WaitingPacket[] {
    return this.items;
  }
}
