/**
 * What the person must know about the whole app, on top of the list: the relay cannot be reached
 * (and how many messages wait), security and delivery alerts that belong to no conversation
 * (AppView.alerts: a contact's key changed, a request was refused), and that the browser may
 * delete data.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { AppView } from '../../shared/worker-api.js';
import { Icon } from '../components/icons.js';
import { asSentence } from '../format/words.js';

/** The storage warning can be put away (it stays in Settings); remembered in this browser. */
const STORAGE_NOTE_KEY = 'covey.storage-note-dismissed';

function storageNoteDismissed(): boolean {
  try {
    return localStorage.getItem(STORAGE_NOTE_KEY) === '1';
  } catch {
    return false;
  }
}

/** Alerts beyond these are still counted ("and 3 more"): a burst must not bury the chat list. */
const MAX_ALERTS_SHOWN = 3;

export function StatusBar({ app }: { app: AppView }): JSX.Element | null {
  const [dismissed, setDismissed] = useState(storageNoteDismissed);
  // The worker keeps alerts for this session only; putting one away is for this page's life too.
  const [putAway, setPutAway] = useState<ReadonlySet<string>>(new Set());
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
    const waiting = relay.messages > 0 ? ` ${relay.messages} ${relay.messages === 1 ? 'message waits' : 'messages wait'} to be sent.` : '';
    lines.push(
      <p key={relay.url} class="status-line status-offline">
        <Icon name="wifiOff" small />
        <span>
          {relay.problem === null ? (relay.state === 'connecting' ? `Connecting to ${host}…` : `Offline: cannot reach ${host}.`) : asSentence(relay.problem)}
          {waiting}
        </span>
      </p>,
    );
  }
  const alerts = (app.alerts ?? []).filter((alert) => !putAway.has(alert.id));
  for (const alert of alerts.slice(0, MAX_ALERTS_SHOWN)) {
    lines.push(
      <div key={alert.id} class={`status-line status-${alert.tone}`}>
        <Icon name={alert.tone === 'info' ? 'info' : 'alert'} small />
        <span>
          <strong>{alert.text}</strong>
          {alert.whatToDo !== null && <> {alert.whatToDo}</>}
        </span>
        <button type="button" class="icon-btn status-dismiss" aria-label={`Dismiss: ${alert.text}`} onClick={() => setPutAway(new Set([...putAway, alert.id]))}>
          <Icon name="close" small />
        </button>
      </div>,
    );
  }
  if (alerts.length > MAX_ALERTS_SHOWN) {
    const more = alerts.length - MAX_ALERTS_SHOWN;
    lines.push(
      <p key="more-alerts" class="status-line status-info">
        <span>
          {more} more {more === 1 ? 'alert' : 'alerts'}: dismiss the ones above to see {more === 1 ? 'it' : 'them'}.
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
