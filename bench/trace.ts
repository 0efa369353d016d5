/**
 * A Chromium trace (CDP Tracing, whole browser) of a reader's catch-up for bench:catchup's
 * BENCH_CATCHUP_TRACE: what each thread does, also outside JavaScript (IndexedDB, IPC, structured
 * clone, layout). Talks to the DevTools endpoint like bench/worker-profile.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

const CATEGORIES = process.env.BENCH_CATCHUP_TRACE_CATEGORIES ?? 'toplevel,IndexedDB,v8,devtools.timeline,blink,mojom,ipc,ServiceWorker,disabled-by-default-devtools.timeline';

export interface Tracer {
  stop(path: string): Promise<string>;
}

export async function traceBrowser(profileDir: string): Promise<Tracer> {
  const [port, path] = readFileSync(join(profileDir, 'DevToolsActivePort'), 'utf8').trim().split('\n');
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  const events: unknown[] = [];
  let complete: (() => void) | undefined;
  const send = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown };
    if (message.id !== undefined) {
      pending.get(message.id)?.(message.result);
      pending.delete(message.id);
      return;
    }
    if (message.method === 'Tracing.dataCollected') events.push(...(message.params?.['value'] as unknown[]));
    if (message.method === 'Tracing.tracingComplete') complete?.();
  });
  await send('Tracing.start', { transferMode: 'ReportEvents', traceConfig: { recordMode: 'recordAsMuchAsPossible', includedCategories: CATEGORIES.split(',') } });
  return {
    async stop(out) {
      const done = new Promise<void>((resolve) => (complete = resolve));
      await send('Tracing.end');
      await done;
      const file = `${out}.trace.json`;
      writeFileSync(file, JSON.stringify({ traceEvents: events }));
      socket.close();
      return file;
    },
  };
}
