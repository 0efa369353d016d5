/**
 * The client store (issue 10 §4): opens the database, seals and opens records with the data key,
 * and writes every change of one engine step in ONE transaction (`Batch` → `commit`), which also
 * checks the engine epoch: a write from an engine that another tab has since replaced is refused
 * before it touches anything (so two engines can never both persist, and so never both send).
 *
 * Sealed values are JSON, UTF-8, AES-256-GCM under the data key with "store\nkey" as associated
 * data. The IndexedDB factory is injected (the browser's, or fake-indexeddb in Node tests).
 */
import { unwrap, wrap, type IDBPTransaction } from 'idb';
import type { TRANSIT_STORES} from '../shared/client-db.js';
import { type FetchTokenRecord, type InboxRecord, type OutboxRecord } from '../shared/client-db.js';
import {
  CLIENT_DB_NAME,
  CLIENT_DB_VERSION,
  SEALED_STORES,
  upgradeCoveyDb,
  type CoveyDatabase,
  type CoveyDb,
  type EngineRecord,
  type KeysRecord,
  type Sealed,
  type SealedStoreName,
  type StoreName,
} from './schema.js';
import { aesGcmOpen, aesGcmSeal } from './vault.js';

/** Another engine (another tab) started after this one: this one must stop (issue 10 §1). */
export class EngineReplacedError extends Error {
  constructor() {
    super('another tab took over the engine');
    this.name = 'EngineReplacedError';
  }
}

/** A sealed record failed to open: tampered, or sealed under another key. */
export class CorruptRecordError extends Error {
  constructor(store: string, key: string) {
    super(`record ${store}/${key} does not decrypt`);
    this.name = 'CorruptRecordError';
  }
}

export type RecordKey = string | [string, number];

/**
 * Timeline records appended by one step at consecutive positions (a catch-up page: hundreds of
 * received messages) go as packs of up to this many: one seal and one put per pack instead of per
 * message (the store's part of a catch-up, bench:catchup).
 */
export const TIMELINE_PACK = 64;

/**
 * A pack (schema v4): the records of positions first, first + 1, … sealed as ONE value at the key
 * [conversationId, first - 0.5]. The half key never meets a whole position, so a record put later
 * at one of its positions (a single record: a message of ours rewritten) is a record of its own,
 * and it wins over the pack's item when read (`timeline`, `range`).
 */
export interface TimelinePack<T = unknown> {
  readonly t: 'pack';
  readonly items: readonly T[];
}

/**
 * A pack whose items are objects with the same fields in the same order (schema v5): the field
 * names once (`k`), each item as its values in that order (`r`). In a catch-up every item is a
 * received message with the same eleven fields, whose names were about a third of each item's
 * bytes (bench:catchup). A run of items that differ in their fields is stored as `items`.
 */
export interface TimelineRowsPack {
  readonly t: 'pack';
  readonly k: readonly string[];
  readonly r: readonly (readonly unknown[])[];
}

/** The items of a pack of either form, in order. */
function packItems<T>(pack: TimelinePack<T> | TimelineRowsPack): T[] {
  if ('items' in pack) return [...pack.items];
  const { k, r } = pack;
  return r.map((row) => Object.fromEntries(k.map((key, i) => [key, row[i]])) as T);
}

/** A plain JSON object's field names and its values as a JSON array, when both read back exactly (no undefined, functions or toJSON). */
function asRow(value: unknown): { keys: string; row: string } | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) return null;
  const fields = Object.keys(value);
  const values = Object.values(value as Record<string, unknown>);
  if (!values.every(isPlainJson)) return null;
  return { keys: JSON.stringify(fields), row: JSON.stringify(values) };
}

/** JSON values that JSON.stringify writes as themselves, in an array as in an object (so a row reads back as the object did). */
function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isPlainJson);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value as Record<string, unknown>).every(isPlainJson);
  return false;
}

const isPackKey = (n: number): boolean => !Number.isInteger(n);
/** The first position a timeline key holds (its own, or a pack's first). */
const firstPosition = (n: number): number => (isPackKey(n) ? n + 0.5 : n);

/** Decoded timeline records by position: single records win over pack items (see TimelinePack). */
class TimelineMerge<T> {
  private readonly singles = new Map<number, T>();
  private readonly packed = new Map<number, T>();

  add(key: number, value: unknown): void {
    if (!isPackKey(key)) {
      this.singles.set(key, value as T);
      return;
    }
    const first = firstPosition(key);
    for (const [i, item] of packItems(value as TimelinePack<T> | TimelineRowsPack).entries()) this.packed.set(first + i, item);
  }

