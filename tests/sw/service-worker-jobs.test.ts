/**
 * The service worker's two jobs (sw/inbox.ts, sw/outbox.ts) run in Node on a real profile's
 * IndexedDB and a real relay, with no key: the engine (tests/worker harness) makes the state a
 * closed app leaves behind, the jobs move ciphertext, the engine opens and finds the result.
 * The browser tests (tests/browser/pwa-*.test.ts) drive the same code from real service workers.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import { CLIENT_DB_NAME, inboxEvents, INBOX_PAGE_EVENTS, type FetchTokenRecord, type InboxEventRecord, type InboxPageRecord, type InboxRecord, type OutboxRecord } from '../../src/shared/client-db.js';
import { DEFERRED_POST_MAX_AGE_MS, type ChannelId, type RelayEvent } from '../../src/shared/relay-api.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { ClientStore } from '../../src/store/client-store.js';
import { openClientDb, type ServiceWorkerDeps } from '../../sw/client-db.js';
import { fetchIntoInbox, MAX_INBOX_EVENTS } from '../../sw/inbox.js';
import { CrashError } from '../../src/worker/conversation.js';
import type { FaultHook } from '../../src/worker/deps.js';
import { RelayClient, type FetchLike } from '../../src/worker/relay-client.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { plaintextIn } from '../store/dump.js';
import { flushOutbox } from '../../sw/outbox.js';
import { connect, identity, Profile, startTestRelay, TestClient } from '../worker/helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

const offlineFetch = async (): Promise<Response> => {
  throw new TypeError('fetch failed (offline)');
};

function swDeps(profile: { indexedDB: IDBFactory }, fetch: ServiceWorkerDeps['fetch'] = (url, init) => globalThis.fetch(url, init)): ServiceWorkerDeps {
  return { indexedDB: profile.indexedDB as unknown as globalThis.IDBFactory, fetch, now: () => Date.now() };
}

/** Alice and Bob in a group; Bob's engine has made its fetch tokens. */
async function pair(): Promise<{ alice: TestClient; bob: TestClient; bobProfile: Profile; conversationId: ConversationId; bobId: ConversationId }> {
  const bobProfile = new Profile('Bob');
  const alice = await TestClient.start('Alice', { relay });
  const bob = await TestClient.start('Bob', { relay, profile: bobProfile });
  await identity(alice);
  await identity(bob);
  const [ab] = await connect(alice, bob);
  const { conversationId } = await alice.call('createGroup', { name: 'Sync', contactIds: [ab as ContactId] });
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
  await bob.until('active', () => bob.view(bobId)?.state === 'active');
  await alice.until('Bob in the group', () => alice.view(conversationId)?.members.some((m) => m.name === 'Bob' && m.role === 'member'));
  await bob.until('fetch tokens stored', async () => (await bob.host.engine!.store.transit('fetchTokens')).length === 2 || undefined);
  return { alice, bob, bobProfile, conversationId, bobId };
}

