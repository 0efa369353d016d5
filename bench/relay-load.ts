/**
 * One measured step of load for `npm run bench:relay`: posts at a fixed offered rate (open loop:
 * post i leaves at start + i / rate whatever happened before), each pushed to every subscriber of
 * its channel; the step reports posts/s accepted, deliveries/s, and p50/p99 post-to-push latency
 * (from just before the POST is written to the moment a subscriber has the event).
 *
 * Subscribers find the post id in the first 4 bytes of the packet without parsing the frame's JSON
 * (relay-targets.ts `postIdOf`), and posts are signed before the step's clock starts: the load
 * generator shares the machine with the server, so it does as little as it can.
 */
import type { WebSocket } from 'ws';
import { threadCpuUs } from '../tests/relay/helpers/thread-cpu.js';
import { postIdOf, type BenchTarget, type PreparedPost } from './relay-targets.js';

/** Packet payload bytes (a short mpENC data packet is about this size). */
export const PAYLOAD_BYTES = 256;
/** Posts in flight at once: beyond this the poster falls behind its schedule (and the step says so). */
const MAX_IN_FLIGHT_POSTS = 512;
/** After a step, how long we wait for the last pushes before counting them missing. */
const DRAIN_TIMEOUT_MS = 3_000;
/** Post ids live in a ring this large (a step never has this many posts). */
const ID_RING = 1 << 20;
/** Latency samples kept per step at most (the first ones; enough for a p99). */
const MAX_SAMPLES = 400_000;

export interface StepResult {
  readonly ratePerSec: number;
  readonly postsPerSec: number;
  readonly deliveredPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Deliveries of accepted posts that never came (within the drain timeout). */
  readonly missing: number;
  /** Posts not accepted (refused or failed). */
  readonly postErrors: number;
  /** "status×count" of the posts not accepted (0 = transport error), e.g. "0×3 503×1". */
  readonly errorStatuses: string;
  readonly accepted: number;
  /**
   * Cores used during the step (CPU time / wall time, from the clock's start to the end of the
   * drain): the server process (every thread) and its event loop alone, the load generator (this
   * process) and its event loop alone. An event loop near 1.0 is that process's limit; the sum
   * near the machine's cores (2 here) means the machine is. Undefined where not measured.
   */
  readonly cores?: StepCores;
}

export interface StepCores {
  readonly server: number;
  readonly serverLoop: number | undefined;
  readonly generator: number;
  readonly generatorLoop: number | undefined;
  /** The store's own server (redis-server), when it is a separate process. */
  readonly store: number | undefined;
}

/** What a server reports over IPC ('cpu'): process.cpuUsage() and its event loop's µs (Linux). */
interface ServerCpu {
  readonly user: number;
  readonly system: number;
  readonly mainThread?: number;
  /** µs of CPU of the store's own server (redis-server), when there is one. */
  readonly store?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** The bench payload of post `id`: its id in the first 4 bytes, then filler. */
export function payloadOf(id: number): Uint8Array {
  const payload = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 4; i < PAYLOAD_BYTES; i++) payload[i] = (i * 131 + 7) & 0xff;
  new DataView(payload.buffer).setUint32(0, id);
  return payload;
}

/**
 * Counts deliveries for the step in progress. One instance serves every target of a run: a
 * late delivery of an earlier step (or of another target) has an id outside the current step
 * and is ignored.
 */
export class DeliveryCounter {
  private readonly sendTimes = new Float64Array(ID_RING);
  private nextId = 0;
  private first = 0;
  private last = -1;
  private samples = new Float64Array(0);
  private sampleCount = 0;
  delivered = 0;

  /** The frame handler to give every subscriber. */
  readonly onFrame = (data: Buffer): void => {
    const now = performance.now();
    const id = postIdOf(data);
    if (id === undefined || id < this.first || id > this.last) return;
    this.delivered += 1;
    if (this.sampleCount < this.samples.length) this.samples[this.sampleCount++] = now - (this.sendTimes[id % ID_RING] ?? now);
  };

  /** Reserves `count` post ids for the next step and returns the first. */
  begin(count: number, expectedDeliveries: number): number {
    const first = this.nextId;
    this.nextId += count;
    this.first = first;
    this.last = first + count - 1;
    this.samples = new Float64Array(Math.min(MAX_SAMPLES, expectedDeliveries));
    this.sampleCount = 0;
    this.delivered = 0;
    return first;
  }

  sent(id: number): void {
    this.sendTimes[id % ID_RING] = performance.now();
  }

  latencies(): Float64Array {
    return this.samples.slice(0, this.sampleCount).sort();
  }
}