  /** Positions below `before`, ascending, the newest `limit` of them. */
  entries(before: number, limit = Infinity): [number, T][] {
    const all = new Map(this.packed);
    for (const [p, v] of this.singles) all.set(p, v);
    const sorted = [...all].filter(([p]) => p < before).sort((a, b) => a[0] - b[0]);
    return Number.isFinite(limit) ? sorted.slice(Math.max(0, sorted.length - limit)) : sorted;
  }
}

const keyText = (key: RecordKey): string => (typeof key === 'string' ? key : `${key[0]}\u0000${key[1]}`);
const aadFor = (store: SealedStoreName, key: RecordKey): Uint8Array => new TextEncoder().encode(`covey-record-v1\n${store}\n${keyText(key)}`);

type TransitStore = (typeof TRANSIT_STORES)[keyof typeof TRANSIT_STORES];
type TransitValue = OutboxRecord | InboxRecord | FetchTokenRecord;

type Write =
  | { readonly kind: 'sealed'; readonly store: SealedStoreName; readonly key: RecordKey; readonly value: Sealed }
  | { readonly kind: 'transit'; readonly store: TransitStore; readonly value: TransitValue }
  | { readonly kind: 'delete'; readonly store: StoreName; readonly key: RecordKey }
  | { readonly kind: 'delete-range'; readonly store: StoreName; readonly lower: RecordKey; readonly upper: RecordKey };

/** Opens the database with the given factory, running migrations. */
export function openCoveyDb(factory: IDBFactory, name = CLIENT_DB_NAME, version = CLIENT_DB_VERSION): Promise<CoveyDatabase> {
  const request = factory.open(name, version);
  request.addEventListener('upgradeneeded', (event) => {
    const tx = wrap(request.transaction!) as unknown as IDBPTransaction<CoveyDb, StoreName[], 'versionchange'>;
    upgradeCoveyDb(wrap(request.result) as unknown as CoveyDatabase, event.oldVersion, event.newVersion, tx);
  });
  return wrap(request) as unknown as Promise<CoveyDatabase>;
}

/** Timeline records appended side by side and not yet put (Batch.appendTimeline). */
interface Run {
  readonly first: number;
  count: number;
  /** The fields of every record so far (JSON of the names), while `rows` is not null. */
  readonly keys: string;
  /** Each record's values as a JSON array (TimelineRowsPack), or null once the fields differ. */
  rows: string[] | null;
  /** Each record as JSON, once `rows` is null. */
  json: string[] | null;
}

/** A record as JSON again from its field names and its row (both JSON). */
function rowJson(keys: string, row: string): string {
  const k = JSON.parse(keys) as string[];
  const values = JSON.parse(row) as unknown[];
  return JSON.stringify(Object.fromEntries(k.map((key, i) => [key, values[i]])));
}

/** The changes of one engine step, sealed before the transaction opens (IndexedDB transactions
 * commit as soon as they wait on anything else, so all crypto happens first). */
export class Batch {
  /** Write slots in the order they were asked for; a sealed one is filled by `ready`. */
  private readonly slots: (Write | undefined)[] = [];
  /** Each sealed key's slot and its value as JSON (a later put of the key replaces it). */
  private readonly toSeal = new Map<string, { slot: number; store: SealedStoreName; key: RecordKey; json: string }>();
  /** `putLater` values not made yet, by the id of their `toSeal` entry. */
  private readonly later = new Map<string, () => string>();
  private sealing: Promise<void> | null = null;
  /**
   * Per conversation, the timeline records appended at consecutive positions, not yet put (as
   * JSON); while they all have the same fields, also as rows (TimelineRowsPack), else `rows` null.
   */
  private readonly runs = new Map<string, Run>();
  /** Transit values still being made (`putTransit` of a promise), awaited with the seals. */
  private readonly making: Promise<void>[] = [];

  constructor(private readonly store: ClientStore) {}

  /** The writes, in the order they were asked for (complete once `ready` resolved). */
  get writes(): Write[] {
    return this.slots.filter((w): w is Write => w !== undefined);
  }

  /** Whether this batch already puts a sealed record at `key` of `store`. */
  has(store: SealedStoreName, key: RecordKey): boolean {
    return this.toSeal.has(`${store}\n${keyText(key)}`);
  }

  /** Serialises `value` now (later changes to it are not stored); sealed at `ready`. */
  put(store: SealedStoreName, key: RecordKey, value: unknown): this {
    return this.putJson(store, key, JSON.stringify(value));
  }

