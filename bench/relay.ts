/**
 * `npm run bench:relay`: the relay's push path under load (issue 5 "Benchmark").
 *
 * 1,000 WebSocket subscribers on loopback, in channels of 10 (100 channels). A ramp of posts
 * (HTTP, signed like any client's) at rising rates; for each step: posts/s achieved, delivered
 * events/s, and p50/p99 post-to-push latency (from just before the POST is sent to the moment a
 * subscriber has the event). Targets: the relay on SQLite, the relay on Redis, and a baseline: a
 * bare `ws` server that broadcasts the same payloads with no storage, no auth and no order (the
 * limit of this machine). Each server runs in its own child process (the baseline: `tsx
 * bench/relay.ts serve baseline`; the relay: tests/relay/helpers/process-relay.ts with bench
 * limits) so the 2 cores split as server / load generator, the same for every target. Durability
 * is on for both stores (SQLite synchronous=FULL on disk; Redis appendfsync always), as in production.
 *
 * Output: a table, then one JSON line with the ratios to the baseline. Bounded: every step has a
 * fixed duration and a drain timeout, so the run ends by itself (about a minute).
 *
 * Env: BENCH_SUBSCRIBERS (default 1000), BENCH_CHANNEL_SIZE (10), BENCH_RATES ("250,500,1000,2000"
 * posts/s), BENCH_STEP_MS (2000), BENCH_TARGETS ("baseline,sqlite,redis").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import type { RelayLimits } from '../src/relay/limits.js';
import type { ChannelId, ServerFrame } from '../src/shared/relay-api.js';
import { RELAY_TEST_ENTRY, startRelayProcess, type RelayProcess } from '../tests/relay/helpers/process.js';
import { redisAvailability, startRedisServer, type RedisServer } from '../tests/relay/helpers/redis-server.js';
import {
  keepAliveAgent,
  newMember,
  rawRequest,
  setupGroup,
  signedHeaders,
  subscribeFrame,
  type TestMember,
} from '../tests/relay/helpers/signed-http.js';
import { printJsonLine, printTable, round } from './harness.js';

// ---- limits (each bounds the run) -------------------------------------------------------------

/** Subscribers in total; issue 5 asks for 1,000. */
const SUBSCRIBERS = envInt('BENCH_SUBSCRIBERS', 1_000);
/** Members per channel; issue 5: "channels of 10". */
const CHANNEL_SIZE = envInt('BENCH_CHANNEL_SIZE', 10);
/** Posts per second at each ramp step. */
const RATES = (process.env.BENCH_RATES ?? '250,500,1000,2000').split(',').map((r) => Number.parseInt(r, 10));
/** How long each ramp step posts. */
const STEP_MS = envInt('BENCH_STEP_MS', 2_000);
/** After a step, how long we wait for the last pushes before counting them lost. */
const DRAIN_TIMEOUT_MS = 3_000;
/**
 * The whole run's time budget, shared equally by the targets: a step that would not finish within
 * its target's share is skipped and the table says so. Keeps `npm run bench:relay` under 3 minutes
 * even on a loaded machine (setup of 1,000 signed subscriptions is the slow part there).
 */
const RUN_BUDGET_MS = envInt('BENCH_BUDGET_MS', 160_000);
/** Posts in flight at once: beyond this the poster falls behind and the step says so. */
const MAX_IN_FLIGHT_POSTS = 256;
/** Packet payload bytes (a short mpENC data packet is about this size). */
const PAYLOAD_BYTES = 256;
/** How long a server child may take to print its URL. */
const SERVER_START_TIMEOUT_MS = 30_000;
/** Subscribers connecting at once during setup. */
const CONNECT_CONCURRENCY = 50;
/** Channels set up at once (create, invite, joins) on the relay targets. */
const SETUP_CONCURRENCY = 10;
/** The relay's limits for the bench: the load comes from one address, so per-client limits go up. */
const BENCH_LIMITS: Partial<RelayLimits> = {
  rateRequestsPerSecond: 1e9,
  rateBurst: 1e9,
  maxConnections: 20_000,
  maxConnectionsPerClient: 20_000,
  maxHttpConnections: 40_000,
  maxHttpConnectionsPerClient: 40_000,
  maxRequestsInFlightPerClient: 1e9,
  channelQuotaBurst: 1e9,
  uploadQuotaBurstBytes: 1e12,
};

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

