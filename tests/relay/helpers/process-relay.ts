/**
 * Child-process entry for tests and the benchmark that need a relay in its own process (its own
 * core, its own heap to measure) but with test settings main.ts does not take: limits, an
 * in-memory store. Started by `startRelayProcess({ entry: RELAY_TEST_ENTRY, ipc: true, env })`.
 *
 * Env: RELAY_TEST_STORE = 'memory' | a data dir | 'sqlite-off:<data dir>' | 'redis:<url>' (a data dir's store on its own thread with RELAY_SQLITE_THREAD=on, as main.ts); RELAY_TEST_LIMITS = JSON of
 * Partial<RelayLimits>; RELAY_TEST_VERIFY_THREADS = where signatures are checked (as RELAY_VERIFY_THREADS: unset = the default, one worker thread and inline when idle; 0 = event loop, n = worker threads); RELAY_TEST_STATIC = a built app to
 * serve (bench:catchup). IPC requests (process.send): {id, op: 'memory'} → GC, then
 * {heapUsed, rss}; {id, op: 'stats'} → store.stats(); {id, op: 'cpu'} → process.cpuUsage() (µs,
 * every thread) and `mainThread` (µs of the event-loop thread alone, from /proc; absent elsewhere); {id, op: 'profile-start'} and {id, op: 'profile-stop', path} → a V8 CPU profile
 * of the main thread written to `path` (bench:relay's CPU-per-post breakdown). Prints its URL
 * like main.ts.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RelayLimits } from '../../../src/relay/limits.js';
import { startRelay } from '../../../src/relay/server.js';
import { verifyThreadsFromEnv } from '../../../src/relay/signature-pool.js';
import { openRedisStore } from '../../../src/relay/store/redis.js';
import { openSqlite, sqliteThreadFromEnv } from '../../../src/relay/store/select.js';
import { threadCpuUs } from './thread-cpu.js';
import type { RelayStore } from '../../../src/relay/store/types.js';

async function openStore(spec: string): Promise<RelayStore> {
  if (spec.startsWith('redis:')) return await openRedisStore({ url: spec.slice('redis:'.length), warn: () => undefined });
  // As main.ts: a file-backed store on its own thread with RELAY_SQLITE_THREAD=on.
  const thread = sqliteThreadFromEnv(process.env.RELAY_SQLITE_THREAD);
  // The bench's group-commit comparison: the same relay with nothing fsynced.
  if (spec.startsWith('sqlite-off:')) return openSqlite({ dataDir: spec.slice('sqlite-off:'.length), durability: 'off' }, thread);
  return openSqlite({ dataDir: spec === 'memory' ? ':memory:' : spec }, thread);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const store = await openStore(process.env.RELAY_TEST_STORE ?? 'memory');
const limits = JSON.parse(process.env.RELAY_TEST_LIMITS ?? '{}') as Partial<RelayLimits>;
const relay = await startRelay({
  store,
  port: Number(process.env.PORT ?? 0),
  host: '127.0.0.1',
  logLevel: 'silent',
  limits,
  verifyThreads: verifyThreadsFromEnv(process.env.RELAY_TEST_VERIFY_THREADS),
  ...(process.env.RELAY_TEST_STATIC === undefined ? {} : { staticDir: process.env.RELAY_TEST_STATIC }),
});

/** The inspector session of a running CPU profile (one at a time). */
let profiler: Session | undefined;

async function startProfile(): Promise<void> {
  if (profiler !== undefined) throw new Error('a CPU profile is already running');
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  // 200 µs between samples: fine enough for parts that take tens of µs per post, cheap enough.
  await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
  await profiler.post('Profiler.start');
}

async function stopProfile(path: string): Promise<void> {
  if (profiler === undefined) throw new Error('no CPU profile is running');
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = undefined;
  writeFileSync(path, JSON.stringify(profile));
}

process.on('message', (message: { id: number; op: string; path?: string }) => {
  const reply = (value: unknown): void => {
    process.send?.({ id: message.id, value });
  };
  if (message.op === 'memory') {
    gc();
    gc();
    const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
    reply({ heapUsed, rss, external, arrayBuffers });
  } else if (message.op === 'stats') {
    void store.stats().then(reply);
  } else if (message.op === 'cpu') {
    reply({ ...process.cpuUsage(), mainThread: threadCpuUs() });
  } else if (message.op === 'profile-start') {
    startProfile().then(
      () => reply({ ok: true }),
      (error: unknown) => reply({ error: String(error) }),
    );
  } else if (message.op === 'profile-stop') {
    stopProfile(message.path ?? '').then(
      () => reply({ ok: true }),
      (error: unknown) => reply({ error: String(error) }),
    );
  } else {
    reply({ error: `unknown op ${message.op}` });
  }
});
process.on('SIGTERM', () => {
  void relay.close().then(() => process.exit(0));
});
process.stdout.write(`test relay listening on ${relay.url}\n`);