  /**
   * `put` of a value already serialised with JSON.stringify. The same key put twice in one step
   * (a message stored queued, then sealed) is sealed once, with the last value.
   */
  putJson(store: SealedStoreName, key: RecordKey, json: string): this {
    if (this.sealing !== null) throw new Error('Batch: put after ready');
    const id = `${store}\n${keyText(key)}`;
    // A value still to be made at this key is made first (its maker's other effects happen), then replaced.
    if (this.later.has(id)) this.make(id);
    const slot = this.toSeal.get(id)?.slot ?? this.slots.push(undefined) - 1;
    this.toSeal.set(id, { slot, store, key, json });
    return this;
  }

  /**
   * A put whose value (as JSON) `make` returns when the batch is sealed (`ready`, or `prepare`),
   * not now: the caller guarantees that what it serialises does not change until then, and any
   * puts `make` adds to this batch go with it. Its place among the writes is taken now.
   */
  putLater(store: SealedStoreName, key: RecordKey, make: () => string): this {
    if (this.sealing !== null) throw new Error('Batch: put after ready');
    const id = `${store}\n${keyText(key)}`;
    const slot = this.toSeal.get(id)?.slot ?? this.slots.push(undefined) - 1;
    this.toSeal.set(id, { slot, store, key, json: '' });
    this.later.set(id, make);
    return this;
  }

  /** Makes every `putLater` value now (`ready` does it first). */
  prepare(): void {
    for (const id of [...this.later.keys()]) this.make(id);
  }

  private make(id: string): void {
    const make = this.later.get(id);
    if (make === undefined) return;
    this.later.delete(id);
    const entry = this.toSeal.get(id)!;
    this.toSeal.set(id, { ...entry, json: make() });
  }

  /**
   * A timeline record at a new position (`nextPosition`), never put before: records appended at
   * consecutive positions of one conversation go into packs of up to TIMELINE_PACK (TimelinePack);
   * a lone one is a single record. Serialised now, like `put`.
   */
  appendTimeline(conversationId: string, position: number, value: unknown): this {
    if (this.sealing !== null) throw new Error('Batch: put after ready');
    const run = this.runs.get(conversationId);
    if (run !== undefined && run.first + run.count === position && run.count < TIMELINE_PACK) {
      run.count += 1;
      if (run.rows !== null) {
        const row = asRow(value);
        if (row !== null && row.keys === run.keys) {
          run.rows.push(row.row);
          return this;
        }
        // Another set of fields: this pack goes as items (the values before, as they were).
        run.json = run.rows.map((r) => rowJson(run.keys, r));
        run.rows = null;
      }
      run.json!.push(JSON.stringify(value));
      return this;
    }
    if (run !== undefined) this.closeRun(conversationId, run);
    const row = asRow(value);
    this.runs.set(conversationId, row === null ? { first: position, count: 1, keys: '', rows: null, json: [JSON.stringify(value)] } : { first: position, count: 1, keys: row.keys, rows: [row.row], json: null });
    return this;
  }

  private closeRun(conversationId: string, run: Run): void {
    this.runs.delete(conversationId);
    if (run.count === 1) this.putJson('timeline', [conversationId, run.first], run.rows === null ? run.json![0]! : rowJson(run.keys, run.rows[0]!));
    else if (run.rows !== null) this.putJson('timeline', [conversationId, run.first - 0.5], `{"t":"pack","k":${run.keys},"r":[${run.rows.join(',')}]}`);
    else this.putJson('timeline', [conversationId, run.first - 0.5], `{"t":"pack","items":[${run.json!.join(',')}]}`);
  }

  /**
   * A transit record, as is. It may be a promise (an outbox record whose deferred post is being
   * signed): it is made while the records are sealed, and the commit waits for both.
   */
  putTransit(store: TransitStore, value: TransitValue | Promise<TransitValue>): this {
    if (!(value instanceof Promise)) {
      this.slots.push({ kind: 'transit', store, value });
      return this;
    }
    if (this.sealing !== null) throw new Error('Batch: put after ready');
    const slot = this.slots.push(undefined) - 1;
    const made = value.then((v) => void (this.slots[slot] = { kind: 'transit', store, value: v }));
    made.catch(() => undefined); // seen by `ready` (a batch never committed reports nothing)
    this.making.push(made);
    return this;
  }

  delete(store: StoreName, key: RecordKey): this {
    this.slots.push({ kind: 'delete', store, key });
    return this;
  }