// ---- the target abstraction -------------------------------------------------------------------

/** One event a subscriber received: the bench post id carried in the payload's first 4 bytes. */
type OnPayload = (payload: Uint8Array) => void;

/** What a server under test must offer the bench, whatever its API. */
export interface BenchTarget {
  readonly name: string;
  /** Starts the server and sets up `channelCount` channels with `channelSize` members each. */
  prepare(channelCount: number, channelSize: number): Promise<void>;
  /** Opens a subscriber for one member; resolves once it will receive every later post. */
  subscribe(channel: number, member: number, onPayload: OnPayload): Promise<WebSocket>;
  /** Posts one payload as member 0 of `channel`; resolves when the server acknowledged it. */
  post(channel: number, payload: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

// ---- baseline: a bare ws broadcaster ----------------------------------------------------------

/** The baseline server: POST /post/:channel broadcasts the body (base64 in JSON) to that channel. */
function serveBaseline(): void {
  const subscribers = new Map<string, Set<WebSocket>>();
  let seq = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/post\/([\w-]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || match?.[1] === undefined) {
      res.writeHead(404).end();
      return;
    }
    const channel = match[1];
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seq += 1;
      // Same framing work as the relay: JSON with the packet in base64.
      const frame = JSON.stringify({ type: 'event', channel, seq, packet: Buffer.concat(chunks).toString('base64') });
      for (const ws of subscribers.get(channel) ?? []) ws.send(frame);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seq }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const channel = new URL(req.url ?? '/', 'http://x').searchParams.get('channel') ?? '';
    let set = subscribers.get(channel);
    if (set === undefined) subscribers.set(channel, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.send(JSON.stringify({ type: 'ready' }));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    console.log(`baseline listening on http://127.0.0.1:${address.port}`);
  });
}

class BaselineTarget implements BenchTarget {
  readonly name = 'baseline (bare ws)';
  private child: ServerChild | undefined;

  async prepare(): Promise<void> {
    this.child = await spawnServer('baseline');
  }

  async subscribe(channel: number, _member: number, onPayload: OnPayload): Promise<WebSocket> {
    const url = this.url().replace(/^http/, 'ws') + `/?channel=c${channel}`;
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as { type: string; packet?: string };
        if (frame.type === 'ready') resolve();
        else if (frame.type === 'event' && frame.packet !== undefined) onPayload(Buffer.from(frame.packet, 'base64'));
      });
    });
    return ws;
  }

  async post(channel: number, payload: Uint8Array): Promise<void> {
    const { status } = await rawRequest(`${this.url()}/post/c${channel}`, 'POST', {}, payload);
    if (status !== 200) throw new Error(`baseline post: HTTP ${status}`);
  }

  async close(): Promise<void> {
    await this.child?.stop();
  }

  private url(): string {
    if (this.child === undefined) throw new Error('baseline not started');
    return this.child.url;
  }
}

// ---- the relay (SQLite or Redis) ----------------------------------------------------------------

class RelayTarget implements BenchTarget {
  private relay: RelayProcess | undefined;
  private redis: RedisServer | undefined;
  private dataDir: string | undefined;
  private channels: Array<{ id: ChannelId; members: TestMember[] }> = [];

  constructor(readonly name: string, private readonly kind: 'sqlite' | 'redis') {}

