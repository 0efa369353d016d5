/**
 * `npm run bench:relay`: the relay under load, each figure next to a baseline measured in the
 * same run (issue 5 "Benchmark", issue 13 "Scale-out that keeps up"). Sections:
 *
 * - ramp: 1,000 WebSocket subscribers per target in channels of 10; posts at rising rates; for
 *   each target the rate where its p99 post-to-push latency first passes 100 ms, and its peak
 *   deliveries/s (the ramp goes on until it cannot keep up with the offered rate twice in a row)
 *   (relay-ramp.ts). Targets: a bare `ws` broadcaster (baseline: it checks and stores nothing but
 *   speaks the relay's wire, same request headers, answer headers and frame fields, so the load
 *   generator does the same work per post for every target; 'baseline-plain' is the first, smaller
 *   one), the relay on SQLite, the relay on Redis (BENCH_TARGETS also knows sqlite-vt / redis-vt:
 *   one signature thread; sqlite-thread: the SQLite store on its own thread, RELAY_SQLITE_THREAD=on);
 *   steps alternate between them. The load generator proves its posts and
 *   subscriptions with request MACs (what the app sends; BENCH_RELAY_PROOF=signature: Ed25519 as
 *   before); BENCH_RELAY_PROOFS=mac,signature runs every relay target once per proof, side by side
 *   (keys sqliteMac, sqliteSignature, ...); a target name may also carry one: sqlite@signature.
 * - cpu: CPU per accepted post (all threads, and the event loop alone: one event loop takes at
 *   most 1 s / that many posts a second), by part (signature check, MAC check, JSON, store, fan-out, ...), on
 *   the ramp's relays at a steady rate, next to the baseline's and the load generator's CPU per
 *   post (relay-post-path.ts).
 * - commit: 100 concurrent writers, durable vs durability off (SQLite synchronous=OFF, Redis
 *   appendfsync no), alternating rounds (relay-post-path.ts).
 * - soak: 10,000 idle + 1,000 active WebSockets on one process: RSS per connection and p99,
 *   relay vs baseline (relay-soak.ts).
 *
 * Durability is on for both stores (SQLite fsyncs before answering; Redis appendfsync always),
 * as in production. Every server runs in its own child process; every step has a fixed duration
 * and a drain timeout and every section a budget, so the run ends by itself (about 6-8 minutes on
 * the 2-core machine under load). Output: a table per section, then one JSON line with the ratios
 * to the baselines and the machine's load average.
 *
 * Env: BENCH_SECTIONS ("ramp,cpu,commit,soak"), BENCH_TARGETS ("baseline,sqlite,redis"),
 * BENCH_SUBSCRIBERS (1000), BENCH_CHANNEL_SIZE (10), BENCH_RATES ("100,250,500,1000,1500,2000,
 * 2500,3000,3500,4000,5000,6000,7000,8000": steps of at most 1,000 above 2,000, so the rate where p99 passes
 * the limit is not off by a third), BENCH_STEP_MS (2000), BENCH_BUDGET_MS (ramp, 180000), BENCH_CPU_RATE (1000),
 * BENCH_CPU_MS (4000), BENCH_CPU_ROUNDS (1; more: alternating rounds, medians), BENCH_COMMIT_TARGETS ("sqlite,sqlite-off,sqlite-vt,redis,redis-off"),
 * BENCH_COMMIT_WRITERS (100), BENCH_COMMIT_ROUNDS (5), BENCH_COMMIT_ROUND_MS (3000),
 * BENCH_SOAK_TARGETS ("baseline,sqlite"), BENCH_SOAK_IDLE (10000), BENCH_SOAK_ACTIVE (1000),
 * BENCH_SOAK_RATE (200), BENCH_RELAY_PROOF ("mac" | "signature"; default mac), BENCH_RELAY_PROOFS
 * (unset; "mac,signature": both, as separate ramp and cpu targets).
 */
import { loadavg } from 'node:os';
import { printJsonLine, printTable, round } from './harness.js';
import { CPU_PARTS } from './relay-cpu-parts.js';
import { DeliveryCounter, runStep, type StepResult } from './relay-load.js';
import { measureCpu, pairedRatio, runCommit, type CommitResult, type CpuResult } from './relay-post-path.js';
import { P99_LIMIT_MS, passedLimit, peak, prepareTarget, runRamp, sustained, type RampResult, type RampTarget } from './relay-ramp.js';
import { runSoak, type SoakResult } from './relay-soak.js';
import { defaultProof, withProofs } from './relay-targets.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function envList(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback).split(',').map((item) => item.trim()).filter((item) => item !== '');
}

