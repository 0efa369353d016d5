/**
 * `npm run sim -- --runs N --seed S [--members M] [--steps K] [--attacks P] [--provider noble|webcrypto] [--key-trial N]`
 * (`--sessions` runs full session scenarios instead, `--sessions --asleep` the sleeping-phone
 * ones, `--insider` the malicious-member scenarios: see the branches below)
 * Runs N random membership scenarios (tests/sim/scenario.ts), each checked by the security oracle
 * (tests/sim/oracle.ts; `--key-trial N` runs its contribution trial on every Nth scenario only),
 * and prints one JSON line:
 * {"runs":N,"seed":S,"violations":0,"falseWarnings":0,"attacks":A,"attacksDetected":A,...}
 * Exits non-zero on any violation or undetected attack, printing the seed and step to replay
 * (`--runs 1 --seed <scenario seed> --exact`).
 */
import { providers, webCryptoProvider } from '../helpers/providers.js';
import { runScenario, type ScenarioResult } from './scenario.js';
import { simDefaults, scenarioSeed } from './config.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv.includes('--sessions') && process.argv.includes('--asleep')) {
  // Issue 8: sleeping phones (tests/sim/session-asleep.ts), seeds S … S+N-1, each a pure function
  // of its seed (replay one with `--runs 1 --seed <seed>`); `--key-trial K`: the contribution
  // trial on seeds divisible by K (default 4; 0 = none). No fault is injected: any warning fails.
  const { runAsleepBatch } = await import('./session-asleep.js');
  const { hybridProvider } = await import('../helpers/providers.js');
  const runs = Number(arg('runs') ?? 500);
  const seed = Number(arg('seed') ?? 1);
  const b = await runAsleepBatch(hybridProvider, runs, seed, Number(arg('key-trial') ?? 4));
  for (const f of b.failures) console.error(`VIOLATION ${f} (replay: npm run sim -- --sessions --asleep --runs 1 --seed ${f.match(/seed (\d+)/)?.[1] ?? '?'})`);
  console.log(JSON.stringify({
    runs, seed, mode: 'sessions-asleep', passed: b.passed, violations: b.failures.length, falseWarnings: b.totals.warnings, ...b.totals,
    msPerRun: Math.round(b.ms / Math.max(1, runs)),
  }));
  process.exit(b.failures.length === 0 ? 0 : 1);
}

if (process.argv.includes('--sessions')) {
  // Issue 4: full sessions (messages + operations + faults + restarts), tests/sim/session-scenarios.ts.
  // `npm run sim -- --sessions --runs N --seed S [--membership scripted|greeting|mixed]` (`--greeting`
  // = greeting). Every count is measured (issue 9 §1): attacks detected by their victims with
  // states as without them, warnings in runs with no fault or attack.
  const { membershipArg, runSessionSims, sessionSimsClean } = await import('./session-main.js');
  const runs = Number(arg('runs') ?? 1000);
  const seed = Number(arg('seed') ?? 1);
  const s = await runSessionSims(runs, seed, false, membershipArg(process.argv));
  for (const f of s.failures) console.error(`VIOLATION ${f}`);
  for (const u of s.undetected) console.error(`UNDETECTED ${u}`);
  console.log(JSON.stringify({
    runs, seed, mode: `sessions-${s.membership}`, passed: s.passed, greetingRuns: s.greetingScenarios,
    violations: s.violations, falseWarnings: s.falseWarnings, attacks: s.attacks, attacksDetected: s.attacksDetected,
    messages: s.messages, operations: s.operations, restarts: s.restarts, msPerRun: Math.round(s.ms / Math.max(1, runs)),
  }));
  process.exit(sessionSimsClean(s) ? 0 : 1);
}

