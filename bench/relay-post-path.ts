/**
 * The post path of `npm run bench:relay` (issue 13 "Scale-out that keeps up", second item):
 *
 * - CPU per accepted post, by part: the relay process's CPU time (every thread, process.cpuUsage)
 *   over a steady step at a rate well below saturation, divided by the posts accepted; and a V8
 *   CPU profile of its main thread over the same step, split into signature check, JSON, store,
 *   fan-out and the rest (relay-cpu-parts.ts). The profiler samples wall-clock time (on a loaded
 *   machine a descheduled thread keeps being sampled where it stopped), so the profile gives each
 *   part's SHARE, and the part's µs are that share of the measured CPU per post. The bare `ws`
 *   baseline's CPU per post is measured the same way, in the same run.
 * - Group commit: 100 concurrent writers (closed loop: each posts again as soon as it has its
 *   answer) against the relay with durable storage and against the same relay with durability
 *   off (SQLite synchronous=OFF; Redis appendfsync no), in alternating rounds of one run.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByPart, CPU_PARTS, type CpuPart, type CpuProfile } from './relay-cpu-parts.js';
import { payloadOf, runStep, type DeliveryCounter } from './relay-load.js';
import type { RampTarget } from './relay-ramp.js';
import { makeTarget, type BenchTarget, type PreparedPost } from './relay-targets.js';

export interface CpuResult {
  readonly key: string;
  readonly label: string;
  readonly ratePerSec: number;
  readonly accepted: number;
  /** Process CPU (user + system, every thread) per accepted post, µs. */
  readonly cpuUsPerPost: number;
  /**
   * CPU of the event-loop thread alone per accepted post, µs (Linux; undefined elsewhere): one
   * event loop cannot take posts faster than 1 s / this, whatever the other threads do.
   */
  readonly mainThreadUsPerPost: number | undefined;
  /**
   * CPU of the load generator (this process: posting, receiving the pushes) per accepted post, µs.
   * It shares the machine's cores with the server, so it bounds what any server can show here.
   */
  readonly generatorCpuUsPerPost: number;
  /**
   * CPU of redis-server (INFO cpu: all its threads, user + system) per accepted post, µs, when the
   * target runs a Redis of its own; it shares the cores, so it counts against the ramp's peak too.
   */
  readonly storeCpuUsPerPost: number | undefined;
  /** CPU per accepted post, µs, split by part in the proportions of the main-thread profile (absent for the baseline). */
  readonly parts?: Record<CpuPart, number>;
  readonly p99Ms: number;
}

export interface CpuUsage {
  readonly user: number;
  readonly system: number;
  /** µs of the event-loop thread (tests/relay/helpers/thread-cpu.ts); absent off Linux or from an older checkout. */
  readonly mainThread?: number;
  /** µs of redis-server (relay-targets.ts adds it for a Redis target). */
  readonly store?: number;
}

/**
 * redis-server's µs of CPU per accepted post between two 'cpu' readings, or undefined when either
 * lacks it (not a Redis target, or INFO could not be read).
 */
export function storeUsPerPost(before: CpuUsage, after: CpuUsage, accepted: number): number | undefined {
  if (before.store === undefined || after.store === undefined) return undefined;
  return (after.store - before.store) / Math.max(1, accepted);
}

