/**
 * The service worker's side of the store (src/shared/client-db.ts), played by the test with no
 * keys: while Bob's app is closed, read his fetch tokens, fetch new events from the relay with
 * them, write them to the inbox store; Bob opens and processes them first, then drops them. And
 * packets queued while the relay is unreachable leave from the outbox when it is back.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { InboxRecord } from '../../src/shared/client-db.js';
import { ClientStore } from '../../src/store/client-store.js';
import { ConversationRuntime } from '../../src/worker/conversation.js';
import { CoveyEngine } from '../../src/worker/engine.js';
import { EngineHost } from '../../src/worker/engine-host.js';
import type { AppView, ConversationsView, ConversationView } from '../../src/shared/worker-api.js';
import { appView } from '../../src/worker/views.js';
import { RelayClient, type FetchLike } from '../../src/worker/relay-client.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { groupOfTwo, identity, Profile, startTestRelay, testCrypto, TestClient, WAIT_MS } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

/** Bob (with a group with Alice) closed; Alice sends `texts`; a keyless fetcher puts them in his inbox store. */
async function bobWithStoredInbox(texts: readonly string[]) {
  const bobProfile = new Profile('Bob');
  const alice = await TestClient.start('Alice', { relay });
  const bob = await TestClient.start('Bob', { relay, profile: bobProfile });
  const { aliceId: conversationId, bobId } = await groupOfTwo(alice, bob, 'Transit');
  await bob.until('active', () => bob.view(bobId)?.state === 'active');
  await bob.until('fetch tokens stored', async () => (await bob.host.engine!.store.transit('fetchTokens')).length === 2 || undefined);
  bob.close();
  for (const text of texts) await alice.call('send', { conversationId, text });
  await alice.until('sent', () => alice.host.engine!.outbox.count() === 0);
  const keyless = await ClientStore.open(bobProfile.indexedDB);
  const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
  const batch = keyless.batch();
  let fetched = 0;
  for (const token of await keyless.transit('fetchTokens')) {
    for (const event of (await raw.readWithFetchToken(token.channel, token.token, token.afterSeq)).events) {
      batch.putTransit('inbox', { relay: token.relay, channel: token.channel, seq: event.seq, event, fetchedAtMs: Date.now() } satisfies InboxRecord);
      fetched++;
    }
  }
  await keyless.commit(batch);
  keyless.close();
  return { alice, bobProfile, bobId, fetched };
}

const offline: FetchLike = async () => {
  throw new TypeError('fetch failed (offline)');
};

