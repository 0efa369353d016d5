/** Renders the app on a WorkerClient: the real engine worker (main.tsx) or a development fake. */
import { render } from 'preact';
import type { WorkerClient } from '../../shared/worker-bridge.js';
import { EngineDown, NeedsSecureOrigin } from '../screens/phases/Phases.js';
import { App } from './App.js';
import { EngineContext } from './engine.js';
import { applyTheme } from './theme.js';
import '../styles/tokens.css';
import '../styles/base.css';
import './app.css';
import '../components/components.css';

export function mountApp(root: HTMLElement, client: WorkerClient): void {
  applyTheme();
  render(
    <EngineContext.Provider value={client}>
      <App />
    </EngineContext.Provider>,
    root,
  );
}

/** The engine could not start at all (its script failed to load or threw): say so, offer a reload. */
export function mountFatal(root: HTMLElement, message: string): void {
  render(<EngineDown message={message} />, root);
}

/** Not a secure context (plain http:// to another machine): the engine cannot run; say why. */
export function mountInsecure(root: HTMLElement): void {
  applyTheme();
  render(<NeedsSecureOrigin host={location.host} />, root);
}
