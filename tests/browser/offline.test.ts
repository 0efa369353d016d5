/**
 * Per engine: the installed app opens with no network from the precache (issue 12 §2). The relay
 * is stopped, and where the engine can emulate it the network is offline too (WebKit cannot: the
 * relay is stopped only, and the test says so). A fresh tab opens the app at its root and at a
 * deep link and reaches the same screen it showed online (the first-run screen: the engine's
 * worker came from the precache too); then the relay comes back on the same port and the app
 * reaches it again.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { settledAppScreen, startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun, openEngine } from './harness/engines.js';
import type { Engine, Profile, Tab } from './harness/types.js';

/** Runs in the page: can it reach the relay right now? */
async function relayAnswers(): Promise<boolean> {
  try {
    return (await fetch('/healthz', { cache: 'no-store' })).ok;
  } catch {
    return false;
  }
}

describe.each(browserRun().engines)('%s', (name) => {
  let engine: Engine;
  let relay: TestRelay;
  let profile: Profile;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: browserRun().appDir });
    engine = await openEngine(name);
    profile = await engine.newProfile({ name: 'offline' });
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.dispose();
  });

  test('opens from the precache with the relay stopped (and the network offline where the engine can)', async () => {
    const first = await profile.open(relay.url);
    await first.waitUntil(() => navigator.serviceWorker.controller !== null, undefined, { what: 'the service worker to control the page' });
    expect(await first.evaluate(relayAnswers)).toBe(true);
    const onlineScreen = await settledAppScreen(first);
    await profile.closeTabs();

    await relay.stop();
    if (engine.supports.offline) await profile.setOffline(true);
    else console.info(`${name}: relay stopped only; ${engine.whyNot('offline')}`);

    let tab: Tab = await profile.open(relay.url);
    expect(await settledAppScreen(tab)).toBe(onlineScreen);
    expect(await tab.evaluate(relayAnswers)).toBe(false);
    // A deep link, in a fresh tab. (Not by navigating this one: WebKit would keep the page
    // before in its back/forward cache, engine lock included, and the app would rightly say
    // "open in another tab".)
    await profile.closeTabs();
    tab = await profile.open(`${relay.url}/conversations/some-group`);
    expect(await settledAppScreen(tab)).toBe(onlineScreen);
    expect(await tab.evaluate(() => location.pathname)).toBe('/conversations/some-group');
    await profile.closeTabs();

    await relay.start();
    if (engine.supports.offline) await profile.setOffline(false);
    tab = await profile.open(relay.url);
    await tab.waitUntil(relayAnswers, undefined, { what: 'the relay to answer again' });
    expect(await settledAppScreen(tab)).toBe(onlineScreen);
  });
});
