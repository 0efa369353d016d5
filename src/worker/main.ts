/**
 * Browser entry of the engine's Web Worker: wires the real runtime (IndexedDB, fetch, WebSocket,
 * Web Locks, BroadcastChannel, WebCrypto through the hybrid provider) into the EngineHost and
 * serves the bridge on the worker's global scope. The UI starts it with
 * `new Worker(new URL('../worker/main.ts', import.meta.url), { type: 'module' })`.
 *
 * The bridge listens from the first instant, before anything asynchronous: a module worker may
 * dispatch messages while its top-level code still awaits (Firefox does), and a message that
 * finds no listener is lost. Calls and watches that arrive early wait for the host.
 */
/// <reference lib="webworker" />
import { detectCryptoRuntime, detectWebCrypto } from '../protocol/crypto/detect.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import { selectCryptoProvider } from '../protocol/crypto/select.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from '../protocol/session/index.js';
import { serveBridge, toErrorBody, type BridgeHandler, type BridgePort } from '../shared/worker-bridge.js';
import { EngineHost } from './engine-host.js';
import type { FetchLike, WebSocketConstructor } from './relay-client.js';
import { startVerifyThread, VERIFY_THREAD_AHEAD, verifyThreadHelps } from './verify-thread.js';

declare const self: DedicatedWorkerGlobalScope;

const timers = { setTimeout: (callback: () => void, ms: number) => self.setTimeout(callback, ms), clearTimeout: (handle: unknown) => self.clearTimeout(handle as number) };

/**
 * The hybrid provider (select.ts), with its Ed25519 checks on a verifier thread where that helps
 * (Chromium: verify-thread.ts). The relay's CSP allows it (`worker-src 'self'`: the chunk is ours).
 */
async function cryptoProvider(): Promise<{ crypto: CryptoProvider; sessionConfig?: SessionConfig }> {
  const runtime = detectCryptoRuntime();
  const support = await detectWebCrypto();
  const base = await selectCryptoProvider(runtime, async () => support);
  if (!verifyThreadHelps(runtime, support, typeof Worker === 'function')) return { crypto: base };
  const crypto = startVerifyThread(
    base,
    () => new Worker(new URL('./verify-thread-entry.ts', import.meta.url), { type: 'module', name: 'covey-verify' }),
    timers,
    (reason) => console.warn(`[covey] signatures are verified in the engine's worker: ${reason}`),
  );
  // The thread's round trip is hidden only if enough checks are out at once (VERIFY_THREAD_AHEAD).
  return crypto === base ? { crypto } : { crypto, sessionConfig: { ...DEFAULT_SESSION_CONFIG, verifyAhead: VERIFY_THREAD_AHEAD } };
}

async function startHost(): Promise<EngineHost> {
  const origin = self.location.origin;
  const { crypto, sessionConfig } = await cryptoProvider();
  const host = new EngineHost({
    indexedDB: self.indexedDB,
    fetch: ((input, init) => self.fetch(input, init as RequestInit)) as FetchLike,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    crypto,
    sessionConfig,
    now: () => Date.now(),
    timers,
    appOrigin: origin,
    defaultRelay: origin,
    persisted: self.navigator.storage?.persisted === undefined ? undefined : () => self.navigator.storage.persisted(),
    locks: self.navigator.locks,
    broadcast: (name) => new BroadcastChannel(name),
    log: (level, message) => (level === 'error' ? console.error : level === 'warn' ? console.warn : console.info)(`[covey] ${message}`),
  });
  void host.start();
  return host;
}

const hostReady = startHost();

// Reconnect at once when the browser says the network is back, instead of after the backoff
// (a flush on reconnect is how browsers without Background Sync send what waited).
self.addEventListener('online', () => void hostReady.then((host) => host.engine?.networkMayBeBack()));
self.addEventListener('offline', () => void hostReady.then((host) => host.engine?.networkLost()));

/** Serves the bridge at once; everything waits for the host. */
const deferred: BridgeHandler = {
  call: async (command, params) => (await hostReady).call(command, params),
  watch(view, params, push, fail, pushPatch) {
    let stop: (() => void) | null = null;
    let cancelled = false;
    hostReady.then(
      (host) => {
        if (cancelled) return;
        try {
          stop = host.watch(view, params, push, fail, pushPatch);
        } catch (error) {
          fail(toErrorBody(error));
        }
      },
      (error: unknown) => fail({ code: 'internal', message: `the engine did not start: ${String(error)}` }),
    );
    return () => {
      cancelled = true;
      stop?.();
    };
  },
};
serveBridge(self as unknown as BridgePort, deferred);