const SECTIONS = new Set(envList('BENCH_SECTIONS', 'ramp,cpu,commit,soak'));
const TARGETS = withProofs(envList('BENCH_TARGETS', 'baseline,sqlite,redis'));
const SUBSCRIBERS = envInt('BENCH_SUBSCRIBERS', 1_000);
const CHANNEL_SIZE = envInt('BENCH_CHANNEL_SIZE', 10);
const RATES = envList('BENCH_RATES', '100,250,500,1000,1500,2000,2500,3000,3500,4000,5000,6000,7000,8000').map((rate) => Number.parseInt(rate, 10));
const STEP_MS = envInt('BENCH_STEP_MS', 2_000);
const RAMP_BUDGET_MS = envInt('BENCH_BUDGET_MS', 180_000);
/** Well below every target's saturation: CPU per post at a steady load, not at a pile-up. */
const CPU_RATE = envInt('BENCH_CPU_RATE', 1000);
const CPU_MS = envInt('BENCH_CPU_MS', 4_000);
const CPU_ROUNDS = envInt('BENCH_CPU_ROUNDS', 1);
const COMMIT_TARGETS = envList('BENCH_COMMIT_TARGETS', 'sqlite,sqlite-off,sqlite-vt,redis,redis-off');
const COMMIT_WRITERS = envInt('BENCH_COMMIT_WRITERS', 100);
const COMMIT_ROUNDS = envInt('BENCH_COMMIT_ROUNDS', 5);
const COMMIT_ROUND_MS = envInt('BENCH_COMMIT_ROUND_MS', 3_000);
const SOAK_TARGETS = envList('BENCH_SOAK_TARGETS', 'baseline,sqlite');
const SOAK_IDLE = envInt('BENCH_SOAK_IDLE', 10_000);
const SOAK_ACTIVE = envInt('BENCH_SOAK_ACTIVE', 1_000);
const SOAK_RATE = envInt('BENCH_SOAK_RATE', 200);

const fixed = (value: number | undefined, digits = 0): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));
const ratio = (value: number | undefined, base: number | undefined): number | undefined =>
  value === undefined || base === undefined || base === 0 ? undefined : round(value / base);

/**
 * CPU µs per accepted post in a step: the server (all threads), redis-server, the load generator.
 * On the 2-core bench machine the ramp's peak is where server + store + generator fill the cores,
 * so the peak ratio between two targets follows the ratio of these sums (src/relay/README.md
 * "Why the ramp and the CPU estimate disagreed").
 */
function cpuPerPost(step: StepResult | undefined): { server: number; store: number; generator: number; total: number } | undefined {
  if (step?.cores === undefined || !(step.postsPerSec > 0)) return undefined;
  const per = (cores: number | undefined): number => Math.round(((cores ?? 0) * 1e6) / step.postsPerSec);
  const server = per(step.cores.server);
  const store = per(step.cores.store);
  const generator = per(step.cores.generator);
  return { server, store, generator, total: server + store + generator };
}

function rampSummary(results: readonly RampResult[]): Record<string, unknown> {
  const baseline = results.find((result) => result.key === 'baseline');
  const basePeak = baseline === undefined ? undefined : peak(baseline);
  const baseSustained = baseline === undefined ? undefined : sustained(baseline);
  const out: Record<string, unknown> = {};
  for (const result of results) {
    const top = peak(result);
    const kept = sustained(result);
    const over = passedLimit(result);
    out[result.key] = {
      stop: result.stop,
      ...(result.error === undefined ? {} : { error: result.error }),
      peakDeliveredPerSec: top === undefined ? null : Math.round(top.deliveredPerSec),
      peakPostsPerSec: top === undefined ? null : Math.round(top.postsPerSec),
      sustainedRatePerSec: kept?.ratePerSec ?? null,
      sustainedP99Ms: kept === undefined ? null : round(kept.p99Ms),
      p99PassedLimitAtRate: over?.ratePerSec ?? null,
      p99AtThatRateMs: over === undefined ? null : round(over.p99Ms),
      postsPerSecAtThatRate: over === undefined ? null : Math.round(over.postsPerSec),
      cpuUsPerPostAtPeak: cpuPerPost(top) ?? null,
      ...(result === baseline
        ? {}
        : {
            peakRatioToBaseline: ratio(top?.deliveredPerSec, basePeak?.deliveredPerSec) ?? null,
            sustainedRatioToBaseline: ratio(kept?.ratePerSec, baseSustained?.ratePerSec) ?? null,
          }),
    };
  }
  return out;
}

