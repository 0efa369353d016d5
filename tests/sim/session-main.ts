/**
 * Session scenario runner: `tsx tests/sim/session-main.ts [--sessions N] [--seed S] [--membership scripted|greeting|mixed] [--trace]`.
 * Runs N random session scenarios (tests/sim/session-scenarios.ts) from seed S on, prints a
 * summary table and one JSON line, and exits 1 on any violation, false warning or undetected
 * attack, naming the seeds to replay. `--membership greeting` runs real CLIQUES/ASKE greetings
 * instead of scripted operations; `mixed` alternates the two by seed (odd seeds: greetings).
 * `--greeting` is short for `--membership greeting`. `--trace` prints each scenario's actions
 * (use it with one seed to replay a failure).
 */
import { runSessionScenario, ScenarioFailure, type SessionScenarioResult } from './session-scenarios.js';
import { hybridProvider } from '../helpers/providers.js';

export type MembershipMode = 'scripted' | 'greeting' | 'mixed';

export interface SessionSimSummary {
  readonly bench: 'sim-sessions';
  readonly membership: MembershipMode;
  readonly scenarios: number;
  readonly greetingScenarios: number;
  readonly passed: number;
  /** Scenarios that broke an invariant (the first few are in `failures`). */
  readonly violations: number;
  readonly failures: readonly string[];
  /** Warnings in runs with no transport fault and no attack. */
  readonly falseWarnings: number;
  readonly attacks: number;
  readonly attacksDetected: number;
  readonly undetected: readonly string[];
  readonly messages: number;
  readonly operations: number;
  readonly restarts: number;
  readonly faulty: number;
  readonly warnings: number;
  readonly ms: number;
}

/** Failures kept in the summary (the counts cover all). */
const MAX_REPORTED = 5;

/** Which membership half seed `seed` runs in `mode`. */
export function membershipOf(mode: MembershipMode, seed: number): 'scripted' | 'greeting' {
  return mode === 'mixed' ? (seed % 2 === 1 ? 'greeting' : 'scripted') : mode;
}

/** Runs `count` scenarios from `firstSeed`, all of them, and sums what they measured. */
export async function runSessionSims(count: number, firstSeed = 1, trace = false, membership: MembershipMode = 'scripted'): Promise<SessionSimSummary> {
  const started = Date.now();
  const totals = { messages: 0, operations: 0, restarts: 0, attacks: 0, attacksDetected: 0, faulty: 0, warnings: 0, falseWarnings: 0, greetingScenarios: 0 };
  let passed = 0;
  const failures: string[] = [];
  const undetected: string[] = [];
  let violations = 0;
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const mode = membershipOf(membership, seed);
    if (mode === 'greeting') totals.greetingScenarios++;
    let result: SessionScenarioResult;
    try {
      result = await runSessionScenario(hybridProvider, seed, {
        membership: mode,
        ...(trace ? { trace: (line: string) => console.log(`  ${line}`) } : {}),
      });
    } catch (e) {
      if (!(e instanceof ScenarioFailure)) throw e;
      violations++;
      if (failures.length < MAX_REPORTED) failures.push(`${e.message} (replay: npx tsx tests/sim/session-main.ts --sessions 1 --seed ${seed} --membership ${mode} --trace)`);
      continue;
    }
    passed++;
    totals.messages += result.messages;
    totals.operations += result.operations;
    totals.restarts += result.restarts;
    totals.attacks += result.attacks;
    totals.attacksDetected += result.attacksDetected;
    totals.faulty += result.faulty ? 1 : 0;
    totals.warnings += result.warnings;
    totals.falseWarnings += result.falseWarnings;
    for (const u of result.undetected) if (undetected.length < MAX_REPORTED) undetected.push(`seed ${seed} (${mode}): ${u}`);
  }
  return { bench: 'sim-sessions', membership, scenarios: count, passed, violations, failures, undetected, ...totals, ms: Date.now() - started };
}

/** Whether a summary shows no violation, no false warning and every attack detected. */
export function sessionSimsClean(s: SessionSimSummary): boolean {
  return s.violations === 0 && s.falseWarnings === 0 && s.attacksDetected === s.attacks;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function membershipArg(argv: readonly string[]): MembershipMode {
  const i = argv.indexOf('--membership');
  const value = i >= 0 ? argv[i + 1] : argv.includes('--greeting') ? 'greeting' : 'scripted';
  if (value !== 'scripted' && value !== 'greeting' && value !== 'mixed') throw new Error(`--membership scripted|greeting|mixed, not ${value}`);
  return value;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(arg('--sessions') ?? 1000);
  const seed = Number(arg('--seed') ?? 1);
  const summary = await runSessionSims(count, seed, process.argv.includes('--trace'), membershipArg(process.argv));
  console.log(`session scenarios: ${summary.passed}/${summary.scenarios} passed in ${summary.ms} ms (${summary.greetingScenarios} over real greetings)`);
  console.log(`  messages ${summary.messages}, operations ${summary.operations}, restarts ${summary.restarts}, faulty runs ${summary.faulty}, warnings ${summary.warnings}`);
  console.log(`  attacks ${summary.attacks}, detected ${summary.attacksDetected}, false warnings ${summary.falseWarnings}, violations ${summary.violations}`);
  for (const f of summary.failures) console.error(`VIOLATION ${f}`);
  for (const u of summary.undetected) console.error(`UNDETECTED ${u}`);
  console.log(JSON.stringify(summary));
  process.exit(sessionSimsClean(summary) ? 0 : 1);
}
