/**
 * The root: one screen per app phase (src/worker/README.md "Phases"); when ready, the chat layout.
 * Keeps the document title in step with the unread count.
 */
import type { JSX } from 'preact';
import { useEffect } from 'preact/hooks';
import { EngineDown, EngineElsewhere, Failed, Starting } from '../screens/phases/Phases.js';
import { Lock } from '../screens/lock/Lock.js';
import { Welcome } from '../screens/welcome/Welcome.js';
import { useView } from './engine.js';
import { Layout } from './Layout.js';

const EMPTY = {};

export function App(): JSX.Element {
  const app = useView('app', EMPTY, 'app');
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
      return <EngineElsewhere />;
    case 'failed':
      return <Failed app={view} />;
    case 'ready':
      return <Layout app={view} />;
  }
}
