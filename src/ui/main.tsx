/**
 * The app's entry: starts the engine's Web Worker (src/worker/main.ts: keys, crypto, store and
 * relays live there, never on this thread) and renders the UI on its typed bridge.
 */
import { WorkerClient } from '../shared/worker-bridge.js';
import { mountApp, mountFatal, mountInsecure } from './app/mount.js';
import { startBackgroundWork, startShell } from './shell/index.js';

const root = document.getElementById('app');
const shellRoot = document.getElementById('shell');
if (!root || !shellRoot) throw new Error('index.html has no #app or #shell element');

if (!window.isSecureContext) {
  // Plain http:// from another machine: no WebCrypto, service worker or Web Locks. Explain,
  // rather than let the engine fail at its first key.
  mountInsecure(root);
} else {
  // The engine's worker first: it has the most to do before anything can be shown (load its
  // script, open the store, restore every conversation), and it runs on its own thread.
  const worker = new Worker(new URL('../worker/main.ts', import.meta.url), { type: 'module', name: 'covey-engine' });
  // The service worker (offline, updates) and its prompts, independent of the engine and screens.
  startShell(shellRoot);
  startEngine(root, worker);
}

function startEngine(root: HTMLElement, worker: Worker): void {
  worker.addEventListener('error', (event) => {
    event.preventDefault();
    mountFatal(root, 'The part of Covey that encrypts and stores your messages did not start. Reloading usually helps; if not, this browser may be too old for Covey.');
  });
  const client = new WorkerClient(worker);
  mountApp(root, client);
  // Background Sync while packets wait for the network; notifications closed once the app shows.
  startBackgroundWork(client);

  // A page kept in the back/forward cache keeps its worker, and so the engine's Web Lock: the next
  // Covey page in this tab would find Covey "open in another tab" (WebKit caches such pages). So
  // the engine stops when the page goes into the cache, and a page restored from it starts afresh.
  window.addEventListener('pagehide', (event) => {
    if (event.persisted) worker.terminate();
  });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) window.location.reload();
  });
}