describe('transit stores', () => {
  it('shows the stored chat list before the stored inbox is processed, then processes it behind it', async () => {
    const texts = ['one', 'two', 'three'];
    const { alice, bobProfile, bobId, fetched } = await bobWithStoredInbox(texts);
    expect(fetched).toBeGreaterThan(2);
    // Bob opens offline, and no signature check finishes until the gate opens: the stored
    // inbox cannot be processed meanwhile.
    const base = await testCrypto();
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const gated: CryptoProvider = { ...base, ed25519Verify: async (publicKey, message, signature) => (await gate, base.ed25519Verify(publicKey, message, signature)), ed25519VerifyFirst: undefined };
    // Before: the engine opened only after the whole stored inbox, so this start never ended.
    // (Two records read first, the rest after them: the inbox is read in two reads.)
    const started = TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offline, crypto: gated, inboxFirstRead: 2 });
    const bob = await Promise.race([started, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('Bob did not start before his stored inbox was processed')), WAIT_MS))]);
    try {
      await bob.until('the stored chat list', () => bob.app?.phase === 'ready' && bob.conversations?.conversations.some((c) => c.id === bobId));
      expect(bob.texts(bobId).filter((t) => texts.includes(t))).toEqual([]);
      expect((await bob.host.engine!.store.transit('inbox')).length).toBe(fetched);
      openGate();
      await bob.until('the stored inbox processed', () => texts.every((t) => bob.texts(bobId).includes(t)));
      expect(bob.texts(bobId).filter((t) => texts.includes(t))).toEqual(texts);
      await bob.until('the inbox store emptied', async () => (await bob.host.engine!.store.transit('inbox')).length === 0 || undefined);
    } finally {
      openGate();
      bob.close();
      alice.close();
    }
  });

  it('a step still running when its engine stops (another tab took over, the page closed) reports no failure', async () => {
    const { alice, bobProfile, bobId } = await bobWithStoredInbox(['held']);
    const base = await testCrypto();
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const gated: CryptoProvider = { ...base, ed25519Verify: async (publicKey, message, signature) => (await gate, base.ed25519Verify(publicKey, message, signature)), ed25519VerifyFirst: undefined };
    const bob = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offline, crypto: gated });
    try {
      await bob.until('the stored chat list', () => bob.app?.phase === 'ready' && bob.conversations?.conversations.some((c) => c.id === bobId));
      // The stored inbox's step waits for its signature checks; the engine stops meanwhile.
      const runtime = bob.host.engine!.conversation(bobId);
      const behind = runtime.run('after the held step', async () => undefined).then(
        () => 'ran',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      bob.close();
      openGate();
      // It settles only after the held step has ended (on the closed store).
      expect(await behind).toMatch(/reloaded/);
      // Before: "conversation step failed: …closed database" (or "store is locked"), an error
      // in the console of a tab that merely handed Covey over (chat-flow, Firefox).
      expect(bob.errors).toEqual([]);
    } finally {
      openGate();
      bob.close();
      alice.close();
    }
  });


  it('what a keyless fetcher put in the inbox store is processed first on open, then dropped', async () => {
    const bobProfile = new Profile('Bob');
    const alice = await TestClient.start('Alice', { relay });
    let bob = await TestClient.start('Bob', { relay, profile: bobProfile });
    const { aliceId: conversationId, bobId } = await groupOfTwo(alice, bob, 'Transit');
    await bob.until('active', () => bob.view(bobId)?.state === 'active');
    await bob.until('fetch tokens stored', async () => (await bob.host.engine!.store.transit('fetchTokens')).length === 2 || undefined);
    bob.close();

    for (const text of ['while', 'you', 'slept']) await alice.call('send', { conversationId, text });
    await alice.until('sent', () => alice.host.engine!.outbox.count() === 0);

    // The "service worker": no data key, only the transit stores and the relay.
    const keyless = await ClientStore.open(bobProfile.indexedDB);
    const tokens = await keyless.transit('fetchTokens');
    const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
    let fetched = 0;
    const batch = keyless.batch();
    for (const token of tokens) {
      const page = await raw.readWithFetchToken(token.channel, token.token, token.afterSeq);
      for (const event of page.events) {
        const record: InboxRecord = { relay: token.relay, channel: token.channel, seq: event.seq, event, fetchedAtMs: Date.now() };
        batch.putTransit('inbox', record);
        fetched++;
      }
    }
    await keyless.commit(batch);
    keyless.close();
    expect(fetched).toBeGreaterThanOrEqual(3);

    // Bob opens with the relay unreachable: everything comes from the inbox store.
    // (Posts over HTTP only: with the socket up they would go out as post frames.)
    bob = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offline, socketPosts: false });
    await bob.until('the three messages', () => ['while', 'you', 'slept'].every((t) => bob.texts(bobId).includes(t)));
    expect(await bob.host.engine!.store.transit('inbox')).toEqual([]);
    // He renames the group and answers while offline: both wait in the outbox, in plain sight of
    // the "service worker". Only fetch is offline here: the conversation's WebSocket still
    // reaches the relay, and after a restart nothing is sealed before that catch-up (rule 6).
    await bob.until('caught up', () => bob.host.engine!.conversation(bobId).canSeal());
    await bob.call('renameGroup', { conversationId: bobId, name: 'Transit offline' });
    await bob.call('send', { conversationId: bobId, text: 'offline reply' });
    await bob.until('queued', async () => (await bob.host.engine!.store.transit('outbox')).length > 0 || undefined);
    const waiting = bob.view(bobId)!.timeline.find((t) => t.type === 'message' && t.text === 'offline reply');
    expect(waiting?.type === 'message' && waiting.delivery.state).toBe('waiting-to-send');
    // "N messages wait" counts what people wrote, not the rename or acknowledgements beside it.
    await bob.until('the reply in the outbox', () => bob.host.engine!.outbox.count(undefined, true) === 1 || undefined);
    const relayView = await bob.until('the app view', () => bob.app?.relays.find((r) => r.queued === bob.host.engine!.outbox.count()));
    expect(relayView.queued).toBeGreaterThanOrEqual(2);
    expect(relayView.messages).toBe(1);
    bob.close();
    // Back online: the outbox flushes on start.
    bob = await TestClient.start('Bob', { relay, profile: bobProfile });
    await alice.until('the reply', () => alice.texts(conversationId).includes('offline reply'));
    await bob.until('outbox empty', async () => (await bob.host.engine!.store.transit('outbox')).length === 0 || undefined);
    alice.close();
    bob.close();
  });
});

