/**
 * The service worker's door into the client's IndexedDB database: only the transit stores, by the
 * rules of src/shared/client-db.ts (open without a version; never create the database; step aside
 * when the worker migrates). Plain IndexedDB with small promise helpers: a handful of calls.
 */
import { CLIENT_DB_NAME, TRANSIT_STORES } from '../src/shared/client-db.js';

/** What the service worker's jobs run on; the real globals in sw.ts, fakes in Node tests. */
export interface ServiceWorkerDeps {
  readonly indexedDB: IDBFactory;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly now: () => number;
}

export type TransitStore = (typeof TRANSIT_STORES)[keyof typeof TRANSIT_STORES];

export function settled<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

export function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/**
 * The client database, or null when there is none yet (nothing to move) or it predates the
 * transit stores. Closes itself when the worker opens a newer version, so migrations never wait
 * for the service worker.
 */
export function openClientDb(factory: IDBFactory): Promise<IDBDatabase | null> {
  return new Promise((resolve, reject) => {
    let creating = false;
    const open = factory.open(CLIENT_DB_NAME);
    open.onupgradeneeded = () => {
      // No database yet: creating it is the worker's job (schema and migrations).
      creating = true;
      open.transaction?.abort();
    };
    open.onsuccess = () => {
      const db = open.result;
      db.onversionchange = () => db.close();
      const stores = Object.values(TRANSIT_STORES);
      if (stores.every((name) => db.objectStoreNames.contains(name))) resolve(db);
      else {
        db.close();
        resolve(null);
      }
    };
    open.onerror = () => {
      if (creating) resolve(null);
      else reject(open.error ?? new Error('cannot open the client database'));
    };
  });
}

export async function getAll<T>(db: IDBDatabase, store: TransitStore, query?: IDBKeyRange): Promise<T[]> {
  return (await settled(db.transaction(store, 'readonly').objectStore(store).getAll(query))) as T[];
}
