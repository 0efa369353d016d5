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
