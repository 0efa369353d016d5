// Crash test (issue 5 "Tests"): writers post numbered packets and record which the relay
// acknowledged; the relay process is killed with SIGKILL at random moments (at least 5 times) and
// restarted on the same data; then readers drain the channel. Checked like Jepsen's queue checker:
// lost (acknowledged but missing) = 0, duplicated = 0, unexpected (never attempted) = 0, and every
// reader sees the same order. Then every acknowledged post is sent again exactly as it was signed:
// each must be refused as a replayed nonce (the nonce outlives the process that took it). Runs on SQLite (same data dir; the store on its own thread and in the event loop's), on Redis (the node dies, Redis
// stays), and on Redis with every other kill hitting redis-server itself (restarted from its
// fsynced AOF). Seed: CRASH_SEED (printed), so a failing schedule replays.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelId, RelayEvent, ServerFrame } from '../../src/shared/relay-api.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';
import { startRelayProcess, type RelayProcess } from './helpers/process.js';
import { freePort, skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { drainEvents, newMember, rawRequest, setupGroup, signedHeaders, subscribeFrame, type TestMember } from './helpers/signed-http.js';

/** SIGKILLs per run: issue 5 asks for at least 5. */
const KILLS = 6;
/**
 * When to kill: after [min, min + spread) more acknowledged packets since the restart, then after a
 * random delay of up to KILL_DELAY_SPREAD_MS (so the kill lands mid-request). Counting acks rather
 * than waiting a fixed time makes every run do real work between kills, on a fast or a loaded machine.
 */
const ACKS_BETWEEN_KILLS_MIN = 20;
const ACKS_BETWEEN_KILLS_SPREAD = 60;
const KILL_DELAY_SPREAD_MS = 40;
/** Longest wait for those acks before the test fails (the relay is stuck, or far too slow). */
const ACK_WAIT_LIMIT_MS = 30_000;
/** Concurrent writers (each sequential, each its own member key). */
const WRITERS = 3;
/** A writer gives up on a packet it cannot get acknowledged after this long (test bound). */
const WRITER_DEADLINE_MS = 30_000;
/** Pause between retries while the relay is down. */
const RETRY_PAUSE_MS = 25;
/** Per-scenario time limit: a bound for a loaded machine (each wait inside has its own), not a claim. */
const SCENARIO_TIMEOUT_MS = 300_000;
/** How long the WebSocket reader may take to catch up after the last restart. */
const WS_DRAIN_TIMEOUT_MS = 15_000;

/**
 * The replays at the end come from one address after the drain: the rate limiter's burst (600)
 * must not answer them 429, and the time window (maxClockSkewMs) must outlast the scenario.
 */
const REPLAY_ROOM = { RELAY_LIMIT_RATE_BURST: '100000', RELAY_LIMIT_MAX_CLOCK_SKEW_MS: String(15 * 60_000) };

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);

interface QueueCheck {
  attempted: number;
  acknowledged: number;
  read: number;
  lost: string[];
  duplicated: string[];
  unexpected: string[];
  indeterminateRead: number;
}

/** Jepsen's total-queue checker, for one reader's sequence of packet ids. */
function checkQueue(attempted: ReadonlySet<string>, acknowledged: ReadonlySet<string>, readIds: readonly string[]): QueueCheck {
  const counts = new Map<string, number>();
  for (const id of readIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  return {
    attempted: attempted.size,
    acknowledged: acknowledged.size,
    read: readIds.length,
    lost: [...acknowledged].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...counts.keys()].filter((id) => !attempted.has(id)),
    // Attempted, never acknowledged (the relay died mid-request), yet stored: allowed.
    indeterminateRead: [...counts.keys()].filter((id) => attempted.has(id) && !acknowledged.has(id)).length,
  };
}

