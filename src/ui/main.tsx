import { render } from 'preact';
import { InstallOffer, UpdatePrompt, startShell } from './shell/index.js';
import './placeholder.css';

/** Placeholder screen until the chat UI lands (issue 11): says honestly what exists so far. */
function App() {
  return (
    <>
      <main class="placeholder">
        <h1>Covey</h1>
        <p>End-to-end encrypted group chat. The engine and relay are built; the chat screens come next.</p>
        <InstallOffer />
      </main>
      <UpdatePrompt />
    </>
  );
}

startShell();
const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');
render(<App />, root);
