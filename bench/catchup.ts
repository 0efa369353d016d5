/**
 * `npm run bench:catchup` (issue 12 "Benchmark"): the production build in headless Chromium, a
 * real relay in its own process (SQLite on disk) serving it, and the offline-first numbers:
 *
 * 1. Catch-up: MESSAGES messages from AUTHORS authors (the real engine in Node, round robin) wait
 *    while two readers' apps are closed. Time from opening the app to all of them shown: the chat
 *    list says MESSAGES unread and shows the newest (every message decrypted and processed in
 *    relay order; the order of the 200 shown is checked against an author's). Two ways:
 *    - from the inbox: Background Sync (fired over CDP, as when connectivity returns) made the
 *      service worker fetch the ciphertext into the inbox store first (its time is reported too);
 *    - from the relay: the app reads everything over its WebSocket.
 *    Baseline in the same run: the bare relay read of the same events (fetch with the reader's
 *    fetch token, page after page, in the page: no decryption, no store), so the engine's and the
 *    store's share is visible.
 * 2. Cold offline start: the service worker stopped, the network offline; time from navigation
 *    to the first render of the app (its root gets content) and to the stored chat list shown;
 *    median of COLD_RUNS. Baseline: the same for a precached page without script (robots.txt).
 * 3. Initial JavaScript, gzipped (scripts/size.ts).
 *
 * Targets: catch-up under 2 s, first render under 300 ms, initial JS ≤ 60 KB gzipped. A table,
 * then one JSON line. Env: BENCH_CATCHUP_MESSAGES (10,000), BENCH_CATCHUP_AUTHORS (5).
 * Building the traffic (every author's engine receives everyone's messages) takes minutes; it is
 * not measured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { ContactId, ConversationId } from '../src/shared/worker-api.js';
import { initialJavaScript, INITIAL_JS_TARGET_GZIP_BYTES } from '../scripts/size.js';
import { buildApp } from '../tests/browser/harness/app.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../tests/browser/harness/chromium.js';
import { RELAY_TEST_ENTRY, startRelayProcess } from '../tests/relay/helpers/process.js';
import { connect, identity, OPEN_LIMITS, TestClient } from '../tests/worker/helpers/client-harness.js';
import { printJsonLine, printTable, round } from './harness.js';

const MESSAGES = envInt('BENCH_CATCHUP_MESSAGES', 10_000);
const AUTHORS = envInt('BENCH_CATCHUP_AUTHORS', 5);
const GROUP = 'Catch-up';
/** Messages sent before waiting for them to reach the relay (bounds memory and queues). */
const BUILD_WINDOW = 100;
/** Cold starts measured; the median is reported. */
const COLD_RUNS = 5;
/** One wait may not hang the run. */
const WAIT_MS = 600_000;
/** The service worker's fetch of the whole queue (a page of 500 per request). */
const SYNC_WAIT_MS = 120_000;
const TARGET_CATCH_UP_MS = 2_000;
const TARGET_FIRST_RENDER_MS = 300;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/** A reader: the app in its own Chromium profile (storage and service worker kept across pages). */
interface Reader {
  readonly name: string;
  readonly context: BrowserContext;
}

async function firstRun(context: BrowserContext, url: string, name: string): Promise<string> {
  const page = await context.newPage();
  await page.goto(url);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Start using Covey' }).click();
  await page.getByRole('heading', { name: 'Chats' }).waitFor();
  await page.getByRole('button', { name: /^Contacts/ }).click();
  await page.getByRole('button', { name: /Your link and code/ }).click();
  const link = await page.getByTestId('my-card-link').inputValue();
  await page.close();
  return link;
}

async function waitEngineStopped(page: Page): Promise<void> {
  await page.waitForFunction(async () => !((await navigator.locks.query()).held ?? []).some((lock) => lock.name === 'covey-engine'), undefined, { timeout: WAIT_MS, polling: 50 });
}

