/**
 * What only Chromium exposes: its installability verdict over CDP (issue 12 §1), its install
 * offer (`beforeinstallprompt` → the app's "Install Covey" button), and the update flow: a new
 * build deployed under a running app shows "A new version of Covey is ready", never reloads by
 * itself, and "Reload" brings the new version (the logic is engine-neutral workbox-window; one
 * engine checks it, within the CI time budget).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, settledAppScreen, startTestRelay, type TestRelay } from './harness/app.js';
import { dispatchSyncEvent, installabilityErrors, workerUrls } from './harness/chromium.js';
import { browserRun, openEngine } from './harness/engines.js';
import { PHONE, type Engine, type Tab } from './harness/types.js';

const IPHONE_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

/** Runs in the page: the controlling service worker's build (GET_VERSION, src/shared/service-worker-messages.ts). */
async function controllerVersion(): Promise<string | undefined> {
  const controller = navigator.serviceWorker.controller;
  if (controller === null) return undefined;
  const channel = new MessageChannel();
  const answer = new Promise<{ version: string }>((resolve) => (channel.port1.onmessage = (event) => resolve(event.data as { version: string })));
  controller.postMessage({ type: 'GET_VERSION' }, [channel.port2]);
  return (await answer).version;
}

const controlled = (): boolean => navigator.serviceWorker.controller !== null;