describe('the service worker jobs, keyless, on a real profile', () => {
  it('fetches what arrived while the app was closed into the inbox, counts only messages others wrote, and the app shows them offline', async () => {
    const { alice, bob, bobProfile, conversationId, bobId } = await pair();
    bob.close();
    // (Not 'one': a random channel id "oneMl0…" once contained it. plaintextIn also looks for
    // each text's base64 and hex forms.)
    const texts = ['note one', 'note two', 'note three'];
    for (const text of texts) await alice.call('send', { conversationId, text });
    await alice.until('all at the relay', () => {
      const posted = (alice.view(conversationId)?.timeline ?? []).filter((t) => t.type === 'message' && texts.includes(t.text) && t.delivery.state !== 'waiting-to-send');
      return posted.length === texts.length && alice.host.engine!.outbox.count() === 0;
    });

    // Offline first: nothing stored, and the browser is told to try again.
    expect(await fetchIntoInbox(swDeps(bobProfile, offlineFetch))).toMatchObject({ stored: 0, news: 0, retry: true });
    const first = await fetchIntoInbox(swDeps(bobProfile));
    expect(first.retry).toBe(false);
    // Acks and key exchange are stored too (the engine needs them) but are no news.
    expect(first.news).toBe(texts.length);
    expect(first.stored).toBeGreaterThanOrEqual(texts.length);
    expect(first.channelsWithNews).toHaveLength(1);
    // Again: it resumes after what it stored.
    expect(await fetchIntoInbox(swDeps(bobProfile))).toMatchObject({ stored: 0, news: 0 });

    const keyless = await ClientStore.open(bobProfile.indexedDB);
    const inbox = await keyless.transit('inbox');
    keyless.close();
    // One record per page read: here one page per channel that had anything.
    expect(inbox.reduce((n, r) => n + inboxEvents(r).length, 0)).toBe(first.stored);
    expect(inbox.length).toBeLessThanOrEqual(2);
    expect(plaintextIn(inbox, texts)).toEqual([]);

    const reopened = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offlineFetch });
    await reopened.until('the three messages, offline', () => texts.every((t) => reopened.texts(bobId).includes(t)));
    expect(reopened.texts(bobId).filter((t) => texts.includes(t))).toEqual(texts);
    await reopened.until('inbox processed', async () => (await reopened.host.engine!.store.transit('inbox')).length === 0 || undefined);
    reopened.close();
    alice.close();
  });

  it('sends what was written offline after the app closed, each message once, and leaves membership packets to the worker', async () => {
    const { alice, bobProfile, conversationId, bobId, bob } = await pair();
    bob.close();
    // Bob opens offline and writes two messages: sealed, presigned, waiting. Only his fetch fails
    // (his socket reaches the relay), so his posts must not take the socket either: over it they
    // would go out at once (RelaySubscription.post) and never wait for the service worker.
    const offline = await TestClient.start('Bob', { relay: { url: relay.url }, profile: bobProfile, fetch: offlineFetch, socketPosts: false });
    await offline.until('ready', () => offline.view(bobId)?.state === 'active');
    await offline.call('send', { conversationId: bobId, text: 'written offline 1' });
    await offline.call('send', { conversationId: bobId, text: 'written offline 2' });
    // `send` returns before sealing: wait for both sealed messages (the ones that wake). The
    // outbox may hold more: Bob's socket reached the relay, so once caught up (rule 6) his engine
    // owes Alice an explicit ack, a data packet that wakes nobody.
    const waiting = await offline.until('both messages in the outbox', async () => {
      const records = await offline.host.engine!.store.transit('outbox');
      return records.filter((r) => r.wake === true).length >= 2 ? records : undefined;
    });
    expect(waiting.filter((r) => r.wake === true)).toHaveLength(2);
    // Every data packet (conditional, rule 7) is presigned for the service worker; membership
    // packets (unconditional) never are, and only a person's message wakes.
    for (const r of waiting) {
      expect(r.presigned !== null).toBe(r.ifNoLeaveAfter !== null);
      if (r.wake === true) expect(r.ifNoLeaveAfter).not.toBeNull();
    }
    const presigned = waiting.filter((r) => r.presigned !== null).length;
    offline.close();

    expect(await flushOutbox(swDeps(bobProfile, offlineFetch))).toMatchObject({ sent: 0, retry: true });
    const flushed = await flushOutbox(swDeps(bobProfile));
    expect(flushed).toMatchObject({ sent: presigned, left: waiting.length - presigned, retry: false });
    await alice.until('both arrived', () => alice.texts(conversationId).includes('written offline 2'));
    // A second sync finds nothing; the worker's own retries later are duplicates.
    expect(await flushOutbox(swDeps(bobProfile))).toMatchObject({ sent: 0, left: 0 });
    const back = await TestClient.start('Bob', { relay, profile: bobProfile });
    await back.until('delivered', () => back.view(bobId)?.timeline.some((t) => t.type === 'message' && t.text === 'written offline 2' && t.delivery.state !== 'waiting-to-send'));
    await alice.call('send', { conversationId, text: 'after' });
    await back.until('a later message', () => back.texts(bobId).includes('after'));
    expect(alice.texts(conversationId).filter((t) => t.startsWith('written offline'))).toEqual(['written offline 1', 'written offline 2']);
    expect(back.texts(bobId).filter((t) => t.startsWith('written offline'))).toEqual(['written offline 1', 'written offline 2']);
    back.close();
    alice.close();
  });
});

