/**
 * Default simulator sizes: scenarios of 2–8 members (issue 3). CI runs 1,000 of them
 * (SIM_CI_RUNS in tests/protocol/membership-sim.test.ts).
 */
export const simDefaults = {
  runs: 100,
  maxMembers: 8,
  steps: 6,
  attackRate: 0.3,
} as const;

/** Seed of scenario `i` of a run seeded `seed` (splitmix-style, so neighbours differ). */
export function scenarioSeed(seed: number, i: number): number {
  let z = (seed * 0x9e3779b1 + i * 0x85ebca6b + 0x632be5ab) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
