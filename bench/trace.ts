/**
 * A Chromium trace (CDP Tracing, whole browser) of a reader's catch-up for bench:catchup's
 * BENCH_CATCHUP_TRACE: what each thread does, also outside JavaScript (IndexedDB, IPC, structured
 * clone, layout).
 */
import { writeFileSync } from 'node:fs';
import { connectCdp } from './cdp.js';

const CATEGORIES = process.env.BENCH_CATCHUP_TRACE_CATEGORIES ?? 'toplevel,IndexedDB,v8,devtools.timeline,blink,mojom,ipc,ServiceWorker,disabled-by-default-devtools.timeline';

/** Trace data of a whole catch-up arrives in large messages. */
const MAX_CDP_MESSAGE_BYTES = 1 << 30;

export interface Tracer {
  stop(path: string): Promise<string>;
}

export async function traceBrowser(profileDir: string): Promise<Tracer> {
  const events: unknown[] = [];
  let complete: (() => void) | undefined;
  const cdp = await connectCdp(
    profileDir,
    (message) => {
      if (message.method === 'Tracing.dataCollected') events.push(...(message.params?.['value'] as unknown[]));
      if (message.method === 'Tracing.tracingComplete') complete?.();
    },
    { maxPayload: MAX_CDP_MESSAGE_BYTES },
  );
  await cdp.send('Tracing.start', { transferMode: 'ReportEvents', traceConfig: { recordMode: 'recordAsMuchAsPossible', includedCategories: CATEGORIES.split(',') } });
  return {
    async stop(out) {
      const done = new Promise<void>((resolve) => (complete = resolve));
      await cdp.send('Tracing.end');
      await done;
      const file = `${out}.trace.json`;
      writeFileSync(file, JSON.stringify({ traceEvents: events }));
      cdp.close();
      return file;
    },
  };
}
