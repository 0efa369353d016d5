/**
 * push-catchup.ts: a read of stored events, split for a subscriber that asked for batches (one
 * `events` frame) and the events that go alone (its own member-left and what follows).
 */
import { describe, expect, it } from 'vitest';
import type { MemberKey, RelayEvent } from '../../src/shared/relay-api.js';
import { splitStored } from '../../src/relay/push-catchup.js';

const ME = 'me-key' as MemberKey;
const OTHER = 'other-key' as MemberKey;
const packet = (seq: number): RelayEvent => ({ seq, timeMs: 0, type: 'packet', author: null, packet: 'AA' });
const left = (seq: number, member: MemberKey): RelayEvent => ({ seq, timeMs: 0, type: 'member-left', member, by: member });
const seqs = (events: readonly RelayEvent[]): number[] => events.map((e) => e.seq);

describe('splitStored', () => {
  it('batches every event past the cursor', () => {
    const split = splitStored([packet(3), packet(4), packet(5), left(6, OTHER)], 3, ME, true);
    expect(seqs(split.batch)).toEqual([4, 5, 6]);
    expect(split.single).toEqual([]);
  });

  it("sends the member's own member-left and what follows alone, after the batch before it", () => {
    const split = splitStored([packet(4), packet(5), left(6, ME), packet(7)], 3, ME, true);
    expect(seqs(split.batch)).toEqual([4, 5]);
    expect(seqs(split.single)).toEqual([6, 7]);
    const first = splitStored([left(4, ME), packet(5)], 3, ME, true);
    expect(first.batch).toEqual([]);
    expect(seqs(first.single)).toEqual([4, 5]);
  });

  it('sends everything alone to a subscriber that did not ask for batches, and nothing at or below the cursor', () => {
    const split = splitStored([packet(4), packet(5), packet(6)], 4, ME, false);
    expect(split.batch).toEqual([]);
    expect(seqs(split.single)).toEqual([5, 6]);
    expect(splitStored([packet(2), packet(3)], 3, ME, true)).toEqual({ batch: [], single: [] });
    expect(splitStored([], 0, ME, true)).toEqual({ batch: [], single: [] });
  });
});