  async prepare(channelCount: number, channelSize: number): Promise<void> {
    let storeSpec: string;
    if (this.kind === 'redis') {
      const availability = redisAvailability();
      if (!availability.available) throw new Error(availability.reason);
      this.redis = await startRedisServer();
      storeSpec = `redis:${this.redis.url}`;
    } else {
      this.dataDir = mkdtempSync(join(tmpdir(), 'covey-bench-'));
      storeSpec = this.dataDir;
    }
    this.relay = await startRelayProcess({
      entry: RELAY_TEST_ENTRY,
      env: { RELAY_TEST_STORE: storeSpec, RELAY_TEST_LIMITS: JSON.stringify(BENCH_LIMITS) },
    });
    const url = this.relay.url;
    this.channels = new Array(channelCount);
    for (let first = 0; first < channelCount; first += SETUP_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(SETUP_CONCURRENCY, channelCount - first) }, (_, k) => first + k);
      await Promise.all(
        batch.map(async (c) => {
          const members = Array.from({ length: channelSize }, () => newMember());
          this.channels[c] = { id: await setupGroup(url, members), members };
        }),
      );
    }
  }

  async subscribe(channel: number, member: number, onPayload: OnPayload): Promise<WebSocket> {
    const { id, members } = this.channel(channel);
    const key = members[member];
    if (key === undefined) throw new RangeError(`no member ${member} in channel ${channel}`);
    const ws = new WebSocket(`${this.url().replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify(subscribeFrame(key, id, 0))));
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
        if (frame.type === 'subscribed') resolve();
        else if (frame.type === 'error') reject(new Error(`subscribe refused: ${frame.code}`));
        else if (frame.type === 'event' && frame.event.type === 'packet') onPayload(Buffer.from(frame.event.packet, 'base64url'));
      });
    });
    return ws;
  }

  async post(channel: number, payload: Uint8Array): Promise<void> {
    const { id, members } = this.channel(channel);
    const author = members[0] as TestMember;
    const path = `/v1/channels/${id}/events`;
    const body = JSON.stringify({ packet: Buffer.from(payload).toString('base64url') });
    const headers = { 'content-type': 'application/json', ...signedHeaders(author, 'POST', path, body) };
    const { status } = await rawRequest(this.url() + path, 'POST', headers, body);
    if (status !== 201) throw new Error(`relay post: HTTP ${status}`);
  }

  async close(): Promise<void> {
    await this.relay?.stop();
    await this.redis?.stop();
    if (this.dataDir !== undefined) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private channel(index: number): { id: ChannelId; members: TestMember[] } {
    const channel = this.channels[index];
    if (channel === undefined) throw new RangeError(`no channel ${index}`);
    return channel;
  }

  private url(): string {
    if (this.relay === undefined) throw new Error(`${this.name} not started`);
    return this.relay.url;
  }
}

// ---- server children --------------------------------------------------------------------------

interface ServerChild {
  readonly url: string;
  stop(): Promise<void>;
}

/** Runs `tsx bench/relay.ts serve KIND [args]` and waits for the URL line. */
async function spawnServer(kind: string, args: string[] = [], env: Record<string, string> = {}): Promise<ServerChild> {
  const self = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', self, 'serve', kind, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start: ${output}`)), SERVER_START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} server exited with ${code}: ${output}`));
    });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- the measurement --------------------------------------------------------------------------

interface StepResult {
  ratePerSec: number;
  postsPerSec: number;
  deliveredPerSec: number;
  p50Ms: number;
  p99Ms: number;
  missing: number;
  postErrors: number;
}

interface TargetResult {
  target: string;
  steps: StepResult[];
  error?: string;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runTarget(target: BenchTarget, deadline: number): Promise<TargetResult> {
  const channelCount = Math.ceil(SUBSCRIBERS / CHANNEL_SIZE);
  const setupStart = performance.now();
  await target.prepare(channelCount, CHANNEL_SIZE);

  // Post ids are global across steps; sendTimes[id] is when the POST left.
  const maxPosts = RATES.reduce((sum, rate) => sum + Math.ceil((rate * STEP_MS) / 1000), 0);
  const sendTimes = new Float64Array(maxPosts);
  // Latency samples of the current step (one per delivery), bounded by the step's expected count.
  let samples = new Float64Array(1);
  let sampleCount = 0;
  let delivered = 0;

  const onPayload: OnPayload = (payload) => {
    const now = performance.now();
    if (payload.length < 4) return;
    const id = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
    delivered += 1;
    if (sampleCount < samples.length) samples[sampleCount++] = now - (sendTimes[id] ?? now);
  };

  const sockets: WebSocket[] = [];
  const members: Array<[number, number]> = [];
  for (let channel = 0; channel < channelCount; channel++) {
    for (let member = 0; member < CHANNEL_SIZE && members.length < SUBSCRIBERS; member++) members.push([channel, member]);
  }
  for (let i = 0; i < members.length; i += CONNECT_CONCURRENCY) {
    const batch = members.slice(i, i + CONNECT_CONCURRENCY);
    sockets.push(...(await Promise.all(batch.map(([channel, member]) => target.subscribe(channel, member, onPayload)))));
  }
  console.error(`bench:relay:   setup (${channelCount} channels, ${sockets.length} subscribers) ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);
  const subscribersPerChannel = new Array<number>(channelCount).fill(0);
  for (const [channel] of members) subscribersPerChannel[channel] = (subscribersPerChannel[channel] ?? 0) + 1;

  const payloadTemplate = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 0; i < PAYLOAD_BYTES; i++) payloadTemplate[i] = (i * 131 + 7) & 0xff;

  const steps: StepResult[] = [];
  let nextId = 0;
  let skipped = 0;
  for (const rate of RATES) {
    if (performance.now() + STEP_MS + DRAIN_TIMEOUT_MS > deadline) {
      skipped += 1;
      continue;
    }
    const postsThisStep = Math.ceil((rate * STEP_MS) / 1000);
    let expected = 0;
    samples = new Float64Array(postsThisStep * CHANNEL_SIZE);
    sampleCount = 0;
    delivered = 0;
    let inFlight = 0;
    let posted = 0;
    let postErrors = 0;
    const pending: Array<Promise<void>> = [];
    const start = performance.now();
    const intervalMs = 1000 / rate;
    for (let i = 0; i < postsThisStep; i++) {
      // Open loop: post i is due at start + i * interval, whatever happened before.
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      while (inFlight >= MAX_IN_FLIGHT_POSTS) await sleep(1);
      const id = nextId++;
      const channel = id % channelCount;
      const payload = payloadTemplate.slice();
      new DataView(payload.buffer).setUint32(0, id);
      expected += subscribersPerChannel[channel] ?? 0;
      inFlight += 1;
      sendTimes[id] = performance.now();
      pending.push(
        target.post(channel, payload).then(
          () => {
            inFlight -= 1;
            posted += 1;
          },
          () => {
            inFlight -= 1;
            postErrors += 1;
          },
        ),
      );
    }
    await Promise.all(pending);
    const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (delivered < expected - postErrors * CHANNEL_SIZE && performance.now() < drainDeadline) await sleep(5);
    const elapsedS = (performance.now() - start) / 1000;
    const sorted = samples.slice(0, sampleCount).sort();
    steps.push({
      ratePerSec: rate,
      postsPerSec: posted / elapsedS,
      deliveredPerSec: delivered / elapsedS,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      missing: Math.max(0, expected - postErrors * CHANNEL_SIZE - delivered),
      postErrors,
    });
  }
  for (const ws of sockets) ws.terminate();
  await target.close();
  return { target: target.name, steps, ...(skipped > 0 ? { error: `${skipped} step(s) skipped: time budget` } : {}) };
}

