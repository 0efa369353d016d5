/**
 * Whole-screen states before the app is ready (src/worker/README.md "Phases"): opening, another
 * tab has the engine, the store cannot be opened.
 */
import type { JSX } from 'preact';
import type { AppView } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { ErrorText } from '../../components/Notice.js';
import { Icon } from '../../components/icons.js';

export function Starting({ text = 'Opening Covey…' }: { text?: string }): JSX.Element {
  return (
    <main class="phase" aria-busy="true">
      <div class="phase-card">
        <span class="spinner" aria-hidden="true" />
        <p role="status">{text}</p>
      </div>
    </main>
  );
}

/** Issue 10 §1: one engine per profile (Web Locks); this tab can take it over. */
export function EngineElsewhere(): JSX.Element {
  const api = useApi();
  const take = useAction(() => api.useEngineHere({}));
  return (
    <main class="phase">
      <div class="phase-card stack">
        <h1>Covey is open in another tab</h1>
        <p>Covey runs in one tab or window at a time, so messages are never handled twice. You can keep using the other tab, or use Covey here instead.</p>
        <button type="button" class="btn btn-primary" onClick={() => void take.run()} disabled={take.pending}>
          {take.pending ? 'Moving Covey here…' : 'Use Covey here'}
        </button>
        <ErrorText error={take.error} />
      </div>
    </main>
  );
}

export function Failed({ app }: { app: AppView }): JSX.Element {
  const storage = app.failure?.code === 'storage';
  return (
    <main class="phase">
      <div class="phase-card stack">
        <Icon name="alert" />
        <h1>Covey cannot open its storage</h1>
        <p>{app.failure?.text ?? 'Something went wrong while opening Covey.'}</p>
        {storage && <p>Private or incognito windows, and browsers set to keep no site data, do not let Covey store messages and keys. Open Covey in a normal window.</p>}
        <button type="button" class="btn btn-primary" onClick={() => location.reload()}>
          Try again
        </button>
      </div>
    </main>
  );
}

/** The bridge itself failed (the worker could not start): nothing else can work. */
export function EngineDown({ message }: { message: string }): JSX.Element {
  return (
    <main class="phase">
      <div class="phase-card stack">
        <h1>Covey could not start</h1>
        <p>{message}</p>
        <button type="button" class="btn btn-primary" onClick={() => location.reload()}>
          Reload
        </button>
      </div>
    </main>
  );
}

/**
 * Opened over plain http:// from another device: browsers give WebCrypto, service workers and
 * Web Locks to secure pages only (https://, or localhost on the same computer), so the engine
 * cannot run. Say why and what to do, instead of failing at the first key.
 */
export function NeedsSecureOrigin({ host }: { host: string }): JSX.Element {
  return (
    <main class="phase">
      <div class="phase-card stack">
        <h1>Covey needs a secure connection</h1>
        <p>
          This page came from <span class="mono">http://{host}</span> without encryption. Browsers let only secure pages use the tools Covey encrypts
          your messages with, so Covey cannot start here.
        </p>
        <p>Open Covey at its https:// address instead.</p>
        <p class="hint">
          Running this relay yourself? Give it a certificate (RELAY_TLS_CERT and RELAY_TLS_KEY) or put it behind an HTTPS proxy. On the relay’s own
          computer, http://localhost works as it is.
        </p>
      </div>
    </main>
  );
}
