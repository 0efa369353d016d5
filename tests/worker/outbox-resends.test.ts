/**
 * Resends (AckMonitor rule 5) while the relay cannot be reached: the same sealed packets again,
 * every resend interval. The outbox keeps one copy of each (src/worker/conversation.ts step), so
 * a long outage does not pile up copies that a person's next message would wait behind.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId } from '../../src/shared/worker-api.js';
import type { FetchLike } from '../../src/worker/relay-client.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { connect, identity, startTestRelay, TEST_SESSION_CONFIG, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

/** Resends due every 150 ms, many of them: an outage of a second is a long one here. */
const RESEND_CONFIG = { ...TEST_SESSION_CONFIG, reliability: { ...TEST_SESSION_CONFIG.reliability, resendIntervalMs: 150, maxResends: 50 } };

it('queues each sealed packet once while posts fail, however often it is resent, and each message arrives once', async () => {
  let offline = false;
  const fetch: FetchLike = (url, init) => (offline && (init?.method ?? 'GET') === 'POST' ? Promise.reject(new TypeError('fetch failed (offline)')) : nodeFetch(url, init));
  let ticks = 0;
  const alice = await TestClient.start('Alice', {
    relay,
    fetch,
    // Over HTTP only, where `fetch` fails them (a post frame would still reach the relay).
    socketPosts: false,
    sessionConfig: RESEND_CONFIG,
    fault: (point, what) => {
      if (point === 'after-persist' && what === 'tick') ticks += 1;
    },
  });
  const bob = await TestClient.start('Bob', { relay });
  await identity(alice);
  await identity(bob);
  const [ab] = await connect(alice, bob);
  const { conversationId } = await alice.call('createGroup', { name: 'Outage', contactIds: [ab as ContactId] });
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
  await alice.until('formed', () => alice.view(conversationId)?.canSend === true || undefined);
  await alice.call('send', { conversationId, text: 'hello' });
  await bob.until('hello', () => bob.texts(bobId).includes('hello'));

  offline = true;
  const texts = ['one', 'two', 'three'];
  for (const text of texts) await alice.call('send', { conversationId, text });
  // Bob is online and acks nothing he never got: every interval resends the three (and any
  // unacked ancestor) to him, in a timer step. Wait for several of those steps.
  const before = ticks;
  await alice.until('several resend steps', () => ticks - before >= 5 || undefined, 30_000);
  const records = await alice.host.engine!.store.transit('outbox');
  const packets = records.map((r) => r.packet);
  expect(records.length).toBeGreaterThanOrEqual(texts.length);
  expect(new Set(packets).size).toBe(packets.length);

  offline = false;
  void alice.call('networkChanged', { online: true });
  await bob.until('the three', () => texts.every((t) => bob.texts(bobId).includes(t)), 30_000);
  await alice.until('outbox empty', () => alice.host.engine!.outbox.count() === 0 || undefined, 30_000);
  expect(bob.texts(bobId).filter((t) => texts.includes(t))).toEqual(texts);
  alice.close();
  bob.close();
});
