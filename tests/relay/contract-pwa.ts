/**
 * The relay features the offline PWA needs (issue 12 §4, §5; async-groups.md rule 7), over real
 * HTTP for any store: read-only fetch tokens, conditional posts, Web Push. Called by
 * contract-sqlite.test.ts and contract-redis.test.ts next to `relayContract`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/relay/ids.js';
import type { PresignedPost } from '../../src/shared/client-db.js';
import { DEFERRED_POST_MAX_AGE_MS, relayDeferredPostPath, type CapabilityToken, type ChannelId, type PushWakePayload, type RelayEvent } from '../../src/shared/relay-api.js';
import { RelayClientError, packetBytes, type RelayClient } from '../../src/worker/relay-client.js';
import { checkVapid, decryptPush, PushReceiver, type TestSubscription } from './helpers/push-receiver.js';
import { errorBody, framedEvents, makeMember, packetOf, RelayTestEnv, type MakeStoreHarness, type StoreHarness } from './helpers/relay-harness.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** The VAPID subject the push tests configure. */
const SUBJECT = 'mailto:push-test@example.com';

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RelayClientError) return { status: error.status, code: error.code };
    throw error;
  }
  throw new Error('expected the relay to refuse');
}

function texts(events: readonly RelayEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'packet' ? [Buffer.from(packetBytes(e)).toString('utf8')] : []));
}

