/**
 * People for the offline PWA scenarios (pwa-*.test.ts): one person in a browser, driven through
 * the real UI, and a friend run by the real engine in Node (tests/worker harness, fake IndexedDB)
 * against the same relay. The friend writes in bulk and reads what arrives without a second
 * browser, which keeps these tests inside their CI time budget.
 */
import { expect } from 'vitest';
import { RELAY_API_PREFIX, RELAY_HEADERS } from '../../src/shared/relay-api.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { identity, TestClient } from '../worker/helpers/client-harness.js';
import type { Tab } from './harness/types.js';

/** Waits of a whole step (the machine is shared; the engine starts, PBKDF2-free, in seconds). */
export const STEP = { timeoutMs: 30_000 } as const;

/** Waits until the friend's messages with these texts are all at the relay (sealed and posted). */
export async function untilPosted(friend: TestClient, conversationId: ConversationId, texts: readonly string[]): Promise<void> {
  await friend.until(
    'all posted',
    () => {
      const posted = new Set((friend.view(conversationId)?.timeline ?? []).flatMap((t) => (t.type === 'message' && t.delivery.state !== 'waiting-to-send' ? [t.text] : [])));
      return texts.every((t) => posted.has(t)) && friend.host.engine!.outbox.count() === 0;
    },
    STEP.timeoutMs,
  );
}

/** A friend in Node on the relay at `url` (the browser's app origin). */
export async function nodeFriend(name: string, url: string): Promise<TestClient> {
  const friend = await TestClient.start(name, { relay: { url } });
  await identity(friend);
  return friend;
}

/**
 * The browser person picks a name, the friend adds them by their card link, they accept, the
 * friend makes a group with them and they join it; the group is open on screen at the end.
 */
