import { render } from 'preact';

/** Placeholder shell until the app issues land: says honestly what exists so far. */
function App() {
  return (
    <main>
      <h1>Covey</h1>
      <p>End-to-end encrypted group chat. The engine and relay are being built; the chat UI comes next.</p>
    </main>
  );
}

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');
render(<App />, root);
