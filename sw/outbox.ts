/**
 * Sends what waits in the outbox while no app runs (issue 12 §3: Background Sync flushes it
 * "even with every tab closed"). The service worker holds no key: it sends only the deferred
 * posts the worker presigned for data packets (src/relay/README.md "Deferred posts"), byte for
 * byte, and deletes each record the relay accepted. Exactly once: each post carries its postId,
 * and a worker that retries the same packet later gets the relay's duplicate answer.
 *
 * Order: posts of one channel leave in their queue order, one at a time (mpENC needs one
 * author's packets in sealing order); the first record that cannot leave from here (a membership
 * packet, which is never presigned, or one the relay refused) stops its channel, and everything
 * behind it waits for the worker. Channels go independently.
 */
import type { OutboxRecord } from '../src/shared/client-db.js';
import { DEFERRED_POST_MAX_AGE_MS, relayDeferredPostPath } from '../src/shared/relay-api.js';
import { committed, getAll, openClientDb, settled, type ServiceWorkerDeps } from './client-db.js';

/**
 * A presigned post this close to the relay's age limit is left to the worker: the request could
 * arrive after the limit (slow network, clocks a little apart).
 */
const PRESIGNED_MARGIN_MS = 10 * 60 * 1000;

export interface FlushResult {
  /** Posts the relay accepted (new or duplicate) and that were removed from the outbox. */
  readonly sent: number;
  /** Records still waiting (for the network, or for the worker). */
  readonly left: number;
  /** True when the network or the relay failed: the browser should try again later. */
  readonly retry: boolean;
}

export async function flushOutbox(deps: ServiceWorkerDeps): Promise<FlushResult> {
  const db = await openClientDb(deps.indexedDB);
  if (db === null) return { sent: 0, left: 0, retry: false };
  try {
    const records = await getAll<OutboxRecord>(db, 'outbox');
    const queues = new Map<string, OutboxRecord[]>();
    for (const record of records) queues.set(record.channel, [...(queues.get(record.channel) ?? []), record]);
    // The worker's queue order: queue time, strictly increasing per engine (nextQueueTime).
    for (const queue of queues.values()) queue.sort((a, b) => a.queuedAtMs - b.queuedAtMs || (a.postId < b.postId ? -1 : 1));
    const results = await Promise.all([...queues.values()].map((queue) => flushChannel(db, deps, queue)));
    return {
      sent: results.reduce((n, r) => n + r.sent, 0),
      left: results.reduce((n, r) => n + r.left, 0),
      retry: results.some((r) => r.retry),
    };
  } finally {
    db.close();
  }
}

async function flushChannel(db: IDBDatabase, deps: ServiceWorkerDeps, queue: readonly OutboxRecord[]): Promise<FlushResult> {
  let sent = 0;
  for (const [index, record] of queue.entries()) {
    const left = queue.length - index;
    const presigned = record.presigned;
    if (presigned === null || deps.now() - presigned.signedAtMs > DEFERRED_POST_MAX_AGE_MS - PRESIGNED_MARGIN_MS) {
      return { sent, left, retry: false };
    }
    let response: Response;
    try {
      response = await deps.fetch(record.relay + relayDeferredPostPath(record.channel), {
        method: 'POST',
        headers: { ...presigned.headers },
        body: presigned.body,
      });
    } catch {
      return { sent, left, retry: true }; // offline, or the relay is down
    }
    if (response.ok) {
      await remove(db, record.postId);
      sent += 1;
      continue;
    }
    // Any refusal is the worker's to judge (it holds the key): 409 membership-changed means
    // re-seal, 401 stale or replayed means sign again (a replay may also mean the relay took it
    // and the answer was lost: the worker's retry will be its duplicate), 403 removed. Busy
    // relays (429, 5xx) are worth another try from here.
    await countAttempt(db, record.postId);
    return { sent, left, retry: response.status === 429 || response.status >= 500 };
  }
  return { sent, left: 0, retry: false };
}

/** Deletes the record (the worker may have deleted it already: posted from a tab meanwhile). */
async function remove(db: IDBDatabase, postId: string): Promise<void> {
  const tx = db.transaction('outbox', 'readwrite');
  tx.objectStore('outbox').delete(postId);
  await committed(tx);
}

async function countAttempt(db: IDBDatabase, postId: string): Promise<void> {
  const tx = db.transaction('outbox', 'readwrite');
  const store = tx.objectStore('outbox');
  const current = (await settled(store.get(postId))) as OutboxRecord | undefined;
  if (current !== undefined) store.put({ ...current, attempts: current.attempts + 1 });
  await committed(tx);
}