export async function meetInGroup(tab: Tab, name: string, friend: TestClient, group: string): Promise<ConversationId> {
  await tab.waitFor({ role: 'heading', name: 'Welcome to Covey' }, STEP);
  await tab.type({ label: 'Your name' }, name);
  await tab.click({ role: 'button', name: 'Start using Covey' });
  await tab.waitFor({ role: 'heading', name: 'Chats' }, STEP);
  await tab.click({ role: 'button', name: /^Contacts/ });
  await tab.click({ role: 'button', name: /Your link and code/ });
  await tab.waitFor({ testId: 'my-card-link' }, STEP);
  const link = await tab.evaluate(() => document.querySelector<HTMLTextAreaElement>('[data-testid="my-card-link"]')?.value ?? '');
  expect(link).toMatch(/#c=/);
  const { contactId } = await friend.call('addContact', { link });
  await tab.click({ role: 'button', name: /^Contacts/ });
  await tab.click({ role: 'button', name: `Accept ${friend.name}` }, STEP);
  await tab.waitFor({ role: 'heading', name: 'Safety number' }, STEP);
  await friend.until('the contact accepted', () => friend.contacts?.contacts.some((c) => c.id === contactId && c.state === 'connected'));
  const { conversationId } = await friend.call('createGroup', { name: group, contactIds: [contactId as ContactId] });
  await tab.click({ role: 'button', name: /^Chats/ });
  await tab.click({ role: 'button', name: `Join ${group}` }, STEP);
  await tab.waitFor({ role: 'heading', name: group }, STEP);
  await friend.until(`${name} in the group`, () => friend.view(conversationId)?.members.some((m) => m.name === name && m.role === 'member'));
  // Both can write: the group is formed (the friend's composer is open).
  await friend.until('the group formed', () => friend.view(conversationId)?.canSend === true || undefined);
  return conversationId;
}

export async function openGroup(tab: Tab, group: string): Promise<void> {
  await tab.click({ role: 'button', name: /^Chats/ }, STEP);
  await tab.click({ role: 'button', name: new RegExp(group) }, STEP);
  await tab.waitFor({ role: 'heading', name: group }, STEP);
}

export async function write(tab: Tab, group: string, text: string): Promise<void> {
  await tab.type({ label: `Message to ${group}` }, text);
  await tab.press('Enter');
  try {
    await tab.waitUntil((t) => [...document.querySelectorAll('.msg-text')].some((node) => node.textContent === t), text, { ...STEP, what: `message "${text}"` });
  } catch (error) {
    await tab.screenshot(`failed-write-${tab.profile.name}`).catch(() => undefined);
    throw error;
  }
}

export interface ShownMessage {
  readonly text: string;
  readonly delivery: string | null;
}

/** Runs in the page: the open conversation's messages, top to bottom. */
export function shownMessages(): ShownMessage[] {
  return [...document.querySelectorAll('.timeline .msg')].map((li) => ({
    text: li.querySelector('.msg-text')?.textContent ?? '',
    delivery: li.getAttribute('data-delivery'),
  }));
}

export interface TransitDump {
  /** Records per transit store, and `inboxEvents`: the events the inbox records hold. */
  readonly counts: Record<string, number>;
  /** Every record of the transit stores, as JSON. */
  readonly json: string;
  /** Field names seen at the top level of each store's records. */
  readonly fields: Record<string, string[]>;
}

/**
 * Runs in a page of the app's origin: what the service worker's stores hold (the transit stores
 * of the client database, src/shared/client-db.ts), read the way the service worker reads them.
 */
export async function transitDump(): Promise<TransitDump> {
  const request = <T>(req: IDBRequest<T>): Promise<T> =>
    new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  const db = await request(indexedDB.open('covey'));
  const counts: Record<string, number> = {};
  const fields: Record<string, string[]> = {};
  const all: Record<string, unknown[]> = {};
  for (const name of ['outbox', 'inbox', 'fetchTokens']) {
    const records = await request(db.transaction(name, 'readonly').objectStore(name).getAll());
    counts[name] = records.length;
    // The inbox holds pages of events (one record per page the service worker read; older builds: one per event).
    if (name === 'inbox') counts['inboxEvents'] = records.reduce((n: number, r: { events?: unknown[] }) => n + (r.events?.length ?? 1), 0);
    all[name] = records;
    fields[name] = [...new Set(records.flatMap((r: object) => Object.keys(r)))].sort();
  }
  db.close();
  return { counts, json: JSON.stringify(all), fields };
}

/** Runs in a page of the app's origin: the service worker's notifications (title and body). */
export async function notifications(): Promise<{ title: string; body: string }[]> {
  const registration = await navigator.serviceWorker.getRegistration();
  const shown = (await registration?.getNotifications()) ?? [];
  return shown.map((n) => ({ title: n.title, body: n.body }));
}

/** Runs in a page of the app's origin: the Background Sync tags waiting to fire. */
export async function syncTags(): Promise<string[]> {
  const registration = (await navigator.serviceWorker.getRegistration()) as (ServiceWorkerRegistration & { sync?: { getTags(): Promise<string[]> } }) | undefined;
  return (await registration?.sync?.getTags()) ?? [];
}

/**
 * Runs in a page of the app's origin: what the relay holds for the service worker, read the way
 * sw/inbox.ts reads it (each stored fetch token, after its `afterSeq`): per channel, the events
 * and the news among them (a message others wrote, `wake`). Read-only: the inbox is not touched.
 */
export async function relayNews({ header, prefix }: { header: string; prefix: string }): Promise<{ channel: string; afterSeq: number; events: number; news: number }[]> {
  const request = <T>(req: IDBRequest<T>): Promise<T> =>
    new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  const db = await request(indexedDB.open('covey'));
  const tokens = (await request(db.transaction('fetchTokens', 'readonly').objectStore('fetchTokens').getAll())) as {
    channel: string;
    relay: string;
    token: string;
    afterSeq: number;
    member?: string;
  }[];
  db.close();
  const out = [];
  for (const t of tokens) {
    let after = t.afterSeq;
    let events = 0;
    let news = 0;
    for (;;) {
      const response = await fetch(`${t.relay}${prefix}/channels/${t.channel}/events?after=${after}&limit=500`, { headers: { [header]: t.token }, cache: 'no-store' });
      if (!response.ok) throw new Error(`relay read ${response.status}`);
      const page = (await response.json()) as { events: { seq: number; type: string; wake?: boolean; author?: string | null }[]; more: boolean };
      events += page.events.length;
      news += page.events.filter((e) => e.type === 'packet' && (e.author === null || (e.wake === true && e.author !== t.member))).length;
      if (page.events.length === 0 || !page.more) break;
      after = page.events[page.events.length - 1]!.seq;
    }
    out.push({ channel: t.channel, afterSeq: t.afterSeq, events, news });
  }
  return out;
}

/** The argument of `relayNews`. */
export const RELAY_READ = { header: RELAY_HEADERS.fetchToken, prefix: RELAY_API_PREFIX } as const;

/** Runs in a page of the app's origin: per channel, the seqs the inbox store holds (diagnostics). */
export async function inboxSeqs(): Promise<Record<string, number[]>> {
  const request = <T>(req: IDBRequest<T>): Promise<T> =>
    new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  const db = await request(indexedDB.open('covey'));
  const records = (await request(db.transaction('inbox', 'readonly').objectStore('inbox').getAll())) as { channel: string; seq: number; events?: { seq: number }[] }[];
  db.close();
  const out: Record<string, number[]> = {};
  for (const r of records) (out[r.channel] ??= []).push(...(r.events?.map((e) => e.seq) ?? [r.seq]));
  return out;
}

/** Waits (polling from Node, for checks that need helpers of this file in the page) until `check` holds. */
export async function waitFor(page: Tab, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + STEP.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${page.profile.name}: waited ${STEP.timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits (in a page of the origin) until the notifications are exactly these bodies ([] = none). */
export async function waitForNotifications(page: Tab, bodies: readonly string[], what: string): Promise<void> {
  await page
    .waitUntil(
    async (expected) => {
      const registration = await navigator.serviceWorker.getRegistration();
      const shown = ((await registration?.getNotifications()) ?? []).map((n) => n.body);
      return JSON.stringify(shown) === JSON.stringify(expected);
    },
    bodies,
    { ...STEP, what },
  )
    .catch(async (error: unknown) => {
      const shown = await page.evaluate(notifications).catch(() => 'unknown');
      const stores = await page.evaluate(transitDump).then((d) => d.counts).catch(() => 'unknown');
      const inbox = await page.evaluate(inboxSeqs).catch(() => 'unknown');
      const relay = await page.evaluate(relayNews, RELAY_READ).catch((e: unknown) => String(e));
      throw new Error(
        `${String(error)}; shown: ${JSON.stringify(shown)}; transit stores: ${JSON.stringify(stores)}; inbox seqs: ${JSON.stringify(inbox)}; at the relay after each token: ${JSON.stringify(relay)}`,
        { cause: error },
      );
    });
}

/** Waits (in a page of the origin) until the outbox store has no record left. */
export async function waitForEmptyOutbox(page: Tab): Promise<void> {
  await page.waitUntil(
    async () => {
      const open = indexedDB.open('covey');
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const count = db.transaction('outbox', 'readonly').objectStore('outbox').count();
      const n = await new Promise<number>((resolve, reject) => {
        count.onsuccess = () => resolve(count.result);
        count.onerror = () => reject(count.error);
      });
      db.close();
      return n === 0;
    },
    undefined,
    { ...STEP, what: 'the outbox emptied' },
  );
}

/** Waits (in a page of the origin) until no tab runs the engine (its Web Lock is free): the app is closed. */
export async function waitForAppClosed(page: Tab): Promise<void> {
  await page.waitUntil(async () => !((await navigator.locks.query()).held ?? []).some((lock) => lock.name === 'covey-engine'), undefined, {
    ...STEP,
    what: 'the engine to stop',
  });
}