// ---- output -----------------------------------------------------------------------------------

function printResults(results: TargetResult[]): void {
  const headers = ['target', 'rate/s', 'posts/s', 'delivered/s', 'p50 ms', 'p99 ms', 'missing', 'post errors'];
  const rows: string[][] = [];
  for (const result of results) {
    for (const step of result.steps) {
      rows.push([
        result.target,
        String(step.ratePerSec),
        step.postsPerSec.toFixed(0),
        step.deliveredPerSec.toFixed(0),
        step.p50Ms.toFixed(2),
        step.p99Ms.toFixed(2),
        String(step.missing),
        String(step.postErrors),
      ]);
    }
    if (result.error !== undefined) rows.push([result.target, '-', '-', '-', '-', '-', '-', result.error]);
  }
  printTable(headers, rows);
}

/** The best sustained step of a target: the highest delivered/s with nothing missing. */
function best(result: TargetResult): StepResult | undefined {
  const clean = result.steps.filter((step) => step.missing === 0 && step.postErrors === 0);
  const pool = clean.length > 0 ? clean : result.steps;
  return pool.reduce<StepResult | undefined>((top, step) => (top === undefined || step.deliveredPerSec > top.deliveredPerSec ? step : top), undefined);
}

function summary(results: TargetResult[]): Record<string, unknown> {
  const baseline = results.find((result) => result.target.startsWith('baseline'));
  const baseBest = baseline === undefined ? undefined : best(baseline);
  const out: Record<string, unknown> = {
    subscribers: SUBSCRIBERS,
    channelSize: CHANNEL_SIZE,
    payloadBytes: PAYLOAD_BYTES,
    rates: RATES,
    stepMs: STEP_MS,
  };
  for (const result of results) {
    const top = best(result);
    const key = result.target.split(' ')[0] ?? result.target;
    if (top === undefined) {
      out[key] = { error: result.error ?? 'no steps' };
      continue;
    }
    out[key] = {
      ...(result.error === undefined ? {} : { note: result.error }),
      deliveredPerSec: Math.round(top.deliveredPerSec),
      atRatePerSec: top.ratePerSec,
      p50Ms: round(top.p50Ms),
      p99Ms: round(top.p99Ms),
      ...(baseBest === undefined || result === baseline
        ? {}
        : {
            deliveredRatioToBaseline: round(top.deliveredPerSec / baseBest.deliveredPerSec),
            p50RatioToBaseline: round(top.p50Ms / baseBest.p50Ms),
            p99RatioToBaseline: round(top.p99Ms / baseBest.p99Ms),
          }),
    };
  }
  return out;
}

