/**
 * Settings → "Notifications and offline" (issue 12): notifications while Covey is closed (Web
 * Push, opt-in: ask first, say what it reveals), and what this browser does with messages written
 * offline. Placed by the Settings screen; styles are the UI's (card, btn, hint).
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { AppView } from '../../shared/worker-api.js';
import { useApi } from '../app/engine.js';
import { backgroundSyncSupported } from './background.js';
import { installed } from './install-prompt.js';
import { serviceWorkerStatus } from './service-worker.js';

type PushSupport = 'supported' | 'needs-install' | 'unsupported';

function pushSupport(): PushSupport {
  if (serviceWorkerStatus.value !== 'ready' || !('PushManager' in window) || !('Notification' in window)) {
    // Safari on iPhone and iPad offers push only to an app added to the Home Screen.
    const ios = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
    return ios && !installed.value ? 'needs-install' : 'unsupported';
  }
  return 'supported';
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64url.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function DeviceSettings({ app }: { app: AppView }): JSX.Element {
  const api = useApi();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const on = app.push === 'on';
  const support = pushSupport();

  const turnOn = async (): Promise<void> => {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      throw new Error('Notifications are blocked for Covey in this browser. Allow them in the browser’s site settings, then try again.');
    }
    const { publicKey } = await api.pushServerKey({});
    if (publicKey === null) throw new Error('Your relay does not send notifications (its operator turned push off).');
    const registration = await navigator.serviceWorker.ready;
    const existing = await registration.pushManager.getSubscription();
    await existing?.unsubscribe();
    let subscription: PushSubscription;
    try {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
    } catch (error) {
      throw new Error(`This browser could not reach its push service (${error instanceof Error ? error.message : String(error)}). Try again when online.`, { cause: error });
    }
    const json = subscription.toJSON();
    if (json.endpoint === undefined || json.keys?.['p256dh'] === undefined || json.keys['auth'] === undefined) {
      throw new Error('This browser gave an incomplete push subscription.');
    }
    await api.setPush({ subscription: { endpoint: json.endpoint, keys: { p256dh: json.keys['p256dh'], auth: json.keys['auth'] } } });
  };

  const turnOff = async (): Promise<void> => {
    await api.setPush({ subscription: null });
    const registration = await navigator.serviceWorker.ready;
    await (await registration.pushManager.getSubscription())?.unsubscribe();
  };

  const run = (action: () => Promise<void>) => {
    if (busy) return;
    setBusy(true);
    setProblem(null);
    action()
      .catch((error: unknown) => setProblem(error instanceof Error ? error.message : String(error)))
      .finally(() => setBusy(false));
  };

  return (
    <section class="card stack" aria-labelledby="device-title">
      <h2 id="device-title">Notifications and offline</h2>
      {support === 'supported' ? (
        <>
          <p class="hint">
            {on
              ? 'On: when friends write while Covey is closed, this device shows “New messages in Covey” with a count, never names or words.'
              : 'Get “New messages in Covey” (a count, never names or words) when friends write while Covey is closed. Your relay and your browser’s push service then learn when you receive messages, not what they say.'}
          </p>
          <button type="button" class="btn" disabled={busy} onClick={() => run(on ? turnOff : turnOn)}>
            {busy ? (on ? 'Turning off…' : 'Turning on…') : on ? 'Turn off notifications' : 'Turn on notifications'}
          </button>
          {problem !== null && (
            <p class="error-text" role="alert">
              {problem}
            </p>
          )}
        </>
      ) : (
        <p class="hint">
          {support === 'needs-install'
            ? 'On iPhone and iPad, notifications need Covey on the Home Screen: install it (Share, then Add to Home Screen) and open it from there.'
            : 'This browser cannot wake Covey while it is closed: you see new messages when you open it.'}
        </p>
      )}
      <p class="hint">
        {backgroundSyncSupported.value
          ? 'Messages written offline are sent when the connection returns, even if Covey is closed by then.'
          : 'Messages written offline wait on this device and are sent when Covey is open and online again.'}
      </p>
    </section>
  );
}
