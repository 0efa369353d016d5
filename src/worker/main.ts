/**
 * Browser entry of the engine's Web Worker: wires the real runtime (IndexedDB, fetch, WebSocket,
 * Web Locks, BroadcastChannel, WebCrypto through the hybrid provider) into the EngineHost and
 * serves the bridge on the worker's global scope. The UI starts it with
 * `new Worker(new URL('../worker/main.ts', import.meta.url), { type: 'module' })`.
 */
/// <reference lib="webworker" />
import { selectCryptoProvider } from '../protocol/crypto/select.js';
import { serveBridge, type BridgePort } from '../shared/worker-bridge.js';
import { EngineHost } from './engine-host.js';
import type { FetchLike, WebSocketConstructor } from './relay-client.js';

declare const self: DedicatedWorkerGlobalScope;

const origin = self.location.origin;
const crypto = await selectCryptoProvider();
const host = new EngineHost({
  indexedDB: self.indexedDB,
  fetch: ((input, init) => self.fetch(input, init as RequestInit)) as FetchLike,
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  crypto,
  now: () => Date.now(),
  timers: { setTimeout: (callback, ms) => self.setTimeout(callback, ms), clearTimeout: (handle) => self.clearTimeout(handle as number) },
  appOrigin: origin,
  defaultRelay: origin,
  persisted: self.navigator.storage?.persisted === undefined ? undefined : () => self.navigator.storage.persisted(),
  locks: self.navigator.locks,
  broadcast: (name) => new BroadcastChannel(name),
  log: (level, message) => (level === 'error' ? console.error : level === 'warn' ? console.warn : console.info)(`[covey] ${message}`),
});
serveBridge(self as unknown as BridgePort, host);
await host.start();
