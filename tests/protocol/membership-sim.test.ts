/**
 * The membership simulator in CI (issue 3): SIM_CI_RUNS random scenarios (default 1,000) must
 * end with no violation, no false warning and every attack detected.
 *
 * CI-sized: the 1,000 scenarios are small (2–3 members, 3 steps) and use the WebCrypto provider,
 * because with noble a run costs ~0.15–0.3 s of one core (ed25519 dominates) and 1,000 of them
 * would take several minutes. A smaller batch runs full-size scenarios (2–8 members) on noble.
 * `npm run sim -- --runs 10000 --seed S` is the big local run.
 */
import { describe, expect, it } from 'vitest';
import { providers } from '../helpers/providers.js';
import { scenarioSeed } from '../sim/config.js';
import { runScenario, type ScenarioResult } from '../sim/scenario.js';

const CI_RUNS = Number(process.env['SIM_CI_RUNS'] ?? 1000);
const FULL_RUNS = Number(process.env['SIM_FULL_RUNS'] ?? 8);

async function batch(crypto: (typeof providers)[number], seed: number, runs: number, maxMembers: number, steps: number) {
  const totals = { violations: [] as string[], falseWarnings: 0, attacks: 0, detected: 0, succeeded: 0 };
  for (let i = 0; i < runs; i++) {
    const r: ScenarioResult = await runScenario({ crypto, seed: scenarioSeed(seed, i), maxMembers, steps, attackRate: 0.3 });
    totals.violations.push(...r.violations);
    totals.falseWarnings += r.falseWarnings;
    totals.succeeded += r.succeeded;
    if (r.attack !== null) {
      totals.attacks++;
      if (r.detected) totals.detected++;
      else totals.violations.push(`seed ${r.seed}: ${r.attack} not detected`);
    }
  }
  return totals;
}

describe('membership simulator', () => {
  it(`${CI_RUNS} small scenarios (webcrypto): no violation, no false warning, every attack detected`, async () => {
    const webcrypto = providers.find((p) => p.name === 'webcrypto') ?? providers[0]!;
    const t = await batch(webcrypto, 20261122, CI_RUNS, 3, 3);
    expect(t.violations).toEqual([]);
    expect(t.falseWarnings).toBe(0);
    expect(t.detected).toBe(t.attacks);
    expect(t.attacks).toBeGreaterThan(CI_RUNS / 10);
    expect(t.succeeded).toBeGreaterThan(CI_RUNS);
  }, 600_000);

  it(`${FULL_RUNS} full-size scenarios (noble, 2–8 members)`, async () => {
    const t = await batch(providers[0]!, 7, FULL_RUNS, 8, 5);
    expect(t.violations).toEqual([]);
    expect(t.falseWarnings).toBe(0);
    expect(t.detected).toBe(t.attacks);
  }, 600_000);
});