/** Measures CPU per post of a prepared target at `rate` for `durationMs`. */
export async function measureCpu(entry: RampTarget, counter: DeliveryCounter, rate: number, durationMs: number, profile: boolean): Promise<CpuResult> {
  const { target, channels } = entry;
  // BENCH_PROFILE_DIR keeps the profiles (open them in Chrome DevTools) instead of deleting them.
  const keep = process.env.BENCH_PROFILE_DIR;
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'covey-bench-prof-'));
  if (keep !== undefined) mkdirSync(keep, { recursive: true });
  const path = join(dir, `relay-${target.key}.cpuprofile`);
  try {
    if (profile) await target.request('profile-start');
    const before = await target.request<CpuUsage>('cpu');
    const generatorBefore = process.cpuUsage();
    const step = await runStep(target, counter, channels, rate, durationMs);
    const generator = process.cpuUsage(generatorBefore);
    const after = await target.request<CpuUsage>('cpu');
    if (profile) await target.request('profile-stop', { path });
    const accepted = Math.max(1, step.accepted);
    const cpuUs = after.user - before.user + (after.system - before.system);
    let parts: Record<CpuPart, number> | undefined;
    if (profile) {
      const totals = cpuByPart(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile);
      const sampled = CPU_PARTS.reduce((sum, part) => sum + totals[part], 0);
      const cpuPerPost = cpuUs / accepted;
      parts = Object.fromEntries(CPU_PARTS.map((part) => [part, sampled === 0 ? 0 : (totals[part] / sampled) * cpuPerPost])) as Record<CpuPart, number>;
    }
    return {
      key: target.key,
      label: target.label,
      ratePerSec: rate,
      accepted: step.accepted,
      cpuUsPerPost: cpuUs / accepted,
      generatorCpuUsPerPost: (generator.user + generator.system) / accepted,
      storeCpuUsPerPost: storeUsPerPost(before, after, accepted),
      mainThreadUsPerPost: after.mainThread === undefined || before.mainThread === undefined ? undefined : (after.mainThread - before.mainThread) / accepted,
      ...(parts === undefined ? {} : { parts }),
      p99Ms: step.p99Ms,
    };
  } finally {
    if (keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

// ---- group commit ----------------------------------------------------------------------------------

export interface CommitOptions {
  readonly writers: number;
  readonly channelSize: number;
  readonly rounds: number;
  readonly roundMs: number;
}

export interface CommitResult {
  readonly key: string;
  readonly label: string;
  readonly posts: number;
  readonly errors: number;
  /** "status×count" of the posts not accepted (0 = transport error). */
  readonly errorStatuses: string;
  readonly seconds: number;
  readonly postsPerSec: number;
  /** Per round, to see the noise. */
  readonly roundRates: number[];
}

/**
 * The median over rounds of `a`'s rate / `b`'s rate in the same round: the two ran one after the
 * other, so a change in the machine's load between rounds cancels out.
 */
export function pairedRatio(a: CommitResult, b: CommitResult): number | undefined {
  const ratios = a.roundRates.flatMap((rate, i) => {
    const other = b.roundRates[i];
    return other === undefined || other === 0 ? [] : [rate / other];
  });
  if (ratios.length === 0) return undefined;
  ratios.sort((x, y) => x - y);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? ratios[mid] : ((ratios[mid - 1] ?? 0) + (ratios[mid] ?? 0)) / 2;
}

/** Posts signed per writer before a round, at least and at most (more are signed on demand). */
const POOL_MIN = 20;
const POOL_MAX = 400;

/**
 * Runs the group-commit comparison: every target gets `rounds` rounds of `roundMs`, alternating.
 * `targets` are names for makeTarget (e.g. ['sqlite', 'sqlite-off']).
 */
export async function runCommit(names: readonly string[], options: CommitOptions): Promise<CommitResult[]> {
  const channelCount = Math.ceil(options.writers / options.channelSize);
  const targets: BenchTarget[] = [];
  try {
    for (const name of names) {
      const target = makeTarget(name);
      targets.push(target);
      await target.prepare(channelCount, options.channelSize);
    }
    const writers = Array.from({ length: options.writers }, (_, w) => ({ channel: w % channelCount, author: Math.floor(w / channelCount) }));
    const totals = targets.map(() => ({ posts: 0, errors: 0, ms: 0, rounds: [] as number[], statuses: new Map<number, number>() }));
    let nextId = 0;
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < targets.length; k++) {
        const index = (k + round) % targets.length;
        const target = targets[index];
        const total = totals[index];
        if (target === undefined || total === undefined) continue;
        // Signed ahead: enough for this target's last round, within bounds.
        const lastRate = total.rounds.at(-1) ?? 2_000;
        const poolSize = Math.min(POOL_MAX, Math.max(POOL_MIN, Math.ceil(((lastRate * options.roundMs) / 1000 / options.writers) * 1.3)));
        const pools: PreparedPost[][] = writers.map(({ channel, author }) =>
          Array.from({ length: poolSize }, () => target.preparePost(channel, author, payloadOf(nextId++))),
        );
        let posts = 0;
        let errors = 0;
        target.resetConnections();
        const start = performance.now();
        const end = start + options.roundMs;
        await Promise.all(
          writers.map(async ({ channel, author }, w) => {
            const pool = pools[w] ?? [];
            // Bounded by the round's end (each post has a timeout in relay-targets.ts).
            while (performance.now() < end) {
              const post = pool.pop() ?? target.preparePost(channel, author, payloadOf(nextId++));
              const status = await target.send(post);
              if (status === target.acceptedStatus) posts += 1;
              else {
                errors += 1;
                total.statuses.set(status, (total.statuses.get(status) ?? 0) + 1);
              }
            }
          }),
        );
        const ms = performance.now() - start;
        total.posts += posts;
        total.errors += errors;
        total.ms += ms;
        total.rounds.push((posts * 1000) / ms);
        console.error(`bench:relay:   ${target.label}, round ${round + 1}: ${((posts * 1000) / ms).toFixed(0)} posts/s`);
      }
    }
    return targets.map((target, i) => {
      const total = totals[i] ?? { posts: 0, errors: 0, ms: 1, rounds: [], statuses: new Map<number, number>() };
      return {
        key: target.key,
        label: target.label,
        posts: total.posts,
        errors: total.errors,
        errorStatuses: [...total.statuses].map(([status, n]) => `${status}×${n}`).join(' '),
        seconds: total.ms / 1000,
        postsPerSec: (total.posts * 1000) / total.ms,
        roundRates: total.rounds,
      };
    });
  } finally {
    for (const target of targets) await target.close();
  }
}
