/**
 * The encrypted client store (src/store): every record type round-trips, nothing readable is at
 * rest, migrations from version 1 keep the data, the passphrase lock works, tampering is caught,
 * and a replaced engine cannot write.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { CLIENT_DB_NAME, inboxEvents, inboxLastSeq, type FetchTokenRecord, type InboxEventRecord, type InboxPageRecord, type InboxRecord, type OutboxRecord } from '../../src/shared/client-db.js';
import type { ChannelId, RelayEvent } from '../../src/shared/relay-api.js';
import { ClientStore, CorruptRecordError, EngineReplacedError, openCoveyDb, TIMELINE_PACK } from '../../src/store/client-store.js';
import { CLIENT_DB_VERSION, SEALED_STORES, type SealedStoreName } from '../../src/store/schema.js';
import { createKeys, rewrapKeys, unlockKeys, WrongPassphraseError } from '../../src/store/vault.js';
import { plaintextIn } from './dump.js';

const SECRET = 'meet at the old mill at noon';
const NAME = 'Zebedee Quuxley';
const GROUP = 'Secret Garden Society';

async function openUnlocked(factory = new IDBFactory()) {
  const store = await ClientStore.open(factory);
  const { record, dataKey } = await createKeys();
  await store.putKeys(record);
  store.setDataKey(dataKey);
  return { store, factory };
}

/** One sample per sealed store, with the kind of content each holds. */
const samples: Record<SealedStoreName, [string | [string, number], unknown]> = {
  profile: ['me', { displayName: NAME, identitySeed: 'AAAA' }],
  contacts: ['p1', { card: { name: NAME }, verification: 'verified' }],
  requests: ['r1', { card: { name: NAME } }],
  invitations: ['v1', { body: { name: GROUP } }],
  conversations: ['c1', { name: GROUP, last: { text: SECRET } }],
  sessions: ['c1', { snapshot: { text: SECRET }, lastSeq: 7 }],
  sessionChunks: [['c1/0', 0], [{ body: { type: 'payload', text: SECRET } }]],
  timeline: [['c1', 3], { t: 'm', text: SECRET }],
  drafts: ['c1', SECRET],
  seen: ['ab12', { at: 1 }],
};

