import { describe, expect, it } from 'vitest';
import { hybridProvider } from '../helpers/providers.js';
import { runSessionScenario } from '../sim/session-scenarios.js';

/** CI-sized; `tsx tests/sim/session-main.ts --sessions N` runs thousands. */
const SCENARIOS = Number(process.env.COVEY_SESSION_SCENARIOS ?? 12);

describe('random session scenarios (lossy relay, operations, restarts, attacks)', () => {
  it(`${SCENARIOS} seeds converge with every invariant`, async () => {
    let faulty = 0;
    for (let seed = 1; seed <= SCENARIOS; seed++) {
      const result = await runSessionScenario(hybridProvider, seed);
      expect(result.seed).toBe(seed);
      if (result.faulty) faulty++;
    }
    expect(faulty).toBeGreaterThan(0);
  });

  it(`${Math.ceil(SCENARIOS / 2)} seeds over real greetings converge with every invariant`, async () => {
    for (let seed = 1; seed <= Math.ceil(SCENARIOS / 2); seed++) {
      const result = await runSessionScenario(hybridProvider, seed, { membership: 'greeting' });
      expect(result.operations).toBeGreaterThan(0);
    }
  });
});
