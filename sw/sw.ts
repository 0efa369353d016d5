/**
 * Covey's service worker: a short list of plain listeners (STYLE.md, after Squoosh). It moves
 * ciphertext only and never holds a key (DESIGN.md §1, §6).
 *
 * - Precache the app shell and every chunk, the engine worker's included, so the app opens with
 *   no network (issue 12 §2); answer navigations with the shell; wait for the user before a new
 *   version takes over (src/ui/shell shows "A new version of Covey is ready — Reload").
 * - Sends when back (§3): Background Sync `covey-outbox` sends the outbox's presigned posts.
 * - Receives while closed (§4): sync, periodic sync and Web Push fetch new events into the inbox
 *   store with read-only fetch tokens, then show "New messages in Covey" with a count.
 */
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { ENGINE_LOCK_NAME } from '../src/shared/client-db.js';
import type { PushWakePayload } from '../src/shared/relay-api.js';
import {
  FETCH_PERIODIC_SYNC_TAG,
  GET_VERSION,
  OUTBOX_SYNC_TAG,
  RELAY_PATH_PREFIXES,
  SKIP_WAITING,
  type PageToServiceWorker,
  type ServiceWorkerVersion,
} from '../src/shared/service-worker-messages.js';
import type { ServiceWorkerDeps } from './client-db.js';
import { fetchIntoInbox } from './inbox.js';
import { openApp, showNews } from './notify.js';
import { flushOutbox } from './outbox.js';

declare const self: ServiceWorkerGlobalScope & { readonly __WB_MANIFEST: Parameters<typeof precacheAndRoute>[0] };

/** Events the WebWorker lib does not type yet (Background Sync, Periodic Background Sync). */
interface SyncEvent extends ExtendableEvent {
  readonly tag: string;
  readonly lastChance?: boolean;
}

/** This build's name; the page can ask for it (GET_VERSION). */
const SW_VERSION = __COVEY_VERSION__;

const deps: ServiceWorkerDeps = {
  indexedDB: self.indexedDB,
  fetch: (url, init) => self.fetch(url, init),
  now: () => Date.now(),
};

// Workbox adds its own install (fill the precache) and activate (drop entries of older builds)
// listeners here. There is deliberately no skipWaiting() on install: an update waits until the
// user accepts it, so nobody loses what they were typing to a silent reload.
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();

// Any in-app path (a deep link, a reload on a conversation) opens the precached shell, offline
// too. The relay's own paths go to the network.
const isRelayPath = RELAY_PATH_PREFIXES.map((prefix) => new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html'), { denylist: isRelayPath }));

/** A rule of the ServiceWorker static routing API (InstallEvent.addRoutes, Chromium ≥ 123), not in the WebWorker lib. */
interface RouterRule {
  readonly condition: { readonly urlPattern: object };
  readonly source: 'network';
}
interface RoutingInstallEvent extends ExtendableEvent {
  addRoutes?(rules: readonly RouterRule[]): Promise<void>;
}
declare const URLPattern: (new (init: { pathname: string }) => object) | undefined;

// The relay's own requests (every post, read, join and ack of the engine worker, on any relay's
// origin) go straight to the network without this worker: otherwise each one dispatches a fetch
// event that only falls through to the network (0.5-5 ms a request in a bench:catchup trace, and
// a start of this worker when it sleeps). Browsers without static routing (Firefox, Safari)
// dispatch as before; a rule the browser refuses costs nothing but the gain.
self.addEventListener('install', (event) => {
  const routing = event as RoutingInstallEvent;
  if (routing.addRoutes === undefined || typeof URLPattern === 'undefined') return;
  try {
    const rules = RELAY_PATH_PREFIXES.map((prefix): RouterRule => ({ condition: { urlPattern: new URLPattern({ pathname: prefix.endsWith('/') ? `${prefix}*` : prefix }) }, source: 'network' }));
    event.waitUntil(routing.addRoutes(rules).catch(() => undefined));
  } catch {
    // A rule this browser cannot take: its requests go through the fetch event, as elsewhere.
  }
});

self.addEventListener('activate', (event) => {
  // The first install controls the page that registered it at once (no reload needed to work
  // offline). An update reaches here only after the user said "Reload".
  event.waitUntil(self.clients.claim());
});

self.addEventListener('message', (event) => {
  const data = event.data as PageToServiceWorker | undefined;
  if (data?.type === SKIP_WAITING) {
    event.waitUntil(self.skipWaiting());
  } else if (data?.type === GET_VERSION) {
    const answer: ServiceWorkerVersion = { version: SW_VERSION };
    event.ports[0]?.postMessage(answer);
  }
});

/**
 * One job at a time: a sync the page registered and one the browser fires again, or a push
 * arriving meanwhile, would otherwise fetch the same events twice (and count them twice) or post
 * the same presigned request twice (the second a replayed nonce).
 */
let queue: Promise<unknown> = Promise.resolve();
function serially<T>(job: () => Promise<T>): Promise<T> {
  const next = queue.then(job);
  queue = next.catch(() => undefined);
  return next;
}

/** True while a tab runs the engine: it reads live and processes news itself. */
async function engineRunning(): Promise<boolean> {
  const locks = (self.navigator as Navigator & { locks?: LockManager }).locks;
  if (locks === undefined) return false;
  const state = await locks.query();
  return (state.held ?? []).some((lock) => lock.name === ENGINE_LOCK_NAME);
}

/**
 * Fetches news into the inbox and, unless the app runs (it shows news itself), says so. Fetching
 * while a tab runs the engine only costs a request: the engine drops inbox records of events it
 * has processed when it next starts.
 */
async function receive(first: readonly string[] = [], woken = false): Promise<boolean> {
  const result = await fetchIntoInbox(deps, first);
  if (await engineRunning()) return result.retry;
  // A push says there is news: if we could not fetch it, still say so (without a number).
  if (result.news > 0 || (woken && result.retry)) {
    // Not allowed to notify (the person never turned notifications on): the inbox holds the news.
    await showNews(result.news, { unknown: result.retry && result.news === 0 }).catch(() => undefined);
  }
  return result.retry;
}

self.addEventListener('sync', (event) => {
  const sync = event as SyncEvent;
  if (sync.tag !== OUTBOX_SYNC_TAG) return;
  sync.waitUntil(
    serially(async () => {
      // Sending is safe while a tab also sends: every post is idempotent (postId).
      const sent = await flushOutbox(deps);
      const fetchFailed = await receive();
      // Rejecting makes the browser fire the sync again later (with backoff).
      if (sent.retry || fetchFailed) throw new Error('Covey: the relay is still out of reach; trying again later');
    }),
  );
});

self.addEventListener('periodicsync', (event) => {
  const sync = event as SyncEvent;
  if (sync.tag !== FETCH_PERIODIC_SYNC_TAG) return;
  sync.waitUntil(serially(() => receive()).then(() => undefined));
});

self.addEventListener('push', (event) => {
  let first: readonly string[] = [];
  try {
    const payload = event.data?.json() as Partial<PushWakePayload> | undefined;
    if (payload?.type === 'covey-wake' && Array.isArray(payload.channels)) first = payload.channels.filter((c): c is PushWakePayload['channels'][number] => typeof c === 'string');
  } catch {
    // Not ours or damaged: fetch everything.
  }
  event.waitUntil(serially(() => receive(first, true)).then(() => undefined));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(openApp());
});
