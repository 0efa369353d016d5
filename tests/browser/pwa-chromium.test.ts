/**
 * Issue 12 in Chromium, the engine with Background Sync and Web Push, against the real relay and
 * the production build (service worker included). Bob uses the app in Chromium; Alice is the real
 * engine in Node on the same relay (tests/browser/pwa-people.ts).
 *
 * 1. Receives while closed: Bob's app is closed, Alice sends 50; a Background Sync event fired
 *    over CDP (as when connectivity returns) makes Bob's service worker fetch them into the inbox
 *    store with its read-only fetch token and say "New messages in Covey, 50 new messages"; the
 *    relay stops and the network goes offline; a fresh tab of the app opens, lists the group, and
 *    shows all 50, decrypted, in order.
 * 2. Sends when back: Bob goes offline (emulated, relay stopped), writes 5 (each shown waiting), closes the tab;
 *    back online, the service worker's sync sends them with no tab open; Alice gets each once.
 * 3. Wakes by push: a push delivered over CDP makes the service worker fetch and show the
 *    content-free notification; opening the app closes it.
 * 4. What the service worker holds: its stores carry ciphertext, ids and read-only tokens only,
 *    and such a token cannot post (the relay tests check every other route and channel).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ConversationId } from '../../src/shared/worker-api.js';
import { plaintextIn } from '../store/dump.js';
import type { TestClient } from '../worker/helpers/client-harness.js';
import { startTestRelay, type TestRelay } from './harness/app.js';
import { deliverPushMessage, dispatchSyncEvent, grantPermission } from './harness/chromium.js';
import { browserRun, openEngine } from './harness/engines.js';
import { DESKTOP, type Engine, type Profile, type Tab } from './harness/types.js';
import {
  meetInGroup,
  nodeFriend,
  notifications,
  openGroup,
  RELAY_READ,
  relayNews,
  shownMessages,
  STEP,
  syncTags,
  transitDump,
  untilPosted,
  waitFor,
  waitForAppClosed,
  waitForEmptyOutbox,
  waitForNotifications,
  write,
} from './pwa-people.js';

const GROUP = 'Night shift';
const RECEIVED = 50;
const WRITTEN_OFFLINE = 5;

describe.runIf(browserRun().engines.includes('chromium'))('chromium', () => {
  let engine: Engine;
  let relay: TestRelay;
  let bob: Profile;
  let alice: TestClient;
  let aliceGroup: ConversationId;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: browserRun().appDir });
    engine = await openEngine('chromium');
    bob = await engine.newProfile({ name: 'bob', viewport: DESKTOP });
    alice = await nodeFriend('Alice', relay.url);
  });
  afterAll(async () => {
    alice?.close();
    await engine?.close();
    await relay?.dispose();
  });

  /** A page of the app's origin that is not the app (no engine): for probes and CDP. */
  const probe = async (): Promise<Tab> => {
    const page = await bob.open(`${relay.url}/robots.txt`);
    await waitForAppClosed(page);
    return page;
  };

  test('receives while closed: the service worker fetches 50 messages on sync, the app shows them offline, in order', async () => {
    const tab = await bob.open(relay.url);
    aliceGroup = await meetInGroup(tab, 'Bob', alice, GROUP);
    // (Chromium's permission grant over CDP denies what it does not list: list both.)
    await grantPermission(tab, 'notifications');
    await grantPermission(tab, 'background-sync');
    // Bob's app closes with nothing left to send (a packet waiting at close registers a sync
    // that fires at once) and is gone (no engine, whose lock tells the service worker to stay
    // quiet) before Alice writes: the only job that fetches her messages is the one fired below.
    await waitForEmptyOutbox(tab);
    await bob.closeTabs();
    const page = await probe();
    await waitFor(page, async () => (await page.evaluate(syncTags)).length === 0, 'no sync pending');

    const texts = Array.from({ length: RECEIVED }, (_, i) => `night note ${i + 1}`);
    for (const text of texts) await alice.call('send', { conversationId: aliceGroup, text });
    await untilPosted(alice, aliceGroup, texts);
    // And the relay serves them to Bob's fetch tokens (what the service worker will read).
    await waitFor(page, async () => (await page.evaluate(relayNews, RELAY_READ)).reduce((n, c) => n + c.news, 0) >= RECEIVED, 'the 50 at the relay');

    const before = await page.evaluate(transitDump);
    await dispatchSyncEvent(page, 'covey-outbox');
    await waitForNotifications(page, [`${RECEIVED} new messages`], 'the notification for 50 new messages');
    const after = await page.evaluate(transitDump);
    expect(after.counts['inboxEvents']! - before.counts['inboxEvents']!).toBeGreaterThanOrEqual(RECEIVED);
    // One record per page read (50 fit one page), not one per event.
    expect(after.counts['inbox']! - before.counts['inbox']!).toBeLessThanOrEqual(2);
    expect(await page.evaluate(notifications)).toEqual([{ title: 'New messages in Covey', body: `${RECEIVED} new messages` }]);
    await bob.closeTabs();

    // Nothing but what is stored: relay stopped and the network offline.
    await relay.stop();
    await bob.setOffline(true);
    const offline = await bob.open(relay.url);
    await offline.waitFor({ role: 'button', name: new RegExp(GROUP) }, STEP); // the stored conversation, listed
    await openGroup(offline, GROUP);
    await offline.waitUntil((n) => document.querySelectorAll('.timeline .msg').length >= n, RECEIVED, { ...STEP, what: '50 messages' });
    expect((await offline.evaluate(shownMessages)).map((m) => m.text).filter((t) => t.startsWith('night note'))).toEqual(texts);
    // The app read the inbox, so the notification is gone.
    await waitForNotifications(offline, [], 'the notification closed');
    expect(await bob.problems()).toEqual([]);
    await bob.closeTabs();
    await bob.setOffline(false);
    await relay.start();
  });

  test('sends when back: 5 written offline wait, the tab closes, the service worker sends each once', async () => {
    const tab = await bob.open(relay.url);
    await openGroup(tab, GROUP);
    await tab.waitUntil(() => document.querySelector('.status-offline') === null, undefined, { ...STEP, what: 'connected' });
    // Offline for real: the relay stops as well. Chromium decides whether Background Sync may fire
    // from the real network, and DevTools' offline emulation reaches that decision only through a
    // running service worker's session: a service worker stopped while idle (the relay's requests
    // bypass it, sw/sw.ts static routing) was started for the page's sync registration and flushed
    // a message before its emulation applied (1 run in 5 at load 8-12).
    await relay.stop();
    await bob.setOffline(true);
    // The engine hears the browser's `offline` and stops trusting its socket at once.
    await tab.waitUntil(() => document.querySelector('.status-offline') !== null, undefined, { ...STEP, what: 'the offline banner' });
    const texts = Array.from({ length: WRITTEN_OFFLINE }, (_, i) => `from the tunnel ${i + 1}`);
    for (const text of texts) await write(tab, GROUP, text);
    const mine = (await tab.evaluate(shownMessages)).filter((m) => texts.includes(m.text));
    expect(mine.map((m) => [m.text, m.delivery])).toEqual(texts.map((t) => [t, 'waiting-to-send']));
    await tab.waitForText(/\d+ messages wait to be sent/);
    await bob.closeTabs();

    const page = await probe();
    expect(await page.evaluate(syncTags)).toContain('covey-outbox'); // the page asked for it
    expect((await page.evaluate(transitDump)).counts['outbox']).toBeGreaterThanOrEqual(WRITTEN_OFFLINE);
    expect(alice.texts(aliceGroup).filter((t) => texts.includes(t))).toEqual([]);
    await relay.start();
    await bob.setOffline(false);
    await dispatchSyncEvent(page, 'covey-outbox');
    await alice.until('the five', () => texts.every((t) => alice.texts(aliceGroup).includes(t)), STEP.timeoutMs);
    // Sent by the service worker (no app tab was open), and taken off the outbox.
    await waitForEmptyOutbox(page);
    await bob.closeTabs();

    const back = await bob.open(relay.url);
    await openGroup(back, GROUP);
    await back.waitUntil(
      (t) => [...document.querySelectorAll('.timeline .msg')].filter((li) => t.includes(li.querySelector('.msg-text')?.textContent ?? '')).every((li) => li.getAttribute('data-delivery') !== 'waiting-to-send'),
      texts,
      { ...STEP, what: 'no longer waiting' },
    );
    await alice.call('send', { conversationId: aliceGroup, text: 'got them' });
    await back.waitForText('got them', STEP);
    expect(alice.texts(aliceGroup).filter((t) => t.startsWith('from the tunnel'))).toEqual(texts);
    expect(await bob.problems()).toEqual([]);
    await bob.closeTabs();
  });

  test('wakes by push: the service worker fetches and shows "New messages in Covey" without content', async () => {
    // Bob's app from the test before is gone (its engine, which would take Alice's messages over
    // its socket and move the fetch cursors past them, has stopped) and nothing it left is still
    // being synced, before Alice writes: the only job that fetches her messages is the push below.
    const page = await probe();
    await waitFor(page, async () => (await page.evaluate(syncTags)).length === 0, 'no sync pending');
    const texts = ['are you up?', 'call me'];
    for (const text of texts) await alice.call('send', { conversationId: aliceGroup, text });
    await untilPosted(alice, aliceGroup, texts);
    await waitFor(page, async () => (await page.evaluate(relayNews, RELAY_READ)).reduce((n, c) => n + c.news, 0) >= texts.length, 'the 2 at the relay');
    const channel = JSON.parse((await page.evaluate(transitDump)).json).fetchTokens.map((t: { channel: string }) => t.channel) as string[];
    await deliverPushMessage(page, JSON.stringify({ type: 'covey-wake', channels: channel }));
    await waitForNotifications(page, ['2 new messages'], 'the notification for 2 new messages');
    const shown = await page.evaluate(notifications);
    expect(shown).toEqual([{ title: 'New messages in Covey', body: '2 new messages' }]);
    for (const text of [...texts, 'Alice', GROUP]) expect(JSON.stringify(shown)).not.toContain(text);
    await bob.closeTabs();
    const app = await bob.open(relay.url);
    await openGroup(app, GROUP);
    await app.waitForText('call me', STEP);
    await waitForNotifications(app, [], 'the notification closed');
    await bob.closeTabs();
  });

  test('the service worker holds ciphertext, ids and read-only tokens only; a token cannot post', async () => {
    // Its code: no key operation at all, and only the transit stores of the client database.
    const code = readFileSync(join(browserRun().appDir, 'sw.js'), 'utf8');
    expect(code.match(/\b(subtle|importKey|unwrapKey|decrypt|deriveBits|deriveKey)\b/g)).toBeNull();
    const stores = [...code.matchAll(/\b(?:transaction|objectStore)\(\s*[`'"]([^`'"]+)[`'"]/g)].map((m) => m[1]);
    expect(stores.length).toBeGreaterThan(0);
    expect(new Set(stores)).toEqual(new Set(stores.filter((name) => ['outbox', 'inbox', 'fetchTokens'].includes(name!))));

    const page = await probe();
    const dump = await page.evaluate(transitDump);
    expect(dump.fields['fetchTokens']).toEqual(['afterSeq', 'channel', 'expiresAtMs', 'member', 'relay', 'token']);
    // (plaintextIn: a short name counts as a word on its own: "Bob" turns up in random base64.)
    expect(plaintextIn(JSON.parse(dump.json), ['night note', 'from the tunnel', 'call me', GROUP, 'Alice', 'Bob'])).toEqual([]);
    const tokens = JSON.parse(dump.json).fetchTokens as { channel: string; token: string }[];
    expect(tokens.length).toBeGreaterThanOrEqual(2); // the inbox and the group
    for (const { channel, token } of tokens) {
      const status = await page.evaluate(
        async ([ch, tk]) => (await fetch(`/v1/channels/${ch}/events`, { method: 'POST', headers: { 'covey-fetch-token': tk, 'content-type': 'application/json' }, body: '{"packet":"eA"}' })).status,
        [channel, token] as const,
      );
      expect(status).toBe(401);
    }
    await bob.closeTabs();
  });
});

