/**
 * Registers sw/ through workbox-window and tracks updates. An update never reloads the page by
 * itself: `updateReady` turns true, the user chooses "Reload" (UpdatePrompt), and only then the
 * waiting worker takes over and this page reloads. Nobody loses what they were typing.
 */
import { signal } from '@preact/signals';
import type { Workbox } from 'workbox-window';

/** Where the service worker stands on this page; the UI can say why offline use is missing. */
export type ServiceWorkerStatus =
  | 'unsupported' // no navigator.serviceWorker: an insecure origin (plain http to a LAN address) or a private window
  | 'development' // `vite` dev server: no service worker, so stale caches never hide edits
  | 'registering'
  | 'ready' // installed; the app opens offline
  | 'failed';

export const serviceWorkerStatus = signal<ServiceWorkerStatus>('registering');

/** True when a newer version of Covey is installed and waits for this page to reload. */
export const updateReady = signal(false);

/** A long-lived app (open for days) still hears about updates: browsers check only on navigation. */
const UPDATE_CHECK_INTERVAL_MS = 60 * 60 * 1000;
/** Coming back to the app checks at most this often. */
const UPDATE_CHECK_ON_VISIBLE_MIN_MS = 5 * 60 * 1000;
const SERVICE_WORKER_URL = '/sw.js';

let workbox: Workbox | undefined;
let applying = false;

export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) {
    serviceWorkerStatus.value = 'unsupported';
    return;
  }
  if (import.meta.env.DEV) {
    serviceWorkerStatus.value = 'development';
    return;
  }
  // Registering after `load` keeps the precache download off the first render's critical path.
  if (document.readyState === 'complete') void start();
  else window.addEventListener('load', () => void start(), { once: true });
}

async function start(): Promise<void> {
  let controller = navigator.serviceWorker.controller;
  const { Workbox } = await import('workbox-window');
  const wb = new Workbox(SERVICE_WORKER_URL, { scope: '/' });
  workbox = wb;
  // Installed and waiting: either found now or already waiting when this page loaded.
  wb.addEventListener('waiting', () => {
    updateReady.value = true;
  });
  // Another tab accepted the update: this page still runs the old code, so offer the reload
  // here too instead of reloading it under the user's hands.
  // (The first install taking control of a page that had no worker is no update.)
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (applying) window.location.reload();
    else if (controller !== null) updateReady.value = true;
    controller = navigator.serviceWorker.controller;
  });
  try {
    const registration = await wb.register();
    if (registration === undefined) throw new Error('service worker registration returned nothing');
    await navigator.serviceWorker.ready;
    serviceWorkerStatus.value = 'ready';
  } catch (error) {
    serviceWorkerStatus.value = 'failed';
    console.warn('Covey works online only: the service worker did not register.', error);
    return;
  }
  let lastCheckMs = Date.now();
  const check = (): void => {
    lastCheckMs = Date.now();
    wb.update().catch(() => undefined); // offline or relay down: the next check tries again
  };
  setInterval(check, UPDATE_CHECK_INTERVAL_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && Date.now() - lastCheckMs > UPDATE_CHECK_ON_VISIBLE_MIN_MS) check();
  });
}

/** The user chose "Reload": let the waiting version take over, then reload into it. */
export function applyUpdate(): void {
  applying = true;
  // The controllerchange listener reloads once the new worker controls this page. If no worker
  // waits any more (another tab took the update), this page only needs to reload.
  void navigator.serviceWorker.getRegistration().then((registration) => {
    if (registration?.waiting && workbox !== undefined) workbox.messageSkipWaiting();
    else window.location.reload();
  });
}

/** Hides the prompt until the next start (the update then applies by itself once all tabs close). */
export function postponeUpdate(): void {
  updateReady.value = false;
}
