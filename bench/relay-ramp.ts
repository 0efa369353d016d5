/**
 * The ramp of `npm run bench:relay` (issue 5 "Benchmark", issue 13 "Scale-out that keeps up"):
 * 1,000 WebSocket subscribers per target in channels of 10, posts at rising offered rates. Two
 * figures per target: the rate at which its p99 post-to-push latency first passes 100 ms, and its
 * peak (the most deliveries per second it sustained); the ramp goes on past the first until the
 * target is saturated (it accepts less than 80% of the offered rate, twice in a row). Every target
 * is set up first and stays up; the steps then alternate between targets (rate by rate, in a
 * rotating order), so a change in the machine's load during the run hits every target alike and
 * the ratios stay fair.
 */
import type { WebSocket } from 'ws';
import type { DeliveryCounter} from './relay-load.js';
import { openSubscribers, runStep, type StepChannel, type StepResult } from './relay-load.js';
import { makeTarget, type BenchTarget } from './relay-targets.js';

/** The latency a target must stay under (issue 13: "until each target's p99 passes 100 ms"). */
export const P99_LIMIT_MS = 100;
/** Subscribers connecting at once during setup. */
const CONNECT_CONCURRENCY = 50;
/** A short unrecorded step per target first: JIT, connection pools and caches warm up. */
const WARMUP_RATE = 100;
const WARMUP_MS = 1_000;
/**
 * Saturated steps in a row that end a target's ramp: one noisy step on a shared machine (another
 * process took the CPU for a while) must not end it.
 */
const SATURATED_STEPS_TO_STOP = 2;
/** A step whose accepted posts/s fall below this share of the offered rate is saturated. */
const SATURATED_SHARE = 0.8;

export interface RampOptions {
  readonly targets: readonly string[];
  readonly subscribers: number;
  readonly channelSize: number;
  readonly rates: readonly number[];
  readonly stepMs: number;
  /** The ramp's whole time budget after setup: steps that would not fit are skipped (and said so). */
  readonly budgetMs: number;
}

export interface RampTarget {
  readonly target: BenchTarget;
  readonly channels: readonly StepChannel[];
  readonly sockets: WebSocket[];
}

export interface RampResult {
  readonly key: string;
  readonly label: string;
  readonly steps: StepResult[];
  /** Why the ramp stopped for this target. */
  stop: 'saturated' | 'top-rate' | 'time-budget' | 'error';
  error?: string;
}

/** Sets up one target: channels, members and subscribers. */
export async function prepareTarget(name: string, options: Pick<RampOptions, 'subscribers' | 'channelSize'>, counter: DeliveryCounter): Promise<RampTarget> {
  const target = makeTarget(name);
  const channelCount = Math.ceil(options.subscribers / options.channelSize);
  const started = performance.now();
  await target.prepare(channelCount, options.channelSize);
  const pairs: Array<[number, number]> = [];
  for (let c = 0; c < channelCount; c++) {
    for (let m = 0; m < options.channelSize && pairs.length < options.subscribers; m++) pairs.push([c, m]);
  }
  const sockets = await openSubscribers(pairs.length, CONNECT_CONCURRENCY, (i) => {
    const [channel, member] = pairs[i] ?? [0, 0];
    return target.subscribe(channel, member, counter.onFrame);
  });
  const perChannel = new Array<number>(channelCount).fill(0);
  for (const [channel] of pairs) perChannel[channel] = (perChannel[channel] ?? 0) + 1;
  const channels = perChannel.map((subscribers, index) => ({ index, subscribers, authors: [0] }));
  console.error(`bench:relay:   ${target.label}: ${channelCount} channels, ${sockets.length} subscribers in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { target, channels, sockets };
}

export async function runRamp(prepared: readonly RampTarget[], options: RampOptions, counter: DeliveryCounter): Promise<RampResult[]> {
  const results: RampResult[] = prepared.map(({ target }) => ({ key: target.key, label: target.label, steps: [], stop: 'top-rate' }));
  const active = new Set(results.map((_, i) => i));
  const saturatedSteps = results.map(() => 0);
  const deadline = performance.now() + options.budgetMs;
  for (const entry of prepared) await runStep(entry.target, counter, entry.channels, WARMUP_RATE, WARMUP_MS);
  for (const [rateIndex, rate] of options.rates.entries()) {
    const order = [...active];
    // Rotate who goes first at each rate: no target always runs on the freshest (or most tired) machine.
    for (let k = 0; k < rateIndex % Math.max(1, order.length); k++) order.push(order.shift() ?? 0);
    for (const i of order) {
      const result = results[i];
      const entry = prepared[i];
      if (result === undefined || entry === undefined) continue;
      if (performance.now() + options.stepMs + 4_000 > deadline) {
        result.stop = 'time-budget';
        active.delete(i);
        continue;
      }
      try {
        const step = await runStep(entry.target, counter, entry.channels, rate, options.stepMs, true);
        result.steps.push(step);
        console.error(
          `bench:relay:   ${entry.target.label} @ ${rate}/s: ${step.postsPerSec.toFixed(0)} posts/s, p99 ${step.p99Ms.toFixed(1)} ms` +
            (step.cores === undefined ? '' : `, cores: server ${step.cores.server.toFixed(2)} (loop ${step.cores.serverLoop?.toFixed(2) ?? '-'})${step.cores.store === undefined ? '' : `, redis ${step.cores.store.toFixed(2)}`}, generator ${step.cores.generator.toFixed(2)} (loop ${step.cores.generatorLoop?.toFixed(2) ?? '-'})`),
        );
        saturatedSteps[i] = step.postsPerSec < SATURATED_SHARE * rate ? (saturatedSteps[i] ?? 0) + 1 : 0;
        if ((saturatedSteps[i] ?? 0) >= SATURATED_STEPS_TO_STOP) {
          result.stop = 'saturated';
          active.delete(i);
        }
      } catch (error) {
        result.stop = 'error';
        result.error = error instanceof Error ? error.message : String(error);
        active.delete(i);
      }
    }
    if (active.size === 0) break;
  }
  return results;
}

/** The highest step with p99 within the limit and nothing lost: what the target sustains. */
export function sustained(result: RampResult): StepResult | undefined {
  return result.steps.filter((step) => step.p99Ms <= P99_LIMIT_MS && step.missing === 0 && step.postErrors === 0).at(-1);
}

/** The step where p99 first passed the limit. */
export function passedLimit(result: RampResult): StepResult | undefined {
  return result.steps.find((step) => !(step.p99Ms <= P99_LIMIT_MS));
}

/** The most deliveries per second of any step with nothing lost. */
export function peak(result: RampResult): StepResult | undefined {
  return result.steps
    .filter((step) => step.missing === 0 && step.postErrors === 0)
    .reduce<StepResult | undefined>((top, step) => (top === undefined || step.deliveredPerSec > top.deliveredPerSec ? step : top), undefined);
}