// ---- main -------------------------------------------------------------------------------------

const TARGET_FACTORIES: Record<string, () => BenchTarget> = {
  baseline: () => new BaselineTarget(),
  sqlite: () => new RelayTarget('sqlite (relay)', 'sqlite'),
  redis: () => new RelayTarget('redis (relay)', 'redis'),
};

async function main(): Promise<void> {
  const [mode, kind] = process.argv.slice(2);
  if (mode === 'serve') {
    if (kind === 'baseline') return serveBaseline();
    throw new Error(`unknown server kind ${kind}`);
  }
  const names = (process.env.BENCH_TARGETS ?? Object.keys(TARGET_FACTORIES).join(',')).split(',');
  const results: TargetResult[] = [];
  const runStart = performance.now();
  for (const [index, name] of names.entries()) {
    const factory = TARGET_FACTORIES[name];
    if (factory === undefined) throw new Error(`unknown target ${name}`);
    const target = factory();
    console.error(`bench:relay: ${target.name}...`);
    try {
      // Each target gets an equal share of what is left of the budget.
      const left = RUN_BUDGET_MS - (performance.now() - runStart);
      results.push(await runTarget(target, performance.now() + left / (names.length - index)));
    } catch (error) {
      await target.close().catch(() => undefined);
      results.push({ target: target.name, steps: [], error: error instanceof Error ? error.message : String(error) });
    }
  }
  keepAliveAgent.destroy();
  printResults(results);
  printJsonLine('relay', summary(results));
}

await main();
