/**
 * Covey's service worker: a short list of plain listeners (STYLE.md, after Squoosh). It moves
 * ciphertext only and never holds a key (DESIGN.md §1).
 *
 * Today: precache the app shell and every chunk, the engine worker's included, so the app opens
 * with no network (issue 12 §2); answer navigations with the shell; wait for the user before a
 * new version takes over (src/ui/shell shows "A new version of Covey is ready — Reload").
 */
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { GET_VERSION, RELAY_PATH_PREFIXES, SKIP_WAITING, type PageToServiceWorker, type ServiceWorkerVersion } from '../src/shared/service-worker-messages.js';

declare const self: ServiceWorkerGlobalScope & { readonly __WB_MANIFEST: Parameters<typeof precacheAndRoute>[0] };

/** This build's name; the page can ask for it (GET_VERSION). */
const SW_VERSION = __COVEY_VERSION__;

// Workbox adds its own install (fill the precache) and activate (drop entries of older builds)
// listeners here. There is deliberately no skipWaiting() on install: an update waits until the
// user accepts it, so nobody loses what they were typing to a silent reload.
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();

// Any in-app path (a deep link, a reload on a conversation) opens the precached shell, offline
// too. The relay's own paths go to the network.
const isRelayPath = RELAY_PATH_PREFIXES.map((prefix) => new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html'), { denylist: isRelayPath }));

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