describe.runIf(browserRun().engines.includes('chromium'))('chromium', () => {
  let engine: Engine;
  let relay: TestRelay;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: browserRun().appDir });
    engine = await openEngine('chromium');
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.dispose();
  });

  test('installable: no installability errors, and the Install button appears', async () => {
    // A normal (persistent) profile: Chromium never installs from incognito-like contexts.
    const profile = await engine.newProfile({ name: 'installable', persistent: true });
    const tab = await profile.open(relay.url);
    await tab.waitUntil(controlled, undefined, { what: 'the service worker to control the page' });
    expect(await installabilityErrors(tab)).toEqual([]);
    const manifest = await tab.evaluate(async () => (await fetch('/manifest.webmanifest')).headers.get('content-type'));
    expect(manifest).toBe('application/manifest+json');
    await tab.waitFor({ role: 'button', name: 'Install Covey' });
    await tab.screenshot('install-offer');
    expect(await profile.problems()).toEqual([]);
    await profile.close();
  });

  test("the engine's worker starts its verifier thread (Chromium checks Ed25519 on the calling thread)", async () => {
    // src/worker/verify-thread.ts: a build that lost the nested worker would fall back silently
    // (one console.warn) and only bench:catchup would show it.
    const profile = await engine.newProfile({ name: 'verifier' });
    const tab = await profile.open(relay.url);
    console.info(`chromium: the app shows "${await settledAppScreen(tab)}"`);
    await expect.poll(() => workerUrls(tab).filter((url) => /\/verify-thread-entry-[\w-]+\.js$/.test(url)).length, { timeout: 10_000 }).toBe(1);
    expect(workerUrls(tab).filter((url) => /\/main-[\w-]+\.js$/.test(url))).toHaveLength(1);
    expect(await profile.problems()).toEqual([]);
    await profile.close();
  });

  test('iOS gets "Share → Add to Home Screen" instructions, dismissable for good', async () => {
    const profile = await engine.newProfile({ name: 'iphone', userAgent: IPHONE_SAFARI, viewport: PHONE });
    const tab = await profile.open(relay.url);
    await tab.waitForText('Install Covey on this iPhone or iPad');
    await tab.waitForText('Add to Home Screen');
    expect(await tab.isVisible({ role: 'button', name: 'Install Covey' })).toBe(false);
    expect(await tab.axe()).toEqual([]);
    await tab.screenshot('install-hint-ios-phone');
    await tab.click({ role: 'button', name: 'Not now' });
    expect(await tab.isVisible({ role: 'region', name: 'Install Covey' })).toBe(false);
    await tab.reload();
    await settledAppScreen(tab);
    expect(await tab.isVisible({ role: 'region', name: 'Install Covey' })).toBe(false);
    expect(await profile.problems()).toEqual([]);
    await profile.close();
  });

  test("the relay's requests bypass the service worker (static routing); the app's own files still come through it", async () => {
    const profile = await engine.newProfile({ name: 'routing' });
    const tab = await profile.open(relay.url);
    await tab.waitUntil(controlled, undefined, { what: 'the service worker to control the page' });
    // Resource Timing (Chromium, static routing): `workerMatchedSourceType` is the source of the
    // router rule that matched ('network'), empty when none did and the fetch event got it.
    const matched = await tab.evaluate(async () => {
      const at = async (path: string): Promise<string> => {
        const url = new URL(path, location.href).href;
        // The entry is queued once the body has been read, in a task after it.
        await (await fetch(url, { cache: 'no-store' })).arrayBuffer();
        for (let i = 0; i < 100; i++) {
          const entry = performance.getEntriesByName(url).at(-1) as (PerformanceResourceTiming & { workerMatchedSourceType?: string }) | undefined;
          if (entry !== undefined) return entry.workerMatchedSourceType ?? 'not reported';
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`no resource timing for ${url}`);
      };
      return { healthz: await at('/healthz'), api: await at('/v1/push/key'), app: await at('/manifest.webmanifest') };
    });
    expect(matched).toEqual({ healthz: 'network', api: 'network', app: '' });
    expect(await profile.problems()).toEqual([]);
    await profile.close();
  });

  test('the harness fires Background Sync at the service worker with no app tab open (for the sync flows)', async () => {
    const profile = await engine.newProfile({ name: 'sync' });
    const app = await profile.open(relay.url);
    await app.waitUntil(controlled, undefined, { what: 'the service worker to control the page' });
    await app.close();
    // Not the app: a page of the origin, for the CDP session.
    const other = await profile.open(`${relay.url}/robots.txt`);
    await dispatchSyncEvent(other, 'covey-harness-check');
    await profile.close();
    const fresh = await engine.newProfile({ name: 'no-service-worker' });
    const plain = await fresh.open(`${relay.url}/robots.txt`);
    await expect(dispatchSyncEvent(plain, 'covey-harness-check', { registrationTimeoutMs: 1_000 })).rejects.toThrow(/no service worker registration/);
    await fresh.close();
  });

  test('a new version waits for the user: prompt, no reload by itself, Reload brings it', async () => {
    const v2 = join(browserRun().runDir, 'app-v2');
    const building = buildApp({ outDir: v2, version: 'browser-test-2' });
    // Dark, at phone size: the prompt's other look (the iOS hint test takes light).
    const profile = await engine.newProfile({ name: 'update', colorScheme: 'dark', viewport: PHONE });
    const first: Tab = await profile.open(relay.url);
    await first.waitUntil(controlled, undefined, { what: 'the service worker to control the page' });
    const second = await profile.open(relay.url);
    await second.waitUntil(controlled, undefined, { what: 'the service worker to control the second tab' });
    expect(await first.evaluate(controllerVersion)).toBe(browserRun().appVersion);
    // Marks that die with a reload: the page must keep them until the user chooses.
    for (const tab of [first, second]) await tab.evaluate(() => ((window as unknown as { coveyMark: string }).coveyMark = 'before update'));

    await building;
    await relay.stop();
    await relay.start({ staticDir: v2 });
    // The app's own hourly / on-visible check, run now.
    await first.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
    await first.waitForText('A new version of Covey is ready');
    await second.waitForText('A new version of Covey is ready');
    await first.screenshot('update-prompt-dark-phone');
    expect(await first.axe()).toEqual([]);
    // Still the old page and the old worker: nothing reloaded under the user.
    for (const tab of [first, second]) {
      expect(await tab.evaluate(() => (window as unknown as { coveyMark?: string }).coveyMark)).toBe('before update');
      expect(await tab.evaluate(controllerVersion)).toBe(browserRun().appVersion);
    }

    await first.click({ role: 'button', name: 'Reload' });
    await first.waitUntil(() => (window as unknown as { coveyMark?: string }).coveyMark === undefined, undefined, { what: 'the page to reload' });
    await first.waitUntil(controlled, undefined);
    expect(await first.evaluate(controllerVersion)).toBe('browser-test-2');
    expect(await first.isVisible({ text: 'A new version of Covey is ready.' })).toBe(false);

    // The other tab now runs old code under the new worker: it keeps offering the reload and
    // still does not reload by itself. "Later" hides the offer.
    expect(await second.evaluate(() => (window as unknown as { coveyMark?: string }).coveyMark)).toBe('before update');
    await second.waitForText('A new version of Covey is ready');
    await second.click({ role: 'button', name: 'Later' });
    expect(await second.isVisible({ text: 'A new version of Covey is ready.' })).toBe(false);
    expect(await profile.problems()).toEqual([]);
    await profile.close();
  });
});
