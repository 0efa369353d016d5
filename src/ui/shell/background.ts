/**
 * What the page asks of the service worker for offline use (issue 12 §3, §4), next to the engine:
 *
 * - While something waits in the outbox and a relay is out of reach, register Background Sync
 *   (`covey-outbox`): the browser fires it when connectivity returns, even if every tab is closed
 *   by then, and the service worker sends the presigned posts. Where there is no Background Sync
 *   (Firefox, Safari) the engine sends on open, on `online` and on reconnect by itself.
 * - Periodic Background Sync (`covey-fetch`) where the browser grants it (installed Chromium
 *   apps): news is fetched into the inbox now and then, so opening the app shows it at once.
 * - Close "New messages in Covey" once the app is on screen: it has read the inbox by then.
 */
import { signal } from '@preact/signals';
import { FETCH_PERIODIC_SYNC_TAG, NEWS_NOTIFICATION_TAG, OUTBOX_SYNC_TAG } from '../../shared/service-worker-messages.js';
import type { AppView } from '../../shared/worker-api.js';
import type { WorkerClient } from '../../shared/worker-bridge.js';

/** How often an installed app may fetch news in the background (the browser decides the rest). */
const PERIODIC_FETCH_MIN_INTERVAL_MS = 60 * 60 * 1000;

/** Whether this browser can send with the app closed (Background Sync): Settings says which. */
export const backgroundSyncSupported = signal(false);

interface SyncManagerLike {
  register(tag: string, options?: { minInterval: number }): Promise<void>;
}
type RegistrationWithSync = ServiceWorkerRegistration & { readonly sync?: SyncManagerLike; readonly periodicSync?: SyncManagerLike };

function registration(): Promise<RegistrationWithSync | undefined> {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return Promise.resolve(undefined);
  return navigator.serviceWorker.ready as Promise<RegistrationWithSync>;
}

/** True when packets wait and some relay does not answer: the case Background Sync is for. */
export function waitingForNetwork(app: AppView): boolean {
  return app.phase === 'ready' && app.queued > 0 && app.relays.some((relay) => relay.state !== 'connected');
}

async function registerOutboxSync(): Promise<void> {
  const reg = await registration();
  // Refused (e.g. a private window): the engine still sends when the app next runs.
  await reg?.sync?.register(OUTBOX_SYNC_TAG).catch(() => undefined);
}

async function registerPeriodicFetch(): Promise<void> {
  const reg = await registration();
  if (reg?.periodicSync === undefined) return;
  try {
    const state = await navigator.permissions.query({ name: 'periodic-background-sync' as PermissionName });
    if (state.state === 'granted') await reg.periodicSync.register(FETCH_PERIODIC_SYNC_TAG, { minInterval: PERIODIC_FETCH_MIN_INTERVAL_MS });
  } catch {
    // Not granted or not known to this browser: push and opening the app still bring news.
  }
}

async function closeNews(): Promise<void> {
  const reg = await registration();
  const open = (await reg?.getNotifications({ tag: NEWS_NOTIFICATION_TAG }).catch(() => [])) ?? [];
  for (const notification of open) notification.close();
}

export function startBackgroundWork(client: WorkerClient): void {
  void registration().then((reg) => (backgroundSyncSupported.value = reg?.sync !== undefined));
  let app: AppView | undefined;
  let registered = false;
  let opened = false;
  client.watch(
    'app',
    {},
    (next) => {
      app = next;
      const waiting = waitingForNetwork(next);
      // Once per spell of waiting; registering again while one is pending changes nothing.
      if (waiting && !registered) void registerOutboxSync();
      registered = waiting;
      if (next.phase === 'ready' && !opened) {
        opened = true;
        if (document.visibilityState === 'visible') void closeNews();
      }
    },
    () => undefined,
  );
  // The tab closes while packets wait for a relay that does not answer although the network
  // is up: the sync fires at once, fails, and the browser retries it later.
  window.addEventListener('pagehide', () => {
    if (app !== undefined && app.phase === 'ready' && app.queued > 0) void registerOutboxSync();
  });
  // The engine's worker may not hear these itself (emulated networks, some browsers).
  for (const [event, online] of [['online', true], ['offline', false]] as const) {
    window.addEventListener(event, () => void client.call('networkChanged', { online }).catch(() => undefined));
  }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && app?.phase === 'ready') void closeNews();
  });
  void registerPeriodicFetch();
}
