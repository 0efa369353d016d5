/**
 * Which engines this run tests and how to reach them. global-setup.ts builds the app and starts
 * the shared browsers once per run and provides their endpoints; a test file opens engines here.
 * COVEY_BROWSERS=chromium,firefox limits a local run; CI runs all three, and a missing browser
 * fails the run rather than skipping it.
 */
import { inject } from 'vitest';
import { chromiumEngine } from './chromium.js';
import { firefoxEngine } from './firefox.js';
import type { Engine, EngineName } from './types.js';
import { webkitEngine } from './webkit.js';

export const ALL_ENGINES: readonly EngineName[] = ['chromium', 'firefox', 'webkit'];

/** What global-setup.ts provides to every browser test file. */
export interface BrowserRun {
  /** The production build every test serves (COVEY_VERSION = `appVersion`). */
  readonly appDir: string;
  readonly appVersion: string;
  /** Scratch space for this run (second builds, profiles); deleted at teardown. */
  readonly runDir: string;
  readonly engines: readonly EngineName[];
  readonly chromiumEndpoint?: string;
  readonly firefoxEndpoint?: string;
  /** Xvfb display number for WebKit. */
  readonly display?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    coveyBrowserRun: BrowserRun;
  }
}

export function selectedEngines(value = process.env['COVEY_BROWSERS']): readonly EngineName[] {
  if (value === undefined || value.trim() === '') return ALL_ENGINES;
  const names = value.split(',').map((n) => n.trim());
  for (const name of names) if (!ALL_ENGINES.includes(name as EngineName)) throw new Error(`COVEY_BROWSERS: unknown engine "${name}" (known: ${ALL_ENGINES.join(', ')})`);
  return names as EngineName[];
}

export function browserRun(): BrowserRun {
  return inject('coveyBrowserRun');
}

/** Connects to (Chromium, Firefox) or prepares (WebKit) an engine; close() it in afterAll. */
export async function openEngine(name: EngineName): Promise<Engine> {
  const run = browserRun();
  const missing = (what: string): Error => new Error(`${name}: global setup provided no ${what} (is it in COVEY_BROWSERS?)`);
  switch (name) {
    case 'chromium':
      if (run.chromiumEndpoint === undefined) throw missing('Chromium server');
      return chromiumEngine(run.chromiumEndpoint);
    case 'firefox':
      if (run.firefoxEndpoint === undefined) throw missing('Firefox');
      return firefoxEngine(run.firefoxEndpoint);
    case 'webkit':
      if (run.display === undefined) throw missing('Xvfb display');
      return webkitEngine({ display: run.display, runDir: run.runDir });
  }
}