describe('the fetch token of a group just joined', () => {
  it('is stored when the join returns, so an app closed at once leaves the service worker a token to fetch the group with', async () => {
    // Bob's relay requests for fetch tokens answer late (a busy relay, a slow network).
    const slowTokens: FetchLike = async (url, init) => {
      if (init.method === 'POST' && /\/fetch-tokens$/.test(new URL(url).pathname)) await new Promise((resolve) => setTimeout(resolve, 300));
      return nodeFetch(url, init);
    };
    const bobProfile = new Profile('Bob');
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay, profile: bobProfile, fetch: slowTokens });
    await identity(alice);
    await identity(bob);
    const [ab] = await connect(alice, bob);
    const { conversationId } = await alice.call('createGroup', { name: 'Closed at once', contactIds: [ab as ContactId] });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
    const channel = bob.host.engine!.conversation(bobId).channel;
    // The app closes as soon as the group shows (the join returned).
    const tokens = await bob.host.engine!.store.transit('fetchTokens');
    bob.close();
    // Before: the token was asked for after the join returned, and stored after the relay's
    // answer: none for the group here, so the service worker fetched nothing of it.
    expect(tokens.map((t) => t.channel)).toContain(channel);
    // What came in the group since the join (Bob's join and claim, Alice's answer) is fetched.
    await alice.until('Bob in the group', () => alice.view(conversationId)?.members.some((m) => m.name === 'Bob'));
    expect((await fetchIntoInbox(swDeps(bobProfile))).stored).toBeGreaterThan(0);
    const keyless = await ClientStore.open(bobProfile.indexedDB);
    const inbox = await keyless.transit('inbox');
    keyless.close();
    expect(inbox.some((r) => r.channel === channel)).toBe(true);
    alice.close();
  });
});

