/**
 * A V8 CPU profile of a page's dedicated workers, for bench:catchup's BENCH_CATCHUP_PROFILE (where
 * the engine's catch-up time goes). Playwright gives no CDP session for a worker, so this attaches
 * to each worker as it starts through the browser's DevTools endpoint (./cdp.ts).
 */
import { writeFileSync } from 'node:fs';
import { connectCdp, type CdpConnection } from './cdp.js';

/** Sampling interval: fine enough for steps of a few ms. */
const SAMPLING_US = 250;

export interface WorkerProfiler {
  /** Stops every profile and writes `<path>.<n>.cpuprofile`; returns the files. */
  stop(path: string): Promise<string[]>;
}

/** Starts profiling every dedicated worker that appears in the browser from now on. */
export async function profileWorkers(profileDir: string): Promise<WorkerProfiler> {
  const sessions: string[] = [];
  const cdp: CdpConnection = await connectCdp(profileDir, (message) => {
    if (message.method !== 'Target.targetCreated') return;
    const info = message.params?.['targetInfo'] as { targetId: string; type: string };
    if (info.type !== 'worker') return;
    void (async () => {
      const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId: info.targetId, flatten: true })) as { sessionId: string };
      sessions.push(sessionId);
      await cdp.send('Profiler.enable', {}, sessionId);
      await cdp.send('Profiler.setSamplingInterval', { interval: SAMPLING_US }, sessionId);
      await cdp.send('Profiler.start', {}, sessionId);
    })();
  });
  await cdp.send('Target.setDiscoverTargets', { discover: true });
  return {
    async stop(out) {
      const files: string[] = [];
      for (const [i, sessionId] of sessions.entries()) {
        const result = (await cdp.send('Profiler.stop', {}, sessionId)) as { profile?: unknown } | undefined;
        if (result?.profile === undefined) continue;
        const file = `${out}.${i}.cpuprofile`;
        writeFileSync(file, JSON.stringify(result.profile));
        files.push(file);
      }
      cdp.close();
      return files;
    },
  };
}
