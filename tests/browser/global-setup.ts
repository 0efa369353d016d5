/**
 * Once per browser-test run: build the app (production, service worker included) and start the
 * shared browsers (Chromium as a Playwright server, Firefox with its BiDi endpoint, Xvfb for
 * WebKit), all in parallel; tear everything down at the end, including any WebKitWebDriver a
 * crashed test file left behind.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { TestProject } from 'vitest/node';
import { buildApp } from './harness/app.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './harness/chromium.js';
import { selectedEngines, type BrowserRun } from './harness/engines.js';
import { launchFirefox } from './harness/firefox.js';
import { killGroup, pidFile, startXvfb as startXvfbProcess, stopGroup } from './harness/processes.js';
import { findMiniBrowser } from './harness/webkit.js';

/** The version name of the main test build (the update test builds a second one). */
const APP_VERSION = 'browser-test-1';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runDir = mkdtempSync(join(tmpdir(), 'covey-browser-run-'));
  const engines = selectedEngines();
  const appDir = join(runDir, 'app');
  const cleanups: (() => Promise<void>)[] = [];
  const teardown = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('browser teardown:', error));
    if (existsSync(pidFile(runDir))) {
      for (const line of readFileSync(pidFile(runDir), 'utf8').split('\n')) if (line !== '') killGroup(Number(line), 'SIGKILL');
    }
    rmSync(runDir, { recursive: true, force: true });
  };
  try {
    const [, chromiumEndpoint, firefoxEndpoint, display] = await Promise.all([
      buildApp({ outDir: appDir, version: APP_VERSION }),
      engines.includes('chromium') ? startChromium(cleanups) : undefined,
      engines.includes('firefox') ? startFirefox(join(runDir, 'firefox-profile'), cleanups) : undefined,
      engines.includes('webkit') ? startXvfb(cleanups) : undefined,
    ]);
    const run: BrowserRun = {
      appDir,
      appVersion: APP_VERSION,
      runDir,
      engines,
      ...(chromiumEndpoint === undefined ? {} : { chromiumEndpoint }),
      ...(firefoxEndpoint === undefined ? {} : { firefoxEndpoint }),
      ...(display === undefined ? {} : { display }),
    };
    project.provide('coveyBrowserRun', run);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}

async function startChromium(cleanups: (() => Promise<void>)[]): Promise<string> {
  const server = await chromium.launchServer({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  cleanups.push(() => server.close());
  return server.wsEndpoint();
}

async function startFirefox(profileDir: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  const browser = await launchFirefox(profileDir);
  const endpoint = browser.wsEndpoint();
  const child = browser.process();
  // Firefox serves one BiDi session at a time: free it for the test files.
  await browser.disconnect();
  cleanups.push(async () => {
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  return endpoint;
}

async function startXvfb(cleanups: (() => Promise<void>)[]): Promise<string> {
  findMiniBrowser(); // fail here, once, if WebKit is missing
  const { xvfb, display } = await startXvfbProcess('1920x1080');
  cleanups.push(() => stopGroup(xvfb));
  return display;
}