function printRamp(results: readonly RampResult[]): void {
  const rows: string[][] = [];
  for (const result of results) {
    for (const step of result.steps) {
      rows.push([
        result.label,
        String(step.ratePerSec),
        fixed(step.postsPerSec),
        fixed(step.deliveredPerSec),
        fixed(step.p50Ms, 2),
        fixed(step.p99Ms, 2),
        String(step.missing),
        fixed(step.cores?.server, 2),
        fixed(step.cores?.serverLoop, 2),
        fixed(step.cores?.store, 2),
        fixed(step.cores?.generator, 2),
        fixed(step.cores?.generatorLoop, 2),
        step.postErrors === 0 ? '0' : `${step.postErrors} (${step.errorStatuses})`,
      ]);
    }
    rows.push([result.label, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `stopped: ${result.stop}${result.error === undefined ? '' : ` (${result.error})`}`]);
  }
  console.log(
    `\nramp: ${SUBSCRIBERS} subscribers per target, channels of ${CHANNEL_SIZE}, ${STEP_MS} ms steps, rising rates until saturated (p99 limit ${P99_LIMIT_MS} ms); ` +
      'cores used during the step (CPU time / wall time): the server (all threads), its event loop, redis-server, the load generator, its event loop',
  );
  printTable(
    ['target', 'rate/s', 'posts/s', 'delivered/s', 'p50 ms', 'p99 ms', 'missing', 'server cores', 'server loop', 'redis cores', 'gen cores', 'gen loop', 'post errors / note'],
    rows,
  );
  const baseline = results.find((result) => result.key === 'baseline');
  const base = cpuPerPost(baseline === undefined ? undefined : peak(baseline));
  console.log('\nCPU µs per accepted post at each target\'s peak step (server all threads + redis-server + load generator); the CPU-bound ratio is the baseline\'s sum over the target\'s:');
  for (const result of results) {
    const at = cpuPerPost(peak(result));
    if (at === undefined) continue;
    const bound = base === undefined || result === baseline ? '' : `, CPU-bound ratio ${(base.total / at.total).toFixed(2)}`;
    console.log(`  ${result.label}: server ${at.server} + redis ${at.store} + generator ${at.generator} = ${at.total}${bound}`);
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
};

/** One target's rounds as one result: the median of each figure (parts: the first round's profile). */
function medianCpu(results: readonly CpuResult[]): CpuResult {
  const first = results[0];
  if (first === undefined) throw new Error('no CPU rounds');
  const loops = results.map((r) => r.mainThreadUsPerPost).filter((v): v is number => v !== undefined);
  const stores = results.map((r) => r.storeCpuUsPerPost).filter((v): v is number => v !== undefined);
  return {
    ...first,
    accepted: Math.round(median(results.map((r) => r.accepted))),
    cpuUsPerPost: median(results.map((r) => r.cpuUsPerPost)),
    mainThreadUsPerPost: loops.length === 0 ? undefined : median(loops),
    generatorCpuUsPerPost: median(results.map((r) => r.generatorCpuUsPerPost)),
    storeCpuUsPerPost: stores.length === 0 ? undefined : median(stores),
    p99Ms: median(results.map((r) => r.p99Ms)),
  };
}

function printCpu(results: readonly CpuResult[]): void {
  console.log(
    `\ncpu: µs of server CPU (all threads) per accepted post at ${CPU_RATE} posts/s (${SUBSCRIBERS} subscribers; median of ${CPU_ROUNDS} alternating round(s)), of its event loop alone, of redis-server, of the load generator; ` +
      'parts: the all-threads figure split in the proportions of a wall-clock profile of the event loop (a check queued to another thread shows there as the time spent queueing it, or waiting to)',
  );
  printTable(
    ['target', 'posts', 'CPU µs/post', 'event loop µs/post', 'redis µs/post', 'generator µs/post', ...CPU_PARTS, 'p99 ms'],
    results.map((result) => [
      result.label,
      String(result.accepted),
      fixed(result.cpuUsPerPost),
      fixed(result.mainThreadUsPerPost),
      fixed(result.storeCpuUsPerPost),
      fixed(result.generatorCpuUsPerPost),
      ...CPU_PARTS.map((part) => fixed(result.parts?.[part])),
      fixed(result.p99Ms, 1),
    ]),
  );
}

function cpuSummary(results: readonly CpuResult[]): Record<string, unknown> {
  const baseline = results.find((result) => result.key === 'baseline');
  return Object.fromEntries(
    results.map((result) => [
      result.key,
      {
        cpuUsPerPost: round(result.cpuUsPerPost),
        ...(result.mainThreadUsPerPost === undefined ? {} : { eventLoopUsPerPost: round(result.mainThreadUsPerPost) }),
        generatorCpuUsPerPost: round(result.generatorCpuUsPerPost),
        ...(result.storeCpuUsPerPost === undefined ? {} : { redisServerCpuUsPerPost: round(result.storeCpuUsPerPost) }),
        ...(result.parts === undefined ? {} : { partsUsPerPost: Object.fromEntries(Object.entries(result.parts).map(([k, v]) => [k, round(v)])) }),
        ...(baseline === undefined || result === baseline ? {} : { cpuRatioToBaseline: ratio(result.cpuUsPerPost, baseline.cpuUsPerPost) }),
      },
    ]),
  );
}

function printCommit(results: readonly CommitResult[]): void {
  console.log(`\ncommit: ${COMMIT_WRITERS} concurrent writers (closed loop), ${COMMIT_ROUNDS} alternating rounds of ${COMMIT_ROUND_MS} ms`);
  printTable(
    ['target', 'posts', 'errors', 'posts/s', 'per round'],
    results.map((result) => [
      result.label,
      String(result.posts),
      result.errors === 0 ? '0' : `${result.errors} (${result.errorStatuses})`,
      fixed(result.postsPerSec),
      result.roundRates.map((r) => r.toFixed(0)).join(' '),
    ]),
  );
}

function commitSummary(results: readonly CommitResult[]): Record<string, unknown> {
  const byKey = new Map(results.map((result) => [result.key, result]));
  const out: Record<string, unknown> = {};
  for (const result of results) out[result.key] = { postsPerSec: Math.round(result.postsPerSec), errors: result.errors, rounds: result.roundRates.map(Math.round) };
  const pair = (durable: string, off: string): Record<string, number> | undefined => {
    const a = byKey.get(durable);
    const b = byKey.get(off);
    if (a === undefined || b === undefined) return undefined;
    const paired = pairedRatio(a, b);
    return { totalRatio: round(a.postsPerSec / b.postsPerSec), ...(paired === undefined ? {} : { medianRoundRatio: round(paired) }) };
  };
  const sqliteRatio = pair('sqlite', 'sqliteOff');
  const redisRatio = pair('redis', 'redisOff');
  if (sqliteRatio !== undefined) out['sqliteDurableToOff'] = sqliteRatio;
  if (redisRatio !== undefined) out['redisDurableToOff'] = redisRatio;
  const threads = pair('sqliteVerifyThread', 'sqlite');
  if (threads !== undefined) out['sqliteSignatureThreadToInline'] = threads;
  return out;
}

function printSoak(results: readonly SoakResult[]): void {
  console.log(`\nsoak: ${SOAK_IDLE} idle + ${SOAK_ACTIVE} active WebSockets on one process, posts at ${SOAK_RATE}/s`);
  printTable(
    ['target', 'RSS start MiB', 'RSS all MiB', 'KiB/idle conn', 'KiB/conn', 'p99 active only ms', 'p99 with idle ms', 'idle open', 'missing'],
    results.map((result) => [
      result.label,
      fixed(result.rssStartMiB, 1),
      fixed(result.rssAllMiB, 1),
      fixed(result.rssPerIdleKiB, 1),
      fixed(result.rssPerConnectionKiB, 1),
      fixed(result.p99ActiveOnlyMs, 1),
      fixed(result.p99WithIdleMs, 1),
      `${result.idleOpenAtEnd}/${result.idleConnected}`,
      String(result.missing),
    ]),
  );
}

function soakSummary(results: readonly SoakResult[]): Record<string, unknown> {
  const baseline = results.find((result) => result.key === 'baseline');
  return Object.fromEntries(
    results.map((result) => [
      result.key,
      {
        rssPerIdleKiB: round(result.rssPerIdleKiB),
        rssPerConnectionKiB: round(result.rssPerConnectionKiB),
        p99ActiveOnlyMs: round(result.p99ActiveOnlyMs),
        p99WithIdleMs: round(result.p99WithIdleMs),
        idleOpenAtEnd: result.idleOpenAtEnd,
        missing: result.missing,
        ...(baseline === undefined || result === baseline
          ? {}
          : { rssPerConnectionRatioToBaseline: ratio(result.rssPerConnectionKiB, baseline.rssPerConnectionKiB) }),
      },
    ]),
  );
}

async function main(): Promise<void> {
  const load = { start: loadavg().map((value) => round(value)) };
  console.error(`bench:relay: load average ${load.start.join(' ')} on this machine`);
  const summary: Record<string, unknown> = { subscribers: SUBSCRIBERS, channelSize: CHANNEL_SIZE, payloadBytes: 256, proof: defaultProof(), targets: TARGETS };
  const counter = new DeliveryCounter();
  const prepared: RampTarget[] = [];
  try {
    if (SECTIONS.has('ramp') || SECTIONS.has('cpu')) {
      console.error('bench:relay: setting up the ramp targets...');
      for (const name of TARGETS) prepared.push(await prepareTarget(name, { subscribers: SUBSCRIBERS, channelSize: CHANNEL_SIZE }, counter));
    }
    if (SECTIONS.has('ramp')) {
      console.error('bench:relay: ramp...');
      const results = await runRamp(prepared, { targets: TARGETS, subscribers: SUBSCRIBERS, channelSize: CHANNEL_SIZE, rates: RATES, stepMs: STEP_MS, budgetMs: RAMP_BUDGET_MS }, counter);
      printRamp(results);
      summary['ramp'] = { rates: RATES, stepMs: STEP_MS, p99LimitMs: P99_LIMIT_MS, ...rampSummary(results) };
    }
    if (SECTIONS.has('cpu')) {
      console.error('bench:relay: CPU per post...');
      // Warm (JIT, pools) when the ramp did not run first.
      if (!SECTIONS.has('ramp')) for (const entry of prepared) await runStep(entry.target, counter, entry.channels, CPU_RATE, 1_000);
      // BENCH_CPU_ROUNDS > 1: the targets alternate (rotating order) and each figure is the median of its rounds; the profile is of the first.
      const rounds: CpuResult[][] = prepared.map(() => []);
      for (let round = 0; round < CPU_ROUNDS; round++) {
        for (let k = 0; k < prepared.length; k++) {
          const i = (k + round) % prepared.length;
          const entry = prepared[i];
          if (entry === undefined) continue;
          const result = await measureCpu(entry, counter, CPU_RATE, CPU_MS, round === 0 && !entry.target.key.startsWith('baseline'));
          rounds[i]?.push(result);
          console.error(
            `bench:relay:   ${entry.target.label}, round ${round + 1}: ${result.cpuUsPerPost.toFixed(0)} µs/post (event loop ${result.mainThreadUsPerPost?.toFixed(0) ?? '-'}), redis-server ${result.storeCpuUsPerPost?.toFixed(0) ?? '-'}, generator ${result.generatorCpuUsPerPost.toFixed(0)}, p99 ${result.p99Ms.toFixed(1)} ms`,
          );
        }
      }
      const results = rounds.map(medianCpu);
      printCpu(results);
      summary['cpu'] = { ratePerSec: CPU_RATE, ...cpuSummary(results) };
    }
  } finally {
    for (const entry of prepared) {
      for (const ws of entry.sockets) ws.terminate();
      await entry.target.close();
    }
  }
  if (SECTIONS.has('commit')) {
    console.error('bench:relay: group commit...');
    const results = await runCommit(COMMIT_TARGETS, { writers: COMMIT_WRITERS, channelSize: CHANNEL_SIZE, rounds: COMMIT_ROUNDS, roundMs: COMMIT_ROUND_MS });
    printCommit(results);
    summary['commit'] = { writers: COMMIT_WRITERS, ...commitSummary(results) };
  }
  if (SECTIONS.has('soak')) {
    console.error('bench:relay: soak...');
    const results: SoakResult[] = [];
    for (const name of SOAK_TARGETS) {
      results.push(await runSoak(name, { idle: SOAK_IDLE, active: SOAK_ACTIVE, channelSize: CHANNEL_SIZE, rate: SOAK_RATE, stepMs: 4_000 }, counter));
    }
    printSoak(results);
    summary['soak'] = { idle: SOAK_IDLE, active: SOAK_ACTIVE, ratePerSec: SOAK_RATE, ...soakSummary(results) };
  }
  summary['loadAverage'] = { ...load, end: loadavg().map((value) => round(value)) };
  console.log('');
  printJsonLine('relay', summary);
}

await main();