const packetOf = (id: string): string => Buffer.from(`packet ${id}`, 'utf8').toString('base64url');
const idOf = (packet: string): string => Buffer.from(packet, 'base64url').toString('utf8').replace(/^packet /, '');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads a channel over WebSocket from seq 0 until `headSeq` has arrived. */
async function readOverWebSocket(url: string, member: TestMember, channelId: ChannelId, headSeq: number): Promise<RelayEvent[]> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  const events: RelayEvent[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WebSocket reader got ${events.length} events, wanted up to seq ${headSeq}`)), WS_DRAIN_TIMEOUT_MS);
      ws.on('error', reject);
      ws.on('open', () => ws.send(JSON.stringify(subscribeFrame(member, channelId, 0))));
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
        if (frame.type === 'error') reject(new Error(`subscribe refused: ${frame.code} ${frame.error}`));
        if (frame.type !== 'event') return;
        events.push(frame.event);
        if (frame.event.seq >= headSeq) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    ws.terminate();
  }
  return events;
}

interface Harness {
  start(): Promise<RelayProcess>;
  /** Redis only: SIGKILL the backend instead of the relay on every other kill, then restart it. */
  crashBackend?: () => Promise<void>;
}

async function runCrashScenario(name: string, harness: Harness, random: SeededRandom): Promise<void> {
  let relay = await harness.start();
  const writers = Array.from({ length: WRITERS }, () => newMember());
  const readers = [newMember(), newMember()];
  const channelId = await setupGroup(relay.url, [...writers, ...readers]);

  const attempted = new Set<string>();
  const acknowledged = new Set<string>();
  /** Each acknowledged post's request as signed: replayed at the end. */
  const acknowledgedRequests: Array<{ readonly headers: Record<string, string>; readonly body: string }> = [];
  let stopWriting = false;
  let relayUp = true;
  let transportErrors = 0;
  let serverErrors = 0;
  let lastServerError = '';

  const writer = async (w: number): Promise<void> => {
    const member = writers[w];
    if (member === undefined) return;
    for (let i = 0; !stopWriting; i++) {
      const id = `${w}-${i}`;
      attempted.add(id);
      const started = Date.now();
      // Retry the same packet with the same postId until acknowledged: the relay makes it idempotent.
      while (Date.now() - started < WRITER_DEADLINE_MS && !stopWriting) {
        if (!relayUp) {
          await sleep(RETRY_PAUSE_MS);
          continue;
        }
        try {
          const path = `/v1/channels/${channelId}/events`;
          const body = JSON.stringify({ packet: packetOf(id), postId: `p${id}` });
          const headers = { 'content-type': 'application/json', ...signedHeaders(member, 'POST', path, body) };
          const response = await rawRequest(relay.url + path, 'POST', headers, body);
          if (response.status === 201 || response.status === 200) {
            acknowledged.add(id);
            acknowledgedRequests.push({ headers, body });
            break;
          }
          serverErrors += 1;
          lastServerError = `${response.status} ${response.body.toString('utf8')}`;
        } catch {
          transportErrors += 1;
        }
        await sleep(RETRY_PAUSE_MS);
      }
      if (!acknowledged.has(id)) return;
    }
  };

  const writing = Promise.all(writers.map((_, w) => writer(w)));
  const waitForAcks = async (target: number, before: string): Promise<void> => {
    const waitUntil = Date.now() + ACK_WAIT_LIMIT_MS;
    while (acknowledged.size < target) {
      if (Date.now() > waitUntil) throw new Error(`only ${acknowledged.size} of ${target} packets acknowledged before ${before}`);
      await sleep(5);
    }
  };
  const port = new URL(relay.url).port;
  let httpReads: RelayEvent[][];
  let wsRead: RelayEvent[];
  let replays: string[];
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      await waitForAcks(acknowledged.size + ACKS_BETWEEN_KILLS_MIN + random.int(ACKS_BETWEEN_KILLS_SPREAD), `kill ${kill + 1}`);
      await sleep(random.int(KILL_DELAY_SPREAD_MS));
      if (harness.crashBackend !== undefined && kill % 2 === 1) {
        // The relay stays up and answers 500 while its store is gone; writers retry.
        await harness.crashBackend();
        continue;
      }
      relayUp = false;
      await relay.kill();
      relay = await harness.start();
      expect(new URL(relay.url).port).toBe(port);
      relayUp = true;
    }
    await waitForAcks(acknowledged.size + ACKS_BETWEEN_KILLS_MIN, 'the end');
    stopWriting = true;
    await writing;
    httpReads = await Promise.all(readers.map((reader) => drainEvents(relay.url, reader, channelId)));
    wsRead = await readOverWebSocket(relay.url, readers[1] as TestMember, channelId, httpReads[0]?.at(-1)?.seq ?? 0);
    replays = [];
    for (const { headers, body } of acknowledgedRequests) {
      const response = await rawRequest(`${relay.url}/v1/channels/${channelId}/events`, 'POST', headers, body);
      replays.push(`${response.status} ${(JSON.parse(response.body.toString('utf8')) as { code?: string }).code ?? ''}`);
    }
  } finally {
    // Whatever happened, the writers stop and no relay outlives the test.
    stopWriting = true;
    await writing;
    await relay.stop();
  }
  const headSeq = httpReads[0]?.at(-1)?.seq ?? 0;

  const sequences = [...httpReads, wsRead].map((events) =>
    events.filter((event): event is Extract<RelayEvent, { type: 'packet' }> => event.type === 'packet').map((event) => idOf(event.packet)),
  );
  const checks = sequences.map((ids) => checkQueue(attempted, acknowledged, ids));
  const first = checks[0] as QueueCheck;
  console.log(
    `crash test [${name}] seed=${seed} kills=${KILLS}: attempted=${first.attempted} acknowledged=${first.acknowledged} ` +
      `read=${first.read} lost=${first.lost.length} duplicated=${first.duplicated.length} unexpected=${first.unexpected.length} ` +
      `indeterminate-but-stored=${first.indeterminateRead} readers=${sequences.length} same-order=${sequences.every((s) => JSON.stringify(s) === JSON.stringify(sequences[0]))} ` +
      `(transport errors ${transportErrors}, non-2xx ${serverErrors} ${lastServerError})`,
  );

  expect(first.acknowledged).toBeGreaterThanOrEqual((KILLS + 1) * ACKS_BETWEEN_KILLS_MIN); // real work between kills
  for (const check of checks) {
    expect(check.lost).toEqual([]);
    expect(check.duplicated).toEqual([]);
    expect(check.unexpected).toEqual([]);
  }
  for (const sequence of sequences.slice(1)) expect(sequence).toEqual(sequences[0]);
  // Every acknowledged post's nonce is still known, across every kill.
  expect(replays).toHaveLength(first.acknowledged);
  expect(new Set(replays)).toEqual(new Set(['401 replayed-nonce']));
  // Seqs are dense: from the reader's own join (it sees nothing before) to the head, nothing skipped.
  for (const events of [...httpReads, wsRead]) {
    const from = events[0]?.seq ?? 1;
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: headSeq - from + 1 }, (_, i) => from + i));
  }
  // Each writer is sequential, so its packets appear in the order it wrote them.
  for (let w = 0; w < WRITERS; w++) {
    const mine = (sequences[0] ?? []).filter((id) => id.startsWith(`${w}-`)).map((id) => Number(id.split('-')[1]));
    expect(mine).toEqual([...mine].sort((a, b) => a - b));
  }
}

// SQLite in the event loop's thread (the default) and on its own (RELAY_SQLITE_THREAD=on, sqlite-proxy.ts).
describe.each([
  { where: 'its own thread', thread: 'on' },
  { where: 'the event loop', thread: 'off' },
])('crash test: SIGKILL the relay (SQLite on $where)', ({ thread }) => {
  let dataDir = '';
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'covey-crash-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it(`loses no acknowledged packet across ${KILLS} SIGKILLs`, async () => {
    const port = await freePort();
    const harness: Harness = {
      start: () => startRelayProcess({ port, env: { RELAY_DATA_DIR: dataDir, RELAY_SQLITE_THREAD: thread, RELAY_LOG: 'silent', ...REPLAY_ROOM } }),
    };
    await runCrashScenario('sqlite', harness, seededRandom(seed));
  }, SCENARIO_TIMEOUT_MS);
});

describe.skipIf(skipWithoutRedis('crash test (Redis)'))('crash test: SIGKILL the relay (Redis)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it(`loses no acknowledged packet across ${KILLS} SIGKILLs of the relay`, async () => {
    const port = await freePort();
    const harness: Harness = {
      start: () => startRelayProcess({ port, env: { RELAY_REDIS_URL: redis.url, RELAY_LOG: 'silent', ...REPLAY_ROOM } }),
    };
    await runCrashScenario('redis', harness, seededRandom(seed + 1));
  }, SCENARIO_TIMEOUT_MS);

  it(`loses no acknowledged packet across ${KILLS} SIGKILLs of the relay and of Redis itself`, async () => {
    // Redis runs with appendfsync always: what it acknowledged is on disk when it dies.
    const port = await freePort();
    const harness: Harness = {
      start: () => startRelayProcess({ port, env: { RELAY_REDIS_URL: redis.url, RELAY_LOG: 'silent', ...REPLAY_ROOM } }),
      crashBackend: async () => {
        await redis.kill();
        await redis.restart();
      },
    };
    await runCrashScenario('redis+redis-server', harness, seededRandom(seed + 2));
  }, SCENARIO_TIMEOUT_MS);
});
