/**
 * The relay's echo of our own packet deletes its outbox record (src/worker/outbox.ts `echoed`,
 * `deletedBy`; conversation.ts `takePage`): the event proves the relay stored the packet, so the
 * step that processes it deletes the record in its own transaction, and the relay's answer, when
 * it comes, deletes nothing (one transaction fewer per message sent: bench:client). If the answer
 * comes first, the outbox deletes the record itself as before. A post whose request failed after
 * the relay stored it (its event came back) is not posted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import type { Batch } from '../../src/store/client-store.js';
import type { FetchLike } from '../../src/worker/relay-client.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { connect, identity, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

const isPost = (url: string, init: { method: string }) => init.method === 'POST' && url.endsWith('/events');

/** Alice (with `fetch`) and Bob in a group of two, active at both. */
async function pair(fetch: FetchLike): Promise<{ alice: TestClient; bob: TestClient; aId: ConversationId; bId: ConversationId }> {
  // Posts over HTTP only: these tests hold and fail post requests through `fetch` (the same for
  // post frames: tests/worker/socket-posts.test.ts).
  const alice = await TestClient.start('Alice', { relay, fetch, socketPosts: false });
  const bob = await TestClient.start('Bob', { relay });
  await identity(alice);
  await identity(bob);
  const [aliceBob] = await connect(alice, bob);
  const { conversationId: aId } = await alice.call('createGroup', { name: 'Echo', contactIds: [aliceBob as ContactId] });
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  const bId = (await bob.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
  await bob.until('roster', () => bob.view(bId)?.name === 'Echo');
  await alice.until('active', () => alice.view(aId)?.state === 'active');
  await alice.until('outbox empty', () => alice.host.engine!.outbox.count() === 0);
  return { alice, bob, aId, bId };
}

/** Every batch Alice's store commits, with its writes (once sealed). */
function watchCommits(client: TestClient): { writes: { kind: string; store: string; key?: unknown }[] }[] {
  const store = client.host.engine!.store;
  const commit = store.commit.bind(store);
  const seen: { writes: { kind: string; store: string; key?: unknown }[] }[] = [];
  store.commit = (batch: Batch, ...rest) => {
    const done = commit(batch, ...rest);
    void done.then(
      () => seen.push({ writes: batch.writes.map((w) => ({ kind: w.kind, store: w.store, ...('key' in w ? { key: w.key } : {}) })) }),
      () => undefined,
    );
    return done;
  };
  return seen;
}

describe('the echo of our own packet', () => {
  it('deletes its outbox record in the step that processes it, before the relay answers; the answer then deletes nothing', async () => {
    // The answers to Alice's posts are held (every post: an ack may go before the message, and
    // posts of a channel go one at a time), each released only when the test says so.
    let holding = false;
    const held: { postId: string; release: () => void }[] = [];
    const fetch: FetchLike = async (url, init) => {
      const response = await nodeFetch(url, init);
      if (holding && isPost(url, init)) {
        const postId = (JSON.parse(new TextDecoder().decode(init.body)) as { postId: string }).postId;
        await new Promise<void>((release) => held.push({ postId, release }));
      }
      return response;
    };
    const { alice, bob, aId, bId } = await pair(fetch);
    try {
      const commits = watchCommits(alice);
      const store = alice.host.engine!.store;
      holding = true;
      await alice.call('send', { conversationId: aId, text: 'echo one' });
      const checked: string[] = [];
      let messagePostSeen = false;
      // Each held post: its record is deleted while its answer is held (only the echo step can
      // have done it), in a transaction that also stores the session; then its answer goes.
      while (!bob.texts(bId).includes('echo one') || held.length > 0 || checked.length === 0) {
        const post = await alice.until('a held post', () => held.shift());
        await alice.until(`record ${post.postId} deleted while its answer is held`, async () => !(await store.transit('outbox')).some((r) => r.postId === post.postId));
        checked.push(post.postId);
        // The message's own post: shown as at the relay while the answer is still held (the
        // view of the echo step; the answer updates nothing).
        const message = [...alice.host.engine!.conversations.get(aId)!.window.values()].find((r) => r.t === 'm' && r.text === 'echo one');
        if (message !== undefined && message.t === 'm' && message.postIds.includes(post.postId)) {
          messagePostSeen = true;
          await alice.until('at the relay while the answer is held', () => alice.view(aId)!.timeline.some((t) => t.type === 'message' && t.text === 'echo one' && t.delivery.state !== 'waiting-to-send'));
        }
        post.release();
        await new Promise((r) => setTimeout(r, 50));
        if (bob.texts(bId).includes('echo one') && held.length === 0) break;
      }
      holding = false;
      for (const h of held.splice(0)) h.release();
      expect(messagePostSeen, "the message's own post was among the held ones").toBe(true);
      await alice.until('outbox empty', () => alice.host.engine!.outbox.describe().length === 0);
      await alice.until('not waiting to send', () => alice.view(aId)!.timeline.some((t) => t.type === 'message' && t.text === 'echo one' && t.delivery.state !== 'waiting-to-send'));
      await new Promise((r) => setTimeout(r, 100));
      // Each held post's record was deleted once, with a step's session record: no transaction of
      // its own after the answer.
      for (const postId of checked) {
        const deletes = commits.filter((c) => c.writes.some((w) => w.kind === 'delete' && w.store === 'outbox' && w.key === postId));
        expect(deletes.map((c) => c.writes.some((w) => w.store === 'sessions')), postId).toEqual([true]);
      }
      // Posting goes on.
      await alice.call('send', { conversationId: aId, text: 'echo two' });
      await bob.until('second at Bob', () => bob.texts(bId).includes('echo two'));
      expect(bob.texts(bId)).toEqual(['echo one', 'echo two']);
    } finally {
      for (const h of held.splice(0)) h.release();
      alice.close();
      bob.close();
    }
  });

  it('a post whose request failed after the relay stored it is not posted again once its event came back', async () => {
    let failNext = false;
    const posts: string[] = [];
    const fetch: FetchLike = async (url, init) => {
      if (isPost(url, init)) posts.push(new TextDecoder().decode(init.body));
      const response = await nodeFetch(url, init);
      if (failNext && isPost(url, init)) {
        failNext = false;
        // Stored by the relay, but the answer is lost on the way back.
        await new Promise((r) => setTimeout(r, 50));
        throw new TypeError('fetch failed');
      }
      return response;
    };
    const { alice, bob, aId, bId } = await pair(fetch);
    try {
      failNext = true;
      const before = posts.length;
      await alice.call('send', { conversationId: aId, text: 'landed once' });
      await bob.until('at Bob', () => bob.texts(bId).includes('landed once'));
      // The retry (after 0.5–1.5 s) finds the record deleted by the echo step and posts nothing.
      await alice.until('outbox settled', () => alice.host.engine!.outbox.describe().length === 0, 10_000);
      // The message's packet went out once (other packets, acks, may follow).
      const packetOf = (body: string) => (JSON.parse(body) as { packet: string }).packet;
      const first = packetOf(posts[before]!);
      expect(posts.slice(before).filter((b) => packetOf(b) === first)).toHaveLength(1);
      expect(await alice.host.engine!.store.transit('outbox')).toEqual([]);
      await alice.call('send', { conversationId: aId, text: 'and then' });
      await bob.until('next at Bob', () => bob.texts(bId).includes('and then'));
      expect(bob.texts(bId)).toEqual(['landed once', 'and then']);
    } finally {
      alice.close();
      bob.close();
    }
  });
});
