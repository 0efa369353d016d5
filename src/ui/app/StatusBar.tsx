/**
 * What the person must know about the whole app, on top of the list: the relay cannot be reached
 * (and how many messages wait), and that the browser may delete data.
 */
import type { JSX } from 'preact';
import type { AppView } from '../../shared/worker-api.js';
import { Icon } from '../components/icons.js';

export function StatusBar({ app }: { app: AppView }): JSX.Element | null {
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
  if (app.persistence === 'refused') {
    lines.push(
      <p key="persistence" class="status-line status-warning">
        <Icon name="alert" small />
        <span>This browser may delete Covey’s messages and keys when it runs low on space. Install Covey or bookmark it to keep them.</span>
      </p>,
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
