/**
 * bench:client in headless Chromium (issue 10 "Benchmark" allows Node or headless Chromium): each
 * client is the production build's engine worker (the `vite build` that `npm start` serves) in its
 * own browser context (its own IndexedDB and origin storage: its own device), with the browser's
 * IndexedDB, WebCrypto, fetch and WebSocket, against the same relay process as the Node clients.
 * The page holds no UI: a small bridge client in the page (below) speaks the worker's postMessage
 * protocol (src/shared/worker-bridge.ts) like WorkerClient does, and applies conversation patches
 * like applyConversationPatch, so the worker does exactly what it does under the real app.
 *
 * Times are taken in the pages (performance.timeOrigin + performance.now(): one clock for every
 * renderer process on the machine), from just before the `send` command is posted to the worker
 * to the moment the page has the conversation view that shows the message; the driver's own
 * view of the same span (including the DevTools protocol round trips) is reported beside it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { ContactsView, ConversationId, ConversationsView, ConversationView, WorkerApi } from '../src/shared/worker-api.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../tests/browser/harness/chromium.js';

/** A blank same-origin page that starts the engine worker (the app's own page would start its UI). */
const BENCH_PAGE = '/covey-bench-client.html';

/** The engine worker's file in a production build (vite names it after src/worker/main.ts). */
export function engineWorkerAsset(appDir: string): string {
  const found = readdirSync(join(appDir, 'assets')).filter((f) => /^main-[\w-]+\.js$/.test(f));
  if (found.length !== 1) throw new Error(`expected one engine worker (assets/main-*.js) in ${appDir}, found ${found.length}`);
  return `/assets/${found[0]}`;
}

export async function launchBenchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

interface PageState {
  readonly contacts: ContactsView | undefined;
  readonly conversations: ConversationsView | undefined;
  readonly view: ConversationView | undefined;
}

/** One client: a browser context with the engine worker and the in-page bridge client. */
export class PageClient {
  contacts: ContactsView | undefined;
  conversations: ConversationsView | undefined;
  view: ConversationView | undefined;
  readonly client: { readonly api: WorkerApi };

  private constructor(
    readonly name: string,
    private readonly context: BrowserContext,
    private readonly page: Page,
    private readonly stepTimeoutMs: number,
  ) {
    const call = (command: string, params: unknown) => page.evaluate(([c, p]) => (window as unknown as BenchWindow).coveyBench.call(c, p), [command, params] as const);
    this.client = { api: new Proxy({} as WorkerApi, { get: (_t, command) => (typeof command === 'string' ? (params: unknown) => call(command, params) : undefined) }) };
  }

