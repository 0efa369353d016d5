/**
 * A Chromium trace (CDP Tracing, whole browser) of a reader's catch-up for bench:catchup's
 * BENCH_CATCHUP_TRACE: what each thread does, also outside JavaScript (IndexedDB, IPC, structured
 * clone, layout).
 */
import { writeFileSync } from 'node:fs';
import { startBrowserTrace } from './cdp.js';

const CATEGORIES = process.env.BENCH_CATCHUP_TRACE_CATEGORIES ?? 'toplevel,IndexedDB,v8,devtools.timeline,blink,mojom,ipc,ServiceWorker,disabled-by-default-devtools.timeline';

export interface Tracer {
  stop(path: string): Promise<string>;
}

export async function traceBrowser(profileDir: string): Promise<Tracer> {
  const trace = await startBrowserTrace<unknown>(profileDir, CATEGORIES.split(','));
  return {
    async stop(out) {
      const file = `${out}.trace.json`;
      writeFileSync(file, JSON.stringify({ traceEvents: await trace.stop() }));
      return file;
    },
  };
}