  /** Deletes every record from `lower` to `upper` (both included) in one request. */
  deleteRange(store: StoreName, lower: RecordKey, upper: RecordKey): this {
    this.slots.push({ kind: 'delete-range', store, lower, upper });
    return this;
  }

  get empty(): boolean {
    return this.slots.length === 0 && this.runs.size === 0;
  }

  /** Seals every put (all at once: WebCrypto runs them side by side) and waits for the transit values being made. */
  ready(): Promise<void> {
    if (this.sealing === null) {
      try {
        this.prepare();
      } catch (error) {
        this.sealing = Promise.reject(error instanceof Error ? error : new Error(String(error)));
        return this.sealing;
      }
      for (const [conversationId, run] of [...this.runs]) this.closeRun(conversationId, run);
    }
    this.sealing ??= Promise.all([
      ...[...this.toSeal.values()].map(async ({ slot, store, key, json }) => {
        this.slots[slot] = { kind: 'sealed', store, key, value: await this.store.sealJson(store, key, json) };
      }),
      ...this.making,
    ]).then(() => undefined);
    return this.sealing;
  }
}

export class ClientStore {
  private dataKey: CryptoKey | null = null;
  private epoch: number | null = null;
  /** Test hook: runs inside commit after the epoch check, before the writes (crash injection). */
  beforeWrite: ((batch: Batch) => void) | null = null;
  /**
   * Commits called whose transaction is not created yet (their records are being sealed), each
   * resolved once it is (or once the commit failed before). Every other method waits for them,
   * and a commit for those called before it: so the store creates its transactions in the order
   * its methods were called, and IndexedDB runs each transaction after the read-write ones
   * created before it on overlapping stores. Whatever reads or writes the store therefore sees
   * every commit called before it, even one still sealing. Without this, a backup exported the
   * moment a received message was shown (shown while its records are sealed: conversation.ts
   * `persist`, showWhenQueued) read the timeline ahead of that message's transaction and lacked
   * it (tests/worker/scenarios.test.ts, backup; tests/store/store.test.ts).
   */
  private readonly unqueued = new Set<Promise<void>>();
  /**
   * Commits whose seals wait for their `sealAfter` (commit), each with the function that lets it
   * go at once: any method called meanwhile waits for those commits (`unqueued`), so it lets them
   * go first instead of waiting for what they wait for (which may itself be waiting on the store).
   */
  private readonly held = new Set<() => void>();

  private constructor(readonly db: CoveyDatabase) {}

  /** `version` only for tests that build an older layout (migration tests). */
  static async open(factory: IDBFactory, name?: string, version?: number): Promise<ClientStore> {
    return new ClientStore(await openCoveyDb(factory, name, version));
  }

  /**
   * Resolves once every commit called so far has created its transaction; null when none is
   * pending (callers then create theirs at once, in the same turn, as before).
   */
  private inOrder(): Promise<unknown> | null {
    if (this.held.size > 0) {
      for (const go of this.held) go();
      this.held.clear();
    }
    return this.unqueued.size === 0 ? null : Promise.all([...this.unqueued]);
  }

  close(): void {
    this.db.close();
    this.dataKey = null;
  }

  get unlocked(): boolean {
    return this.dataKey !== null;
  }

  setDataKey(key: CryptoKey | null): void {
    this.dataKey = key;
  }

