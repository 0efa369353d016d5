/**
 * Messages between the page and the service worker (sw/). The page sends them through
 * workbox-window; the worker answers a request on the MessageChannel port it came with.
 */

/** workbox-window's `messageSkipWaiting()` sends exactly this: the user accepted the update. */
export const SKIP_WAITING = 'SKIP_WAITING';

/** Asks the worker which build it is; the answer is a `ServiceWorkerVersion`. */
export const GET_VERSION = 'GET_VERSION';

export type PageToServiceWorker = { readonly type: typeof SKIP_WAITING } | { readonly type: typeof GET_VERSION };

export interface ServiceWorkerVersion {
  readonly version: string;
}

/** Paths the relay answers itself: never the app shell, even for a navigation (see sw/sw.ts). */
export const RELAY_PATH_PREFIXES: readonly string[] = ['/v1/', '/healthz', '/metrics'];

/**
 * Background Sync tag the page registers while something waits in the outbox and the relay is
 * out of reach: the browser fires it when connectivity returns, even with every tab closed, and
 * the service worker sends what it can (sw/outbox.ts), then fetches news.
 */
export const OUTBOX_SYNC_TAG = 'covey-outbox';

/** Periodic Background Sync tag (installed Chromium apps that were granted it): fetch news. */
export const FETCH_PERIODIC_SYNC_TAG = 'covey-fetch';

/** The one notification the service worker shows ("New messages in Covey"), replaced in place. */
export const NEWS_NOTIFICATION_TAG = 'covey-news';