describe('the outbox rules of the service worker (crafted records)', () => {
  async function profileWith(records: OutboxRecord[]): Promise<{ indexedDB: IDBFactory }> {
    const profile = { indexedDB: new IDBFactory() };
    const store = await ClientStore.open(profile.indexedDB);
    const batch = store.batch();
    for (const r of records) batch.putTransit('outbox', r);
    await store.commit(batch);
    store.close();
    return profile;
  }
  const now = Date.now();
  const record = (channel: string, n: number, presigned: boolean, signedAtMs = now): OutboxRecord => ({
    postId: `p${channel}${n}`,
    relay: 'http://relay.test',
    channel: channel as OutboxRecord['channel'],
    packet: 'eA',
    ifNoLeaveAfter: presigned ? 1 : null,
    queuedAtMs: now + n / 1000,
    presigned: presigned ? { headers: { 'covey-nonce': `n${channel}${n}` }, body: `{"n":${n}}`, signedAtMs } : null,
    attempts: 0,
  });

  it('keeps each channel in queue order and stops it at the first record it cannot send', async () => {
    const profile = await profileWith([record('a', 3, true), record('a', 1, true), record('a', 2, false), record('b', 2, true), record('b', 1, true)]);
    const posted: string[] = [];
    const fetch = async (url: string, init: RequestInit): Promise<Response> => {
      posted.push(`${new URL(url).pathname} ${String(init.body)}`);
      return new Response('{"seq":1,"timeMs":1,"duplicate":false}', { status: 201 });
    };
    expect(await flushOutbox({ indexedDB: profile.indexedDB as unknown as globalThis.IDBFactory, fetch, now: () => now })).toEqual({ sent: 3, left: 2, retry: false });
    expect(posted.filter((p) => p.includes('/a/'))).toEqual(['/v1/channels/a/deferred-events {"n":1}']);
    expect(posted.filter((p) => p.includes('/b/'))).toEqual(['/v1/channels/b/deferred-events {"n":1}', '/v1/channels/b/deferred-events {"n":2}']);
  });

  it('leaves refused, stale and nearly stale records to the worker, and asks to retry only for a busy relay', async () => {
    const stale = now - DEFERRED_POST_MAX_AGE_MS + 60_000;
    const profile = await profileWith([record('a', 1, true), record('b', 1, true), record('c', 1, true, stale)]);
    const status: Record<string, number> = { a: 409, b: 503 };
    const fetch = async (url: string): Promise<Response> => new Response('{}', { status: status[url.split('/')[5]!] ?? 201 });
    const deps = { indexedDB: profile.indexedDB as unknown as globalThis.IDBFactory, fetch, now: () => now };
    expect(await flushOutbox(deps)).toEqual({ sent: 0, left: 3, retry: true });
    const store = await ClientStore.open(profile.indexedDB);
    const left = await store.transit('outbox');
    store.close();
    expect(Object.fromEntries(left.map((r) => [r.channel, r.attempts]))).toEqual({ a: 1, b: 1, c: 0 });
  });

  it('never creates the database, and touches nothing when there is none', async () => {
    const empty = new IDBFactory();
    expect(await openClientDb(empty as unknown as globalThis.IDBFactory)).toBeNull();
    expect(await flushOutbox({ indexedDB: empty as unknown as globalThis.IDBFactory, fetch: offlineFetch, now: () => now })).toEqual({ sent: 0, left: 0, retry: false });
    expect(await fetchIntoInbox({ indexedDB: empty as unknown as globalThis.IDBFactory, fetch: offlineFetch, now: () => now })).toMatchObject({ stored: 0 });
    expect((await empty.databases()).map((d) => d.name)).not.toContain(CLIENT_DB_NAME);
  });
});

