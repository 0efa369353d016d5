/**
 * The typed postMessage bridge between the UI thread and the engine's Web Worker (issue 10 §3;
 * after Squoosh's worker bridge: calls with ids, typed errors, timeouts, and a stream of view
 * updates). Both halves live here so they are tested together:
 *
 * - UI side: `new WorkerClient(port)` → `client.call('send', {...})`, `client.api.send({...})`,
 *   `client.watch('conversation', { conversationId }, (view) => ...)`.
 * - Worker side: `serveBridge(port, handler)`.
 *
 * `port` is anything with postMessage/addEventListener('message'): a `Worker`, the worker's
 * global scope, or a `MessagePort` (tests use Node's MessageChannel). ES2022 only: the timer
 * functions are looked up on globalThis so this file needs no DOM or WebWorker lib.
 */
import {
  WorkerError,
  type CommandName,
  type CommandParams,
  type CommandResult,
  type ConversationView,
  type ViewName,
  type WorkerApi,
  type WorkerErrorBody,
  type WorkerErrorCode,
  type WorkerViews,
} from './worker-api.js';
import { applyConversationPatch, type ConversationPatch } from './view-patch.js';

/** The part of Worker / MessagePort / DedicatedWorkerGlobalScope the bridge uses. */
export interface BridgePort {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  removeEventListener?(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  /** MessagePort needs it after addEventListener (a Worker has none). */
  start?(): void;
}

// ---- envelopes ------------------------------------------------------------------------------

/** UI → worker. `id` is chosen by the UI side, unique per bridge. */
export type BridgeRequest =
  | { readonly t: 'call'; readonly id: number; readonly command: CommandName; readonly params: unknown }
  | { readonly t: 'watch'; readonly id: number; readonly view: ViewName; readonly params: unknown }
  | { readonly t: 'unwatch'; readonly id: number };

/** Worker → UI. */
export type BridgeResponse =
  | { readonly t: 'result'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'result'; readonly id: number; readonly ok: false; readonly error: WorkerErrorBody }
  /** A new value of watch `id` (the whole view). */
  | { readonly t: 'view'; readonly id: number; readonly value: unknown }
  /** A conversation watch's change since the value before (src/shared/view-patch.ts). */
  | { readonly t: 'view-patch'; readonly id: number; readonly patch: ConversationPatch }
  /** Watch `id` ended with an error (e.g. its conversation was deleted); no more updates. */
  | { readonly t: 'view-error'; readonly id: number; readonly error: WorkerErrorBody };

// ---- limits ---------------------------------------------------------------------------------

/** Default time a call may take before the UI gives up on it (the worker may still finish it). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/**
 * Commands that run PBKDF2 (600,000 iterations: ~1 s on a phone, more on an old one) or wait for
 * the relay and a lock hand-over get longer.
 */
export const SLOW_CALL_TIMEOUT_MS = 120_000;
export const SLOW_COMMANDS: ReadonlySet<CommandName> = new Set<CommandName>([
  'createIdentity',
  'setPassphrase',
  'clearPassphrase',
  'unlock',
  'useEngineHere',
  'acceptInvitation',
  'createInviteLink',
  'exportBackup',
  'importBackup',
]);
/** Calls in flight on one bridge: a runaway UI loop fails fast instead of queueing forever. */
export const MAX_CALLS_IN_FLIGHT = 1_000;
/** Open watches on one bridge (each open conversation is one). */
export const MAX_WATCHES = 100;

const ERROR_CODES: ReadonlySet<string> = new Set<WorkerErrorCode>([
  'bad-request',
  'not-found',
  'no-identity',
  'locked',
  'engine-elsewhere',
  'starting',
  'bad-link',
  'expired',
  'own-card',
  'wrong-passphrase',
  'key-mismatch',
  'send-held',
  'invalid-state',
  'refused',
  'offline',
  'storage',
  'timeout',
  'internal',
]);

interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
const globalTimers = globalThis as unknown as Timers;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorBody(value: unknown): WorkerErrorBody {
  if (isRecord(value) && typeof value.code === 'string' && ERROR_CODES.has(value.code) && typeof value.message === 'string') {
    return { code: value.code as WorkerErrorCode, message: value.message };
  }
  return { code: 'internal', message: 'malformed error from the worker' };
}

/** Any thrown value as an error body: WorkerErrors keep their code, anything else is 'internal'. */
export function toErrorBody(error: unknown): WorkerErrorBody {
  if (error instanceof WorkerError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message: `internal error: ${message}` };
}

// ---- UI side --------------------------------------------------------------------------------

export interface WorkerClientOptions {
  readonly defaultTimeoutMs?: number;
  readonly timers?: Timers;
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: WorkerError): void;
  timer: unknown;
}

