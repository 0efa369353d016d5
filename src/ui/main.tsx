/**
 * The app's entry: starts the engine's Web Worker (src/worker/main.ts: keys, crypto, store and
 * relays live there, never on this thread) and renders the UI on its typed bridge.
 */
import { WorkerClient } from '../shared/worker-bridge.js';
import { mountApp, mountFatal } from './app/mount.js';

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');

const worker = new Worker(new URL('../worker/main.ts', import.meta.url), { type: 'module', name: 'covey-engine' });
worker.addEventListener('error', (event) => {
  event.preventDefault();
  mountFatal(root, 'The part of Covey that encrypts and stores your messages did not start. Reloading usually helps; if not, this browser may be too old for Covey.');
});
mountApp(root, new WorkerClient(worker));
