/**
 * The app under test: a production `vite build` (once per run, in global-setup.ts; again only for
 * a test that needs a second version) and a real relay in this process (src/relay/server.ts,
 * SQLite in a temp dir, port 0) that serves it. A relay can stop and start again on the same
 * port and data, so a test can take the network away from a running app and give it back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRelay, type RunningRelay } from '../../../src/relay/server.js';
import { openSqliteStore } from '../../../src/relay/store/sqlite.js';
import type { Tab, Target } from './types.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** What a fresh profile shows once the app (and its engine) started: the first-run screen. */
export const FIRST_RUN: Target = { role: 'heading', name: 'Welcome to Covey' };

/** How long a screen must stay the same to count as settled (the app swaps "Opening…" quickly). */
const SCREEN_SETTLED_MS = 600;
const SCREEN_POLL_MS = 250;

/** Runs in the page: the first line of what the app's root shows ('' before it rendered). */
export function appScreenInPage(): string {
  const text = (document.getElementById('app')?.innerText ?? '').trim();
  return text.split('\n')[0]?.trim() ?? '';
}

/**
 * Waits until the app rendered and its screen stayed the same for SCREEN_SETTLED_MS; returns the
 * screen's first line ("Welcome to Covey" on first run, or whatever the app settled on). A screen
 * whose first line ends in "…" ("Opening Covey…") is still on its way.
 */
export async function settledAppScreen(tab: Tab, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let sameSinceMs = Date.now();
  for (;;) {
    const screen = await tab.evaluate(appScreenInPage).catch(() => '');
    if (screen !== last) {
      last = screen;
      sameSinceMs = Date.now();
    } else if (screen !== '' && !screen.endsWith('…') && Date.now() - sameSinceMs >= SCREEN_SETTLED_MS) {
      return screen;
    }
    if (Date.now() > deadline) throw new Error(`${tab.profile.engine.name}/${tab.profile.name}: the app did not settle on a screen within ${timeoutMs} ms (last: "${last}")`);
    await new Promise((resolve) => setTimeout(resolve, SCREEN_POLL_MS));
  }
}

export interface BuildOptions {
  /** Empty or missing directory to build into. */
  readonly outDir: string;
  /** COVEY_VERSION for this build: a different one makes a new service worker. */
  readonly version: string;
}

/** `vite build` with the repo's vite.config.ts (production mode, service worker included). */
export async function buildApp(options: BuildOptions): Promise<void> {
  const { build } = await import('vite');
  // Vitest runs with NODE_ENV=test, which would make Vite build a development bundle (DEV true:
  // no service worker, Preact devtools). Build exactly what `npm run build` ships.
  const previous = { version: process.env['COVEY_VERSION'], nodeEnv: process.env['NODE_ENV'] };
  process.env['COVEY_VERSION'] = options.version;
  process.env['NODE_ENV'] = 'production';
  try {
    await build({
      root: REPO_ROOT,
      configFile: join(REPO_ROOT, 'vite.config.ts'),
      mode: 'production',
      logLevel: 'warn',
      build: { outDir: options.outDir, emptyOutDir: true },
    });
  } finally {
    restoreEnv('COVEY_VERSION', previous.version);
    restoreEnv('NODE_ENV', previous.nodeEnv);
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

export interface TestRelay {
  /** http://127.0.0.1:port, the app's origin (stays the same across stop/start). */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** The relay as the app sees it: gone (connection refused), same as a dead server. */
  stop(): Promise<void>;
  /** Starts again on the same port and data; `staticDir` swaps the deployed app (an update). */
  start(options?: { readonly staticDir?: string }): Promise<void>;
  /** Stops and deletes the data dir. */
  dispose(): Promise<void>;
}

export async function startTestRelay(options: { readonly staticDir: string }): Promise<TestRelay> {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-browser-relay-'));
  let staticDir = options.staticDir;
  let relay: RunningRelay | undefined;
  let port = 0;
  const open = async (): Promise<void> => {
    relay = await startRelay({ store: openSqliteStore({ dataDir }), port, staticDir, logLevel: 'warn' });
    port = relay.port;
  };
  await open();
  const self: TestRelay = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get running() {
      return relay !== undefined;
    },
    async stop() {
      const running = relay;
      relay = undefined;
      await running?.close();
    },
    async start(startOptions) {
      if (relay !== undefined) throw new Error('relay already running');
      if (startOptions?.staticDir !== undefined) staticDir = startOptions.staticDir;
      await open();
    },
    async dispose() {
      await self.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return self;
}

/** A fresh temp directory (deleted by the caller, or left in the OS temp dir). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