describe('client store', () => {
  it('reads the inbox a page at a time, in [channel, seq] order, from just after a key', async () => {
    const { store } = await openUnlocked();
    const record = (channel: string, seq: number): InboxRecord => ({ relay: 'https://r.test', channel: channel as ChannelId, seq, event: { seq, timeMs: seq, type: 'packet', author: null, packet: 'AAAA' }, fetchedAtMs: 1 });
    const all = [record('a'.repeat(22), 2), record('a'.repeat(22), 10), record('a'.repeat(22), 11), record('b'.repeat(22), 1), record('b'.repeat(22), 3)];
    const batch = store.batch();
    for (const r of [...all].reverse()) batch.putTransit('inbox', r);
    await store.commit(batch);
    const read: InboxRecord[] = [];
    const pages: number[] = [];
    for (let page = await store.inboxPage(undefined, 2); page.length > 0; ) {
      read.push(...page);
      pages.push(page.length);
      const last = page[page.length - 1]!;
      page = await store.inboxPage([last.channel, last.seq], 2);
    }
    // Numeric seq order within a channel (10 after 2), channels in key order, none twice.
    expect(read).toEqual(all);
    expect(pages).toEqual([2, 2, 1]);
    expect(await store.inboxPage(undefined, 10)).toEqual(all);
    expect(await store.inboxPage(['a'.repeat(22), 10])).toEqual(all.slice(2));
    store.close();
  });

  it('round-trips every sealed record type and every transit record', async () => {
    const { store } = await openUnlocked();
    const batch = store.batch();
    for (const name of SEALED_STORES) batch.put(name, samples[name][0], samples[name][1]);
    const outbox: OutboxRecord = { postId: 'p'.repeat(22), relay: 'https://r.test', channel: 'c'.repeat(22) as ChannelId, packet: 'AAAA', ifNoLeaveAfter: 4, queuedAtMs: 1, presigned: null, attempts: 0 };
    const inbox: InboxRecord = { relay: 'https://r.test', channel: 'c'.repeat(22) as ChannelId, seq: 5, event: { seq: 5, timeMs: 9, type: 'packet', author: null, packet: 'AAAA' }, fetchedAtMs: 10 };
    const token: FetchTokenRecord = { channel: 'c'.repeat(22) as ChannelId, relay: 'https://r.test', token: 't'.repeat(43) as FetchTokenRecord['token'], expiresAtMs: 99, afterSeq: 4 };
    batch.putTransit('outbox', outbox).putTransit('inbox', inbox).putTransit('fetchTokens', token);
    await store.commit(batch);
    for (const name of SEALED_STORES) expect(await store.get(name, samples[name][0])).toEqual(samples[name][1]);
    expect(await store.timeline('c1', 10)).toEqual([[3, samples.timeline[1]]]);
    expect(await store.range('sessionChunks', 'c1/0')).toEqual([[0, samples.sessionChunks[1]]]);
    expect(await store.transit('outbox')).toEqual([outbox]);
    expect(await store.transit('inbox')).toEqual([inbox]);
    expect(await store.transit('fetchTokens')).toEqual([token]);
    // At rest: no text, name or group name in any form.
    expect(plaintextIn(await store.rawDump(), [SECRET, NAME, GROUP])).toEqual([]);
    // The check itself finds plaintext when it is there.
    expect(plaintextIn({ x: new TextEncoder().encode(`xx${SECRET}`) }, [SECRET])).toEqual([SECRET]);
    expect(plaintextIn({ x: Buffer.from(`x${NAME}`).toString('base64url') }, [NAME])).toEqual([NAME]);
    // A short name counts where a leak would put it (between separators), not inside base64 text,
    // which holds any three letters by chance.
    for (const leak of [new TextEncoder().encode('{"name":"Bob"}'), 'Bob joined', "Bob's draft", { name: 'Bob' }, Buffer.from('Bob').toString('hex')]) {
      expect(plaintextIn({ x: leak }, ['Bob'])).toEqual(['Bob']);
    }
    expect(plaintextIn({ x: 'covey-backup-v1\nAAAAk3Bob9Zq_-Bob', y: 'Bobby', z: 'xBob' }, ['Bob'])).toEqual([]);
    store.close();
  });

  it('refuses a record moved to another key or altered', async () => {
    const { store } = await openUnlocked();
    await store.commit(store.batch().put('drafts', 'c1', SECRET).put('drafts', 'c2', 'other'));
    const sealed = await store.db.get('drafts', 'c1');
    await store.db.put('drafts', sealed!, 'c2');
    await expect(store.get('drafts', 'c2')).rejects.toBeInstanceOf(CorruptRecordError);
    const flipped = { iv: sealed!.iv, ct: sealed!.ct.slice() };
    flipped.ct[0]! ^= 1;
    await store.db.put('drafts', flipped, 'c1');
    await expect(store.get('drafts', 'c1')).rejects.toBeInstanceOf(CorruptRecordError);
    store.close();
  });

  it('migrates a version 1 database with its data', async () => {
    const factory = new IDBFactory();
    const v1 = await openCoveyDb(factory, CLIENT_DB_NAME, 1);
    expect([...v1.objectStoreNames].sort()).toEqual(['contacts', 'conversations', 'inbox', 'meta', 'outbox', 'profile', 'sessions', 'timeline']);
    const { record, dataKey } = await createKeys();
    await v1.put('meta', record, 'keys');
    v1.close();
    // Data written at version 1 through the same sealing.
    {
      const store = await ClientStore.open(factory, CLIENT_DB_NAME, 1);
      store.setDataKey(dataKey);
      await store.db.put('contacts', await store.seal('contacts', 'p1', samples.contacts[1]), 'p1');
      await store.db.put('outbox', { postId: 'x'.repeat(22), relay: 'https://r.test', channel: 'c'.repeat(22) as ChannelId, packet: 'AA', ifNoLeaveAfter: null, queuedAtMs: 2, presigned: null, attempts: 0 });
      store.db.close();
    }
    const store = await ClientStore.open(factory);
    expect(store.db.version).toBe(CLIENT_DB_VERSION);
    expect([...store.db.objectStoreNames]).toEqual(expect.arrayContaining(['requests', 'invitations', 'drafts', 'seen', 'fetchTokens', 'sessionChunks']));
    store.setDataKey(await unlockKeys((await store.keys())!));
    expect(await store.get('contacts', 'p1')).toEqual(samples.contacts[1]);
    // The index added in version 2 covers records written before it.
    const byChannel = await store.db.getAllFromIndex('outbox', 'byChannel');
    expect(byChannel.map((r) => r.postId)).toEqual(['x'.repeat(22)]);
    store.close();
  });

  it('packs timeline records appended side by side, and reads them back by position (v4)', async () => {
    const { store } = await openUnlocked();
    const item = (p: number) => ({ t: 'm', text: `${SECRET} ${p}` });
    // One step appends 150 records to c1 (and, in between, 3 to c2), then puts one single record.
    const batch = store.batch();
    for (let p = 1; p <= 150; p++) {
      batch.appendTimeline('c1', p, item(p));
      if (p % 50 === 0) batch.appendTimeline('c2', p / 50, item(-p));
    }
    batch.put('timeline', ['c1', 151], item(151));
    await store.commit(batch);
    // 150 consecutive positions: ceil(150 / TIMELINE_PACK) sealed records, at half keys.
    const keys = (await store.db.getAllKeys('timeline')) as [string, number][];
    const c1Keys = keys.filter(([c]) => c === 'c1').map(([, n]) => n);
    expect(c1Keys).toEqual([0.5, TIMELINE_PACK + 0.5, 2 * TIMELINE_PACK + 0.5, 151]);
    expect(keys.filter(([c]) => c === 'c2').map(([, n]) => n)).toEqual([0.5]);
    const all = Array.from({ length: 151 }, (_, i) => [i + 1, item(i + 1)]);
    expect(await store.range('timeline', 'c1')).toEqual(all);
    expect(await store.range('timeline', 'c2')).toEqual([1, 2, 3].map((p) => [p, item(-50 * p)]));
    // The newest n, whatever pack boundaries they cross; and before a position.
    for (const n of [1, 10, TIMELINE_PACK, TIMELINE_PACK + 1, 100, 151, 400]) expect(await store.timeline('c1', n)).toEqual(all.slice(-n));
    expect(await store.timeline('c1', 5, 70)).toEqual(all.slice(64, 69));
    expect(await store.timeline('c1', 100, 70)).toEqual(all.slice(0, 69));
    // A position of a pack rewritten as a single record: the single record is what is read.
    await store.commit(store.batch().put('timeline', ['c1', 1], { t: 'm', text: 'rewritten 1' }).put('timeline', ['c1', 100], { t: 'm', text: 'rewritten 100' }));
    const rewritten = all.map(([p, v]) => [p, p === 1 ? { t: 'm', text: 'rewritten 1' } : p === 100 ? { t: 'm', text: 'rewritten 100' } : v]);
    expect(await store.range('timeline', 'c1')).toEqual(rewritten);
    expect(await store.timeline('c1', 151)).toEqual(rewritten);
    expect(await store.timeline('c1', 60)).toEqual(rewritten.slice(-60));
    // Packs are sealed like every record: nothing readable at rest.
    expect(plaintextIn(await store.rawDump(), [SECRET])).toEqual([]);
    store.close();
  });

  it('packs items with the same fields as rows (v5), items that differ as before; both read back exactly', async () => {
    const { store } = await openUnlocked();
    const message = (p: number) => ({ t: 'm', ref: `r${p}`, author: 'A'.repeat(43), text: `${SECRET} ${p}`, atMs: 1_796_306_205_346 + p, parents: [], hiddenParents: false, state: 'sealed', failure: null, postIds: [] });
    const notice = (p: number) => ({ t: 'n', tone: 'info', text: `notice ${p}`, whatToDo: null, action: { kind: 'x', n: [1, { a: null }] }, atMs: p });
    const batch = store.batch();
    // c1: 70 messages (a full pack of rows, then one of 6); c2: messages with a notice among them
    // (a pack of items); c3: a field that JSON would drop (undefined) and a field order that differs.
    for (let p = 1; p <= 70; p++) batch.appendTimeline('c1', p, message(p));
    for (let p = 1; p <= 5; p++) batch.appendTimeline('c2', p, p === 3 ? notice(p) : message(p));
    batch.appendTimeline('c3', 1, message(1));
    batch.appendTimeline('c3', 2, { ...message(2), failure: undefined });
    batch.appendTimeline('c4', 1, { b: 1, a: 2 });
    batch.appendTimeline('c4', 2, { a: 2, b: 1 });
    await store.commit(batch);
    const opened = async (key: [string, number]) => store.open<Record<string, unknown>>('timeline', key, (await store.db.get('timeline', key))!);
    const rows = await opened(['c1', 0.5]);
    expect(Object.keys(rows)).toEqual(['t', 'k', 'r']);
    expect(rows.k).toEqual(Object.keys(message(1)));
    expect(Object.keys(await opened(['c2', 0.5]))).toEqual(['t', 'items']);
    expect(Object.keys(await opened(['c3', 0.5]))).toEqual(['t', 'items']);
    expect(Object.keys(await opened(['c4', 0.5]))).toEqual(['t', 'items']);
    // Read back as JSON would have read them (a dropped undefined field included), in order.
    const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
    expect(await store.range('timeline', 'c1')).toEqual(Array.from({ length: 70 }, (_, i) => [i + 1, message(i + 1)]));
    expect(JSON.stringify(await store.range('timeline', 'c1'))).toBe(JSON.stringify(Array.from({ length: 70 }, (_, i) => [i + 1, message(i + 1)])));
    expect(await store.range('timeline', 'c2')).toEqual([1, 2, 3, 4, 5].map((p) => [p, p === 3 ? notice(p) : message(p)]));
    expect(JSON.stringify(await store.range('timeline', 'c3'))).toBe(JSON.stringify([[1, message(1)], [2, json({ ...message(2), failure: undefined })]]));
    expect(JSON.stringify(await store.range('timeline', 'c4'))).toBe(JSON.stringify([[1, { b: 1, a: 2 }], [2, { a: 2, b: 1 }]]));
    expect(await store.timeline('c1', 10)).toEqual(Array.from({ length: 10 }, (_, i) => [61 + i, message(61 + i)]));
    // Rows take fewer bytes than the same items.
    const rowsBytes = (await store.db.get('timeline', ['c1', 0.5]))!.ct.length;
    const itemsBytes = JSON.stringify({ t: 'pack', items: Array.from({ length: TIMELINE_PACK }, (_, i) => message(i + 1)) }).length;
    expect(rowsBytes).toBeLessThan(0.8 * itemsBytes);
    expect(plaintextIn(await store.rawDump(), [SECRET, 'A'.repeat(43)])).toEqual([]);
    store.close();
  });

  it('reads the per-event inbox records of a version 5 database after the upgrade to v6 (pages), and a v5 build no longer opens it', async () => {
    const factory = new IDBFactory();
    const channel = 'a'.repeat(22) as ChannelId;
    const event = (seq: number): RelayEvent => ({ seq, timeMs: seq, type: 'packet', author: null, packet: 'AAAA' });
    const legacy = [1, 2, 3].map((seq): InboxEventRecord => ({ relay: 'https://r.test', channel, seq, event: event(seq), fetchedAtMs: 1 }));
    {
      const v5 = await ClientStore.open(factory, CLIENT_DB_NAME, 5);
      const batch = v5.batch();
      for (const r of legacy) batch.putTransit('inbox', r);
      await v5.commit(batch);
      v5.close();
    }
    const store = await ClientStore.open(factory);
    expect(store.db.version).toBe(CLIENT_DB_VERSION);
    expect(CLIENT_DB_VERSION).toBeGreaterThanOrEqual(6);
    const page: InboxPageRecord = { relay: 'https://r.test', channel, seq: 4, lastSeq: 6, events: [4, 5, 6].map(event), fetchedAtMs: 2 };
    await store.commit(store.batch().putTransit('inbox', page));
    const read = await store.inboxPage(undefined);
    expect(read).toEqual([...legacy, page]);
    expect(read.flatMap((r) => inboxEvents(r).map((e) => e.seq))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(read.map(inboxLastSeq)).toEqual([1, 2, 3, 6]);
    store.close();
    // A build of version 5 would take the page record for one event: it cannot open the database.
    await expect(ClientStore.open(factory, CLIENT_DB_NAME, 5)).rejects.toThrow();
  });

  it('reads the session records of a version 6 database after the upgrade to v7 (ack snapshots without us), and a v6 build no longer opens it', async () => {
    const factory = new IDBFactory();
    const { record, dataKey } = await createKeys();
    // As a v6 build stored it: the ack monitor names us among the readers still to ack.
    const session = { snapshot: { subsessions: [{ acks: { tracked: [{ id: 'm1', remaining: ['bob', 'me'] }] } }] }, lastSeq: 7 };
    {
      const v6 = await ClientStore.open(factory, CLIENT_DB_NAME, 6);
      await v6.putKeys(record);
      v6.setDataKey(dataKey);
      await v6.commit(v6.batch().put('sessions', 'c1', session));
      v6.close();
    }
    const store = await ClientStore.open(factory);
    expect(store.db.version).toBe(CLIENT_DB_VERSION);
    expect(CLIENT_DB_VERSION).toBeGreaterThanOrEqual(7);
    store.setDataKey(dataKey);
    expect(await store.get('sessions', 'c1')).toEqual(session);
    store.close();
    // A build of version 6 would take a snapshot without us for one where we acked everything: it cannot open the database.
    await expect(ClientStore.open(factory, CLIENT_DB_NAME, 6)).rejects.toThrow();
  });

  it('reads a version 4 pack of items after the upgrade to v5 beside packs of rows', async () => {
    const factory = new IDBFactory();
    const { record, dataKey } = await createKeys();
    const item = (p: number) => ({ t: 'm', text: `old ${p}`, atMs: p });
    {
      const v4 = await ClientStore.open(factory, CLIENT_DB_NAME, 4);
      await v4.putKeys(record);
      v4.setDataKey(dataKey);
      // As a version 4 build wrote a pack: items.
      await v4.commit(v4.batch().put('timeline', ['c1', 0.5], { t: 'pack', items: [1, 2, 3].map(item) }));
      v4.close();
    }
    const store = await ClientStore.open(factory);
    expect(store.db.version).toBe(CLIENT_DB_VERSION);
    expect(CLIENT_DB_VERSION).toBeGreaterThanOrEqual(5);
    store.setDataKey(await unlockKeys((await store.keys())!));
    const batch = store.batch();
    for (let p = 4; p <= 6; p++) batch.appendTimeline('c1', p, item(p));
    await store.commit(batch);
    expect(Object.keys(await store.open<object>('timeline', ['c1', 3.5], (await store.db.get('timeline', ['c1', 3.5]))!))).toEqual(['t', 'k', 'r']);
    expect(await store.range('timeline', 'c1')).toEqual([1, 2, 3, 4, 5, 6].map((p) => [p, item(p)]));
    expect(await store.timeline('c1', 4)).toEqual([3, 4, 5, 6].map((p) => [p, item(p)]));
    store.close();
  });

  it('reads a version 3 timeline after the upgrade to packs (v4), old single records and new packs together', async () => {
    const factory = new IDBFactory();
    const v3 = await openCoveyDb(factory, CLIENT_DB_NAME, 3);
    const { record, dataKey } = await createKeys();
    await v3.put('meta', record, 'keys');
    v3.close();
    {
      const store = await ClientStore.open(factory, CLIENT_DB_NAME, 3);
      store.setDataKey(dataKey);
      const batch = store.batch();
      for (let p = 1; p <= 5; p++) batch.put('timeline', ['c1', p], { t: 'n', text: `old ${p}` });
      await store.commit(batch);
      store.close();
    }
    const store = await ClientStore.open(factory);
    expect(store.db.version).toBe(CLIENT_DB_VERSION);
    expect(CLIENT_DB_VERSION).toBeGreaterThanOrEqual(4);
    store.setDataKey(await unlockKeys((await store.keys())!));
    const batch = store.batch();
    for (let p = 6; p <= 9; p++) batch.appendTimeline('c1', p, { t: 'n', text: `new ${p}` });
    await store.commit(batch);
    const expected = Array.from({ length: 9 }, (_, i) => [i + 1, { t: 'n', text: `${i < 5 ? 'old' : 'new'} ${i + 1}` }]);
    expect(await store.range('timeline', 'c1')).toEqual(expected);
    expect(await store.timeline('c1', 6)).toEqual(expected.slice(-6));
    store.close();
  });

  it('locks with a passphrase and refuses a wrong one', async () => {
    const { record, dataKey } = await createKeys();
    const locked = await rewrapKeys(record, undefined, 'correct horse battery', 2_000);
    expect(locked.passphrase?.iterations).toBe(2_000);
    await expect(unlockKeys(locked)).rejects.toBeInstanceOf(WrongPassphraseError);
    await expect(unlockKeys(locked, 'wrong horse battery')).rejects.toBeInstanceOf(WrongPassphraseError);
    const unlocked = await unlockKeys(locked, 'correct horse battery');
    // The same data key: what one seals, the other opens.
    const iv = new Uint8Array(12);
    const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, dataKey, new Uint8Array([1, 2, 3]));
    expect(new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, unlocked, ct))).toEqual(new Uint8Array([1, 2, 3]));
    const cleared = await rewrapKeys(locked, 'correct horse battery', null);
    expect(cleared.passphrase).toBeNull();
    await unlockKeys(cleared);
    expect(dataKey.extractable).toBe(false);
    expect(record.deviceKey.extractable).toBe(false);
  });

  it('uses at least 600,000 PBKDF2 iterations by default', async () => {
    const { record } = await createKeys();
    const locked = await rewrapKeys(record, undefined, 'a long passphrase');
    expect(locked.passphrase!.iterations).toBeGreaterThanOrEqual(600_000);
  });

  it('runs its transactions in the order they were asked for: whatever comes after a commit still sealing sees it', async () => {
    const { store } = await openUnlocked();
    const seal = store.sealJson.bind(store);
    store.sealJson = async (...args) => {
      await new Promise((r) => setTimeout(r, 50));
      return seal(...args);
    };
    // Called while the commit seals its records (its transaction does not exist yet).
    const committed = store.commit(store.batch().put('drafts', 'c1', SECRET).put('timeline', ['c1', 3], { t: 'm', text: SECRET }).putTransit('inbox', {
      relay: 'https://r.test', channel: 'c'.repeat(22) as ChannelId, seq: 5, event: { seq: 5, timeMs: 9, type: 'packet', author: null, packet: 'AAAA' }, fetchedAtMs: 10,
    }));
    const reads = Promise.all([store.get('drafts', 'c1'), store.all('drafts'), store.timeline('c1', 10), store.range('timeline', 'c1'), store.transit('inbox')]);
    // A commit that seals nothing, asked after one that seals: it must not overtake it.
    const later = store.commit(store.batch().put('drafts', 'c2', 'first'));
    const deleted = store.commit(store.batch().delete('drafts', 'c2').deleteRange('timeline', ['c1', 0], ['c1', 9]));
    const [draft, drafts, timeline, range, inbox] = await reads;
    expect(draft).toBe(SECRET);
    expect(drafts).toEqual([['c1', SECRET]]);
    expect(timeline).toEqual([[3, { t: 'm', text: SECRET }]]);
    expect(range).toEqual([[3, { t: 'm', text: SECRET }]]);
    expect(inbox).toHaveLength(1);
    await Promise.all([committed, later, deleted]);
    expect(await store.get('drafts', 'c2')).toBeUndefined();
    expect(await store.range('timeline', 'c1')).toEqual([]);
    // A commit that fails before its transaction (a seal refused) holds nothing up.
    store.sealJson = () => Promise.reject(new Error('refused'));
    const failing = store.commit(store.batch().put('drafts', 'c3', 'never'));
    const after = store.get('drafts', 'c1');
    await expect(failing).rejects.toThrow('refused');
    expect(await after).toBe(SECRET);
    store.close();
  });

  it('seals a commit with `sealAfter` once that resolves, or at once when the store is asked anything meanwhile (in order, no deadlock)', async () => {
    const { store } = await openUnlocked();
    const seal = store.sealJson.bind(store);
    const sealed: string[] = [];
    store.sealJson = (name, key, json) => {
      sealed.push(json);
      return seal(name, key, json);
    };
    let go!: () => void;
    const committed = store.commit(store.batch().put('drafts', 'c1', 'held'), undefined, new Promise<void>((resolve) => (go = resolve)));
    await new Promise((r) => setTimeout(r, 20));
    expect(sealed, 'nothing sealed before sealAfter').toEqual([]);
    go();
    await committed;
    expect(sealed).toEqual([JSON.stringify('held')]);
    // A read asked while a commit waits for something that never comes: the commit goes first
    // (the read sees it), and neither waits for ever.
    const stuck = store.commit(store.batch().put('drafts', 'c2', 'released'), undefined, new Promise<void>(() => undefined));
    expect(await store.get('drafts', 'c2')).toBe('released');
    await stuck;
    store.close();
  });

  it('makes a `putLater` value when the batch is sealed (after `sealAfter`), with the puts its maker adds; a put over it makes it first; a maker that throws writes nothing', async () => {
    const { store } = await openUnlocked();
    const made: string[] = [];
    let go!: () => void;
    const batch = store.batch().putLater('drafts', 'c1', () => {
      made.push('c1');
      batch.put('drafts', 'c3', 'added by the maker');
      return JSON.stringify('made late');
    });
    const committed = store.commit(batch, undefined, new Promise<void>((resolve) => (go = resolve)));
    await new Promise((r) => setTimeout(r, 20));
    expect(made, 'not made before sealAfter').toEqual([]);
    go();
    await committed;
    expect(made).toEqual(['c1']);
    expect([await store.get('drafts', 'c1'), await store.get('drafts', 'c3')]).toEqual(['made late', 'added by the maker']);
    // `prepare` makes it at once, once; a put of the same key after it replaces the value.
    const early = store.batch().putLater('drafts', 'c4', () => (made.push('c4'), JSON.stringify('early')));
    early.prepare();
    expect(made).toEqual(['c1', 'c4']);
    early.put('drafts', 'c4', 'replaced');
    await store.commit(early);
    expect(made).toEqual(['c1', 'c4']);
    expect(await store.get('drafts', 'c4')).toBe('replaced');
    const broken = store.commit(store.batch().put('drafts', 'c5', 'never').putLater('drafts', 'c6', () => { throw new Error('no snapshot'); }));
    await expect(broken).rejects.toThrow('no snapshot');
    expect(await store.get('drafts', 'c5')).toBeUndefined();
    store.close();
  });

  it('writes a transit record given as a promise with the batch, and nothing of a batch whose promise fails', async () => {
    const { store } = await openUnlocked();
    const outbox = (postId: string): OutboxRecord => ({ postId, relay: 'https://r.test', channel: 'c'.repeat(22) as ChannelId, packet: 'AAAA', ifNoLeaveAfter: 4, queuedAtMs: 1, presigned: null, attempts: 0 });
    const later = new Promise<OutboxRecord>((resolve) => setTimeout(() => resolve(outbox('made later')), 30));
    await store.commit(store.batch().put('drafts', 'c1', SECRET).putTransit('outbox', later));
    expect((await store.transit('outbox')).map((r) => r.postId)).toEqual(['made later']);
    const refused = store.commit(store.batch().put('drafts', 'c2', 'never').putTransit('outbox', Promise.reject(new Error('no signature'))));
    await expect(refused).rejects.toThrow('no signature');
    expect(await store.get('drafts', 'c2')).toBeUndefined();
    expect(await store.transit('outbox')).toHaveLength(1);
    store.close();
  });

  it('refuses every write of an engine that another one replaced', async () => {
    const factory = new IDBFactory();
    const { store: first } = await openUnlocked(factory);
    await first.claimEpoch(1);
    await first.commit(first.batch().put('drafts', 'c1', 'one'));
    const second = await ClientStore.open(factory);
    second.setDataKey(await unlockKeys((await second.keys())!));
    await second.claimEpoch(2);
    await expect(first.commit(first.batch().put('drafts', 'c1', 'stale'))).rejects.toBeInstanceOf(EngineReplacedError);
    expect(await second.get('drafts', 'c1')).toBe('one');
    await second.commit(second.batch().put('drafts', 'c1', 'two'));
    expect(await second.get('drafts', 'c1')).toBe('two');
    first.close();
    second.close();
  });
});
