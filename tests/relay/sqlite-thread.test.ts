// The SQLite store on its own thread (sqlite-proxy.ts / sqlite-thread.ts), beside what the
// contract suite (contract-sqlite.test.ts) and the crash test already run on it: the order of
// events and answers across the thread, errors that keep their class (503 vs 500), a failed
// fdatasync in the thread, a thread that dies (503, logged, nothing hangs), close() that commits
// what was asked before it, bytes that cross as copies, and when the relay picks the thread.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelId, MemberKey, RelayEvent } from '../../src/shared/relay-api.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteThreadStore, type SqliteThreadStore } from '../../src/relay/store/sqlite-proxy.js';
import { openSqlite, sqliteThreadFromEnv } from '../../src/relay/store/select.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import { StoreUnavailableError, type CapabilityHash, type RelayStore } from '../../src/relay/store/types.js';
import type { BlobHash } from '../../src/shared/relay-api.js';
import { newMember, rawRequest, setupGroup, signedHeaders } from './helpers/signed-http.js';
import { tempDirs } from './helpers/sqlite-fixture.js';

const OWNER = 'B'.repeat(43) as MemberKey;
const NOW_MS = 1_700_000_000_000;
const channelOf = (i: number): ChannelId => `${String(i).padStart(2, '0')}${'A'.repeat(20)}` as ChannelId;

