/**
 * The harness checks itself, per engine, on a fixture page that misbehaves on purpose
 * (fixtures/harness-check): the "no console errors / no CSP violations / no axe violations"
 * assertions elsewhere are worth something only if these problems are seen here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun, openEngine } from './harness/engines.js';
import { PHONE, type Engine, type Profile, type Tab } from './harness/types.js';

const FIXTURE_DIR = join(import.meta.dirname, 'fixtures', 'harness-check');
const NARROWEST_WEBKIT = { width: 460, height: 740 };

describe.each(browserRun().engines)('%s', (name) => {
  let engine: Engine;
  let relay: TestRelay;
  let profile: Profile;
  let tab: Tab;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: FIXTURE_DIR });
    engine = await openEngine(name);
    profile = await engine.newProfile({ name: 'harness-check' });
    tab = await profile.open(relay.url);
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.dispose();
  });

  test('finds controls by label, role and test id, types and clicks', async () => {
    await tab.type({ label: 'Display name' }, 'Ada');
    await tab.click({ role: 'button', name: 'Say hello' });
    await tab.waitForText('Hello, Ada!');
    expect(await tab.isVisible({ testId: 'greeting' })).toBe(true);
    expect(await tab.isVisible({ role: 'button', name: 'No such button' })).toBe(false);
    await expect(tab.click({ role: 'button', name: 'No such button' }, { timeoutMs: 300 })).rejects.toThrow(/no visible role=button/);
  });

  test('sees CSP violations, console errors and uncaught errors', async () => {
    await tab.waitUntil(() => document.readyState === 'complete', undefined);
    // A violation after load, which every engine's probe sees (the page's own ones happen during
    // load: only engines with consoleFromStart see those).
    await tab.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'document.title = "injected inline script ran"';
      document.body.append(script);
    });
    const deadline = Date.now() + 5_000;
    let problems = await profile.problems();
    while (!problems.some((p) => p.text.includes('an uncaught error')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      problems = await profile.problems();
    }
    const kinds = new Set(problems.map((p) => p.kind));
    expect(kinds, JSON.stringify(problems)).toEqual(new Set(['csp-violation', 'console-error', 'page-error']));
    expect(problems.some((p) => p.kind === 'console-error' && p.text.includes('harness-check: a console error'))).toBe(true);
    expect(problems.some((p) => p.kind === 'page-error' && p.text.includes('harness-check: an uncaught error'))).toBe(true);
    // The inline scripts were blocked, so they did not rename the page.
    expect(await tab.evaluate(() => document.title)).toBe('Harness check');
    const cspCount = problems.filter((p) => p.kind === 'csp-violation').length;
    if (engine.supports.consoleFromStart) {
      expect(cspCount, 'inline script, inline style, injected script').toBeGreaterThanOrEqual(3);
      // The engine logs from its Web Worker: those errors count too.
      expect(problems.some((p) => p.kind === 'console-error' && p.text.includes('a worker console error')), 'worker console').toBe(true);
    } else {
      console.info(`${name}: load-time CSP violations and worker console unseen: ${engine.whyNot('consoleFromStart')}`);
    }
  });

  test('axe reports serious and critical violations', async () => {
    const ids = (await tab.axe()).map((v) => v.id);
    expect(ids).toEqual(expect.arrayContaining(['image-alt', 'button-name']));
  });

  test('screenshots at a phone size (WebKit: the narrowest window it has)', async () => {
    const size = engine.supports.phoneViewport ? PHONE : NARROWEST_WEBKIT;
    if (!engine.supports.phoneViewport) await expect(tab.setViewport(PHONE)).rejects.toThrow(engine.whyNot('phoneViewport'));
    await tab.setViewport(size);
    expect(await tab.evaluate(() => [innerWidth, innerHeight])).toEqual([size.width, size.height]);
    const path = await tab.screenshot('harness-check-phone');
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path).subarray(1, 4).toString()).toBe('PNG');
  });

  test('closing every tab keeps the profile storage; another profile does not see it', async () => {
    await tab.evaluate(() => localStorage.setItem('covey-harness', 'kept'));
    await profile.closeTabs();
    expect(profile.tabs).toHaveLength(0);
    tab = await profile.open(relay.url);
    expect(await tab.evaluate(() => localStorage.getItem('covey-harness'))).toBe('kept');
    const other = await engine.newProfile({ name: 'other' });
    const otherTab = await other.open(relay.url);
    expect(await otherTab.evaluate(() => localStorage.getItem('covey-harness'))).toBeNull();
    await other.close();
  });

  test('a dark profile prefers dark where the engine can choose (Firefox: says why not)', async () => {
    if (!engine.supports.colorScheme) {
      await expect(engine.newProfile({ colorScheme: 'dark' })).rejects.toThrow(engine.whyNot('colorScheme'));
      return;
    }
    const dark = await engine.newProfile({ name: 'dark', colorScheme: 'dark' });
    const darkTab = await dark.open(relay.url);
    expect(await darkTab.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches)).toBe(true);
    await dark.close();
    expect(await tab.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches)).toBe(false);
  });

  test('a second tab of a profile shares its storage', async () => {
    const second = await profile.open(relay.url);
    expect(await second.evaluate(() => localStorage.getItem('covey-harness'))).toBe('kept');
    await second.close();
    expect(profile.tabs).toHaveLength(1);
    expect(await tab.evaluate(() => localStorage.getItem('covey-harness'))).toBe('kept');
  });
});