  static async start(browser: Browser, name: string, relayUrl: string, workerPath: string, stepTimeoutMs: number): Promise<PageClient> {
    const context = await browser.newContext({ serviceWorkers: 'block' });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`${name} (page): ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') console.error(`${name} (console): ${message.text()}`);
    });
    // Served by the driver, then no more interception: every later request goes to the relay.
    await page.route(`**${BENCH_PAGE}`, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>bench:client</title>' }));
    await page.goto(relayUrl + BENCH_PAGE);
    await page.unrouteAll();
    // tsx (esbuild keepNames) wraps named functions in __name(): give the page a no-op one.
    await page.evaluate('globalThis.__name ??= (f) => f');
    await page.evaluate(installBenchClient, workerPath);
    // A command before the engine has started is refused ('starting'): wait for the app view to
    // leave that phase (the first command, createIdentity, once failed the run at load 5).
    const deadline = Date.now() + stepTimeoutMs;
    for (;;) {
      const phase = await page.evaluate(() => (window as unknown as BenchWindow).coveyBench.phase());
      if (phase !== undefined && phase !== 'starting') break;
      if (Date.now() > deadline) throw new Error(`${name}: the engine did not start within ${stepTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The app view is not watched further (the bench watches what it did before: no more pushes).
    await page.evaluate(() => (window as unknown as BenchWindow).coveyBench.unwatchApp());
    return new PageClient(name, context, page, stepTimeoutMs);
  }

  open(id: ConversationId): Promise<void> {
    return this.page.evaluate((conversationId) => (window as unknown as BenchWindow).coveyBench.open(conversationId), id as string);
  }

  /** Polls the page's views until `probe` holds (setup only; the measured part does not poll). */
  async until<T>(what: string, probe: () => T | undefined | false): Promise<T> {
    const deadline = Date.now() + this.stepTimeoutMs;
    for (;;) {
      const state = await this.page.evaluate(() => (window as unknown as BenchWindow).coveyBench.state());
      this.contacts = state.contacts;
      this.conversations = state.conversations;
      this.view = state.view;
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** From now on, the page notes when a pushed view first shows `text`. */
  arm(text: string): Promise<void> {
    return this.page.evaluate((t) => (window as unknown as BenchWindow).coveyBench.arm(t), text);
  }

  /** The page's time (ms since the epoch, sub-millisecond) when `text` was first shown. */
  shownAt(text: string): Promise<number> {
    return this.page.evaluate(([t, ms]) => (window as unknown as BenchWindow).coveyBench.shownAt(t, ms), [text, this.stepTimeoutMs] as const);
  }

  /** Sends; resolves with the page's time just before the command was posted to the worker. */
  send(conversationId: ConversationId, text: string): Promise<number> {
    return this.page.evaluate(([id, t]) => (window as unknown as BenchWindow).coveyBench.send(id, t), [conversationId as string, text] as const);
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

interface BenchWindow {
  coveyBench: {
    call(command: string, params: unknown): Promise<never>;
    open(conversationId: string): void;
    state(): PageState;
    phase(): string | undefined;
    unwatchApp(): void;
    arm(text: string): void;
    shownAt(text: string, timeoutMs: number): Promise<number>;
    send(conversationId: string, text: string): Promise<number>;
  };
}

/**
 * Runs in the page (self-contained: its source is sent to the browser). The bridge client: calls
 * ({t:'call'} → {t:'result'}), watches ({t:'watch'} → {t:'view'} whole, then {t:'view-patch'}
 * for a conversation), as src/shared/worker-bridge.ts WorkerClient and view-patch.ts do.
 */
function installBenchClient(workerPath: string): void {
  type Item = { type: string; text?: string };
  type Patch = { fields: Record<string, unknown>; before: Item[]; keepFrom: number; keepTo: number; after: Item[]; changed: [number, Item][] };
  const now = () => performance.timeOrigin + performance.now();
  const worker = new Worker(workerPath, { type: 'module', name: 'covey-engine' });
  let nextId = 1;
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const watches = new Map<number, { view: string; value: unknown }>();
  const views: Record<string, unknown> = {};
  const armed = new Map<string, { at: number | null; waiters: ((at: number) => void)[] }>();
  const onConversation = (value: { timeline: Item[] }) => {
    const timeline = value.timeline;
    for (let i = timeline.length - 1; i >= Math.max(0, timeline.length - 5); i--) {
      const item = timeline[i]!;
      if (item.type !== 'message' || item.text === undefined) continue;
      const entry = armed.get(item.text);
      if (entry === undefined || entry.at !== null) continue;
      entry.at = now();
      for (const w of entry.waiters) w(entry.at);
      entry.waiters = [];
    }
  };
  worker.addEventListener('message', (event: MessageEvent) => {
    const m = event.data as { t: string; id: number; ok?: boolean; value?: unknown; error?: { code: string; message: string }; patch?: Patch };
    if (m.t === 'result') {
      const c = calls.get(m.id);
      calls.delete(m.id);
      if (m.ok === true) c?.resolve(m.value);
      else c?.reject(new Error(`${m.error?.code}: ${m.error?.message}`));
      return;
    }
    const w = watches.get(m.id);
    if (w === undefined) return;
    if (m.t === 'view') w.value = m.value;
    else if (m.t === 'view-patch') {
      const prev = w.value as { timeline: Item[] };
      const p = m.patch!;
      const timeline = [...p.before, ...prev.timeline.slice(p.keepFrom, p.keepTo), ...p.after];
      for (const [index, item] of p.changed) timeline[index] = item;
      w.value = { ...prev, ...p.fields, timeline };
    } else return;
    views[w.view] = w.value;
    if (w.view === 'conversation') onConversation(w.value as { timeline: Item[] });
  });
  const call = (command: string, params: unknown) =>
    new Promise<never>((resolve, reject) => {
      const id = nextId++;
      calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ t: 'call', id, command, params });
    });
  const watch = (view: string, params: unknown) => {
    const id = nextId++;
    watches.set(id, { view, value: undefined });
    worker.postMessage({ t: 'watch', id, view, params });
    return id;
  };
  const appWatch = watch('app', {});
  watch('contacts', {});
  watch('conversations', {});
  (window as unknown as { coveyBench: unknown }).coveyBench = {
    call,
    open: (conversationId: string) => watch('conversation', { conversationId }),
    state: () => ({ contacts: views['contacts'], conversations: views['conversations'], view: views['conversation'] }),
    phase: () => (views['app'] as { phase?: string } | undefined)?.phase,
    unwatchApp: () => {
      watches.delete(appWatch);
      worker.postMessage({ t: 'unwatch', id: appWatch });
    },
    arm: (text: string) => void armed.set(text, { at: null, waiters: [] }),
    shownAt: (text: string, timeoutMs: number) =>
      new Promise<number>((resolve, reject) => {
        const entry = armed.get(text);
        if (entry === undefined) return reject(new Error(`"${text}" was not armed`));
        if (entry.at !== null) return resolve(entry.at);
        const timer = setTimeout(() => reject(new Error(`"${text}" not shown within ${timeoutMs} ms`)), timeoutMs);
        entry.waiters.push((at) => {
          clearTimeout(timer);
          resolve(at);
        });
      }),
    send: async (conversationId: string, text: string) => {
      const start = now();
      await call('send', { conversationId, text });
      return start;
    },
  };
}
