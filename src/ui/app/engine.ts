/**
 * The UI's handle on the engine: the WorkerClient (commands and view watches over the typed
 * bridge, src/shared/worker-bridge.ts) in a Preact context, and hooks that turn a watched view
 * into component state. Components render view models only (STYLE.md §9): nothing here holds
 * keys, runs crypto or talks to the relay.
 */
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { WorkerClient } from '../../shared/worker-bridge.js';
import { WorkerError, type ViewName, type WorkerApi, type WorkerViews } from '../../shared/worker-api.js';

export const EngineContext = createContext<WorkerClient | null>(null);

/**
 * The chat list, watched by the root from the page's start (App) and read by ChatList: the
 * worker pushes it together with the app view that says `ready`, instead of after the page has
 * rendered that view and sent a watch of its own, which then queued behind the sessions' restore
 * in the worker (bench:catchup cold start, traced: ~200 ms). Null outside App (ChatList watches).
 */
export const ConversationsContext = createContext<ViewState<WorkerViews['conversations']['value']> | null>(null);

export function useClient(): WorkerClient {
  const client = useContext(EngineContext);
  if (client === null) throw new Error('useClient outside <EngineContext.Provider>');
  return client;
}

export function useApi(): WorkerApi {
  return useClient().api;
}

export type ViewState<V> =
  | { readonly status: 'loading' }
  | { readonly status: 'ready'; readonly value: V }
  | { readonly status: 'ended'; readonly error: WorkerError };

/**
 * Watches one view for as long as the component is mounted (and re-watches when `key` changes:
 * the params' identity, e.g. a conversation id and window size).
 */
export function useView<V extends ViewName>(view: V, params: WorkerViews[V]['params'] | null, key: string): ViewState<WorkerViews[V]['value']> {
  const client = useClient();
  const [state, setState] = useState<ViewState<WorkerViews[V]['value']>>({ status: 'loading' });
  useEffect(() => {
    if (params === null) return undefined;
    setState({ status: 'loading' });
    try {
      return client.watch(
        view,
        params,
        (value) => setState({ status: 'ready', value }),
        (error) => setState({ status: 'ended', error }),
      );
    } catch (error) {
      setState({ status: 'ended', error: asWorkerError(error) });
      return undefined;
    }
    // `key` names the params; the object itself is rebuilt on every render.
  }, [client, view, key]);
  return state;
}

export function asWorkerError(error: unknown): WorkerError {
  if (error instanceof WorkerError) return error;
  return new WorkerError('internal', error instanceof Error ? error.message : String(error));
}

/**
 * Runs one command for a control: `pending` while it runs (disable the control, say "Adding…"),
 * `error` with the worker's plain words when it was refused. A second run while one is pending is
 * ignored, so a double click never sends twice.
 */
export function useAction<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
): { run: (...args: A) => Promise<R | undefined>; pending: boolean; error: WorkerError | null; clearError: () => void } {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<WorkerError | null>(null);
  const running = useRef(false);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const actionRef = useRef(action);
  actionRef.current = action;
  const run = useCallback(async (...args: A): Promise<R | undefined> => {
    if (running.current) return undefined;
    running.current = true;
    setPending(true);
    setError(null);
    try {
      return await actionRef.current(...args);
    } catch (caught) {
      if (mounted.current) setError(asWorkerError(caught));
      return undefined;
    } finally {
      running.current = false;
      if (mounted.current) setPending(false);
    }
  }, []);
  const clearError = useCallback(() => setError(null), []);
  return { run, pending, error, clearError };
}
