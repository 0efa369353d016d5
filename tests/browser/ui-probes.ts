/**
 * Functions the chat-flow test runs inside the page (the harness sends their source, so each is
 * self-contained: no imports, no closures over test variables).
 */

export interface TimelineEntry {
  readonly text: string;
  readonly delivery: string | null;
  readonly mine: boolean;
}

/** The conversation on screen, top to bottom: each message's text and delivery state. */
export function timeline(): TimelineEntry[] {
  return [...document.querySelectorAll('.timeline .msg')].map((li) => ({
    text: li.querySelector('.msg-text')?.textContent ?? '',
    delivery: li.getAttribute('data-delivery'),
    mine: li.classList.contains('msg-mine'),
  }));
}

export interface IndexedDbDump {
  readonly stores: number;
  readonly values: number;
  /** Every string, key and byte array (decoded as UTF-8) of every record, one per line. */
  readonly text: string;
}

/** Reads every IndexedDB database of this origin, every store, every record, keys included. */
export async function dumpIndexedDb(): Promise<IndexedDbDump> {
  const parts: string[] = [];
  let stores = 0;
  let values = 0;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const seen = new Set<unknown>();
  const walk = (value: unknown): void => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string') {
      parts.push(value);
      return;
    }
    if (typeof value !== 'object') {
      parts.push(String(value));
      return;
    }
    if (seen.has(value)) return;
    seen.add(value);
    if (value instanceof ArrayBuffer) {
      parts.push(decoder.decode(new Uint8Array(value)));
      return;
    }
    if (ArrayBuffer.isView(value)) {
      parts.push(decoder.decode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)));
      return;
    }
    if (value instanceof Blob) return; // none expected; a Blob would need async reading
    if (value instanceof Map) {
      for (const [k, v] of value) {
        walk(k);
        walk(v);
      }
      return;
    }
    if (Array.isArray(value) || value instanceof Set) {
      for (const item of value) walk(item);
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      parts.push(k);
      walk(v);
    }
  };
  const request = <T>(req: IDBRequest<T>): Promise<T> =>
    new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  for (const info of await indexedDB.databases()) {
    if (info.name === undefined) continue;
    const open = indexedDB.open(info.name);
    const db = await request(open);
    for (const storeName of [...db.objectStoreNames]) {
      stores++;
      const store = db.transaction(storeName, 'readonly').objectStore(storeName);
      const [keys, records] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
      values += records.length;
      walk(keys);
      walk(records);
    }
    db.close();
  }
  return { stores, values, text: parts.join('\n') };
}
