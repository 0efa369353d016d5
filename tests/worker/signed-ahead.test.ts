/**
 * Posts signed ahead (src/worker/outbox.ts `enqueue`'s `signed`): a step signs its packets' posts
 * while it commits, so the first attempt leaves as soon as the commit is done, with no signature
 * round trip after it (bench:client). A retry, a signature that failed or one older than
 * SIGNED_AHEAD_MAX_AGE_MS is signed afresh at post time, as before.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { OutboxRecord } from '../../src/shared/client-db.js';
import type { ChannelId, MemberKey } from '../../src/shared/relay-api.js';
import type { ContactId } from '../../src/shared/worker-api.js';
import { ClientStore } from '../../src/store/client-store.js';
import type { ClientDeps } from '../../src/worker/deps.js';
import { Outbox, SIGNED_AHEAD_MAX_AGE_MS, type OutboxOwner } from '../../src/worker/outbox.js';
import { RelayClient, type SignedPost } from '../../src/worker/relay-client.js';
import { connect, identity, startTestRelay, TestClient, testCrypto } from './helpers/client-harness.js';

const CHANNEL = 'ch-1' as ChannelId;

function record(postId: string): OutboxRecord {
  return { postId, relay: 'https://relay.test', channel: CHANNEL, packet: 'AAAA', ifNoLeaveAfter: 3, queuedAtMs: 1, presigned: null, attempts: 0 };
}

function signedPost(postId: string, signedAtMs: number): SignedPost {
  return { channel: CHANNEL, path: `/v1/channels/${CHANNEL}/events`, headers: { 'covey-nonce': `ahead-${postId}` }, body: new Uint8Array([1]), signedAtMs };
}

/** An outbox whose relay client records which way each post went; `failFirst` fails the first attempt (network). */
async function outboxWith(options: { nowMs: number; failFirst?: boolean }) {
  const calls: string[] = [];
  let attempts = 0;
  const answer = async () => {
    attempts++;
    if (options.failFirst === true && attempts === 1) throw new TypeError('fetch failed');
    return { seq: attempts, timeMs: 1, duplicate: false };
  };
  const client = {
    post: async (_channel: ChannelId, _packet: Uint8Array, o: { postId?: string }) => {
      calls.push(`fresh ${o.postId}`);
      return answer();
    },
    postSigned: async (s: SignedPost) => {
      calls.push(`ahead ${s.headers['covey-nonce']}`);
      return answer();
    },
  };
  const posted: string[] = [];
  const owner: OutboxOwner = {
    client: () => client as unknown as RelayClient,
    signer: () => ({ publicKey: 'me' as MemberKey, sign: async () => new Uint8Array(64) }),
    posted: (r) => posted.push(r.postId),
    refused: () => undefined,
    networkTrouble: () => undefined,
    fatal: (error) => {
      throw error;
    },
  };
  const store = await ClientStore.open(new IDBFactory());
  const deps = {
    now: () => options.nowMs,
    crypto: await testCrypto(),
    // Retries at once (the backoff is not what this tests).
    timers: { setTimeout: (callback: () => void) => setTimeout(callback, 0), clearTimeout: (handle: unknown) => clearTimeout(handle as never) },
  } as unknown as ClientDeps;
  const outbox = new Outbox(store, deps, owner);
  const done = async (n: number) => {
    await vi.waitFor(() => expect(posted.length).toBe(n), { timeout: 15_000 });
  };
  return { outbox, calls, posted, done };
}

describe('outbox: posts signed ahead', () => {
  it('the first attempt sends the post signed while its record was committed', async () => {
    const { outbox, calls, done } = await outboxWith({ nowMs: 10_000 });
    outbox.enqueue([record('p1'), record('p2')], new Map([['p1', Promise.resolve(signedPost('p1', 9_000))]]));
    await done(2);
    expect(calls).toEqual(['ahead ahead-p1', 'fresh p2']);
  });

  it('a retry is signed afresh (the relay takes a nonce once)', async () => {
    const { outbox, calls, done } = await outboxWith({ nowMs: 10_000, failFirst: true });
    outbox.enqueue([record('p1')], new Map([['p1', Promise.resolve(signedPost('p1', 9_000))]]));
    await done(1);
    expect(calls).toEqual(['ahead ahead-p1', 'fresh p1']);
  });

  it('a signature older than SIGNED_AHEAD_MAX_AGE_MS, or one that failed, is not used', async () => {
    const now = 10 * SIGNED_AHEAD_MAX_AGE_MS;
    const { outbox, calls, done } = await outboxWith({ nowMs: now });
    const failed = Promise.reject(new Error('no WebCrypto today'));
    failed.catch(() => undefined);
    outbox.enqueue(
      [record('old'), record('failed'), record('fresh')],
      new Map([
        ['old', Promise.resolve(signedPost('old', now - SIGNED_AHEAD_MAX_AGE_MS - 1))],
        ['failed', failed],
        ['fresh', Promise.resolve(signedPost('fresh', now - SIGNED_AHEAD_MAX_AGE_MS))],
      ]),
    );
    await done(3);
    expect(calls).toEqual(['fresh old', 'fresh failed', 'ahead ahead-fresh']);
  });
});

describe('a message written', () => {
  let relay: RunningRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('leaves with the post its step signed ahead, and arrives once', async () => {
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay });
    try {
      await identity(alice);
      await identity(bob);
      const [ab] = await connect(alice, bob);
      const { conversationId } = await alice.call('createGroup', { name: 'Ahead', contactIds: [ab as ContactId] });
      const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
      const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
      await alice.until('formed', () => alice.view(conversationId)?.canSend === true || undefined);
      await bob.until('roster', () => bob.view(bobId)?.name === 'Ahead' || undefined);
      // The stored copies of the outbox records (what the service worker would send).
      const stored: OutboxRecord[] = [];
      alice.host.engine!.store.beforeWrite = (batch) => {
        for (const w of batch.writes) if (w.kind === 'transit' && w.store === 'outbox') stored.push(w.value as OutboxRecord);
      };
      const fresh = vi.spyOn(RelayClient.prototype, 'post');
      const ahead = vi.spyOn(RelayClient.prototype, 'postSigned');
      try {
        await alice.call('send', { conversationId, text: 'signed ahead' });
        await bob.until('the message', () => bob.texts(bobId).includes('signed ahead') || undefined);
        // Every packet post (the message, and any ack or resend meanwhile) went signed ahead.
        expect(ahead.mock.calls.length).toBeGreaterThan(0);
        expect(fresh.mock.calls.length).toBe(0);
      } finally {
        fresh.mockRestore();
        ahead.mockRestore();
      }
      expect(bob.texts(bobId).filter((t) => t === 'signed ahead')).toHaveLength(1);
      // The message's stored record carries its deferred post, signed beside the step's seals.
      const data = stored.filter((r) => r.ifNoLeaveAfter !== null);
      expect(data.length).toBeGreaterThan(0);
      for (const r of data) expect(r.presigned).toMatchObject({ headers: expect.any(Object), body: expect.stringContaining(r.postId), signedAtMs: expect.any(Number) });
    } finally {
      alice.close();
      bob.close();
    }
  });
});