/** A channel of a step: its index at the target and how many subscribers it has. */
export interface StepChannel {
  readonly index: number;
  readonly subscribers: number;
  /** Members that post (round-robin). */
  readonly authors: readonly number[];
}

/**
 * Runs one step: `rate` posts/s for `durationMs`, round-robin over `channels`. Returns when every
 * delivery arrived or the drain timeout passed.
 */
export async function runStep(
  target: BenchTarget,
  counter: DeliveryCounter,
  channels: readonly StepChannel[],
  rate: number,
  durationMs: number,
  measureCores = false,
): Promise<StepResult> {
  const count = Math.max(1, Math.ceil((rate * durationMs) / 1000));
  const plan: Array<{ post: PreparedPost; channel: StepChannel }> = [];
  // Signed before the clock starts (see the module comment); ids are reserved below.
  const firstId = counter.begin(count, channels.reduce((sum, c) => sum + c.subscribers, 0) * Math.ceil(count / channels.length));
  for (let i = 0; i < count; i++) {
    const channel = channels[i % channels.length];
    if (channel === undefined) throw new Error('runStep needs channels');
    const author = channel.authors[Math.floor(i / channels.length) % channel.authors.length] ?? 0;
    plan.push({ post: target.preparePost(channel.index, author, payloadOf(firstId + i)), channel });
  }
  target.resetConnections();
  const errorStatuses = new Map<number, number>();
  let inFlight = 0;
  let accepted = 0;
  let refused = 0;
  let expected = 0;
  const pending: Array<Promise<void>> = [];
  const intervalMs = 1000 / rate;
  const serverBefore = measureCores ? await target.request<ServerCpu>('cpu') : undefined;
  const generatorBefore = process.cpuUsage();
  const generatorLoopBefore = threadCpuUs();
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + i * intervalMs - performance.now();
    if (wait > 1) await sleep(wait);
    // Bounded: in-flight posts finish or time out (relay-targets.ts POST_TIMEOUT_MS).
    while (inFlight >= MAX_IN_FLIGHT_POSTS) await sleep(1);
    const step = plan[i];
    if (step === undefined) break;
    inFlight += 1;
    counter.sent(firstId + i);
    pending.push(
      target.send(step.post).then((status) => {
        inFlight -= 1;
        if (status === target.acceptedStatus) {
          accepted += 1;
          expected += step.channel.subscribers;
        } else {
          refused += 1;
          errorStatuses.set(status, (errorStatuses.get(status) ?? 0) + 1);
        }
      }),
    );
  }
  await Promise.all(pending);
  const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
  while (counter.delivered < expected && performance.now() < drainDeadline) await sleep(5);
  const elapsedS = (performance.now() - start) / 1000;
  const generator = process.cpuUsage(generatorBefore);
  const generatorLoopAfter = threadCpuUs();
  const serverAfter = serverBefore === undefined ? undefined : await target.request<ServerCpu>('cpu');
  const elapsedUs = elapsedS * 1e6;
  const cores: StepCores | undefined =
    serverBefore === undefined || serverAfter === undefined
      ? undefined
      : {
          server: (serverAfter.user - serverBefore.user + serverAfter.system - serverBefore.system) / elapsedUs,
          serverLoop:
            serverAfter.mainThread === undefined || serverBefore.mainThread === undefined ? undefined : (serverAfter.mainThread - serverBefore.mainThread) / elapsedUs,
          generator: (generator.user + generator.system) / elapsedUs,
          generatorLoop: generatorLoopAfter === undefined || generatorLoopBefore === undefined ? undefined : (generatorLoopAfter - generatorLoopBefore) / elapsedUs,
          store: serverAfter.store === undefined || serverBefore.store === undefined ? undefined : (serverAfter.store - serverBefore.store) / elapsedUs,
        };
  const sorted = counter.latencies();
  return {
    ratePerSec: rate,
    postsPerSec: accepted / elapsedS,
    deliveredPerSec: counter.delivered / elapsedS,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    missing: Math.max(0, expected - counter.delivered),
    postErrors: refused,
    errorStatuses: [...errorStatuses].map(([status, n]) => `${status}×${n}`).join(' '),
    accepted,
    ...(cores === undefined ? {} : { cores }),
  };
}

/** Opens `count` subscribers, `concurrency` at a time; `open(i)` opens the i-th. */
export async function openSubscribers(count: number, concurrency: number, open: (i: number) => Promise<WebSocket>): Promise<WebSocket[]> {
  const sockets: WebSocket[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) sockets[i] = await open(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}
