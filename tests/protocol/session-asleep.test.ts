/**
 * Issue 8: groups that work while phones sleep. Sleeping-phone scenarios (tests/sim/session-asleep.ts):
 * real v2 greetings, members asleep for hours or days (now and then longer than the relay keeps
 * events), newcomers joining while others sleep, restarts from snapshots. Each must end with
 * everyone in the channel holding one subsession, every operation whose contributors woke
 * completed, the key oracle clean, the transcripts agreeing and fully acked, and no warning at
 * all. CI runs 500 seeds (COVEY_ASLEEP_SCENARIOS overrides); `npm run sim -- --sessions --asleep
 * --runs 10000 --seed 1` is the big local run.
 */
import { describe, expect, it } from 'vitest';
import { hybridProvider } from '../helpers/providers.js';
import { runAsleepBatch } from '../sim/session-asleep.js';

const SCENARIOS = Number(process.env['COVEY_ASLEEP_SCENARIOS'] ?? 500);

describe('sleeping phones (async-groups rules 1-15)', () => {
  it(`${SCENARIOS} seeds: everyone converges, every woken operation completes, no key leaks, no warning`, async () => {
    const b = await runAsleepBatch(hybridProvider, SCENARIOS, 1);
    expect(b.failures).toEqual([]);
    expect(b.passed).toBe(SCENARIOS);
    // The scenarios do what they claim: sleeps, catch-ups, retention gaps and operations happen.
    expect(b.totals.catchUps).toBeGreaterThan(SCENARIOS);
    expect(b.totals.completed).toBeGreaterThan(SCENARIOS);
    if (SCENARIOS >= 100) expect(b.totals.retentionGaps).toBeGreaterThan(0);
  }, 1_800_000);
});