describe('sqlite store on its own thread', () => {
  const dirs = tempDirs('covey-sqlite-thread-');
  const stores: RelayStore[] = [];
  const relays: RunningRelay[] = [];
  const dataDir = (): string => dirs.make();
  const open = async (options: { dataDir?: string; syncFailure?: string; warn?: (message: string) => void } = {}): Promise<SqliteThreadStore> => {
    const store = await openSqliteThreadStore({ dataDir: options.dataDir ?? dataDir(), warn: options.warn ?? (() => undefined), ...options });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.allSettled(relays.splice(0).map((relay) => relay.close()));
    await Promise.allSettled(stores.splice(0).map((store) => store.close()));
    dirs.removeAll();
  });

  it('announces events in commit order, each before its write is answered', async () => {
    const store = await open();
    const heard: Array<[ChannelId, number]> = [];
    store.subscribe((channelId, event) => heard.push([channelId, event.seq]));
    const channels = [0, 1, 2, 3].map(channelOf);
    await Promise.all(channels.map((channel) => store.createChannel(channel, 'group', OWNER, NOW_MS)));
    // 200 posts over 4 channels in one turn: several groups, several messages each way.
    const posts = Array.from({ length: 200 }, (_, i) => {
      const channel = channels[i % channels.length] as ChannelId;
      return store.appendEvent(channel, { type: 'packet', author: OWNER, packet: `cA${i}` }, NOW_MS, { asMember: OWNER }).then((result) => {
        if (!result.ok) throw new Error(result.code);
        // Answered: its event was announced already.
        expect(heard).toContainEqual([channel, result.value.event.seq]);
        return result.value.event;
      });
    });
    const events = await Promise.all(posts);
    for (const channel of channels) {
      const seqs = heard.filter(([c]) => c === channel).map(([, seq]) => seq);
      // Each channel's events once each, in seq order: 1 (member-joined), then the 50 posts.
      expect(seqs).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    }
    // Commit order: a channel's seq follows the order the posts were made in (one queue, one thread).
    const firstChannel = events.filter((_, i) => i % channels.length === 0);
    expect(firstChannel.map((event) => event.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
  });

  it('keeps the class of errors: a bug stays a plain error (500), not StoreUnavailableError (503)', async () => {
    const store = await open();
    await store.createChannel(channelOf(0), 'group', OWNER, NOW_MS);
    const duplicate = await store.createChannel(channelOf(0), 'group', OWNER, NOW_MS).catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(Error);
    expect(duplicate).not.toBeInstanceOf(StoreUnavailableError);
    expect((duplicate as Error).message).toMatch(/UNIQUE constraint failed/);
    // The store goes on.
    expect((await store.getChannel(channelOf(0)))?.headSeq).toBe(1);
  });

  it('stops after a failed fdatasync in the thread: StoreUnavailableError here, warned, nothing announced', async () => {
    const warnings: string[] = [];
    const store = await open({ syncFailure: 'EIO: i/o error', warn: (message) => warnings.push(message) });
    const heard: RelayEvent[] = [];
    store.subscribe((_channel, event) => heard.push(event));
    const created = await store.createChannel(channelOf(0), 'group', OWNER, NOW_MS).catch((error: unknown) => error);
    expect(created).toBeInstanceOf(StoreUnavailableError);
    expect((created as Error).message).toMatch(/fdatasync of the SQLite WAL failed.*EIO/);
    await expect(store.getChannel(channelOf(0))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(heard).toEqual([]);
    expect(warnings.join('\n')).toMatch(/fdatasync of the SQLite WAL failed/);
  });

  it('a dead thread: calls in flight and later ones fail with StoreUnavailableError, the relay answers 503, logged once', async () => {
    const warnings: string[] = [];
    const store = await open({ warn: (message) => warnings.push(message) });
    const relay = await startRelay({ store, port: 0, logLevel: 'silent' });
    relays.push(relay);
    const members = [newMember(), newMember()];
    const channel = await setupGroup(relay.url, members);
    const post = async (text: string) => {
      const path = `/v1/channels/${channel}/events`;
      const body = JSON.stringify({ packet: Buffer.from(text).toString('base64url') });
      const author = members[0] ?? newMember();
      return rawRequest(relay.url + path, 'POST', { 'content-type': 'application/json', ...signedHeaders(author, 'POST', path, body) }, body);
    };
    expect((await post('before')).status).toBe(201);

    // A call made in the same turn as the thread's end: it fails, it does not hang.
    const inFlight = store.stats();
    await store.terminateThread();
    await expect(inFlight).rejects.toBeInstanceOf(StoreUnavailableError);
    const refused = await post('after');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body.toString('utf8'))).toMatchObject({ code: 'store-unavailable' });
    expect(refused.headers['retry-after']).toBe('5');
    await expect(store.getChannel(channel)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(warnings.filter((message) => /SQLite store thread stopped/.test(message))).toHaveLength(1);
  });

  it('close() commits and answers every call made before it; the data is there on reopen', async () => {
    const dir = dataDir();
    const store = await open({ dataDir: dir });
    await store.createChannel(channelOf(0), 'group', OWNER, NOW_MS);
    const posts = Array.from({ length: 100 }, (_, i) =>
      store.appendEvent(channelOf(0), { type: 'packet', author: OWNER, packet: `cA${i}` }, NOW_MS, { asMember: OWNER }),
    );
    const closed = store.close();
    const results = await Promise.all(posts);
    await closed;
    expect(results.every((result) => result.ok)).toBe(true);
    await expect(store.stats()).rejects.toThrow(/closed/);
    const reopened = openSqliteStore({ dataDir: dir, warn: () => undefined });
    stores.push(reopened);
    expect((await reopened.getChannel(channelOf(0)))?.headSeq).toBe(101);
  });

  it('passes bytes across as copies: the caller keeps its buffer, a read gets exactly its bytes', async () => {
    const store = await open();
    const id = 'c'.repeat(64) as CapabilityHash;
    await store.createUpload({ id, channelId: channelOf(0), sha256: 'd'.repeat(43) as BlobHash, size: 5, received: 0, expiresAtMs: NOW_MS + 60_000 });
    // A view into a larger buffer (as Node's pooled Buffers are): only its 5 bytes go across.
    const backing = Buffer.from('xxhelloyy');
    const chunk = backing.subarray(2, 7);
    expect(await store.appendUploadChunk(id, 0, chunk, NOW_MS)).toEqual({ ok: true, value: 5 });
    expect(backing.toString()).toBe('xxhelloyy');
    const read = await store.readUploadRange(id, 1, 3);
    expect(Buffer.from(read ?? []).toString()).toBe('ell');
    expect(read?.buffer.byteLength).toBe(3);
  });

  it('sends a call\'s bytes with that call when one turn\'s calls take several messages', async () => {
    const store = await open();
    const id = 'c'.repeat(64) as CapabilityHash;
    await store.createUpload({ id, channelId: channelOf(0), sha256: 'd'.repeat(43) as BlobHash, size: 4, received: 0, expiresAtMs: NOW_MS + 60_000 });
    // More calls than one message holds (MAX_CALLS_PER_MESSAGE = 512), the chunk among the last.
    const reads = Array.from({ length: 600 }, () => store.getUpload(id, NOW_MS));
    const chunk = store.appendUploadChunk(id, 0, Buffer.from('abcd'), NOW_MS);
    await Promise.all(reads);
    expect(await chunk).toEqual({ ok: true, value: 4 });
    expect(Buffer.from((await store.readUploadRange(id, 0, 4)) ?? []).toString()).toBe('abcd');
  });

  it('is chosen for a data dir with RELAY_SQLITE_THREAD=on; unset, off, or :memory: keeps the store on the event loop', async () => {
    expect(['on', ' on '].map(sqliteThreadFromEnv)).toEqual([true, true]);
    expect([undefined, '', 'off'].map(sqliteThreadFromEnv)).toEqual([false, false, false]);
    expect(() => sqliteThreadFromEnv('yes')).toThrow(/RELAY_SQLITE_THREAD/);
    const threaded = await openSqlite({ dataDir: dataDir() }, true);
    stores.push(threaded);
    expect('terminateThread' in threaded).toBe(true);
    const inProcess = await openSqlite({ dataDir: dataDir() }, false);
    stores.push(inProcess);
    expect('terminateThread' in inProcess).toBe(false);
    const memory = await openSqlite({ dataDir: ':memory:' }, true);
    stores.push(memory);
    expect('terminateThread' in memory).toBe(false);
  });
});
