/**
 * The root: one screen per app phase (src/worker/README.md "Phases"); when ready, the chat layout.
 * Keeps the document title in step with the unread count.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AppPhase } from '../../shared/worker-api.js';
import { EngineDown, EngineElsewhere, Failed, Starting } from '../screens/phases/Phases.js';
import { Lock } from '../screens/lock/Lock.js';
import { Welcome } from '../screens/welcome/Welcome.js';
import { ConversationsContext, useApi, useView } from './engine.js';
import { Layout } from './Layout.js';

const EMPTY = {};

/**
 * sessionStorage (this tab only; kept across a reload, not given to other tabs): this page ran the
 * engine. The engine's lock is queued for by every other Covey tab, so reloading the tab in use
 * handed Covey to a tab in the background, and the reloaded one said "open in another tab".
 */
const ENGINE_HERE_KEY = 'covey.engine-here';

function reloaded(): boolean {
  const entry = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
  return entry?.type === 'reload';
}

function flag(set?: boolean): boolean {
  try {
    if (set === true) sessionStorage.setItem(ENGINE_HERE_KEY, '1');
    else if (set === false) sessionStorage.removeItem(ENGINE_HERE_KEY);
    return sessionStorage.getItem(ENGINE_HERE_KEY) === '1';
  } catch {
    return false; // storage refused: a reload may ask "Use Covey here", as before
  }
}

/** After a reload of the tab that ran Covey, takes the engine back from the tab that grabbed it. */
function useEngineStaysOnReload(phase: AppPhase | null): boolean {
  const api = useApi();
  const first = useRef(true);
  const [taking, setTaking] = useState(false);
  useEffect(() => {
    if (phase === null || phase === 'starting') return;
    const isFirst = first.current;
    first.current = false;
    if (phase !== 'engine-elsewhere') {
      flag(true);
      return;
    }
    if (isFirst && flag() && reloaded()) {
      setTaking(true);
      void api
        .useEngineHere({})
        .catch(() => undefined) // the screen below offers it again
        .finally(() => setTaking(false));
      return;
    }
    flag(false);
  }, [phase]);
  return taking;
}

export function App(): JSX.Element {
  const app = useView('app', EMPTY, 'app');
  // Watched from the start: the worker pushes it with the app view that says ready (engine.ts).
  const conversations = useView('conversations', EMPTY, 'conversations');
  const taking = useEngineStaysOnReload(app.status === 'ready' ? app.value.phase : null);
  const unread = app.status === 'ready' ? app.value.unread : 0;
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Covey` : 'Covey';
  }, [unread]);
  if (app.status === 'loading') return <Starting />;
  if (app.status === 'ended') return <EngineDown message={app.error.message} />;
  const view = app.value;
  switch (view.phase) {
    case 'starting':
      return <Starting />;
    case 'no-identity':
      return <Welcome />;
    case 'locked':
      return <Lock />;
    case 'engine-elsewhere':
      return taking ? <Starting /> : <EngineElsewhere />;
    case 'failed':
      return <Failed app={view} />;
    case 'ready':
      return (
        <ConversationsContext.Provider value={conversations}>
          <Layout app={view} />
        </ConversationsContext.Provider>
      );
  }
}
