/**
 * One Covey client in its own thread for bench:client, as in a browser: the engine (EngineHost)
 * runs in a worker and the "UI" (the benchmark's main thread) talks to it only through the real
 * postMessage bridge (src/shared/worker-bridge.ts). Each person has their own device, so each
 * engine gets its own thread. Storage is fake-indexeddb (Node has no IndexedDB).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { selectCryptoProvider } from '../src/protocol/crypto/select.js';
import { serveBridge, type BridgePort } from '../src/shared/worker-bridge.js';
import { EngineHost } from '../src/worker/engine-host.js';
import type { FetchLike, WebSocketConstructor } from '../src/worker/relay-client.js';

const { relay } = workerData as { relay: string };
const host = new EngineHost({
  indexedDB: new IDBFactory(),
  fetch: fetch as unknown as FetchLike,
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  crypto: await selectCryptoProvider(),
  now: () => Date.now(),
  timers: { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) },
  appOrigin: 'https://covey.test',
  defaultRelay: relay,
  // Warnings too: a failed step's cause (e.g. why the relay was "not reached") is in them.
  log: (level, message) => {
    if (level !== 'info') console.error(`[client ${threadId}] ${level}: ${message}`);
  },
});
serveBridge(parentPort as unknown as BridgePort, host);
await host.start();
parentPort!.postMessage({ t: 'started' });

// Profiling (local only): BENCH_CPU_PROF_DIR, from BENCH_CPU_PROF_START_MS after start, for BENCH_CPU_PROF_MS.
if (process.env.BENCH_CPU_PROF_DIR !== undefined) {
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r))));
  setTimeout(() => {
    void post('Profiler.enable').then(() => post('Profiler.start'));
    setTimeout(() => {
      void post('Profiler.stop').then((r) => writeFileSync(`${process.env.BENCH_CPU_PROF_DIR}/thread-${threadId}.cpuprofile`, JSON.stringify((r as { profile: unknown }).profile)));
    }, Number(process.env.BENCH_CPU_PROF_MS ?? 20_000));
  }, Number(process.env.BENCH_CPU_PROF_START_MS ?? 45_000));
}
