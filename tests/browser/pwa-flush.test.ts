/**
 * Issue 12 §3 where the browser has no Background Sync (Firefox; WebKit, which has no network
 * emulation either: the relay is stopped instead): what is written offline waits in the outbox,
 * shown "waiting to send", and leaves when the app opens again, and, with the app open, as soon
 * as the relay answers again. Alice is the real engine in Node on the same relay; she gets each
 * message exactly once. (Chromium sends from the service worker: pwa-chromium.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConversationId } from '../../src/shared/worker-api.js';
import type { TestClient } from '../worker/helpers/client-harness.js';
import { startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun, openEngine } from './harness/engines.js';
import { DESKTOP, type Engine, type Profile, type Tab } from './harness/types.js';
import { meetInGroup, nodeFriend, openGroup, shownMessages, STEP, write } from './pwa-people.js';

const GROUP = 'Allotment';

describe.each(browserRun().engines.filter((name) => name !== 'chromium'))('%s', (name) => {
  let engine: Engine;
  let relay: TestRelay;
  let bob: Profile;
  let alice: TestClient;
  let aliceGroup: ConversationId;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: browserRun().appDir });
    engine = await openEngine(name);
    bob = await engine.newProfile({ name: 'bob', viewport: DESKTOP });
    alice = await nodeFriend('Alice', relay.url);
  });
  afterAll(async () => {
    alice?.close();
    await engine?.close();
    await relay?.dispose();
  });

  /** Network gone: emulated where the engine can, else the relay stops (same origin, same data). */
  async function disconnect(): Promise<void> {
    if (engine.supports.offline) await bob.setOffline(true);
    else await relay.stop();
  }
  async function reconnect(): Promise<void> {
    if (engine.supports.offline) await bob.setOffline(false);
    else await relay.start();
  }
  const offlineBanner = (tab: Tab) => tab.waitUntil(() => document.querySelector('.status-offline') !== null, undefined, { ...STEP, what: 'the offline banner' });
  const delivered = (tab: Tab, text: string) =>
    tab.waitUntil(
      (t) => [...document.querySelectorAll('.timeline .msg')].some((li) => li.querySelector('.msg-text')?.textContent === t && li.getAttribute('data-delivery') !== 'waiting-to-send'),
      text,
      { ...STEP, what: `"${text}" no longer waiting` },
    );
  const aliceHas = (text: string) => alice.texts(aliceGroup).filter((t) => t === text).length;

  test('written offline: waits, then leaves when the app opens again, and on reconnect while open', async () => {
    if (!engine.supports.offline) console.info(`${name}: relay stopped instead; ${engine.whyNot('offline')}`);
    expect(engine.supports.backgroundSync).toBe(false);
    const tab = await bob.open(relay.url);
    aliceGroup = await meetInGroup(tab, 'Bob', alice, GROUP);

    // On open: written offline, the app closed, the network back, nothing sent until it opens.
    await disconnect();
    await offlineBanner(tab);
    await write(tab, GROUP, 'kept while offline');
    expect((await tab.evaluate(shownMessages)).find((m) => m.text === 'kept while offline')?.delivery).toBe('waiting-to-send');
    await tab.waitForText(/waits? to be sent/, STEP);
    await bob.closeTabs();
    await reconnect();
    await alice.call('send', { conversationId: aliceGroup, text: 'anyone there?' });
    expect(aliceHas('kept while offline')).toBe(0);
    const reopened = await bob.open(relay.url);
    await openGroup(reopened, GROUP);
    await alice.until('the message written offline', () => aliceHas('kept while offline') === 1, STEP.timeoutMs);
    await delivered(reopened, 'kept while offline');
    await reopened.waitForText('anyone there?', STEP);

    // On reconnect, with the app open.
    await disconnect();
    await offlineBanner(reopened);
    await write(reopened, GROUP, 'sent on reconnect');
    await reconnect();
    await alice.until('the message sent on reconnect', () => aliceHas('sent on reconnect') === 1, STEP.timeoutMs);
    await delivered(reopened, 'sent on reconnect');
    await reopened.waitUntil(() => document.querySelector('.status-offline') === null, undefined, { ...STEP, what: 'the banner gone' });
    // Each exactly once, also after the engine's own retries had time to run.
    await alice.call('send', { conversationId: aliceGroup, text: 'both here' });
    await reopened.waitForText('both here', STEP);
    expect([aliceHas('kept while offline'), aliceHas('sent on reconnect')]).toEqual([1, 1]);
    // Firefox reports each WebSocket attempt that fails while we keep the relay unreachable as a
    // page error; those reconnect attempts (with backoff) are what this test asks for. Anything
    // else is a problem.
    const expectedWhileOffline = /^Error: Firefox can’t establish a connection to the server at ws:\/\/127\.0\.0\.1:\d+\/v1\/ws\.$/;
    expect((await bob.problems()).filter((p) => !(p.kind === 'page-error' && expectedWhileOffline.test(p.text)))).toEqual([]);
  });
});