/** In the page: the chat list shows `unread` unread and `last` as the newest message. */
async function waitAllShown(page: Page, unread: number, last: string): Promise<void> {
  await page.waitForFunction(
    ([n, text]) => {
      const badge = document.querySelector('.tab .count-badge')?.firstChild?.textContent ?? '';
      return Number.parseInt(badge, 10) === n && (document.getElementById('app')?.innerText ?? '').includes(text);
    },
    [unread, last] as const,
    { timeout: WAIT_MS, polling: 'raf' },
  );
}

async function main(): Promise<void> {
  const appDir = mkdtempSync(join(tmpdir(), 'covey-bench-catchup-app-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-bench-catchup-relay-'));
  const limits = { ...OPEN_LIMITS, channelQuotaBurst: 1e6, channelQuotaPerHour: 1e6, maxConnectionsPerClient: 1_000, maxHttpConnectionsPerClient: 1_000, maxRequestsInFlightPerClient: 1_000 };
  await buildApp({ outDir: appDir, version: 'bench-catchup' });
  const size = initialJavaScript(appDir);
  const relay = await startRelayProcess({ entry: RELAY_TEST_ENTRY, env: { RELAY_TEST_STORE: dataDir, RELAY_TEST_LIMITS: JSON.stringify(limits), RELAY_TEST_STATIC: appDir } });
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  const authors: TestClient[] = [];
  try {
    const url = relay.url;
    const setupStart = performance.now();
    for (let i = 0; i < AUTHORS; i++) {
      const author = await TestClient.start(`Author ${i + 1}`, { relay: { url } });
      await identity(author);
      authors.push(author);
    }
    const lead = authors[0]!;
    const readers: Reader[] = [];
    const contactIds: ContactId[] = [];
    for (const other of authors.slice(1)) contactIds.push((await connect(lead, other))[0] as ContactId);
    for (const name of ['Bob', 'Carol']) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, serviceWorkers: 'allow' });
      await context.grantPermissions(['notifications', 'background-sync'], { origin: url });
      const link = await firstRun(context, url, name);
      const { contactId } = await lead.call('addContact', { link });
      const page = await context.newPage();
      await page.goto(url);
      await page.getByRole('button', { name: /^Contacts/ }).click();
      await page.getByRole('button', { name: `Accept ${lead.name}` }).click();
      await lead.until(`${name} connected`, () => lead.contacts?.contacts.some((c) => c.id === contactId && c.state === 'connected'), WAIT_MS);
      await page.close();
      contactIds.push(contactId as ContactId);
      readers.push({ name, context });
    }
    const { conversationId: leadGroup } = await lead.call('createGroup', { name: GROUP, contactIds });
    const groups = new Map<TestClient, ConversationId>([[lead, leadGroup]]);
    for (const author of authors.slice(1)) {
      const invitation = await author.until('invitation', () => author.conversations?.invitations[0], WAIT_MS);
      groups.set(author, (await author.call('acceptInvitation', { invitationId: invitation.id })).conversationId);
    }
    // The readers stay open until everyone has included them (rule 10: joiners who are online).
    const joined: Page[] = [];
    for (const reader of readers) {
      const page = await reader.context.newPage();
      await page.goto(url);
      await page.getByRole('button', { name: `Join ${GROUP}` }).click();
      await page.getByLabel(`Message to ${GROUP}`).waitFor({ timeout: WAIT_MS });
      joined.push(page);
    }
    const members = AUTHORS + readers.length;
    for (const author of authors) {
      await author
        .until(
          'the whole group',
          () => author.conversations?.conversations.find((c) => c.id === groups.get(author) && c.state === 'active' && c.memberCount === members),
          WAIT_MS,
        )
        .catch((error: unknown) => {
          console.error(JSON.stringify(author.conversations?.conversations, null, 1).slice(0, 3000));
          throw error;
        });
    }
    for (const page of joined) await page.close();
    for (const reader of readers) {
      const page = await reader.context.newPage();
      await page.goto(`${url}/robots.txt`);
      await waitEngineStopped(page);
      await page.close();
    }
    console.error(`setup ${Math.round(performance.now() - setupStart)} ms`);

    // The traffic, round robin; each window sealed and at the relay before the next.
    const buildStart = performance.now();
    const texts = Array.from({ length: MESSAGES }, (_, i) => `catch-up message ${i + 1} from ${authors[i % AUTHORS]!.name}`);
    const settled = (author: TestClient) => {
      const runtime = author.host.engine!.conversations.get(groups.get(author)!);
      return runtime !== undefined && runtime.record.queued.length === 0 && author.host.engine!.outbox.count() === 0;
    };
    for (let i = 0; i < MESSAGES; i += BUILD_WINDOW) {
      for (let k = i; k < Math.min(MESSAGES, i + BUILD_WINDOW); k++) {
        const author = authors[k % AUTHORS]!;
        await author.call('send', { conversationId: groups.get(author)!, text: texts[k]! });
      }
      for (const author of authors) await author.until('the window posted', () => settled(author), WAIT_MS);
      if ((i / BUILD_WINDOW) % 10 === 0) console.error(`  ${i + BUILD_WINDOW} of ${MESSAGES} sent (${Math.round((performance.now() - buildStart) / 1000)} s)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // acks settle
    const newest = texts.at(-1)!;
    await lead.until('the lead shows the newest', () => lead.view(leadGroup, 200)?.timeline.some((t) => t.type === 'message' && t.text === newest), WAIT_MS);
    const leadOrder = (lead.view(leadGroup, 200)?.timeline ?? []).flatMap((t) => (t.type === 'message' ? [t.text] : []));
    for (const author of authors.splice(0)) author.close();
    console.error(`traffic built in ${Math.round((performance.now() - buildStart) / 1000)} s`);
    const last = texts.at(-1)!;

    // 1a. From the inbox: the service worker fetches first (sync), then the app opens.
    const [bob, carol] = readers as [Reader, Reader];
    const probe = await bob.context.newPage();
    await probe.goto(`${url}/robots.txt`);
    const cdp = await bob.context.newCDPSession(probe);
    const registrationId = await new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
        const match = registrations.find((r) => r.scopeURL.startsWith(url) && !r.isDeleted);
        if (match) resolve(match.registrationId);
      });
      void cdp.send('ServiceWorker.enable');
    });
    const syncStart = performance.now();
    await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: url, registrationId, tag: 'covey-outbox', lastChance: false });
    await probe
      .waitForFunction(
        async (body) => ((await (await navigator.serviceWorker.getRegistration())?.getNotifications()) ?? []).some((n) => n.body === body),
        `${MESSAGES} new messages`,
        { timeout: SYNC_WAIT_MS, polling: 100 },
      )
      .catch(async (error: unknown) => {
        const shown = await probe.evaluate(async () => ((await (await navigator.serviceWorker.getRegistration())?.getNotifications()) ?? []).map((n) => n.body));
        throw new Error(`the service worker's sync did not announce ${MESSAGES} new messages; shown: ${JSON.stringify(shown)}`, { cause: error });
      });
    const swFetchMs = performance.now() - syncStart;
    const inboxRecords = await probe.evaluate(async () => {
      const open = indexedDB.open('covey');
      const db = await new Promise<IDBDatabase>((resolve) => (open.onsuccess = () => resolve(open.result)));
      const count = db.transaction('inbox').objectStore('inbox').count();
      const n = await new Promise<number>((resolve) => (count.onsuccess = () => resolve(count.result)));
      db.close();
      return n;
    });
    // Baseline: the same events, read bare with the reader's fetch token (no decryption, no store).
    const bareReadMs = await probe.evaluate(async () => {
      const open = indexedDB.open('covey');
      const db = await new Promise<IDBDatabase>((resolve) => (open.onsuccess = () => resolve(open.result)));
      const all = db.transaction('fetchTokens').objectStore('fetchTokens').getAll();
      const tokens = await new Promise<{ channel: string; token: string; afterSeq: number }[]>((resolve) => (all.onsuccess = () => resolve(all.result)));
      db.close();
      const start = performance.now();
      for (const t of tokens) {
        let after = t.afterSeq;
        for (;;) {
          const page = (await (await fetch(`/v1/channels/${t.channel}/events?after=${after}&limit=500`, { headers: { 'covey-fetch-token': t.token } })).json()) as { events: { seq: number }[]; more: boolean };
          if (page.events.length === 0) break;
          after = page.events.at(-1)!.seq;
          if (!page.more) break;
        }
      }
      return performance.now() - start;
    });
    await cdp.detach();
    await probe.close();
    await waitEngineStoppedIn(bob.context, url);

    const catchUp = async (reader: Reader): Promise<{ shownMs: number; ordered: boolean }> => {
      const page = await reader.context.newPage();
      const start = performance.now();
      await page.goto(url);
      await waitAllShown(page, MESSAGES, last);
      const shownMs = performance.now() - start;
      await page.getByRole('button', { name: new RegExp(GROUP) }).first().click();
      await page.waitForFunction((text) => [...document.querySelectorAll('.msg-text')].some((n) => n.textContent === text), last, { timeout: WAIT_MS });
      const shown = await page.evaluate(() => [...document.querySelectorAll('.timeline .msg .msg-text')].map((n) => n.textContent ?? ''));
      const tail = shown.filter((t) => t.startsWith('catch-up message')).slice(-100);
      await page.close();
      return { shownMs, ordered: tail.length === 100 && JSON.stringify(tail) === JSON.stringify(leadOrder.slice(-100)) };
    };
    const fromInbox = await catchUp(bob);
    const fromRelay = await catchUp(carol);

    // 2. Cold offline start (Bob: stored conversation, service worker installed).
    const cold = async (path: string): Promise<{ firstRenderMs: number; listMs: number }> => {
      for (const page of bob.context.pages()) await page.close();
      const probePage = await bob.context.newPage();
      await probePage.goto(`${url}/robots.txt`);
      await waitEngineStopped(probePage);
      const session = await bob.context.newCDPSession(probePage);
      await session.send('ServiceWorker.enable');
      await session.send('ServiceWorker.stopAllWorkers');
      await session.detach();
      await probePage.close();
      await bob.context.setOffline(true);
      const page = await bob.context.newPage();
      await page.addInitScript(() => {
        const w = window as unknown as { coveyFirstRender?: number };
        new MutationObserver(() => {
          if (w.coveyFirstRender === undefined && (document.getElementById('app')?.childElementCount ?? 0) > 0) w.coveyFirstRender = performance.now();
        }).observe(document, { childList: true, subtree: true });
      });
      await page.goto(`${url}${path}`);
      let result: { firstRenderMs: number; listMs: number };
      if (path === '/') {
        await page.getByRole('button', { name: new RegExp(GROUP) }).first().waitFor({ timeout: WAIT_MS });
        const listMs = await page.evaluate(() => performance.now());
        const firstRenderMs = await page.evaluate(() => (window as unknown as { coveyFirstRender?: number }).coveyFirstRender ?? NaN);
        result = { firstRenderMs, listMs };
      } else {
        const loaded = await page.evaluate(() => {
          const entries = (performance as unknown as { getEntriesByType(type: string): PerformanceEntry[] }).getEntriesByType('navigation');
          return (entries[0] as PerformanceNavigationTiming).domContentLoadedEventEnd;
        });
        result = { firstRenderMs: loaded, listMs: loaded };
      }
      await page.close();
      await bob.context.setOffline(false);
      return result;
    };
    const coldApp: { firstRenderMs: number; listMs: number }[] = [];
    const coldBase: number[] = [];
    for (let run = 0; run < COLD_RUNS; run++) {
      coldBase.push((await cold('/robots.txt')).firstRenderMs);
      coldApp.push(await cold('/'));
    }
    const firstRenderMs = median(coldApp.map((c) => c.firstRenderMs));
    const listMs = median(coldApp.map((c) => c.listMs));
    const baseMs = median(coldBase);

    const ms = (v: number) => v.toFixed(0);
    printTable(
      ['measure', 'ms', 'target', 'met'],
      [
        [`catch-up from the inbox: open → ${MESSAGES} from ${AUTHORS} authors shown`, ms(fromInbox.shownMs), `< ${TARGET_CATCH_UP_MS}`, fromInbox.shownMs < TARGET_CATCH_UP_MS ? 'yes' : 'NO'],
        [`  (before: service worker sync fetched ${inboxRecords} events into the inbox)`, ms(swFetchMs), '', ''],
        [`catch-up from the relay: open → all shown`, ms(fromRelay.shownMs), `< ${TARGET_CATCH_UP_MS}`, fromRelay.shownMs < TARGET_CATCH_UP_MS ? 'yes' : 'NO'],
        ['baseline: bare read of the same events with the fetch token', ms(bareReadMs), '', ''],
        [`cold offline start → first render (median of ${COLD_RUNS})`, ms(firstRenderMs), `< ${TARGET_FIRST_RENDER_MS}`, firstRenderMs < TARGET_FIRST_RENDER_MS ? 'yes' : 'NO'],
        ['cold offline start → stored chat list shown', ms(listMs), '', ''],
        ['baseline: cold offline precached page without script', ms(baseMs), '', ''],
      ],
    );
    console.log('');
    printTable(
      ['initial JavaScript', 'bytes', 'gzip', 'target', 'met'],
      [['entry chunk + static imports', String(size.bytes), String(size.gzipBytes), `≤ ${INITIAL_JS_TARGET_GZIP_BYTES}`, size.gzipBytes <= INITIAL_JS_TARGET_GZIP_BYTES ? 'yes' : 'NO']],
    );
    console.log(`order of the newest 100 shown = the authors' order: inbox ${fromInbox.ordered ? 'yes' : 'NO'}, relay ${fromRelay.ordered ? 'yes' : 'NO'}`);
    printJsonLine('catchup', {
      results: {
        messages: MESSAGES,
        authors: AUTHORS,
        catchUpFromInboxMs: round(fromInbox.shownMs),
        serviceWorkerFetchMs: round(swFetchMs),
        inboxRecords,
        catchUpFromRelayMs: round(fromRelay.shownMs),
        baselineBareReadMs: round(bareReadMs),
        ordered: fromInbox.ordered && fromRelay.ordered,
        coldOfflineFirstRenderMs: round(firstRenderMs),
        coldOfflineChatListMs: round(listMs),
        baselineColdStaticPageMs: round(baseMs),
        initialJsGzipBytes: size.gzipBytes,
        targets: {
          catchUpMs: TARGET_CATCH_UP_MS,
          firstRenderMs: TARGET_FIRST_RENDER_MS,
          initialJsGzipBytes: INITIAL_JS_TARGET_GZIP_BYTES,
          met: fromInbox.shownMs < TARGET_CATCH_UP_MS && fromRelay.shownMs < TARGET_CATCH_UP_MS && firstRenderMs < TARGET_FIRST_RENDER_MS && size.gzipBytes <= INITIAL_JS_TARGET_GZIP_BYTES,
        },
      },
    });
  } finally {
    for (const author of authors) author.close();
    await browser.close();
    await relay.stop();
    rmSync(appDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitEngineStoppedIn(context: BrowserContext, url: string): Promise<void> {
  const page = await context.newPage();
  await page.goto(`${url}/robots.txt`);
  await waitEngineStopped(page);
  await page.close();
}

await main();