describe('the inbox stored as pages of events', () => {
  /** Events per relay read in these tests, instead of INBOX_PAGE_EVENTS: a few messages make several pages. */
  const SMALL_PAGE = 3;
  /** The relay as the service worker sees it, but answering pages of SMALL_PAGE. */
  const smallPages: ServiceWorkerDeps['fetch'] = (url, init) => globalThis.fetch(url.replace(`limit=${INBOX_PAGE_EVENTS}`, `limit=${SMALL_PAGE}`), init);
  const inboxOf = async (profile: Profile): Promise<InboxRecord[]> => {
    const keyless = await ClientStore.open(profile.indexedDB);
    try {
      return await keyless.transit('inbox');
    } finally {
      keyless.close();
    }
  };
  /** Alice sends `texts` while Bob's app is closed. */
  async function closedBob(texts: readonly string[]) {
    const { alice, bob, bobProfile, conversationId, bobId } = await pair();
    bob.close();
    for (const text of texts) await alice.call('send', { conversationId, text });
    await alice.until('all at the relay', () => alice.host.engine!.outbox.count() === 0 && alice.texts(conversationId).includes(texts.at(-1)!));
    return { alice, bobProfile, conversationId, bobId };
  }

  it('stores one record per page it reads (not one per event), resumes after the last event stored, and the app processes and deletes them', async () => {
    const texts = Array.from({ length: 7 }, (_, i) => `paged ${i}`);
    const { alice, bobProfile, conversationId, bobId } = await closedBob(texts);
    const first = await fetchIntoInbox(swDeps(bobProfile, smallPages));
    expect(first.news).toBe(texts.length);
    const inbox = await inboxOf(bobProfile);
    // Before: one record per event (first.stored records).
    const perChannel = new Map<string, number>();
    for (const r of inbox) perChannel.set(r.channel, (perChannel.get(r.channel) ?? 0) + inboxEvents(r).length);
    expect(inbox.length).toBe([...perChannel.values()].reduce((n, events) => n + Math.ceil(events / SMALL_PAGE), 0));
    expect(inbox.length).toBeLessThan(first.stored);
    expect([...perChannel.values()].reduce((n, e) => n + e, 0)).toBe(first.stored);
    for (const r of inbox) {
      const page = r as InboxPageRecord;
      expect(page.events.length).toBeGreaterThan(0);
      expect(page.events.length).toBeLessThanOrEqual(SMALL_PAGE);
      expect(page.seq).toBe(page.events[0]!.seq);
      expect(page.lastSeq).toBe(page.events.at(-1)!.seq);
      expect(page.events.map((e) => e.seq)).toEqual([...page.events.map((e) => e.seq)].sort((a, b) => a - b));
    }
    // More while still closed: the next sync reads after the last event of the last record only.
    await alice.call('send', { conversationId, text: 'paged later' });
    await alice.until('at the relay', () => alice.host.engine!.outbox.count() === 0);
    const second = await fetchIntoInbox(swDeps(bobProfile, smallPages));
    expect(second.news).toBe(1);
    const all = await inboxOf(bobProfile);
    const seqs = all.flatMap((r) => inboxEvents(r).map((e) => `${r.channel} ${e.seq}`));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.length).toBe(first.stored + second.stored);

    const reopened = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offlineFetch });
    const expected = [...texts, 'paged later'];
    await reopened.until('every message, offline', () => expected.every((t) => reopened.texts(bobId).includes(t)));
    expect(reopened.texts(bobId).filter((t) => t.startsWith('paged'))).toEqual(expected);
    await reopened.until('inbox processed', async () => (await reopened.host.engine!.store.transit('inbox')).length === 0 || undefined);
    reopened.close();
    alice.close();
  });

  it('keeps a page record until its last event is processed: a crash half way through it loses and repeats nothing', async () => {
    const texts = Array.from({ length: 6 }, (_, i) => `crash ${i}`);
    const { alice, bobProfile, bobId } = await closedBob(texts);
    await fetchIntoInbox(swDeps(bobProfile, smallPages));
    const before = await inboxOf(bobProfile);
    // Bob opens offline and processes his group's events in steps of 2: the first step (2 of a
    // page record's 3 events) is stored, then the engine dies.
    let crashed = false;
    const fault: FaultHook = (point, what) => {
      if (crashed || point !== 'after-persist' || what !== 'receive') return;
      crashed = true;
      throw new CrashError(point);
    };
    const bob = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offlineFetch, receivePage: 2, fault });
    await bob.until('the crash', () => crashed);
    bob.close();
    // The half-processed record is still there, whole (its events before the crash included).
    const after = await inboxOf(bobProfile);
    const groupChannel = before.find((r) => inboxEvents(r).some((e) => e.type === 'packet' && e.author !== null))!.channel;
    const firstGroupRecord = before.filter((r) => r.channel === groupChannel)[0]!;
    expect(after).toContainEqual(firstGroupRecord);

    const again = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offlineFetch, receivePage: 2 });
    await again.until('every message after the restart', () => texts.every((t) => again.texts(bobId).includes(t)));
    expect(again.texts(bobId).filter((t) => t.startsWith('crash'))).toEqual(texts);
    await again.until('inbox processed', async () => (await again.host.engine!.store.transit('inbox')).length === 0 || undefined);
    expect(again.errors).toEqual([]);
    again.close();
    alice.close();
  });

  it('an app upgraded with one record per event (older builds) still processes them, and the service worker reads on after them', async () => {
    const texts = Array.from({ length: 5 }, (_, i) => `upgraded ${i}`);
    const { alice, bobProfile, conversationId, bobId } = await closedBob(texts);
    // The service worker of the older build stored what had come then, one record per event.
    const keyless = await ClientStore.open(bobProfile.indexedDB);
    const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
    const batch = keyless.batch();
    let legacy = 0;
    for (const token of await keyless.transit('fetchTokens')) {
      for (const event of (await raw.readWithFetchToken(token.channel, token.token, token.afterSeq)).events) {
        batch.putTransit('inbox', { relay: token.relay, channel: token.channel, seq: event.seq, event, fetchedAtMs: Date.now() } satisfies InboxEventRecord);
        legacy++;
      }
    }
    await keyless.commit(batch);
    keyless.close();
    // The new one: the messages after, as pages, after the last event the old records hold.
    const newer = ['after the upgrade 1', 'after the upgrade 2'];
    for (const text of newer) await alice.call('send', { conversationId, text });
    await alice.until('at the relay', () => alice.host.engine!.outbox.count() === 0);
    const fetched = await fetchIntoInbox(swDeps(bobProfile));
    expect(fetched.news).toBe(newer.length);
    const inbox = await inboxOf(bobProfile);
    expect(inbox.filter((r) => 'event' in r)).toHaveLength(legacy);
    expect(inbox.filter((r) => 'events' in r).length).toBeGreaterThanOrEqual(1);
    const seqs = inbox.flatMap((r) => inboxEvents(r).map((e) => `${r.channel} ${e.seq}`));
    expect(new Set(seqs).size).toBe(seqs.length);

    const bob = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offlineFetch, inboxFirstRead: 2 });
    const expected = [...texts, ...newer];
    await bob.until('every message, offline', () => expected.every((t) => bob.texts(bobId).includes(t)));
    expect(bob.texts(bobId).filter((t) => expected.includes(t))).toEqual(expected);
    await bob.until('inbox processed', async () => (await bob.host.engine!.store.transit('inbox')).length === 0 || undefined);
    bob.close();
    alice.close();
  });

  it(`stops at ${MAX_INBOX_EVENTS} events stored, counting events, not records`, async () => {
    const profile = { indexedDB: new IDBFactory() };
    const store = await ClientStore.open(profile.indexedDB);
    const channel = 'a'.repeat(22) as ChannelId;
    const other = 'b'.repeat(22) as ChannelId;
    const event = (seq: number): RelayEvent => ({ seq, timeMs: seq, type: 'packet', author: null, packet: 'AAAA' });
    const batch = store.batch();
    const token: FetchTokenRecord = { channel, relay: 'http://relay.test', token: 't'.repeat(43) as FetchTokenRecord['token'], expiresAtMs: Date.now() + 3_600_000, afterSeq: 0 };
    batch.putTransit('fetchTokens', token);
    // Thirty events of another channel, one record each (an older build's): 30 × INBOX_PAGE_EVENTS
    // is the most the records could hold, so the store is counted before it could be full.
    const older = 30;
    for (let seq = 1; seq <= older; seq++) batch.putTransit('inbox', { relay: token.relay, channel: other, seq, event: event(seq), fetchedAtMs: 1 } satisfies InboxEventRecord);
    await store.commit(batch);
    store.close();
    // A relay with endless news in this channel.
    const fetch = async (url: string): Promise<Response> => {
      const after = Number(new URL(url).searchParams.get('after'));
      const limit = Number(new URL(url).searchParams.get('limit'));
      return new Response(JSON.stringify({ events: Array.from({ length: limit }, (_, i) => event(after + 1 + i)), more: true }), { status: 200 });
    };
    const result = await fetchIntoInbox({ indexedDB: profile.indexedDB as unknown as globalThis.IDBFactory, fetch, now: () => Date.now() });
    expect(result.stored).toBe(MAX_INBOX_EVENTS - older);
    expect(result.news).toBe(result.stored);
    const inbox = await inboxOf(profile as unknown as Profile);
    expect(inbox.reduce((n, r) => n + inboxEvents(r).length, 0)).toBe(MAX_INBOX_EVENTS);
    expect(inbox.filter((r) => r.channel === channel)).toHaveLength(Math.ceil((MAX_INBOX_EVENTS - older) / INBOX_PAGE_EVENTS));
    // Full: the next sync stores nothing.
    expect((await fetchIntoInbox({ indexedDB: profile.indexedDB as unknown as globalThis.IDBFactory, fetch, now: () => Date.now() })).stored).toBe(0);
  });
});
