/**
 * How a read of stored events goes out to a subscriber that asked for `batch` (relay-api.ts
 * `EventsFrame`): the events past its cursor up to, not including, its own `member-left` go as one
 * `events` frame; that event and what follows go one by one, so the hub's `deliver` sends the
 * member-left alone and ends the subscription there (src/relay/README.md "WebSocket").
 */
import type { MemberKey, RelayEvent } from '../shared/relay-api.js';

export interface StoredSplit {
  /** For one `events` frame (empty: none). */
  readonly batch: readonly RelayEvent[];
  /** For `event` frames, in order. */
  readonly single: readonly RelayEvent[];
}

/** `events` (one store read, in seq order) split for a subscriber at `lastSent`; `batch`: it asked for batches. */
export function splitStored(events: readonly RelayEvent[], lastSent: number, member: MemberKey, batch: boolean): StoredSplit {
  const from = events.findIndex((event) => event.seq > lastSent);
  if (from < 0) return { batch: [], single: [] };
  const due = events.slice(from);
  if (!batch) return { batch: [], single: due };
  const own = due.findIndex((event) => event.type === 'member-left' && event.member === member);
  return own < 0 ? { batch: due, single: [] } : { batch: due.slice(0, own), single: due.slice(own) };
}