export function pwaContract(name: string, makeHarness: MakeStoreHarness): void {
  describe(`relay PWA features (${name})`, () => {
    let harness: StoreHarness;
    let env: RelayTestEnv;
    let receiver: PushReceiver;

    beforeAll(async () => {
      harness = await makeHarness();
      env = new RelayTestEnv(harness);
      receiver = await PushReceiver.start();
    });
    afterAll(async () => {
      await receiver.stop();
      await harness.destroy();
    });
    afterEach(async () => {
      await env.cleanup();
    });

    async function group(n: number, options: Parameters<RelayTestEnv['relay']>[0] = {}) {
      const relay = await env.relay({ ...options, limits: { rateBurst: 1e6, rateRequestsPerSecond: 1e6, ...options.limits } });
      const members = Array.from({ length: n }, () => makeMember());
      const clients = members.map((m) => env.client(relay, m));
      const owner = clients[0] as RelayClient;
      const channel = (await owner.createChannel('group')).channelId;
      if (n > 1) {
        const invite = await owner.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: n - 1 });
        for (const client of clients.slice(1)) await client.join(channel, invite.capability);
      }
      return { relay, members, clients, channel };
    }

    describe('read-only fetch tokens', () => {
      it('reads the channel as its member, from its join on, resuming by seq', async () => {
        const { relay, clients, channel } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        await a.post(channel, packetOf('one'));
        await b.post(channel, packetOf('two'));
        await a.post(channel, packetOf('three'));
        const { token, expiresAtMs } = await b.createFetchToken(channel, DAY_MS);
        expect(expiresAtMs).toBe(env.clockMs + DAY_MS);
        const worker = env.client(relay); // no signer: the service worker holds no keys
        const all = await worker.readWithFetchToken(channel, token, 0);
        expect(all.events[0]).toMatchObject({ seq: 2, type: 'member-joined' }); // b's own join, not seq 1
        expect(texts(all.events)).toEqual(['one', 'two', 'three']);
        expect(all).toMatchObject({ headSeq: 5, firstSeq: 2, more: false });
        const page = await worker.readWithFetchToken(channel, token, 3, 1);
        expect(page.events.map((e) => e.seq)).toEqual([4]);
        expect(page.more).toBe(true);
        expect(texts((await worker.readWithFetchToken(channel, token, 4)).events)).toEqual(['three']);
      });

      it('cannot post, join, invite, remove, ack, read another channel, or do anything else', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const { token } = await b.createFetchToken(channel, DAY_MS);
        const other = (await b.createChannel('group')).channelId; // b is a member there too
        const foreign = (await a.createChannel('group')).channelId;
        const bearer = { 'covey-fetch-token': token };
        const packet = Buffer.from('x').toString('base64url');
        const attempts: Array<[string, string, unknown?]> = [
          ['POST', `/v1/channels/${channel}/events`, { packet }],
          ['POST', `/v1/channels/${channel}/deferred-events`, { packet, postId: 'p', ifNoLeaveAfter: 2 }],
          ['POST', `/v1/channels/${channel}/join`, { capability: token }],
          ['POST', `/v1/channels/${channel}/capabilities`, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 }],
          ['DELETE', `/v1/channels/${channel}/members/${members[0]!.publicKey}`],
          ['DELETE', `/v1/channels/${channel}/members/${members[1]!.publicKey}`],
          ['PUT', `/v1/channels/${channel}/cursor`, { seq: 2 }],
          ['GET', `/v1/channels/${channel}`],
          ['POST', `/v1/channels/${channel}/fetch-tokens`, { ttlMs: MINUTE_MS }],
          ['POST', `/v1/channels/${channel}/fetch-tokens/revoke`, {}],
          ['POST', `/v1/channels/${channel}/uploads`, { sha256: '0'.repeat(64), size: 1 }],
          ['PUT', `/v1/channels/${channel}/push`, { endpoint: 'https://fcm.googleapis.com/x', keys: { p256dh: 'x', auth: 'y' } }],
          ['POST', '/v1/channels', { kind: 'group' }],
        ];
        for (const [method, path, body] of attempts) {
          const response = await env.raw(relay, { method, path, headers: bearer, ...(body === undefined ? {} : { body }) });
          expect({ method, path, status: response.status, code: errorBody(response).code }).toEqual({ method, path, status: 401, code: 'bad-signature' });
        }
        // Reading any other channel, even one its member belongs to, is one refusal.
        for (const elsewhere of [other, foreign, 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId]) {
          expect(await refusal(env.client(relay).readWithFetchToken(elsewhere, token, 0))).toEqual({ status: 403, code: 'invalid-capability' });
        }
        // Nor does it open capability routes.
        const deposit = await env.raw(relay, { method: 'POST', path: `/v1/channels/${channel}/deposit`, headers: { 'covey-capability': token }, body: { packet } });
        expect([deposit.status, errorBody(deposit).code]).toEqual([403, 'invalid-capability']);
        const blob = await env.raw(relay, { method: 'GET', path: `/v1/blobs/${'0'.repeat(64)}`, headers: { 'covey-capability': token } });
        expect([blob.status, errorBody(blob).code]).toEqual([403, 'invalid-capability']);
        // Nothing changed: no post, no member removed, cursor untouched.
        const info = await a.channelInfo(channel);
        expect(info.headSeq).toBe(2);
        expect(info.members.map((m) => [m.key, m.cursor])).toEqual([
          [members[0]!.publicKey, 0],
          [members[1]!.publicKey, 1],
        ]);
        // And a WebSocket subscription needs a signature: the token has no place in the frame.
        const socket = await env.socket(relay);
        socket.send({ ...(await b.subscribeFrame(channel, 0)), signature: token });
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'bad-signature'), 'bad-signature');
      });

      it('is revocable by its member only, dies at expiry, on leave and on removal (also after rejoining)', async () => {
        const { relay, clients, channel, members } = await group(3);
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        const worker = env.client(relay);
        const dead = { status: 403, code: 'invalid-capability' };
        // Revocation: not by another member, by its own member one at a time or all at once.
        const t1 = await b.createFetchToken(channel, DAY_MS);
        const t2 = await b.createFetchToken(channel, DAY_MS);
        expect(await a.revokeFetchTokens(channel, t1.token)).toEqual({ revoked: 0 });
        await worker.readWithFetchToken(channel, t1.token, 0);
        expect(await b.revokeFetchTokens(channel, t1.token)).toEqual({ revoked: 1 });
        expect(await refusal(worker.readWithFetchToken(channel, t1.token, 0))).toEqual(dead);
        await worker.readWithFetchToken(channel, t2.token, 0);
        expect(await b.revokeFetchTokens(channel)).toEqual({ revoked: 1 });
        expect(await refusal(worker.readWithFetchToken(channel, t2.token, 0))).toEqual(dead);
        // Expiry.
        const short = await b.createFetchToken(channel, 1_000);
        await worker.readWithFetchToken(channel, short.token, 0);
        env.clockMs += 1_000;
        expect(await refusal(worker.readWithFetchToken(channel, short.token, 0))).toEqual(dead);
        // Leaving.
        const cToken = await c.createFetchToken(channel, DAY_MS);
        await c.leave(channel);
        expect(await refusal(worker.readWithFetchToken(channel, cToken.token, 0))).toEqual(dead);
        // Removal, and a rejoin does not revive it.
        const bToken = await b.createFetchToken(channel, DAY_MS);
        await a.removeMember(channel, members[1]!.publicKey);
        expect(await refusal(worker.readWithFetchToken(channel, bToken.token, 0))).toEqual(dead);
        const invite = await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        await b.join(channel, invite.capability);
        expect(await refusal(worker.readWithFetchToken(channel, bToken.token, 0))).toEqual(dead);
        expect(texts((await worker.readWithFetchToken(channel, (await b.createFetchToken(channel, DAY_MS)).token, 0)).events)).toEqual([]);
        // Bounds and validation.
        expect(await refusal(b.createFetchToken(channel, 31 * DAY_MS))).toEqual({ status: 400, code: 'bad-request' });
        expect(await refusal(b.createFetchToken(channel, 0))).toEqual({ status: 400, code: 'bad-request' });
        expect(await refusal(b.revokeFetchTokens(channel, 'short' as CapabilityToken))).toEqual({ status: 400, code: 'bad-request' });
        expect(await refusal(env.client(relay, makeMember()).createFetchToken(channel, DAY_MS))).toEqual({ status: 403, code: 'forbidden' });
      });

      it('keeps at most maxFetchTokensPerMember per member and channel (the soonest-expiring go first)', async () => {
        const { relay, clients, channel } = await group(1, { limits: { maxFetchTokensPerMember: 2 } });
        const a = clients[0]!;
        const worker = env.client(relay);
        const first = await a.createFetchToken(channel, DAY_MS);
        const second = await a.createFetchToken(channel, 2 * DAY_MS);
        const third = await a.createFetchToken(channel, 3 * DAY_MS);
        expect(await refusal(worker.readWithFetchToken(channel, first.token, 0))).toEqual({ status: 403, code: 'invalid-capability' });
        await worker.readWithFetchToken(channel, second.token, 0);
        await worker.readWithFetchToken(channel, third.token, 0);
      });

      it('is stored only as its SHA-256', async () => {
        const { relay, clients, channel, members } = await group(1);
        const { token } = await clients[0]!.createFetchToken(channel, DAY_MS);
        expect((await relay.store.useFetchToken(hashToken(token), channel, env.clockMs))?.key).toBe(members[0]!.publicKey);
        const stored = await harness.dump();
        expect(stored).toContain(hashToken(token));
        expect(stored).not.toContain(token);
      });
    });

    describe('conditional posts (async-groups.md rule 7)', () => {
      it('refuses a post sealed before a member left, accepts one sealed after', async () => {
        const { relay, clients, channel, members } = await group(3);
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        expect((await a.channelInfo(channel)).lastLeftSeq).toBe(0);
        expect(await a.post(channel, packetOf('sealed at 3'), { ifNoLeaveAfter: 3 })).toMatchObject({ seq: 4, duplicate: false });
        const accepted = await b.post(channel, packetOf('kept'), { postId: 'p1', ifNoLeaveAfter: 4 });
        const left = (await c.leave(channel)).event.seq; // 6
        expect((await a.channelInfo(channel)).lastLeftSeq).toBe(left);
        expect(await refusal(a.post(channel, packetOf('sealed before the leave'), { ifNoLeaveAfter: left - 1 }))).toEqual({
          status: 409,
          code: 'membership-changed',
        });
        expect((await a.channelInfo(channel)).headSeq).toBe(left); // nothing appended
        // A retry of a post accepted earlier is still its duplicate, not a refusal.
        expect(await b.post(channel, packetOf('kept'), { postId: 'p1', ifNoLeaveAfter: 4 })).toEqual({ ...accepted, duplicate: true });
        expect((await a.post(channel, packetOf('re-sealed'), { ifNoLeaveAfter: left })).seq).toBe(left + 1);
        // Joins do not count; removals do; unconditional posts are never refused.
        const invite = await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        await env.client(relay, makeMember()).join(channel, invite.capability);
        expect((await a.post(channel, packetOf('after a join'), { ifNoLeaveAfter: left })).duplicate).toBe(false);
        const removed = (await a.removeMember(channel, members[1]!.publicKey)).event.seq;
        expect(await refusal(a.post(channel, packetOf('stale'), { ifNoLeaveAfter: removed - 1 }))).toEqual({ status: 409, code: 'membership-changed' });
        expect((await a.post(channel, packetOf('plain'))).duplicate).toBe(false);
        for (const bad of [-1, 1.5, 'x', null]) {
          const response = await a.post(channel, packetOf('x'), { ifNoLeaveAfter: bad as number }).catch((e: unknown) => e);
          expect(response).toMatchObject({ status: 400, code: 'bad-request' });
        }
      });

      it('is atomic with the append: no conditional post accepted after the leave it was conditioned on', async () => {
        const { clients, channel, members } = await group(3);
        const [a, b] = clients as [RelayClient, RelayClient];
        const head = (await a.channelInfo(channel)).headSeq;
        const posts = Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? a : b).post(channel, packetOf(`c${i}`), { ifNoLeaveAfter: head }).then(
            (r) => r.seq,
            (e: unknown) => (e instanceof RelayClientError ? e.code : 'error'),
          ),
        );
        const removal = a.removeMember(channel, members[2]!.publicKey);
        const outcomes = await Promise.all(posts);
        const leftSeq = (await removal).event.seq;
        expect(outcomes.every((o) => typeof o === 'number' || o === 'membership-changed')).toBe(true);
        for (const seq of outcomes) if (typeof seq === 'number') expect(seq).toBeLessThan(leftSeq);
        expect(outcomes.filter((o) => o === 'membership-changed').length).toBe(40 - (leftSeq - head - 1));
      });
    });

    describe('deferred posts (what the keyless service worker sends for a message written offline)', () => {
      const deferred = (relay: Parameters<RelayTestEnv['raw']>[0], channel: ChannelId, presigned: PresignedPost, path = relayDeferredPostPath(channel)) =>
        env.raw(relay, { method: 'POST', path, headers: { ...presigned.headers }, rawBody: presigned.body });

      it('accepts a conditional post signed days earlier, on its own route only, once', async () => {
        const { relay, clients, channel, members } = await group(3);
        const [a, b] = clients as [RelayClient, RelayClient];
        const head = (await a.channelInfo(channel)).headSeq;
        const presigned = await a.presignDeferredPost(channel, packetOf('written offline'), { postId: 'offline-1', ifNoLeaveAfter: head });
        expect(presigned.signedAtMs).toBe(env.clockMs);
        // The same request signed for the ordinary route is dead after the clock skew window.
        const ordinary = { method: 'POST', path: `/v1/channels/${channel}/events`, signer: members[0]!, body: { packet: 'eA', postId: 'x' }, timeMs: env.clockMs };
        env.clockMs += 3 * DAY_MS;
        const late = await env.raw(relay, ordinary);
        expect([late.status, errorBody(late).code]).toEqual([401, 'stale-timestamp']);
        // A deferred signature does not open the ordinary route (the path is signed).
        const moved = await deferred(relay, channel, presigned, `/v1/channels/${channel}/events`);
        expect([moved.status, errorBody(moved).code]).toEqual([401, 'bad-signature']);
        const sent = await deferred(relay, channel, presigned);
        expect(sent.status).toBe(201);
        expect(sent.json).toMatchObject({ seq: head + 1, duplicate: false });
        const read = await b.read(channel, head);
        expect(texts(read.events)).toEqual(['written offline']);
        expect(read.events[0]).toMatchObject({ author: members[0]!.publicKey });
        // Replaying it appends nothing; the worker's own retry (fresh signature, same postId) is a duplicate.
        const replay = await deferred(relay, channel, presigned);
        expect([replay.status, errorBody(replay).code]).toEqual([401, 'replayed-nonce']);
        expect(await a.post(channel, packetOf('written offline'), { postId: 'offline-1', ifNoLeaveAfter: head })).toMatchObject({ seq: head + 1, duplicate: true });
        expect((await a.channelInfo(channel)).headSeq).toBe(head + 1);
      });

      it('dies after maxDeferredPostAgeMs, keeps rule 7 and membership, and needs postId and ifNoLeaveAfter', async () => {
        const { relay, clients, channel, members } = await group(3);
        const [a, , c] = clients as [RelayClient, RelayClient, RelayClient];
        const head = (await a.channelInfo(channel)).headSeq;
        const old = await a.presignDeferredPost(channel, packetOf('too old'), { postId: 'old', ifNoLeaveAfter: head });
        const beforeLeave = await a.presignDeferredPost(channel, packetOf('sealed before the leave'), { postId: 'stale', ifNoLeaveAfter: head });
        env.clockMs += DEFERRED_POST_MAX_AGE_MS + 1;
        const expired = await deferred(relay, channel, old);
        expect([expired.status, errorBody(expired).code]).toEqual([401, 'stale-timestamp']);
        env.clockMs -= 2;
        await c.leave(channel);
        const refused = await deferred(relay, channel, beforeLeave);
        expect([refused.status, errorBody(refused).code]).toEqual([409, 'membership-changed']);
        // From the future: no more than the clock skew.
        env.clockMs += 10 * MINUTE_MS;
        const future = await a.presignDeferredPost(channel, packetOf('future'), { postId: 'future', ifNoLeaveAfter: head + 1 });
        env.clockMs -= 10 * MINUTE_MS;
        const early = await deferred(relay, channel, future);
        expect([early.status, errorBody(early).code]).toEqual([401, 'stale-timestamp']);
        // Unconditional or without postId: refused (only replay-safe, rule-7-safe posts wait this long).
        const path = relayDeferredPostPath(channel);
        for (const body of [{ packet: 'eA', postId: 'p' }, { packet: 'eA', ifNoLeaveAfter: head + 1 }]) {
          const response = await env.raw(relay, { method: 'POST', path, signer: members[0]!, body });
          expect([response.status, errorBody(response).code]).toEqual([400, 'bad-request']);
        }
        // A removed member's presigned post is refused.
        const removedLater = await a.presignDeferredPost(channel, packetOf('after removal'), { postId: 'gone', ifNoLeaveAfter: head + 1 });
        await (clients[1] as RelayClient).removeMember(channel, members[0]!.publicKey);
        const gone = await deferred(relay, channel, removedLater);
        expect([gone.status, errorBody(gone).code]).toEqual([403, 'forbidden']);
        expect(texts((await (clients[1] as RelayClient).read(channel, 0)).events)).toEqual([]);
      });
    });

    describe('Web Push', () => {
      const pushOptions = { push: { allowLoopback: true, subject: SUBJECT } };

      function payloadOf(subscription: TestSubscription, index: number): PushWakePayload {
        const push = receiver.pushesFor(subscription)[index];
        if (push === undefined) throw new Error(`no push #${index}`);
        return JSON.parse(decryptPush(subscription, push).toString('utf8')) as PushWakePayload;
      }

      it('wakes a member with no WebSocket: RFC 8291 encrypted, VAPID signed, no content', async () => {
        const { relay, clients, channel } = await group(2, { ...pushOptions, limits: { pushMinIntervalMs: 50 } });
        const [a, b] = clients as [RelayClient, RelayClient];
        const { publicKey } = await env.client(relay).vapidKey();
        expect(Buffer.from(publicKey, 'base64url')).toHaveLength(65);
        const sub = receiver.subscription();
        expect(await b.registerPush(channel, sub)).toEqual({ registered: true });
        await a.post(channel, packetOf('secret words'), { wake: true });
        const [push] = await receiver.waitFor(sub, 1);
        const plaintext = decryptPush(sub, push!).toString('utf8');
        expect(JSON.parse(plaintext)).toEqual({ type: 'covey-wake', channels: [channel] });
        expect(plaintext).not.toContain(Buffer.from('secret words').toString('base64url'));
        expect(push!.headers.ttl).toBe('86400');
        expect(push!.headers.topic).toBe('covey-wake');
        const claims = checkVapid(push!, sub.endpoint, Date.now());
        expect(claims).toMatchObject({ sub: SUBJECT, publicKey });
        // Its own posts do not wake it; a live WebSocket subscription means no push either.
        await b.post(channel, packetOf('mine'), { wake: true });
        const socket = await env.socket(relay);
        socket.send(await b.subscribeFrame(channel, 0));
        await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        await a.post(channel, packetOf('seen live'), { wake: true });
        // Alone or in a catch-up's batch (the post may land while the subscription still reads the store).
        await socket.until((f) => framedEvents(f, channel).some((e) => e.seq === 5), 'live event');
        socket.ws.terminate();
        await expect.poll(async () => (await relay.store.pushTargets(channel))[0]?.online, { timeout: 5_000 }).toBe(false);
        // Protocol traffic (acks, heartbeats: no wake), joins and leaves wake nobody.
        await a.post(channel, packetOf('heartbeat'));
        const invite = await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        const newcomer = env.client(relay, makeMember());
        await newcomer.join(channel, invite.capability);
        await newcomer.leave(channel);
        await a.post(channel, packetOf('after the socket closed'), { wake: true });
        await receiver.waitFor(sub, 2);
        const read = await b.read(channel, 0);
        expect(read.events.filter((e) => e.type === 'packet').map((e) => [texts([e])[0], e.type === 'packet' && e.wake === true])).toEqual([
          ['secret words', true],
          ['mine', true],
          ['seen live', true],
          ['heartbeat', false],
          ['after the socket closed', true],
        ]);
        // Exactly two: the post by b itself, the one seen live and the rest woke nobody.
        expect(receiver.pushesFor(sub)).toHaveLength(2);
        expect(payloadOf(sub, 1)).toEqual({ type: 'covey-wake', channels: [channel] });
      });

      it('coalesces events per subscription endpoint and rate-limits it', async () => {
        const { clients, channel, relay } = await group(2, { ...pushOptions, limits: { pushMinIntervalMs: 300 } });
        const [a, b] = clients as [RelayClient, RelayClient];
        const second = (await a.createChannel('group')).channelId;
        const invite = await a.createCapability(second, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        await b.join(second, invite.capability);
        const sub = receiver.subscription();
        await b.registerPush(channel, sub);
        await b.registerPush(second, sub); // the same browser in two channels: one endpoint
        receiver.hold();
        await a.post(channel, packetOf('first'), { wake: true });
        await expect.poll(() => receiver.pushesFor(sub).length, { timeout: 5_000 }).toBe(1);
        for (let i = 0; i < 5; i++) {
          await a.post(channel, packetOf(`burst ${i}`), { wake: true });
          await a.post(second, packetOf(`burst ${i}`), { wake: true });
        }
        // A post is answered before its push targets are looked up: under load the last look-ups
        // could end after the second push went out and make a third.
        await relay.pushLookUpsDone();
        receiver.release();
        await receiver.waitFor(sub, 2);
        expect(new Set(payloadOf(sub, 1).channels)).toEqual(new Set([channel, second]));
        // Nothing more follows: every event was in those two pushes.
        await new Promise((resolve) => setTimeout(resolve, 900));
        expect(receiver.pushesFor(sub)).toHaveLength(2);
      });

      it('drops a subscription the push service says is gone (404/410), and one whose member left', async () => {
        const { clients, channel, relay } = await group(3, { ...pushOptions, limits: { pushMinIntervalMs: 50 } });
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        const gone = receiver.subscription();
        receiver.statusFor.set(new URL(gone.endpoint).pathname, 410);
        await b.registerPush(channel, gone);
        await c.registerPush(channel, receiver.subscription());
        expect((await relay.store.pushTargets(channel)).length).toBe(2);
        await a.post(channel, packetOf('x'), { wake: true });
        await receiver.waitFor(gone, 1);
        await expect.poll(async () => (await relay.store.pushTargets(channel)).map((t) => t.subscription.endpoint), { timeout: 5_000 }).not.toContain(
          gone.endpoint,
        );
        await c.leave(channel);
        expect(await relay.store.pushTargets(channel)).toEqual([]);
        // Unregistering is explicit too.
        await b.registerPush(channel, receiver.subscription());
        expect(await b.unregisterPush(channel)).toEqual({ registered: false });
        expect(await relay.store.pushTargets(channel)).toEqual([]);
      });

      it('refuses endpoints outside https push services, malformed keys and non-members', async () => {
        const { relay, clients, channel, members } = await group(1);
        const a = clients[0]!;
        const good = receiver.subscription();
        const cases: Array<[string, Record<string, unknown>]> = [
          ['http loopback without the test setting', { endpoint: good.endpoint, keys: good.keys }],
          ['http', { endpoint: 'http://fcm.googleapis.com/fcm/send/x', keys: good.keys }],
          ['unknown host', { endpoint: 'https://evil.example/push', keys: good.keys }],
          ['private address', { endpoint: 'https://10.0.0.1/push', keys: good.keys }],
          ['suffix trick', { endpoint: 'https://notpush.apple.com.evil.example/x', keys: good.keys }],
          ['credentials', { endpoint: 'https://user:pw@fcm.googleapis.com/fcm/send/x', keys: good.keys }],
          ['too long', { endpoint: `https://fcm.googleapis.com/${'x'.repeat(3000)}`, keys: good.keys }],
          ['bad p256dh', { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: good.keys.auth, auth: good.keys.auth } }],
          ['point off the curve', { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: Buffer.alloc(65, 4).toString('base64url'), auth: good.keys.auth } }],
          ['bad auth', { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: good.keys.p256dh, auth: 'AAAA' } }],
          ['no keys', { endpoint: 'https://fcm.googleapis.com/fcm/send/x' }],
        ];
        for (const [what, body] of cases) {
          const response = await env.raw(relay, { method: 'PUT', path: `/v1/channels/${channel}/push`, signer: members[0]!, body });
          expect({ what, status: response.status, code: errorBody(response).code }).toEqual({ what, status: 400, code: 'bad-request' });
        }
        expect(await a.registerPush(channel, { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: good.keys })).toEqual({ registered: true });
        expect(await a.registerPush(channel, { endpoint: 'https://updates.push.services.mozilla.com/wpush/v2/abc', keys: good.keys })).toEqual({ registered: true });
        expect(await a.registerPush(channel, { endpoint: 'https://web.push.apple.com/abc', keys: good.keys })).toEqual({ registered: true });
        expect(await refusal(env.client(relay, makeMember()).registerPush(channel, { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: good.keys }))).toEqual({
          status: 403,
          code: 'forbidden',
        });
      });

      it('never contacts an http endpoint in production, even one stored earlier', async () => {
        const first = await group(2, { ...pushOptions, limits: { pushMinIntervalMs: 50 } });
        const sub = receiver.subscription();
        await first.clients[1]!.registerPush(first.channel, sub);
        await first.relay.close();
        // Same store, production settings.
        const relay = await env.relay({ limits: { rateBurst: 1e6, pushMinIntervalMs: 50 } });
        const a = env.client(relay, first.members[0]!);
        await a.post(first.channel, packetOf('x'), { wake: true });
        const metric = async (): Promise<string> => (await env.raw(relay, { method: 'GET', path: '/metrics' })).text;
        await expect.poll(metric, { timeout: 5_000 }).toMatch(/^covey_relay_pushes_total\{outcome="failed"\} 1$/m);
        expect(receiver.pushesFor(sub)).toEqual([]);
      });

      it('keeps one VAPID key pair across restarts, and can be turned off', async () => {
        const first = await env.relay();
        const key = (await env.client(first).vapidKey()).publicKey;
        await first.close();
        const second = await env.relay();
        expect((await env.client(second).vapidKey()).publicKey).toBe(key);
        const off = await env.relay({ push: false });
        expect(await refusal(env.client(off).vapidKey())).toEqual({ status: 404, code: 'not-found' });
      });
    });
  });
}