  async keys(): Promise<KeysRecord | undefined> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    return (await this.db.get('meta', 'keys')) as KeysRecord | undefined;
  }

  async putKeys(record: KeysRecord): Promise<void> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const tx = this.db.transaction('meta', 'readwrite');
    await this.checkEpoch(tx.store);
    await tx.store.put(record, 'keys');
    await tx.done;
  }

  /** Becomes the current engine: every later commit of an older engine is refused. */
  async claimEpoch(nowMs: number): Promise<number> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const tx = this.db.transaction('meta', 'readwrite');
    const current = (await tx.store.get('engine')) as EngineRecord | undefined;
    const epoch = (current?.epoch ?? 0) + 1;
    await tx.store.put({ epoch, startedAtMs: nowMs }, 'engine');
    await tx.done;
    this.epoch = epoch;
    return epoch;
  }

  private async checkEpoch(meta: { get(key: 'engine'): Promise<unknown> }): Promise<void> {
    if (this.epoch === null) return;
    const current = (await meta.get('engine')) as EngineRecord | undefined;
    if (current?.epoch !== this.epoch) throw new EngineReplacedError();
  }

  private key(): CryptoKey {
    if (this.dataKey === null) throw new Error('store is locked');
    return this.dataKey;
  }

  async seal(store: SealedStoreName, key: RecordKey, value: unknown): Promise<Sealed> {
    return this.sealJson(store, key, JSON.stringify(value));
  }

  async sealJson(store: SealedStoreName, key: RecordKey, json: string): Promise<Sealed> {
    return aesGcmSeal(this.key(), new TextEncoder().encode(json), aadFor(store, key));
  }

  async open<T>(store: SealedStoreName, key: RecordKey, sealed: Sealed): Promise<T> {
    let plain: Uint8Array;
    try {
      plain = await aesGcmOpen(this.key(), sealed, aadFor(store, key));
    } catch {
      throw new CorruptRecordError(store, keyText(key));
    }
    return JSON.parse(new TextDecoder().decode(plain)) as T;
  }

  async get<T>(store: SealedStoreName, key: RecordKey): Promise<T | undefined> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const sealed = (await this.db.get(store, key as never)) as Sealed | undefined;
    return sealed === undefined ? undefined : this.open<T>(store, key, sealed);
  }

  /** Every record of a sealed store, with its key. */
  async all<T>(store: Exclude<SealedStoreName, 'timeline' | 'sessionChunks'>): Promise<[string, T][]> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const tx = this.db.transaction(store);
    const [keys, values] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll()]);
    await tx.done;
    return Promise.all(keys.map(async (key, i) => [key, await this.open<T>(store, key, values[i]!)] as [string, T]));
  }

  /**
   * Timeline records of one conversation with position below `before`, the newest `limit` of
   * them, oldest first (packs opened: TimelinePack).
   */
  async timeline<T>(conversationId: string, limit: number, before = Number.MAX_SAFE_INTEGER): Promise<[number, T][]> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const merge = new TimelineMerge<T>();
    // Records are read newest first until their keys span `limit` positions (a pack counts from
    // its first position: over-reading by a pack at most); if packs and gaps leave fewer than
    // `limit`, the next older records are read.
    let upper = before;
    for (;;) {
      const range = IDBKeyRange.bound([conversationId, 0], [conversationId, upper], false, true);
      const found: [number, Sealed][] = [];
      let top: number | undefined;
      let cursor = await this.db.transaction('timeline').store.openCursor(range, 'prev');
      while (cursor !== null) {
        const key = (cursor.key as [string, number])[1];
        found.push([key, cursor.value]);
        top ??= Math.ceil(key);
        if (found.length >= limit || top - firstPosition(key) + 1 >= limit) break;
        cursor = await cursor.continue();
      }
      const exhausted = cursor === null;
      const opened = await Promise.all(found.map(([key, sealed]) => this.open<unknown>('timeline', [conversationId, key], sealed)));
      found.forEach(([key], i) => merge.add(key, opened[i]));
      if (exhausted || found.length === 0 || merge.entries(before).length >= limit) return merge.entries(before, limit);
      upper = found.at(-1)![0];
    }
  }

  /** Every record of a [prefix, n] keyed store under one prefix, by n ascending (timeline packs opened). */
  async range<T>(store: 'timeline' | 'sessionChunks', prefix: string): Promise<[number, T][]> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const range = IDBKeyRange.bound([prefix, 0], [prefix, Number.MAX_SAFE_INTEGER]);
    const tx = this.db.transaction(store);
    const [keys, values] = await Promise.all([tx.store.getAllKeys(range), tx.store.getAll(range)]);
    await tx.done;
    const opened = await Promise.all(keys.map(async (key, i) => [(key as [string, number])[1], await this.open<T>(store, key as [string, number], values[i]!)] as [number, T]));
    if (store !== 'timeline') return opened;
    const merge = new TimelineMerge<T>();
    for (const [key, value] of opened) merge.add(key, value);
    return merge.entries(Infinity);
  }

  /** Deletes every record of a [prefix, n] keyed store whose prefix starts with `start`. */
  async deleteRange(store: 'timeline' | 'sessionChunks', start: string): Promise<void> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const tx = this.db.transaction(['meta', store], 'readwrite');
    await this.checkEpoch(tx.objectStore('meta'));
    await tx.objectStore(store).delete(IDBKeyRange.bound([start, 0], [`${start}\uffff`, Number.MAX_SAFE_INTEGER]));
    await tx.done;
  }

  async transit<S extends TransitStore>(store: S): Promise<(S extends 'outbox' ? OutboxRecord : S extends 'inbox' ? InboxRecord : FetchTokenRecord)[]> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    return (await this.db.getAll(store)) as never;
  }

  /**
   * Inbox records in key order ([channel, seq]: the order they are processed in), from just after
   * the key `after` (from the first when undefined), at most `count` (all when undefined). The
   * engine reads a first page and processes it while IndexedDB reads the rest.
   */
  async inboxPage(after: readonly [string, number] | undefined, count?: number): Promise<InboxRecord[]> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    return this.db.getAll('inbox', after === undefined ? undefined : IDBKeyRange.lowerBound([...after], true), count);
  }

  batch(): Batch {
    return new Batch(this);
  }

  /**
   * Writes a batch atomically (one transaction), only if this engine is still current. The epoch
   * read and the writes are issued together: requests of a transaction run in order, so the read's
   * answer comes before the transaction can commit, and a stale epoch aborts it (nothing of it is
   * written). Waiting for the read before issuing the writes cost a round trip to the database per
   * step (in a browser, to the storage process).
   *
   * `onQueued` runs once every request of the transaction has been issued, before it commits
   * (IndexedDB runs read-write transactions with overlapping stores in the order they were
   * created, so whatever was queued before is queued ahead of it). If it throws, the transaction
   * is aborted and nothing of it is written (crash injection).
   *
   * Its transaction is created after those of the commits called before it, and every method
   * called after it waits until it exists (`unqueued`).
   *
   * `sealAfter`: the records are sealed only once it resolves (or rejects), or at once when another
   * method of the store is called meanwhile (which would wait for this commit). The order is taken
   * now all the same. A received message is shown before its records are sealed: its view is
   * built before the seals take the thread (conversation.ts `persist`).
   */
  async commit(batch: Batch, onQueued?: () => void, sealAfter?: Promise<void>): Promise<void> {
    // In the order of the calls (see `unqueued`): registered before the first await.
    const before = this.inOrder();
    let created!: () => void;
    const gate = new Promise<void>((resolve) => (created = resolve));
    this.unqueued.add(gate);
    let writes: Write[];
    let tx: IDBTransaction;
    try {
      if (sealAfter !== undefined) {
        await new Promise<void>((go) => {
          const release = () => {
            this.held.delete(release);
            go();
          };
          this.held.add(release);
          sealAfter.then(release, release);
        });
      }
      await batch.ready();
      if (before !== null) await before;
      writes = batch.writes;
      if (writes.length === 0) return;
      const names = new Set<StoreName>(['meta']);
      for (const w of writes) names.add(w.store);
      // The bare IndexedDB API on this path (no idb wrappers): one promise per step instead of
      // one per request, and no proxy per call (bench:client; the same requests).
      tx = unwrap(this.db).transaction([...names], 'readwrite');
    } finally {
      // The transaction exists (or never will): what was called after this may go.
      this.unqueued.delete(gate);
      created();
    }
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      // A failed request aborts the transaction; its error is the transaction's.
      tx.onabort = () => reject(tx.error ?? new DOMException('AbortError', 'AbortError'));
    });
    let replaced = false;
    const expected = this.epoch;
    if (expected !== null) {
      const check = tx.objectStore('meta').get('engine');
      check.onsuccess = () => {
        if ((check.result as EngineRecord | undefined)?.epoch === expected) return;
        replaced = true;
        tx.abort();
      };
    }
    try {
      this.beforeWrite?.(batch);
      for (const w of writes) {
        if (w.kind === 'sealed') tx.objectStore(w.store).put(w.value, w.key);
        else if (w.kind === 'transit') tx.objectStore(w.store).put(w.value);
        else if (w.kind === 'delete') tx.objectStore(w.store).delete(w.key);
        else tx.objectStore(w.store).delete(IDBKeyRange.bound(w.lower, w.upper));
      }
      onQueued?.();
    } catch (error) {
      tx.abort();
      await done.catch(() => undefined);
      throw error;
    }
    try {
      await done;
    } catch (error) {
      if (replaced) throw new EngineReplacedError();
      throw error;
    }
    if (replaced) throw new EngineReplacedError();
  }

  /** Every store's raw contents (tests: the "raw dump holds no plaintext" check). */
  async rawDump(): Promise<Record<string, unknown[]>> {
    const earlier = this.inOrder();
    if (earlier !== null) await earlier;
    const out: Record<string, unknown[]> = {};
    for (const name of [...this.db.objectStoreNames] as StoreName[]) out[name] = await this.db.getAll(name);
    return out;
  }
}

export { SEALED_STORES };