interface Watch {
  listener(value: unknown): void;
  onError: ((error: WorkerError) => void) | undefined;
  /** The value last given to `listener`: the base of the next patch. */
  last: unknown;
}

export class WorkerClient {
  private nextId = 1;
  private readonly calls = new Map<number, PendingCall>();
  private readonly watches = new Map<number, Watch>();
  private readonly timers: Timers;
  private readonly defaultTimeoutMs: number;
  private closed = false;
  private readonly onMessage = (event: { readonly data: unknown }) => this.receive(event.data);

  /** Every command as a method: `await client.api.send({ conversationId, text })`. */
  readonly api: WorkerApi;

  constructor(
    private readonly port: BridgePort,
    options: WorkerClientOptions = {},
  ) {
    this.timers = options.timers ?? globalTimers;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    port.addEventListener('message', this.onMessage);
    port.start?.();
    this.api = new Proxy({} as WorkerApi, {
      get: (_target, command) => (typeof command === 'string' ? (params: unknown) => this.call(command as CommandName, params as never) : undefined),
    });
  }

  /** Runs one command; rejects with a WorkerError (its `code` says why). */
  call<C extends CommandName>(command: C, params: CommandParams<C>, options: { timeoutMs?: number } = {}): Promise<CommandResult<C>> {
    if (this.closed) return Promise.reject(new WorkerError('invalid-state', 'the connection to the engine is closed'));
    if (this.calls.size >= MAX_CALLS_IN_FLIGHT) return Promise.reject(new WorkerError('invalid-state', 'too many commands waiting for the engine'));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? (SLOW_COMMANDS.has(command) ? SLOW_CALL_TIMEOUT_MS : this.defaultTimeoutMs);
    return new Promise<CommandResult<C>>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.calls.delete(id);
        reject(new WorkerError('timeout', `the engine did not answer "${command}" within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.post({ t: 'call', id, command, params });
    });
  }

  /**
   * Watches a view: `listener` gets its whole value now and after every change, until the
   * returned function is called (or `onError` reports that the view ended). A conversation's
   * changes arrive as patches; the value given is rebuilt from them, and every timeline item that
   * did not change is the same object as in the value before (memoise on it to render only what
   * changed).
   */
  watch<V extends ViewName>(
    view: V,
    params: WorkerViews[V]['params'],
    listener: (value: WorkerViews[V]['value']) => void,
    onError?: (error: WorkerError) => void,
  ): () => void {
    if (this.closed) throw new WorkerError('invalid-state', 'the connection to the engine is closed');
    if (this.watches.size >= MAX_WATCHES) throw new WorkerError('invalid-state', `at most ${MAX_WATCHES} views at once`);
    const id = this.nextId++;
    this.watches.set(id, { listener: listener as (value: unknown) => void, onError, last: undefined });
    this.post({ t: 'watch', id, view, params });
    return () => {
      if (this.watches.delete(id) && !this.closed) this.post({ t: 'unwatch', id });
    };
  }

  /** Stops listening; pending calls fail with 'invalid-state'. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.port.removeEventListener?.('message', this.onMessage);
    for (const [id, call] of this.calls) {
      this.timers.clearTimeout(call.timer);
      call.reject(new WorkerError('invalid-state', 'the connection to the engine is closed'));
      this.calls.delete(id);
    }
    this.watches.clear();
  }

  private post(request: BridgeRequest): void {
    this.port.postMessage(request);
  }

  private receive(data: unknown): void {
    if (!isRecord(data) || typeof data.id !== 'number') return;
    switch (data.t) {
      case 'result': {
        const call = this.calls.get(data.id);
        if (call === undefined) return; // timed out already
        this.calls.delete(data.id);
        this.timers.clearTimeout(call.timer);
        if (data.ok === true) call.resolve(data.value);
        else {
          const body = errorBody(data.error);
          call.reject(new WorkerError(body.code, body.message));
        }
        return;
      }
      case 'view': {
        const watch = this.watches.get(data.id);
        if (watch === undefined) return;
        watch.last = data.value;
        watch.listener(data.value);
        return;
      }
      case 'view-patch': {
        const watch = this.watches.get(data.id);
        if (watch === undefined) return;
        // The worker patches only what it sent whole before on this watch: anything else is a bug.
        if (!isRecord(watch.last)) throw new Error(`view patch for watch ${data.id} before its first value`);
        const value = applyConversationPatch(watch.last as unknown as ConversationView, data.patch as ConversationPatch);
        watch.last = value;
        watch.listener(value);
        return;
      }
      case 'view-error': {
        const watch = this.watches.get(data.id);
        if (watch === undefined) return;
        this.watches.delete(data.id);
        const body = errorBody(data.error);
        watch.onError?.(new WorkerError(body.code, body.message));
        return;
      }
    }
  }
}

// ---- worker side ----------------------------------------------------------------------------

export interface BridgeHandler {
  /** Runs a command; throw WorkerError for refusals. Params are unchecked input: validate them. */
  call(command: string, params: unknown): Promise<unknown>;
  /**
   * Starts a watch: call `push` with the view's value now and whenever it changes; return the
   * function that stops it. Throw WorkerError for an unknown view or bad params. With `pushPatch`,
   * a conversation's later values may go as patches against the value pushed before.
   */
  watch(view: string, params: unknown, push: (value: unknown) => void, fail: (error: WorkerErrorBody) => void, pushPatch?: (patch: ConversationPatch) => void): () => void;
}

/** Serves `handler` on `port`; returns a function that stops serving (and every watch). */
export function serveBridge(port: BridgePort, handler: BridgeHandler): () => void {
  const watches = new Map<number, () => void>();
  const post = (response: BridgeResponse) => port.postMessage(response);
  const onMessage = (event: { readonly data: unknown }) => {
    const data = event.data;
    // Malformed envelopes carry no id to answer to: dropped (the UI side is ours; this is fuzz).
    if (!isRecord(data) || typeof data.id !== 'number' || !Number.isSafeInteger(data.id)) return;
    const id = data.id;
    switch (data.t) {
      case 'call': {
        const command = data.command;
        if (typeof command !== 'string') {
          post({ t: 'result', id, ok: false, error: { code: 'bad-request', message: 'command must be a string' } });
          return;
        }
        handler.call(command, data.params).then(
          (value) => post({ t: 'result', id, ok: true, value }),
          (error: unknown) => post({ t: 'result', id, ok: false, error: toErrorBody(error) }),
        );
        return;
      }
      case 'watch': {
        if (watches.has(id)) return;
        if (watches.size >= MAX_WATCHES) {
          post({ t: 'view-error', id, error: { code: 'invalid-state', message: `at most ${MAX_WATCHES} views at once` } });
          return;
        }
        let ended = false;
        const fail = (error: WorkerErrorBody) => {
          if (ended) return;
          ended = true;
          watches.get(id)?.();
          watches.delete(id);
          post({ t: 'view-error', id, error });
        };
        try {
          const stop = handler.watch(
            typeof data.view === 'string' ? data.view : '',
            data.params,
            (value) => {
              if (!ended) post({ t: 'view', id, value });
            },
            fail,
            (patch) => {
              if (!ended) post({ t: 'view-patch', id, patch });
            },
          );
          if (ended) stop();
          else watches.set(id, stop);
        } catch (error) {
          fail(toErrorBody(error));
        }
        return;
      }
      case 'unwatch':
        watches.get(id)?.();
        watches.delete(id);
        return;
    }
  };
  port.addEventListener('message', onMessage);
  port.start?.();
  return () => {
    port.removeEventListener?.('message', onMessage);
    for (const stop of watches.values()) stop();
    watches.clear();
  };
}
