/**
 * Session scenario runner: `tsx tests/sim/session-main.ts [--sessions N] [--seed S] [--greeting] [--trace]`.
 * Runs N random session scenarios (tests/sim/session-scenarios.ts) from seed S on, prints a
 * summary table and one JSON line, and exits 1 with the failing seed on the first violation.
 * `--greeting` runs real CLIQUES/ASKE greetings instead of scripted operations. `--trace` prints each scenario's actions (use it with one seed to replay a failure).
 */
import { runSessionScenario, ScenarioFailure, type SessionScenarioResult } from './session-scenarios.js';
import { hybridProvider } from '../helpers/providers.js';

export interface SessionSimSummary {
  readonly bench: 'sim-sessions';
  readonly membership: 'scripted' | 'greeting';
  readonly scenarios: number;
  readonly passed: number;
  readonly failedSeed: number | null;
  /** Why the failing scenario failed (its first broken invariant), or null. */
  readonly failure: string | null;
  readonly messages: number;
  readonly operations: number;
  readonly restarts: number;
  readonly attacks: number;
  readonly faulty: number;
  readonly warnings: number;
  readonly ms: number;
}

/** Runs `count` scenarios from `firstSeed`; stops at the first failure. */
export async function runSessionSims(
  count: number,
  firstSeed = 1,
  trace = false,
  membership: 'scripted' | 'greeting' = 'scripted',
): Promise<SessionSimSummary> {
  const started = Date.now();
  const totals = { messages: 0, operations: 0, restarts: 0, attacks: 0, faulty: 0, warnings: 0 };
  let passed = 0;
  let failedSeed: number | null = null;
  let failure: string | null = null;
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    let result: SessionScenarioResult;
    try {
      result = await runSessionScenario(hybridProvider, seed, {
        membership,
        ...(trace ? { trace: (line: string) => console.log(`  ${line}`) } : {}),
      });
    } catch (e) {
      if (!(e instanceof ScenarioFailure)) throw e;
      console.error(e.message);
      failedSeed = seed;
      failure = e.message;
      break;
    }
    passed++;
    totals.messages += result.messages;
    totals.operations += result.operations;
    totals.restarts += result.restarts;
    totals.attacks += result.attacks;
    totals.faulty += result.faulty ? 1 : 0;
    totals.warnings += result.warnings;
  }
  return { bench: 'sim-sessions', membership, scenarios: count, passed, failedSeed, failure, ...totals, ms: Date.now() - started };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(arg('--sessions') ?? 1000);
  const seed = Number(arg('--seed') ?? 1);
  const membership = process.argv.includes('--greeting') ? 'greeting' : 'scripted';
  const summary = await runSessionSims(count, seed, process.argv.includes('--trace'), membership);
  console.log(`session scenarios: ${summary.passed}/${summary.scenarios} passed in ${summary.ms} ms`);
  console.log(`  messages ${summary.messages}, operations ${summary.operations}, restarts ${summary.restarts}, attacks ${summary.attacks}, faulty runs ${summary.faulty}, warnings ${summary.warnings}`);
  console.log(JSON.stringify(summary));
  process.exit(summary.failedSeed === null ? 0 : 1);
}