if (process.argv.includes('--insider')) {
  // Issue 9 §1: a malicious member (tests/sim/insider.ts), each misbehaviour on `--runs` seeds.
  const { INSIDER_ATTACKS, KNOWN_INSIDER_GAPS, runInsiderScenario } = await import('./insider.js');
  const runs = Number(arg('runs') ?? 3);
  const seed = Number(arg('seed') ?? 1);
  const started = performance.now();
  const passed: Record<string, number> = {};
  for (const attack of INSIDER_ATTACKS) {
    passed[attack] = 0;
    for (let i = 0; i < runs; i++) {
      const r = await runInsiderScenario(webCryptoProvider, seed + i, attack);
      if (r.ok) passed[attack]++;
      else if (!KNOWN_INSIDER_GAPS.includes(attack)) console.error(`VIOLATION ${attack} seed ${seed + i}: ${r.verdict}`);
    }
    const gap = KNOWN_INSIDER_GAPS.includes(attack) ? ' (known gap)' : '';
    console.error(`${attack.padEnd(24)} ${passed[attack]}/${runs} handled${gap}`);
  }
  const failing = INSIDER_ATTACKS.filter((a) => passed[a]! < runs);
  const expected = [...KNOWN_INSIDER_GAPS].sort().join(',') === [...failing].sort().join(',');
  console.log(JSON.stringify({ mode: 'insider', runs, seed, passed, failing, knownGaps: KNOWN_INSIDER_GAPS, asExpected: expected, msPerRun: Math.round((performance.now() - started) / (runs * INSIDER_ATTACKS.length)) }));
  process.exit(expected ? 0 : 1);
}

const runs = Number(arg('runs') ?? simDefaults.runs);
const seed = Number(arg('seed') ?? 1);
const exact = process.argv.includes('--exact');
const maxMembers = Number(arg('members') ?? simDefaults.maxMembers);
const steps = Number(arg('steps') ?? simDefaults.steps);
const attackRate = Number(arg('attacks') ?? simDefaults.attackRate);
const crypto = providers.find((p) => p.name === (arg('provider') ?? 'noble')) ?? providers[0]!;
// --key-trial N: the oracle's contribution trial on every Nth scenario (1 = all, 0 = none).
const keyTrialEvery = Number(arg('key-trial') ?? 1);

const started = performance.now();
const totals = { violations: 0, falseWarnings: 0, attacks: 0, attacksDetected: 0, operations: 0, succeeded: 0, failed: 0 };
const undetected: ScenarioResult[] = [];
for (let i = 0; i < runs; i++) {
  const s = exact ? seed : scenarioSeed(seed, i);
  let r: ScenarioResult;
  try {
    r = await runScenario({ crypto, seed: s, maxMembers, steps, attackRate, keyTrial: keyTrialEvery > 0 && i % keyTrialEvery === 0 });
  } catch (e) {
    // A crash (an assertion, or a run that never settles) is a violation like any other.
    r = { seed: s, violations: [`seed ${s}: crashed: ${e instanceof Error ? e.stack : String(e)}`], attack: null, detected: false, falseWarnings: 0, operations: 0, succeeded: 0, failed: 0 };
  }
  totals.violations += r.violations.length;
  totals.falseWarnings += r.falseWarnings;
  totals.operations += r.operations;
  totals.succeeded += r.succeeded;
  totals.failed += r.failed;
  if (r.attack !== null) {
    totals.attacks++;
    if (r.detected) totals.attacksDetected++;
    else undetected.push(r);
  }
  if (process.env['SIM_PROGRESS'] !== undefined && (i + 1) % Number(process.env['SIM_PROGRESS']) === 0) {
    console.error(`progress ${JSON.stringify({ done: i + 1, ...totals })}`);
  }
  for (const v of r.violations) console.error(`VIOLATION ${v} (replay: npm run sim -- --runs 1 --seed ${s} --exact --members ${maxMembers} --steps ${steps})`);
}
for (const r of undetected) console.error(`UNDETECTED ${r.attack} in seed ${r.seed} (replay: npm run sim -- --runs 1 --seed ${r.seed} --exact)`);
const ms = performance.now() - started;
console.log(
  JSON.stringify({ runs, seed, ...totals, provider: crypto.name, maxMembers, steps, msPerRun: Math.round(ms / Math.max(1, runs)) }),
);
if (totals.violations > 0 || totals.falseWarnings > 0 || totals.attacksDetected !== totals.attacks) process.exitCode = 1;