describe('the first app view after a start', () => {
  it('is built without a store read (a read waits behind whatever the engine runs after its restore)', async () => {
    const bobProfile = new Profile('Bob');
    const first = await TestClient.start('Bob', { relay, profile: bobProfile });
    await identity(first);
    first.close();
    const bob = await TestClient.start('Bob', { relay: { url: 'http://127.0.0.1:9' }, profile: bobProfile, fetch: offline });
    try {
      await bob.until('ready', () => bob.app?.phase === 'ready');
      // A fresh engine on the same profile, whose store answers no more key reads.
      bob.close();
      const engine = await CoveyEngine.open(bob.hostDeps, { invalidate: () => undefined } as never);
      let read!: () => void;
      const readAsked = new Promise<string>((resolve) => (read = () => resolve('read the store')));
      engine.store.keys = () => (read(), new Promise(() => undefined));
      // Before: the first app view read the keys record for passphraseSet.
      const winner = await Promise.race([appView(engine, { phase: 'ready', failure: null }).then((v) => `view ${String(v.passphraseSet)}`), readAsked]);
      expect(winner).toBe('view false');
      engine.stop();
    } finally {
      bob.close();
    }
  });
});

describe('a start with stored conversations', () => {
  it('shows the stored chat list from the records before the sessions are restored, and commands wait for the restore', async () => {
    const bobProfile = new Profile('Bob');
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay, profile: bobProfile });
    const { aliceId, bobId } = await groupOfTwo(alice, bob, 'Listed');
    await bob.until('active', () => bob.view(bobId)?.state === 'active');
    await alice.call('send', { conversationId: aliceId, text: 'stored before' });
    await bob.until('received', () => bob.texts(bobId).includes('stored before'));
    // Shown before its commit (worker README): a read ordered after that commit waits for it.
    await bob.host.engine!.store.all('sessions');
    bob.close();
    // Bob opens again, with every session's restore held at a gate.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const restore = ConversationRuntime.restore.bind(ConversationRuntime);
    const held = vi.spyOn(ConversationRuntime, 'restore').mockImplementation(async (...args) => {
      await gate;
      return restore(...args);
    });
    const host = new EngineHost(bob.hostDeps);
    let app: AppView | undefined;
    let list: ConversationsView | undefined;
    let open: ConversationView | undefined;
    host.watch('app', {}, (v) => (app = v as AppView), () => undefined);
    host.watch('conversations', {}, (v) => (list = v as ConversationsView), () => undefined);
    host.watch('conversation', { conversationId: bobId }, (v) => (open = v as ConversationView), () => undefined);
    try {
      const started = host.start();
      // Before: nothing was listed (phase 'starting') until every session was restored.
      const shown = await bob.until('the stored chat list while the sessions restore', () => list?.conversations[0]);
      expect(held).toHaveBeenCalled();
      expect(shown).toMatchObject({ id: bobId, name: 'Listed', lastMessage: { text: 'stored before' }, memberCount: 2 });
      expect(app?.phase).toBe('ready');
      expect(app?.me?.displayName).toBe('Bob');
      // The conversation itself needs its session: not shown yet.
      expect(open).toBeUndefined();
      // A command waits for the restore (it does not fail with 'starting'), then runs.
      let saved = false;
      const draft = host.call('saveDraft', { conversationId: bobId, text: 'typed early' }).then(() => (saved = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(saved).toBe(false);
      release();
      await draft;
      await started;
      await bob.until('the conversation from its session', () => open?.timeline.some((t) => t.type === 'message' && t.text === 'stored before'));
      await bob.until('the list from the sessions, with the draft', () => list?.conversations[0]?.draft === 'typed early');
    } finally {
      release();
      held.mockRestore();
      host.close();
      alice.close();
    }
  });
});
