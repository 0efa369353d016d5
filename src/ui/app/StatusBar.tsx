/**
 * What the person must know about the whole app, on top of the list: the relay cannot be reached
 * (and how many messages wait), and that the browser may delete data.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { AppView } from '../../shared/worker-api.js';
import { Icon } from '../components/icons.js';

/** The storage warning can be put away (it stays in Settings); remembered in this browser. */
const STORAGE_NOTE_KEY = 'covey.storage-note-dismissed';

function storageNoteDismissed(): boolean {
  try {
    return localStorage.getItem(STORAGE_NOTE_KEY) === '1';
  } catch {
    return false;
  }
}

export function StatusBar({ app }: { app: AppView }): JSX.Element | null {
  const [dismissed, setDismissed] = useState(storageNoteDismissed);
  const dismiss = () => {
    setDismissed(true);
    try {
      localStorage.setItem(STORAGE_NOTE_KEY, '1');
    } catch {
      // shown again next time: harmless
    }
  };
  const troubled = app.relays.filter((relay) => relay.state !== 'connected');
  const lines: JSX.Element[] = [];
  for (const relay of troubled) {
    const host = hostOf(relay.url);
    const waiting = relay.queued > 0 ? ` ${relay.queued} ${relay.queued === 1 ? 'message waits' : 'messages wait'} to be sent.` : '';
    lines.push(
      <p key={relay.url} class="status-line status-offline">
        <Icon name="wifiOff" small />
        <span>
          {relay.problem ?? (relay.state === 'connecting' ? `Connecting to ${host}…` : `Offline: cannot reach ${host}.`)}
          {waiting}
        </span>
      </p>,
    );
  }
  if (app.persistence === 'refused' && !dismissed) {
    lines.push(
      <div key="persistence" class="status-line status-warning">
        <Icon name="alert" small />
        <span>This browser may delete Covey’s messages and keys when it runs low on space. Installing Covey or bookmarking it usually stops that.</span>
        <button type="button" class="icon-btn status-dismiss" aria-label="Dismiss the storage warning" onClick={dismiss}>
          <Icon name="close" small />
        </button>
      </div>,
    );
  }
  if (lines.length === 0) return null;
  return (
    <div class="status-bar" role="status">
      {lines}
    </div>
  );
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
