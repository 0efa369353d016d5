/**
 * A connection to a Chromium's browser-wide DevTools endpoint (started with
 * --remote-debugging-port=0: the port is in the profile's DevToolsActivePort file), for the bench
 * tools that Playwright gives no CDP session for (workers, whole-browser tracing).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

export interface CdpEvent {
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

export interface CdpConnection {
  /** A command (to a flattened target session when `sessionId` is given); resolves with its result. */
  send(method: string, params?: object, sessionId?: string): Promise<unknown>;
  close(): void;
}

export async function connectCdp(profileDir: string, onEvent: (event: CdpEvent) => void, options: { maxPayload?: number } = {}): Promise<CdpConnection> {
  const [port, path] = readFileSync(join(profileDir, 'DevToolsActivePort'), 'utf8').trim().split('\n');
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown };
    if (message.id !== undefined) {
      pending.get(message.id)?.(message.result);
      pending.delete(message.id);
    } else if (message.method !== undefined) onEvent(message as CdpEvent);
  });
  return {
    send: (method, params = {}, sessionId) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
      }),
    close: () => socket.close(),
  };
}

/** Trace data of a whole catch-up arrives in large messages. */
const MAX_TRACE_MESSAGE_BYTES = 1 << 30;

export interface BrowserTrace<E> {
  /** Ends tracing and resolves with every event collected (then closes the connection). */
  stop(): Promise<E[]>;
}

/**
 * Starts a whole-browser trace (CDP Tracing, events reported over the connection) of the Chromium
 * of `profileDir` with the given categories; bench/trace.ts and bench/trace-profiles.ts read it.
 */
export async function startBrowserTrace<E>(profileDir: string, categories: readonly string[]): Promise<BrowserTrace<E>> {
  const events: E[] = [];
  let complete: (() => void) | undefined;
  const cdp = await connectCdp(
    profileDir,
    (message) => {
      if (message.method === 'Tracing.dataCollected') events.push(...(message.params?.['value'] as E[]));
      if (message.method === 'Tracing.tracingComplete') complete?.();
    },
    { maxPayload: MAX_TRACE_MESSAGE_BYTES },
  );
  await cdp.send('Tracing.start', { transferMode: 'ReportEvents', traceConfig: { recordMode: 'recordAsMuchAsPossible', includedCategories: categories } });
  return {
    async stop() {
      const done = new Promise<void>((resolve) => (complete = resolve));
      await cdp.send('Tracing.end');
      await done;
      cdp.close();
      return events;
    },
  };
}
