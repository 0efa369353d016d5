/**
 * A V8 CPU profile of a page's dedicated workers, for bench:catchup's BENCH_CATCHUP_PROFILE (where
 * the engine's catch-up time goes). Playwright gives no CDP session for a worker, so this talks to
 * the browser's DevTools endpoint (Chromium started with --remote-debugging-port=0; the port is in
 * the profile's DevToolsActivePort file) and attaches to each worker as it starts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

/** Sampling interval: fine enough for steps of a few ms. */
const SAMPLING_US = 250;

export interface WorkerProfiler {
  /** Stops every profile and writes `<path>.<n>.cpuprofile`; returns the files. */
  stop(path: string): Promise<string[]>;
}

/** Starts profiling every dedicated worker that appears in the browser from now on. */
export async function profileWorkers(profileDir: string): Promise<WorkerProfiler> {
  const [port, path] = readFileSync(join(profileDir, 'DevToolsActivePort'), 'utf8').trim().split('\n');
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  const send = (method: string, params: object = {}, sessionId?: string): Promise<unknown> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  const sessions: string[] = [];
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown };
    if (message.id !== undefined) {
      pending.get(message.id)?.(message.result);
      pending.delete(message.id);
      return;
    }
    if (message.method === 'Target.targetCreated') {
      const info = message.params?.['targetInfo'] as { targetId: string; type: string };
      if (info.type !== 'worker') return;
      void (async () => {
        const { sessionId } = (await send('Target.attachToTarget', { targetId: info.targetId, flatten: true })) as { sessionId: string };
        sessions.push(sessionId);
        await send('Profiler.enable', {}, sessionId);
        await send('Profiler.setSamplingInterval', { interval: SAMPLING_US }, sessionId);
        await send('Profiler.start', {}, sessionId);
      })();
    }
  });
  await send('Target.setDiscoverTargets', { discover: true });
  return {
    async stop(out) {
      const files: string[] = [];
      for (const [i, sessionId] of sessions.entries()) {
        const result = (await send('Profiler.stop', {}, sessionId)) as { profile?: unknown } | undefined;
        if (result?.profile === undefined) continue;
        const file = `${out}.${i}.cpuprofile`;
        writeFileSync(file, JSON.stringify(result.profile));
        files.push(file);
      }
      socket.close();
      return files;
    },
  };
}
