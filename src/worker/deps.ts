/**
 * Everything the worker core takes from its runtime, injected so the same core runs in the browser
 * (src/worker/main.ts wires the real ones) and in Node tests (fake-indexeddb, Node fetch, `ws`, an
 * in-memory lock manager, fake clocks).
 */
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import type { SessionConfig } from '../protocol/session/index.js';
import type { FetchLike, WebSocketConstructor } from './relay-client.js';

/** The part of the Web Locks API the engine uses (navigator.locks). */
export interface LockManagerLike {
  request(name: string, options: { mode?: 'exclusive'; ifAvailable?: boolean; steal?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<unknown>): Promise<unknown>;
}

/** BroadcastChannel, for the tab hand-over message. */
export interface BroadcastLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  close(): void;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Crash injection (tests): called at each named step; throwing there stops the engine dead. */
export type FaultHook = (point: FaultPoint, detail: string) => void;
export type FaultPoint = 'after-session-call' | 'before-commit' | 'after-queue' | 'after-persist' | 'after-post' | 'after-outbox-delete';

export interface ClientDeps {
  readonly indexedDB: IDBFactory;
  /** Database name (tests: one per simulated profile on a shared factory). */
  readonly dbName?: string;
  readonly fetch: FetchLike;
  readonly WebSocket: WebSocketConstructor;
  readonly crypto: CryptoProvider;
  readonly now: () => number;
  readonly timers: Timers;
  /** The app's origin: contact and invite links start with it. */
  readonly appOrigin: string;
  /** Relay used when createIdentity names none (the app's own origin in the browser). */
  readonly defaultRelay: string;
  /** navigator.storage.persisted(), where the runtime has it. */
  readonly persisted?: () => Promise<boolean>;
  readonly sessionConfig?: SessionConfig;
  /** PBKDF2 iterations for new passphrases; production uses PBKDF2_ITERATIONS (tests go lower). */
  readonly pbkdf2Iterations?: number;
  readonly fault?: FaultHook;
  /** Relay events per receive page (tests: small, to make a backlog of a few messages several pages); production: RECEIVE_PAGE / BACKLOG_PAGE. */
  readonly receivePage?: number;
  /** Inbox records read first when the app opens, before the rest (tests: small, to read a few in two reads); production: INBOX_FIRST_READ. */
  readonly inboxFirstRead?: number;
  /**
   * false: every post goes over HTTP, never as a `post` frame over the open socket (tests of the
   * HTTP path that hold or fail its requests); default true (relays.ts).
   */
  readonly socketPosts?: boolean;
  /** Diagnostics (never keys or plaintext). */
  readonly log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}
