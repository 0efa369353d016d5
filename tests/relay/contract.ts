/**
 * The relay's contract (issue 5, src/relay/README.md), over real HTTP and WebSocket, for any store:
 * tests/relay/contract-sqlite.test.ts and contract-redis.test.ts call `relayContract`.
 */
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { hashToken } from '../../src/relay/ids.js';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RELAY_ERROR_STATUS,
  type CapabilityToken,
  type ChannelId,
  type PacketEvent,
  type RelayEvent,
  type ServerFrame,
} from '../../src/shared/relay-api.js';
import { RelayClient, RelayClientError, packetBytes, type WebSocketConstructor } from '../../src/worker/relay-client.js';
import {
  errorBody,
  type FrameCollector,
  framedEvents,
  makeMember,
  nodeFetch,
  packetOf,
  RelayTestEnv,
  type MakeStoreHarness,
  type StoreHarness,
} from './helpers/relay-harness.js';

const MINUTE_MS = 60_000;

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RelayClientError) return { status: error.status, code: error.code };
    throw error;
  }
  throw new Error('expected the relay to refuse');
}

function packets(events: readonly RelayEvent[]): string[] {
  return events.filter((e): e is PacketEvent => e.type === 'packet').map((e) => Buffer.from(packetBytes(e)).toString('utf8'));
}

/** The text of one unmasked WebSocket text frame (RFC 6455 §5.2), as the relay writes it. */
function unmaskedTextPayload(frame: Buffer): string {
  const length7 = (frame[1] ?? 0) & 0x7f;
  const start = length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
  return frame.subarray(start).toString('utf8');
}

/** The HTTP status a WebSocket upgrade gets (101 when it opened; the socket is closed again). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });
}

export function relayContract(name: string, makeHarness: MakeStoreHarness): void {
  describe(`relay contract (${name})`, () => {
    let harness: StoreHarness;
    let env: RelayTestEnv;

    beforeAll(async () => {
      harness = await makeHarness();
      env = new RelayTestEnv(harness);
    });
    afterAll(async () => {
      await harness.destroy();
    });
    afterEach(async () => {
      await env.cleanup();
    });

    /** A relay with generous rate limits and a group of `n` members (first one created it). */
    async function group(n: number, options: Parameters<RelayTestEnv['relay']>[0] = {}) {
      const relay = await env.relay({ ...options, limits: { rateBurst: 1e6, rateRequestsPerSecond: 1e6, ...options.limits } });
      const members = Array.from({ length: n }, () => makeMember());
      const clients = members.map((m) => env.client(relay, m));
      const [owner, ...others] = clients;
      if (owner === undefined) throw new Error('group needs a member');
      const created = await owner.createChannel('group');
      const channel = created.channelId;
      if (others.length > 0) {
        const invite = await owner.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: others.length });
        for (const client of others) await client.join(channel, invite.capability);
      }
      return { relay, members, clients, channel, created };
    }

    describe('channels, membership and the event log', () => {
      it('creates a channel with the creator as first member at seq 1, with an unguessable id', async () => {
        const { clients, channel, created, members } = await group(1);
        expect(channel).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(created.event).toMatchObject({ seq: 1, type: 'member-joined', member: members[0]?.publicKey });
        const info = await clients[0]!.channelInfo(channel);
        expect(info).toMatchObject({ channelId: channel, kind: 'group', owner: members[0]?.publicKey, headSeq: 1, firstSeq: 1 });
        expect(info.members.map((m) => m.key)).toEqual([members[0]?.publicKey]);
      });

      it('invite, join, post, read: one order with relay-assigned consecutive seqs', async () => {
        const { clients, channel, members } = await group(3);
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        await a.post(channel, packetOf('a1'));
        await b.post(channel, packetOf('b1'));
        await c.post(channel, packetOf('c1'));
        await a.post(channel, packetOf('a2'));
        const read = await a.read(channel, 0);
        expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(read.events.slice(0, 3).map((e) => e.type)).toEqual(['member-joined', 'member-joined', 'member-joined']);
        expect(read.events.slice(0, 3).map((e) => (e.type === 'member-joined' ? e.member : ''))).toEqual(members.map((m) => m.publicKey));
        expect(packets(read.events)).toEqual(['a1', 'b1', 'c1', 'a2']);
        expect(read.events.filter((e) => e.type === 'packet').map((e) => (e.type === 'packet' ? e.author : ''))).toEqual([
          members[0]?.publicKey,
          members[1]?.publicKey,
          members[2]?.publicKey,
          members[0]?.publicKey,
        ]);
        expect(read).toMatchObject({ headSeq: 7, more: false });
        // Everyone reads the same order.
        expect((await b.read(channel, 0)).events).toEqual(read.events.filter((e) => e.seq >= 2));
        // A member sees the log from its own join on.
        expect((await c.read(channel, 0)).events[0]).toMatchObject({ seq: 3, type: 'member-joined' });
      });

      it('pages reads with after/limit and reports more', async () => {
        const { clients, channel } = await group(1);
        const a = clients[0]!;
        for (let i = 0; i < 7; i++) await a.post(channel, packetOf(`p${i}`));
        const first = await a.read(channel, 0, 3);
        expect(first.events.map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(first.more).toBe(true);
        const second = await a.read(channel, 3, 3);
        expect(second.events.map((e) => e.seq)).toEqual([4, 5, 6]);
        const last = await a.read(channel, 6, 3);
        expect(last.events.map((e) => e.seq)).toEqual([7, 8]);
        expect(last.more).toBe(false);
        expect((await a.read(channel, 8)).events).toEqual([]);
        expect(packets(await a.readAll(channel, 0))).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
      });

      it('join is idempotent and does not use up the invite again', async () => {
        const { clients, channel, relay } = await group(1);
        const joiner = env.client(relay, makeMember());
        const invite = await clients[0]!.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        const first = await joiner.join(channel, invite.capability);
        expect(first.event).toMatchObject({ seq: 2, type: 'member-joined' });
        const again = await joiner.join(channel, invite.capability);
        expect(again).toEqual({ joinedSeq: 2, event: null });
        expect(await refusal(env.client(relay, makeMember()).join(channel, invite.capability))).toEqual({
          status: 403,
          code: 'invalid-capability',
        });
      });

      it('leave and remove: any member removes any member; the removed can neither post nor read', async () => {
        const { clients, channel, members } = await group(3);
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        const left = await b.leave(channel);
        expect(left.event).toMatchObject({ type: 'member-left', member: members[1]?.publicKey, by: members[1]?.publicKey, seq: 4 });
        const removed = await c.removeMember(channel, members[0]!.publicKey);
        expect(removed.event).toMatchObject({ type: 'member-left', member: members[0]?.publicKey, by: members[2]?.publicKey, seq: 5 });
        expect(await refusal(b.post(channel, packetOf('x')))).toEqual({ status: 403, code: 'forbidden' });
        expect(await refusal(a.read(channel, 0))).toEqual({ status: 403, code: 'forbidden' });
        expect(await refusal(a.removeMember(channel, members[2]!.publicKey))).toEqual({ status: 403, code: 'forbidden' });
        expect(await refusal(c.removeMember(channel, members[1]!.publicKey))).toEqual({ status: 404, code: 'not-found' });
        const info = await c.channelInfo(channel);
        expect(info.members.map((m) => m.key)).toEqual([members[2]?.publicKey]);
        expect(info.headSeq).toBe(5);
      });

      it('acknowledges a read cursor: clamped to the head, never moves back', async () => {
        const { clients, channel, members } = await group(2);
        const [a] = clients as [RelayClient, RelayClient];
        await a.post(channel, packetOf('one'));
        expect(await a.ackCursor(channel, 2)).toEqual({ cursor: 2 });
        expect(await a.ackCursor(channel, 1)).toEqual({ cursor: 2 });
        expect(await a.ackCursor(channel, 1000)).toEqual({ cursor: 3 });
        const info = await a.channelInfo(channel);
        expect(info.members.find((m) => m.key === members[0]?.publicKey)?.cursor).toBe(3);
        expect(info.members.find((m) => m.key === members[1]?.publicKey)).toMatchObject({ joinedSeq: 2, cursor: 1 });
      });

      it('a postId makes a retried post idempotent', async () => {
        const { clients, channel } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const first = await a.post(channel, packetOf('once'), 'msg-1');
        const retry = await a.post(channel, packetOf('once'), 'msg-1');
        expect(first.duplicate).toBe(false);
        expect(retry).toEqual({ ...first, duplicate: true });
        // Another author may use the same postId.
        expect((await b.post(channel, packetOf('other'), 'msg-1')).duplicate).toBe(false);
        expect(packets(await a.readAll(channel, 0))).toEqual(['once', 'other']);
      });
    });

    describe('authentication', () => {
      it('refuses bad signatures, missing headers, tampered bodies and paths', async () => {
        const { relay, channel, members } = await group(1);
        const a = members[0]!;
        const path = `/v1/channels/${channel}/events`;
        const body = { packet: Buffer.from('hi').toString('base64url') };
        const ok = await env.raw(relay, { method: 'POST', path, body, signer: a });
        expect(ok.status).toBe(201);
        const cases = [
          await env.raw(relay, { method: 'POST', path, body }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, signedBody: '{"packet":"other"}' }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, signedPath: `/v1/channels/${channel}/other` }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, headers: { 'covey-key': makeMember().publicKey } }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, headers: { 'covey-signature': 'A'.repeat(86) } }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, headers: { 'covey-nonce': 'short' } }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, headers: { 'covey-time': 'yesterday' } }),
          await env.raw(relay, { method: 'POST', path, body, signer: a, headers: { 'covey-key': 'not-a-key' } }),
        ];
        for (const response of cases) {
          expect(response.status).toBe(401);
          expect(errorBody(response).code).toBe('bad-signature');
        }
        expect(packets((await env.client(relay, a).read(channel, 0)).events)).toEqual(['hi']);
      });

      it('refuses a replayed nonce and stale or future timestamps', async () => {
        const { relay, channel, members } = await group(1);
        const a = members[0]!;
        const path = `/v1/channels/${channel}/events?after=0`;
        const nonce = 'replay-me-0123456789';
        expect((await env.raw(relay, { method: 'GET', path, signer: a, nonce })).status).toBe(200);
        const replay = await env.raw(relay, { method: 'GET', path, signer: a, nonce });
        expect([replay.status, errorBody(replay).code]).toEqual([401, 'replayed-nonce']);
        // Another key may use the same nonce text: nonces are per key.
        const stale = await env.raw(relay, { method: 'GET', path, signer: a, timeMs: env.clockMs - 10 * MINUTE_MS });
        expect([stale.status, errorBody(stale).code]).toEqual([401, 'stale-timestamp']);
        const future = await env.raw(relay, { method: 'GET', path, signer: a, timeMs: env.clockMs + 10 * MINUTE_MS });
        expect([future.status, errorBody(future).code]).toEqual([401, 'stale-timestamp']);
      });

      it('a non-member and a missing channel get the same refusal', async () => {
        const { relay, channel } = await group(1);
        const stranger = makeMember();
        const missing = 'AAAAAAAAAAAAAAAAAAAAAA';
        const a = await env.raw(relay, { method: 'GET', path: `/v1/channels/${channel}/events`, signer: stranger });
        const b = await env.raw(relay, { method: 'GET', path: `/v1/channels/${missing}/events`, signer: stranger });
        expect(a.status).toBe(403);
        expect(a.json).toEqual(b.json);
        expect(b.status).toBe(403);
        const post = await env.raw(relay, {
          method: 'POST',
          path: `/v1/channels/${missing}/events`,
          signer: stranger,
          body: { packet: 'AAAA' },
        });
        expect(post.json).toEqual(a.json);
      });

      it('refuses expired, used-up, foreign and malformed invites alike', async () => {
        const { relay, clients, channel } = await group(1);
        const owner = clients[0]!;
        const other = await group(1);
        const foreign = await other.clients[0]!.createCapability(other.channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 5 });
        const short = await owner.createCapability(channel, { kind: 'invite', ttlMs: 1000, uses: 5 });
        const single = await owner.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        await env.client(relay, makeMember()).join(channel, single.capability);
        env.clockMs += 2000;
        const attempts = [
          short.capability,
          single.capability,
          foreign.capability,
          'not-a-token' as CapabilityToken,
          'A'.repeat(43) as CapabilityToken,
        ];
        for (const capability of attempts) {
          expect(await refusal(env.client(relay, makeMember()).join(channel, capability))).toEqual({ status: 403, code: 'invalid-capability' });
        }
        // Joining a channel that does not exist looks the same.
        expect(
          await refusal(env.client(relay, makeMember()).join('AAAAAAAAAAAAAAAAAAAAAA' as ChannelId, single.capability)),
        ).toEqual({ status: 403, code: 'invalid-capability' });
        expect((await owner.channelInfo(channel)).members).toHaveLength(2);
      });
    });

    describe('inboxes', () => {
      it('anyone with the deposit capability posts; only the owner reads', async () => {
          const relay = await env.relay({ limits: { rateBurst: 1e6 } });
        const owner = env.client(relay, makeMember());
        const inbox = (await owner.createChannel('inbox')).channelId;
        const cap = await owner.createCapability(inbox, { kind: 'deposit', ttlMs: MINUTE_MS, uses: 2 });
        expect(cap.kind).toBe('deposit');
        const stranger = env.client(relay);
        expect((await stranger.deposit(inbox, cap.capability, packetOf('hello'))).seq).toBe(2);
        expect((await stranger.deposit(inbox, cap.capability, packetOf('again'))).seq).toBe(3);
        expect(await refusal(stranger.deposit(inbox, cap.capability, packetOf('third')))).toEqual({ status: 403, code: 'invalid-capability' });
        const events = (await owner.read(inbox, 0)).events;
        expect(packets(events)).toEqual(['hello', 'again']);
        expect(events[1]).toMatchObject({ type: 'packet', author: null });
        // A depositor has no read right, and a deposit capability is not an invite.
        const depositor = makeMember();
        expect(await refusal(env.client(relay, depositor).read(inbox, 0))).toEqual({ status: 403, code: 'forbidden' });
        expect(await refusal(env.client(relay, depositor).join(inbox, cap.capability))).toEqual({ status: 403, code: 'invalid-capability' });
        // Inboxes give deposit capabilities, groups invites.
        expect(await refusal(owner.createCapability(inbox, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 }))).toEqual({
          status: 400,
          code: 'bad-request',
        });
        const { clients, channel } = await group(1);
        expect(await refusal(clients[0]!.createCapability(channel, { kind: 'deposit', ttlMs: MINUTE_MS, uses: 1 }))).toEqual({
          status: 400,
          code: 'bad-request',
        });
        // An invite cannot deposit.
        const invite = await clients[0]!.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        expect(await refusal(stranger.deposit(channel, invite.capability, packetOf('x')))).toEqual({ status: 403, code: 'invalid-capability' });
      });
    });

    describe('blobs', () => {
      const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
      const blobOf = (size: number): Uint8Array => new Uint8Array(Array.from({ length: size }, (_, i) => (i * 31 + 7) % 256));

      it('uploads in chunks, reads back with hash and read capability only', async () => {
        const { relay, clients, channel } = await group(1);
        const a = clients[0]!;
        const bytes = blobOf(3500);
        const done = await a.uploadBlob(channel, bytes, { chunkBytes: 1000 });
        expect(done).toMatchObject({ sha256: sha(bytes), size: 3500 });
        const anyone = env.client(relay);
        expect(Buffer.from(await anyone.readBlob(done.sha256, done.readCapability)).equals(Buffer.from(bytes))).toBe(true);
        const otherBytes = blobOf(10);
        const other = await a.uploadBlob(channel, otherBytes);
        expect(await refusal(anyone.readBlob(done.sha256, other.readCapability))).toEqual({ status: 403, code: 'invalid-capability' });
        expect(await refusal(anyone.readBlob(done.sha256, 'A'.repeat(43) as CapabilityToken))).toEqual({
          status: 403,
          code: 'invalid-capability',
        });
        // Non-members cannot open uploads.
        expect(await refusal(env.client(relay, makeMember()).createUpload(channel, done.sha256, 10))).toEqual({ status: 403, code: 'forbidden' });
      });

      it('resumes an interrupted upload from the relay offset; refuses wrong offsets and overflow', async () => {
        const { clients, channel } = await group(1);
        const a = clients[0]!;
        const bytes = blobOf(2500);
        const upload = await a.createUpload(channel, sha(bytes) as never, bytes.length);
        expect(upload.offset).toBe(0);
        await a.putChunk(upload.upload, 0, bytes.subarray(0, 1000));
        expect(await refusal(a.putChunk(upload.upload, 0, bytes.subarray(0, 1000)))).toEqual({ status: 409, code: 'offset-mismatch' });
        expect(await refusal(a.putChunk(upload.upload, 1500, bytes.subarray(1500)))).toEqual({ status: 409, code: 'offset-mismatch' });
        expect(await refusal(a.finalizeUpload(upload.upload))).toEqual({ status: 400, code: 'bad-request' });
        // "Reconnect": ask where we are, continue from there.
        const status = await a.uploadStatus(upload.upload);
        expect(status.offset).toBe(1000);
        expect(await refusal(a.putChunk(upload.upload, 1000, blobOf(1501)))).toEqual({ status: 413, code: 'body-too-large' });
        const done = await a.uploadBlob(channel, bytes, { resume: upload.upload });
        expect(done.sha256).toBe(sha(bytes));
        expect(Buffer.from(await a.readBlob(done.sha256, done.readCapability)).equals(Buffer.from(bytes))).toBe(true);
        // Finalized uploads are gone.
        expect(await refusal(a.uploadStatus(upload.upload))).toEqual({ status: 404, code: 'not-found' });
      });

      it('refuses a finalize whose bytes do not match the announced hash, and oversized blobs', async () => {
        const { clients, channel } = await group(1, { limits: { maxBlobBytes: 4096 } });
        const a = clients[0]!;
        const upload = await a.createUpload(channel, sha(blobOf(100)) as never, 100);
        await a.putChunk(upload.upload, 0, blobOf(100).map((b) => b ^ 1));
        expect(await refusal(a.finalizeUpload(upload.upload))).toEqual({ status: 422, code: 'hash-mismatch' });
        expect(await refusal(a.uploadStatus(upload.upload))).toEqual({ status: 404, code: 'not-found' });
        expect(await refusal(a.createUpload(channel, sha(blobOf(1)) as never, 4097))).toEqual({ status: 400, code: 'bad-request' });
      });
    });

    describe('WebSocket push', () => {
      it('pushes every new event on many channels, resumes from a seq per channel', async () => {
        const g1 = await group(2);
        const relay = g1.relay;
        const [a, b] = g1.clients as [RelayClient, RelayClient];
        const ch1 = g1.channel;
        const ch2 = (await a.createChannel('group')).channelId;
        await a.post(ch1, packetOf('before'));
        const socket = await env.socket(relay);
        socket.send(await a.subscribeFrame(ch1, 2));
        socket.send(await a.subscribeFrame(ch2, 0));
        await socket.until((f) => f.filter((x) => x.type === 'subscribed').length === 2, 'two subscribed frames');
        await socket.until((f) => framedEvents(f, ch1).length === 1 && framedEvents(f, ch2).length === 1, 'backlog');
        expect(packets(framedEvents(socket.frames, ch1))).toEqual(['before']);
        await b.post(ch1, packetOf('live-1'));
        await a.post(ch2, packetOf('live-2'));
        await b.post(ch1, packetOf('live-3'));
        await socket.until((f) => framedEvents(f, ch1).length === 3 && framedEvents(f, ch2).length === 2, 'live events');
        expect(framedEvents(socket.frames, ch1).map((e) => e.seq)).toEqual([3, 4, 5]);
        expect(packets(framedEvents(socket.frames, ch1))).toEqual(['before', 'live-1', 'live-3']);
        expect(packets(framedEvents(socket.frames, ch2))).toEqual(['live-2']);
        socket.send({ type: 'ping' });
        await socket.until((f) => f.some((x) => x.type === 'pong'), 'pong');
        socket.send({ type: 'unsubscribe', channel: ch2 });
        await socket.until((f) => f.some((x) => x.type === 'unsubscribed' && x.channel === ch2), 'unsubscribed');
        await a.post(ch2, packetOf('after-unsubscribe'));
        await b.post(ch1, packetOf('live-4'));
        await socket.until((f) => framedEvents(f, ch1).length === 4, 'live-4');
        expect(framedEvents(socket.frames, ch2)).toHaveLength(2);
      });

      it('delivers a burst of concurrent posts on several channels complete and in seq order on one connection', async () => {
        // Concurrent posts commit in groups and their events are announced together (SQLite's group
        // commit, Redis's pub/sub chunks): the relay writes one tick's frames to a connection at
        // once (push-wire.ts). Every frame must still arrive whole, once, in seq order per channel.
        // All 120 posts at once from one address: over the default in-flight cap per client.
        const g = await group(2, { limits: { maxRequestsInFlightPerClient: 1_000 } });
        const [a, b] = g.clients as [RelayClient, RelayClient];
        const channels = [g.channel];
        for (let i = 0; i < 2; i++) {
          const channel = (await a.createChannel('group')).channelId;
          const invite = await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
          await b.join(channel, invite.capability);
          channels.push(channel);
        }
        const heads = await Promise.all(channels.map(async (channel) => (await a.channelInfo(channel)).headSeq));
        const socket = await env.socket(g.relay);
        for (const [i, channel] of channels.entries()) socket.send(await b.subscribeFrame(channel, heads[i]!));
        await socket.until((f) => f.filter((x) => x.type === 'subscribed').length === channels.length, 'subscribed');
        const perChannel = 40;
        // A pinger in the middle of the burst: its pong must come back whole too.
        const posts = channels.flatMap((channel, c) =>
          Array.from({ length: perChannel }, (_, i) => (c + i) % 2 === 0 ? a.post(channel, packetOf(`${c}:${i}`)) : b.post(channel, packetOf(`${c}:${i}`))),
        );
        socket.send({ type: 'ping' });
        const seqs = await Promise.all(posts);
        await socket.until((f) => channels.every((channel) => framedEvents(f, channel).length === perChannel), 'every event of the burst');
        expect(socket.frames.some((x) => x.type === 'pong')).toBe(true);
        for (const [c, channel] of channels.entries()) {
          const events = framedEvents(socket.frames, channel);
          expect(events.map((e) => e.seq)).toEqual(Array.from({ length: perChannel }, (_, i) => heads[c]! + 1 + i));
          // Each post's event is the one its answer named.
          const answered = new Map(seqs.slice(c * perChannel, (c + 1) * perChannel).map((r, i) => [r.seq, `${c}:${i}`]));
          expect(packets(events)).toEqual(events.map((e) => answered.get(e.seq)));
        }
        // Nothing more came (no repeats).
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(framedEvents(socket.frames)).toHaveLength(channels.length * perChannel);
      });

      it("sends a new event to the other members' connections first and to its maker's own last", async () => {
        const { relay, clients, channel } = await group(3);
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        // Every frame the relay's sockets send, in the order it sends them (frames reach three
        // sockets in an order the receiving side cannot vouch for; the send order is the relay's).
        // The relay writes its frames to the sockets itself (push-wire.ts): one unmasked frame per
        // write. Only the relay's side is read: the test's clients write a frame's header and its
        // masked payload apart, and a payload may start with bytes that look like a header.
        const original = Socket.prototype.write;
        const sent: { socket: Socket; frame: ServerFrame }[] = [];
        Socket.prototype.write = function (this: Socket, data: unknown, ...rest: unknown[]) {
          // net.Server sets `server` on the sockets it accepts; a client's socket has none.
          const accepted = (this as Socket & { server?: unknown }).server != null;
          if (accepted && Buffer.isBuffer(data) && data[0] === 0x81 && ((data[1] ?? 0) & 0x80) === 0) {
            const frame = JSON.parse(unmaskedTextPayload(data)) as ServerFrame | { type: string };
            if (frame.type === 'subscribed' || frame.type === 'event') sent.push({ socket: this, frame: frame as ServerFrame });
          }
          return (original as (...args: unknown[]) => boolean).call(this, data, ...rest);
        } as typeof original;
        try {
          // The maker of each post subscribes before the others (the order the relay keeps).
          const serverSockets: Socket[] = [];
          const collectors: FrameCollector[] = [];
          for (const client of [a, b, c]) {
            const socket = await env.socket(relay);
            socket.send(await client.subscribeFrame(channel, 3));
            await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
            // Frames are handled one at a time per connection: the pong says the catch-up is over,
            // so the posts below come live, one `event` frame each (not in a catch-up's batch).
            socket.send({ type: 'ping' });
            await socket.until((f) => f.some((x) => x.type === 'pong'), 'pong');
            const mine = sent.filter((s) => s.frame.type === 'subscribed' && !serverSockets.includes(s.socket));
            expect(mine).toHaveLength(1);
            serverSockets.push(mine[0]!.socket);
            collectors.push(socket);
          }
          const order = async (maker: RelayClient, text: string): Promise<number[]> => {
            const { seq } = await maker.post(channel, packetOf(text));
            for (const socket of collectors) await socket.until((f) => framedEvents(f, channel).some((e) => e.seq === seq), text);
            return sent.filter((s) => s.frame.type === 'event' && s.frame.event.seq === seq).map((s) => serverSockets.indexOf(s.socket));
          };
          expect(await order(a, 'from a')).toEqual([1, 2, 0]);
          expect(await order(b, 'from b')).toEqual([0, 2, 1]);
          expect(await order(c, 'from c')).toEqual([0, 1, 2]);
          // Every connection still got every event, in seq order.
          for (const socket of collectors) expect(packets(framedEvents(socket.frames, channel))).toEqual(['from a', 'from b', 'from c']);
        } finally {
          Socket.prototype.write = original;
        }
      });

      it('the client subscription helper resumes after the connection drops', async () => {
        const { relay, clients, channel, members } = await group(2);
        const b = clients[1]!;
        // A WebSocket constructor that remembers its sockets, so the test can cut them.
        const opened: WebSocket[] = [];
        class Recording extends WebSocket {
          constructor(url: string) {
            super(url);
            opened.push(this);
          }
        }
        const a = new RelayClient({
          baseUrl: relay.url,
          fetch: nodeFetch,
          WebSocket: Recording as unknown as WebSocketConstructor,
          signer: members[0]!,
          now: env.now,
        });
        const seen: number[] = [];
        const states: string[] = [];
        const sub = a.subscribe({ onEvent: (_channel, event) => seen.push(event.seq), onConnection: (state) => states.push(state) });
        try {
          sub.add(channel, 0);
          await b.post(channel, packetOf('1'));
          // Generous waits: a reconnect takes a backoff (0.5 s and up) and a loaded CI machine is slow.
          await expect.poll(() => seen, { timeout: 15_000 }).toEqual([1, 2, 3]);
          opened[0]?.terminate();
          await expect.poll(() => states, { timeout: 15_000 }).toEqual(['open', 'closed', 'open']);
          await b.post(channel, packetOf('2'));
          await expect.poll(() => seen, { timeout: 15_000 }).toEqual([1, 2, 3, 4]);
          expect(sub.positions().get(channel)).toBe(4);
          expect(opened).toHaveLength(2);
        } finally {
          sub.close();
        }
      });

      it('sends a catch-up several events to a frame when asked (batch), one by one otherwise; live events alone', async () => {
        const { relay, clients, channel } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        for (let i = 0; i < 5; i++) await a.post(channel, packetOf(`stored-${i}`));
        const batched = await env.socket(relay);
        const single = await env.socket(relay);
        const frame = await a.subscribeFrame(channel, 0);
        expect(frame.batch).toBe(true);
        batched.send(frame);
        const { batch: _asked, ...unbatched } = await a.subscribeFrame(channel, 0);
        single.send(unbatched);
        for (const socket of [batched, single]) await socket.until((f) => framedEvents(f, channel).length === 7, 'the seven stored events');
        // One read of the store, one frame; the same events in the same order either way.
        expect(batched.frames.filter((f) => f.type === 'event')).toEqual([]);
        expect(batched.frames.filter((f) => f.type === 'events')).toHaveLength(1);
        expect(single.frames.filter((f) => f.type === 'events')).toEqual([]);
        expect(framedEvents(batched.frames, channel)).toEqual(framedEvents(single.frames, channel));
        expect(framedEvents(batched.frames, channel).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        // The pong says the catch-up is over (one frame at a time per connection): what follows is live.
        batched.send({ type: 'ping' });
        await batched.until((f) => f.some((x) => x.type === 'pong'), 'pong');
        await b.post(channel, packetOf('live'));
        await batched.until((f) => framedEvents(f, channel).length === 8, 'the live event');
        expect(batched.frames.at(-1)).toMatchObject({ type: 'event', channel, event: { seq: 8 } });
      });

      it('a removed member gets its member-left event, then the subscription ends', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const socket = await env.socket(relay);
        socket.send(await b.subscribeFrame(channel, 2));
        await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        await a.removeMember(channel, members[1]!.publicKey);
        await socket.until((f) => f.some((x) => x.type === 'unsubscribed'), 'unsubscribed');
        expect(framedEvents(socket.frames, channel)).toMatchObject([{ type: 'member-left', member: members[1]?.publicKey }]);
        await a.post(channel, packetOf('after'));
        socket.send({ type: 'ping' });
        await socket.until((f) => f.some((x) => x.type === 'pong'), 'pong');
        expect(framedEvents(socket.frames, channel)).toHaveLength(1);
      });

      it('refuses non-members, replayed and malformed frames with error frames, then closes abusive sockets', async () => {
        const { relay, clients, channel } = await group(1, { limits: { maxWsBadFrames: 3 } });
        const stranger = env.client(relay, makeMember());
        const socket = await env.socket(relay);
        socket.send(await stranger.subscribeFrame(channel, 0));
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'forbidden'), 'forbidden');
        const frame = await clients[0]!.subscribeFrame(channel, 0);
        socket.send(frame);
        await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        socket.send(frame);
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'replayed-nonce'), 'replayed');
        socket.send({ ...(await clients[0]!.subscribeFrame(channel, 0)), signature: 'A'.repeat(86) });
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'bad-signature'), 'bad signature');
        socket.send('not json');
        socket.send({ type: 'dance' });
        socket.send([1, 2]);
        expect(await socket.closed()).toBe(1008);
        const errors = socket.frames.filter((f) => f.type === 'error');
        expect(errors.every((f) => f.type === 'error' && typeof f.error === 'string' && f.code in RELAY_ERROR_STATUS)).toBe(true);
      });

      it('limits subscriptions per connection and connections per client', async () => {
        const { relay, clients } = await group(1, { limits: { maxSubscriptionsPerConnection: 2, maxConnectionsPerClient: 2 } });
        const a = clients[0]!;
        const channels = [];
        for (let i = 0; i < 3; i++) channels.push((await a.createChannel('group')).channelId);
        const socket = await env.socket(relay);
        for (const channel of channels) socket.send(await a.subscribeFrame(channel, 0));
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'too-many-subscriptions'), 'too many subscriptions');
        expect(socket.frames.filter((f) => f.type === 'subscribed')).toHaveLength(2);
        await env.socket(relay);
        expect(await upgradeStatus(relay.url)).toBe(503);
      });

      it('frames, upgrades and HTTP requests of one address share one rate-limit budget', async () => {
        const limits = { rateBurst: 20, rateRequestsPerSecond: 1, maxSubscriptionsPerConnection: 20, maxWsBadFrames: 1000 };
        const { relay, clients } = await group(1, { limits });
        const a = clients[0]!;
        const channels: ChannelId[] = [];
        for (let i = 0; i < 12; i++) {
          env.clockMs += 60_000; // refills the address bucket (rate 1/s, burst 20)
          channels.push((await a.createChannel('group')).channelId);
        }
        env.clockMs += 60_000; // full bucket: 20 tokens, and the clock stands still from here
        const socket = await env.socket(relay); // 1
        for (const channel of channels) socket.send(await a.subscribeFrame(channel, 0)); // 12
        await socket.until((f) => f.filter((x) => x.type === 'subscribed').length === 12, 'twelve subscriptions');
        expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
        // 7 tokens left for everything else from this address: HTTP requests...
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push((await env.raw(relay, { method: 'GET', path: '/v1/push/key' })).status);
        expect(statuses).toEqual([200, 200, 200, 200, 200]);
        // ...another upgrade, one more frame, then the budget is gone for all three.
        expect(await upgradeStatus(relay.url)).toBe(101);
        socket.send({ type: 'ping' });
        await socket.until((f) => f.some((x) => x.type === 'pong'), 'pong');
        socket.send({ type: 'ping' });
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'rate-limited'), 'a rate-limited frame');
        expect((await env.raw(relay, { method: 'GET', path: '/v1/push/key' })).status).toBe(429);
        expect(await upgradeStatus(relay.url)).toBe(429);
        // A flood of signed subscribes from one address gets no further than the budget.
        for (let i = 0; i < 50; i++) socket.send(await a.subscribeFrame(channels[i % 12]!, 0));
        await socket.until((f) => f.filter((x) => x.type === 'error' && x.code === 'rate-limited').length >= 51, 'fifty refusals');
        expect(socket.frames.filter((f) => f.type === 'subscribed')).toHaveLength(12);
      });
    });

    describe('posts over the WebSocket (post frames)', () => {
      /** A post frame of `client` (the same signed request as its HTTP post). */
      async function postFrame(client: RelayClient, channel: ChannelId, text: string, id: number, options?: Parameters<RelayClient['signPost']>[2]) {
        return RelayClient.postFrame(await client.signPost(channel, packetOf(text), options), id);
      }
      /** A post frame signed ten minutes before the relay's clock. */
      async function staleFrame(client: RelayClient, channel: ChannelId) {
        const saved = env.clockMs;
        env.clockMs -= 10 * MINUTE_MS;
        try {
          return await postFrame(client, channel, 'stale', 0);
        } finally {
          env.clockMs = saved;
        }
      }
      /** The answer to post frame `id`: its `posted` or `error` frame. */
      async function answerTo(socket: FrameCollector, id: number): Promise<ServerFrame> {
        const frames = await socket.until((f) => f.some((x) => (x.type === 'posted' || x.type === 'error') && x.id === id), `the answer to post ${id}`);
        return frames.find((x) => (x.type === 'posted' || x.type === 'error') && x.id === id)!;
      }

      it('stores a post frame like the HTTP post: answered with its seq, pushed, read back; a postId dedupes across both ways', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const reader = await env.socket(relay);
        reader.send(await b.subscribeFrame(channel, 2));
        await reader.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        const socket = await env.socket(relay);
        socket.send(await postFrame(a, channel, 'over the socket', 7, { postId: 'p-1', wake: true }));
        expect(await answerTo(socket, 7)).toEqual({ type: 'posted', id: 7, seq: 3, timeMs: env.clockMs, duplicate: false });
        await reader.until((f) => framedEvents(f, channel).length === 1, 'the pushed event');
        expect(framedEvents(reader.frames, channel)).toEqual([
          { type: 'packet', seq: 3, timeMs: env.clockMs, author: members[0]?.publicKey, packet: Buffer.from('over the socket').toString('base64url'), wake: true },
        ]);
        // The same postId again, over the socket and over HTTP: the first seq, nothing appended.
        socket.send(await postFrame(a, channel, 'over the socket', 8, { postId: 'p-1', wake: true }));
        expect(await answerTo(socket, 8)).toMatchObject({ type: 'posted', id: 8, seq: 3, duplicate: true });
        expect(await a.post(channel, packetOf('over the socket'), { postId: 'p-1', wake: true })).toMatchObject({ seq: 3, duplicate: true });
        // One signed request, one use of its nonce, whichever way it goes.
        const signed = await a.signPost(channel, packetOf('once'), 'p-2');
        socket.send(RelayClient.postFrame(signed, 9));
        expect(await answerTo(socket, 9)).toMatchObject({ type: 'posted', seq: 4, duplicate: false });
        expect(await refusal(a.postSigned(signed))).toEqual({ status: 401, code: 'replayed-nonce' });
        const viaHttp = await a.signPost(channel, packetOf('http first'), 'p-3');
        await a.postSigned(viaHttp);
        socket.send(RelayClient.postFrame(viaHttp, 10));
        expect(await answerTo(socket, 10)).toMatchObject({ type: 'error', id: 10, code: 'replayed-nonce' });
        // Posts on a socket that also subscribes: the post's own event comes back on it.
        socket.send(await a.subscribeFrame(channel, 5));
        await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        socket.send(await postFrame(a, channel, 'and back', 11));
        expect(await answerTo(socket, 11)).toMatchObject({ type: 'posted', seq: 6 });
        await socket.until((f) => framedEvents(f, channel).some((e) => e.seq === 6), 'own event');
        expect(packets(await b.readAll(channel, 0))).toEqual(['over the socket', 'once', 'http first', 'and back']);
        expect(socket.frames.filter((f) => f.type === 'error').map((f) => f.type === 'error' && f.code)).toEqual(['replayed-nonce']);
      });

      it('counts post frames in /metrics with the HTTP requests, by outcome code', async () => {
        const { relay, clients, channel } = await group(1);
        const metric = async (): Promise<(name: string) => number> => {
          const text = (await env.raw(relay, { method: 'GET', path: '/metrics' })).text;
          return (name) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
        };
        const before = await metric();
        const socket = await env.socket(relay);
        socket.send(await postFrame(clients[0]!, channel, 'counted', 1));
        expect(await answerTo(socket, 1)).toMatchObject({ type: 'posted' });
        socket.send({ ...(await postFrame(clients[0]!, channel, 'forged', 2)), signature: 'A'.repeat(86) });
        expect(await answerTo(socket, 2)).toMatchObject({ type: 'error', code: 'bad-signature' });
        const after = await metric();
        // The first /metrics read (ok) and the post frame (ok); the refused frame by its code.
        expect(after('covey_relay_requests_total{code="ok"}') - before('covey_relay_requests_total{code="ok"}')).toBe(2);
        expect(after('covey_relay_requests_total{code="bad-signature"}')).toBe(1);
        expect(after('covey_relay_request_duration_seconds_count') - before('covey_relay_request_duration_seconds_count')).toBe(3);
      });

      it('refuses a post frame for every reason the HTTP post is refused, with the same code and the frame id, storing nothing', async () => {
        const { relay, clients, channel, members } = await group(3, { limits: { maxPacketBytes: 600, maxWsFrameBytes: 8192 } });
        const [a, b, c] = clients as [RelayClient, RelayClient, RelayClient];
        const stranger = env.client(relay, makeMember());
        await c.post(channel, packetOf('c was here'));
        await b.removeMember(channel, members[2]!.publicKey); // seq 5
        const socket = await env.socket(relay);
        let id = 100;
        const refused = async (frame: unknown): Promise<string> => {
          socket.send(frame);
          const answer = await answerTo(socket, (frame as { id: number }).id);
          expect(answer.type === 'error' && RELAY_ERROR_STATUS[answer.code] >= 400 && RELAY_ERROR_STATUS[answer.code] < 500).toBe(true);
          return answer.type === 'error' ? answer.code : answer.type;
        };
        const good = await postFrame(a, channel, 'x', id++);
        const replay = await postFrame(a, channel, 'replayed', id++);
        socket.send(replay);
        expect(await answerTo(socket, replay.id)).toMatchObject({ type: 'posted', seq: 6 });
        expect(await refusal(a.post(channel, packetOf('m'), { ifNoLeaveAfter: 4 }))).toEqual({ status: 409, code: 'membership-changed' });
        const cases: Array<[unknown, string]> = [
          [{ ...good, id: id++, body: good.body.replace('"packet":"', '"packet":"AA') }, 'bad-signature'],
          [{ ...good, id: id++, signature: 'A'.repeat(86) }, 'bad-signature'],
          [{ ...good, id: id++, key: makeMember().publicKey }, 'bad-signature'],
          [{ ...good, id: id++, channel: (await a.createChannel('group')).channelId }, 'bad-signature'],
          [{ ...good, id: id++, nonce: 'short' }, 'bad-signature'],
          [{ ...good, id: id++, timeMs: 'now' }, 'bad-signature'],
          [{ ...replay, id: id++ }, 'replayed-nonce'],
          [{ ...(await staleFrame(a, channel)), id: id++ }, 'stale-timestamp'],
          [await postFrame(stranger, channel, 'stranger', id++), 'forbidden'],
          [await postFrame(c, channel, 'removed', id++), 'forbidden'],
          [await postFrame(a, 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId, 'missing channel', id++), 'forbidden'],
          [await postFrame(a, channel, 'rule 7', id++, { ifNoLeaveAfter: 4 }), 'membership-changed'],
          [await postFrame(a, channel, 'y'.repeat(601), id++), 'body-too-large'],
          [await postFrame(a, channel, 'bad postId', id++, { postId: 'x'.repeat(65) }), 'bad-request'],
          [{ ...good, id: id++, body: 5 }, 'bad-request'],
          [{ ...good, id: id++, channel: 'short' }, 'bad-request'],
          [{ ...good, id: id++, channel: 7 }, 'bad-request'],
        ];
        for (const [frame, code] of cases) expect({ frame, code: await refused(frame) }).toEqual({ frame, code });
        // Signed bodies that are not a post request.
        for (const body of ['{not json', '[1]', '{"packet":"a=b"}', '{"packet":""}']) {
          const path = `/v1/channels/${channel}/events`;
          const headers = await a.signHeaders(members[0]!, 'POST', path, new TextEncoder().encode(body));
          const frame = { type: 'post', id: id++, channel, body, key: headers['covey-key'], nonce: headers['covey-nonce'], timeMs: Number(headers['covey-time']), signature: headers['covey-signature'] };
          expect(await refused(frame)).toBe('bad-request');
        }
        // A frame with no usable id is refused as malformed, without one.
        for (const bad of [undefined, -1, 1.5, '3', null]) {
          const before = socket.frames.length;
          socket.send({ ...(await postFrame(a, channel, 'no id', 0)), id: bad });
          await socket.until((f) => f.length > before, 'refusal');
          expect(socket.frames[before]).toEqual({ type: 'error', code: 'bad-request', error: expect.any(String) });
        }
        expect(packets(await a.readAll(channel, 0))).toEqual(['c was here', 'replayed']);
        expect((await a.channelInfo(channel)).headSeq).toBe(6);
      });

      it('closes a socket whose frame is over maxWsFrameBytes (1009), and after maxWsBadFrames malformed post frames (1008)', async () => {
        const { relay, clients, channel } = await group(1, { limits: { maxWsBadFrames: 3 } });
        const a = clients[0]!;
        const big = await env.socket(relay);
        big.send(await postFrame(a, channel, 'z'.repeat(relay.limits.maxWsFrameBytes), 1));
        expect(await big.closed()).toBe(1009);
        const socket = await env.socket(relay);
        for (let i = 0; i < 3; i++) socket.send({ ...(await postFrame(a, channel, 'no id', 0)), id: 'x' });
        expect(await socket.closed()).toBe(1008);
        expect(packets(await a.readAll(channel, 0))).toEqual([]);
      });

      it('a post frame draws on the address budget with its HTTP requests: rate-limited with its id, stored once let through', async () => {
        const { relay, clients, channel } = await group(1, { limits: { rateBurst: 6, rateRequestsPerSecond: 1, maxWsBadFrames: 1000 } });
        const a = clients[0]!;
        env.clockMs += 60_000; // a full bucket (6), and the clock stands still from here
        const socket = await env.socket(relay); // 1
        const frames = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => postFrame(a, channel, `p${i}`, i, `post-${i}`)));
        for (const frame of frames) socket.send(frame); // 5 pass, 2 refused
        const answers = await Promise.all(frames.map((f) => answerTo(socket, f.id)));
        expect(answers.map((x) => x.type === 'error' && x.code)).toEqual([false, false, false, false, false, 'rate-limited', 'rate-limited']);
        expect((await env.raw(relay, { method: 'GET', path: '/v1/push/key' })).status).toBe(429);
        env.clockMs += 60_000;
        const again = await postFrame(a, channel, 'p6', 8, 'post-6');
        socket.send(again);
        expect(await answerTo(socket, 8)).toMatchObject({ type: 'posted', seq: 7, duplicate: false });
        // Posts of one socket run side by side: their order in the log is the relay's.
        expect(packets(await a.readAll(channel, 0)).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
      });
    });

    describe('retention', () => {
      it('deletes events every member has read', async () => {
        const { clients, channel } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        await a.post(channel, packetOf('x'));
        await b.post(channel, packetOf('y'));
        await a.ackCursor(channel, 4);
        // b joined at seq 2, so its cursor starts at 1: seq 1 is read by all, seq 2.. not by b.
        expect((await a.read(channel, 0)).firstSeq).toBe(2);
        await b.ackCursor(channel, 3);
        const read = await a.read(channel, 0);
        expect(read.firstSeq).toBe(4);
        expect(read.events.map((e) => e.seq)).toEqual([4]);
        expect(read.headSeq).toBe(4);
        // Seqs keep growing after retention.
        expect((await a.post(channel, packetOf('z'))).seq).toBe(5);
      });

      it('removes events older than the maximum age, read or not', async () => {
        const { relay, clients, channel } = await group(1, { limits: { maxEventAgeMs: 10_000 } });
        const a = clients[0]!;
        await a.post(channel, packetOf('old'));
        env.clockMs += 20_000;
        await a.post(channel, packetOf('new'));
        const read = await a.read(channel, 0);
        expect(packets(read.events)).toEqual(['new']);
        expect(read.firstSeq).toBe(3);
        // The periodic sweep does the same for idle channels.
        env.clockMs += 20_000;
        expect(await relay.sweep()).toBeGreaterThanOrEqual(1);
        expect((await a.read(channel, 0)).events).toEqual([]);
      });

      it('removes the oldest events beyond the maximum bytes per channel', async () => {
        const packet = packetOf('p'.repeat(300)); // 400 base64url chars + 64 overhead = 464 bytes counted
        const { clients, channel } = await group(1, { limits: { maxChannelBytes: 464 * 3 } });
        const a = clients[0]!;
        for (let i = 0; i < 6; i++) await a.post(channel, packet);
        const read = await a.read(channel, 0);
        expect(read.events.map((e) => e.seq)).toEqual([5, 6, 7]);
        expect(read.firstSeq).toBe(5);
        expect(read.headSeq).toBe(7);
      });
    });

    describe('quotas and errors', () => {
      it('refuses oversized bodies and packets with 413', async () => {
        const { relay, channel, members } = await group(1, { limits: { maxJsonBodyBytes: 2048, maxPacketBytes: 1000 } });
        const path = `/v1/channels/${channel}/events`;
        const big = await env.raw(relay, { method: 'POST', path, signer: members[0]!, rawBody: 'x'.repeat(5000) });
        expect([big.status, errorBody(big).code]).toEqual([413, 'body-too-large']);
        const packet = Buffer.alloc(1001, 1).toString('base64url');
        const tooBig = await env.raw(relay, { method: 'POST', path, signer: members[0]!, body: { packet } });
        expect([tooBig.status, errorBody(tooBig).code]).toEqual([413, 'body-too-large']);
        const fits = await env.raw(relay, { method: 'POST', path, signer: members[0]!, body: { packet: Buffer.alloc(1000, 1).toString('base64url') } });
        expect(fits.status).toBe(201);
      });

      it('rate-limits a client with 429 and retry-after', async () => {
          const relay = await env.relay({ limits: { rateBurst: 5, rateRequestsPerSecond: 0.001 } });
        const statuses: number[] = [];
        let limited: Awaited<ReturnType<RelayTestEnv['raw']>> | undefined;
        for (let i = 0; i < 7; i++) {
          const response = await env.raw(relay, { method: 'GET', path: '/v1/channels/AAAAAAAAAAAAAAAAAAAAAA' });
          statuses.push(response.status);
          if (response.status === 429) limited = response;
        }
        expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
        expect(statuses.slice(5)).toEqual([429, 429]);
        expect(limited !== undefined && errorBody(limited).code).toBe('rate-limited');
        expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
        // Health checks are not rate-limited.
        expect((await env.raw(relay, { method: 'GET', path: '/healthz' })).status).toBe(200);
      });

      it('answers every error as {error, code} with the code status', async () => {
        const { relay, channel, members } = await group(1);
        const a = members[0]!;
        const cases: Array<[Parameters<RelayTestEnv['raw']>[1], number, string]> = [
          [{ method: 'GET', path: '/v1/nothing' }, 404, 'not-found'],
          [{ method: 'PATCH', path: '/v1/channels' }, 405, 'method-not-allowed'],
          [{ method: 'POST', path: '/v1/channels', signer: a, rawBody: '{not json' }, 400, 'bad-request'],
          [{ method: 'POST', path: '/v1/channels', signer: a, rawBody: '[1]' }, 400, 'bad-request'],
          [{ method: 'POST', path: '/v1/channels', signer: a, body: { kind: 'party' } }, 400, 'bad-request'],
          [{ method: 'GET', path: '/v1/channels/short/events', signer: a }, 400, 'bad-request'],
          [{ method: 'GET', path: `/v1/channels/${channel}/events?after=-1`, signer: a }, 400, 'bad-request'],
          [{ method: 'GET', path: `/v1/channels/${channel}/events?limit=0`, signer: a }, 400, 'bad-request'],
          [{ method: 'POST', path: `/v1/channels/${channel}/events`, signer: a, body: { packet: 'a=b' } }, 400, 'bad-request'],
          [{ method: 'POST', path: `/v1/channels/${channel}/events`, signer: a, body: { packet: 'AB', postId: 'x'.repeat(65) } }, 400, 'bad-request'],
          [{ method: 'PUT', path: `/v1/channels/${channel}/cursor`, signer: a, body: { seq: 1.5 } }, 400, 'bad-request'],
          [{ method: 'POST', path: `/v1/channels/${channel}/capabilities`, signer: a, body: { kind: 'invite', ttlMs: 0, uses: 1 } }, 400, 'bad-request'],
          [{ method: 'GET', path: '/v1/uploads/nope' }, 404, 'not-found'],
          [{ method: 'GET', path: '/v1/blobs/xyz' }, 400, 'bad-request'],
          [{ method: 'GET', path: `/v1/blobs/${'0'.repeat(64)}` }, 403, 'invalid-capability'],
          [{ method: 'GET', path: '/v1/ws' }, 400, 'bad-request'],
        ];
        for (const [request, status, code] of cases) {
          const response = await env.raw(relay, request);
          expect({ path: request.path, status: response.status, code: errorBody(response).code }).toEqual({ path: request.path, status, code });
          expect(RELAY_ERROR_STATUS[errorBody(response).code]).toBe(status);
          expect(response.headers.get('content-type')).toMatch(/^application\/json/);
        }
      });
    });

    describe('hostile clients and quotas (issue 13)', () => {
      it('refuses a subscription resuming beyond the head; one at the head ends on removal', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const socket = await env.socket(relay);
        socket.send(await b.subscribeFrame(channel, 7));
        await socket.until((f) => f.some((x) => x.type === 'error' && x.code === 'bad-request' && x.channel === channel), 'bad-request');
        expect(socket.frames.some((f) => f.type === 'subscribed')).toBe(false);
        socket.send(await b.subscribeFrame(channel, 2));
        await socket.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        await a.removeMember(channel, members[1]!.publicKey);
        await socket.until((f) => f.some((x) => x.type === 'unsubscribed' && x.reason === 'removed'), 'unsubscribed');
        await a.post(channel, packetOf('after'));
        socket.send({ type: 'ping' });
        await socket.until((f) => f.some((x) => x.type === 'pong'), 'pong');
        expect(framedEvents(socket.frames, channel).filter((e) => e.type === 'packet')).toEqual([]);
      });

      it('caps an events read by bytes as well as by count (HTTP and WebSocket catch-up)', async () => {
        const packet = packetOf('p'.repeat(600)); // 800 base64url chars + 64 overhead = 864 bytes counted
        const { relay, clients, channel } = await group(1, { limits: { maxReadBytes: 2_000 } });
        const a = clients[0]!;
        for (let i = 0; i < 6; i++) await a.post(channel, packet);
        const first = await a.read(channel, 1);
        expect(first.events.map((e) => e.seq)).toEqual([2, 3]);
        expect(first.more).toBe(true);
        expect((await a.readAll(channel, 0)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        const socket = await env.socket(relay);
        socket.send(await a.subscribeFrame(channel, 0));
        await socket.until((f) => framedEvents(f, channel).length === 7, 'all seven events');
        expect(framedEvents(socket.frames, channel).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        // Batched, each frame holds one read: at most two of the 864-byte packets (and seq 1).
        const batches = socket.frames.flatMap((f) => (f.type === 'events' ? [f.events.filter((e) => e.type === 'packet').length] : []));
        expect(batches.length).toBeGreaterThanOrEqual(3);
        expect(Math.max(...batches)).toBeLessThanOrEqual(2);
      });

      it('kills invites with their maker\'s membership and lets members revoke them', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const own = await b.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 5 });
        const forFriend = await b.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 5 });
        await a.removeMember(channel, members[1]!.publicKey);
        // The removed member cannot come back with an invite it minted, nor can anyone else use it.
        expect(await refusal(b.join(channel, own.capability))).toEqual({ status: 403, code: 'invalid-capability' });
        expect(await refusal(env.client(relay, makeMember()).join(channel, forFriend.capability))).toEqual({ status: 403, code: 'invalid-capability' });
        // A rejoin through a fresh invite does not revive the old ones.
        await b.join(channel, (await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 })).capability);
        expect(await refusal(env.client(relay, makeMember()).join(channel, forFriend.capability))).toEqual({ status: 403, code: 'invalid-capability' });
        // Revocation by any member who holds it; a revoked invite opens nothing.
        const invite = await a.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 5 });
        expect(await b.revokeCapability(channel, invite.capability)).toEqual({ revoked: 1 });
        expect(await b.revokeCapability(channel, invite.capability)).toEqual({ revoked: 0 });
        expect(await refusal(env.client(relay, makeMember()).join(channel, invite.capability))).toEqual({ status: 403, code: 'invalid-capability' });
        // Not another channel's, and only by members.
        const other = await group(1);
        const foreign = await other.clients[0]!.createCapability(other.channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 1 });
        expect(await a.revokeCapability(channel, foreign.capability)).toEqual({ revoked: 0 });
        expect(await refusal(env.client(relay, makeMember()).revokeCapability(channel, foreign.capability))).toEqual({ status: 403, code: 'forbidden' });
        expect((await env.client(other.relay, makeMember()).join(other.channel, foreign.capability)).event).not.toBeNull();
        // An inbox owner who leaves takes its deposit capabilities along.
        const owner = env.client(relay, makeMember());
        const inbox = (await owner.createChannel('inbox')).channelId;
        const deposit = await owner.createCapability(inbox, { kind: 'deposit', ttlMs: MINUTE_MS, uses: 5 });
        await owner.leave(inbox);
        expect(await refusal(env.client(relay).deposit(inbox, deposit.capability, packetOf('x')))).toEqual({ status: 403, code: 'invalid-capability' });
      });

      it('checks a deposit capability before parsing the body, and a bad body uses none of it', async () => {
        const { relay } = await group(1);
        const owner = env.client(relay, makeMember());
        const inbox = (await owner.createChannel('inbox')).channelId;
        const cap = await owner.createCapability(inbox, { kind: 'deposit', ttlMs: MINUTE_MS, uses: 1 });
        const path = `/v1/channels/${inbox}/deposit`;
        const forged = await env.raw(relay, { method: 'POST', path, rawBody: '{not json', headers: { 'covey-capability': 'A'.repeat(43), 'content-type': 'application/json' } });
        expect([forged.status, errorBody(forged).code]).toEqual([403, 'invalid-capability']);
        const malformed = await env.raw(relay, { method: 'POST', path, rawBody: '{not json', headers: { 'covey-capability': cap.capability, 'content-type': 'application/json' } });
        expect([malformed.status, errorBody(malformed).code]).toEqual([400, 'bad-request']);
        expect((await env.client(relay).deposit(inbox, cap.capability, packetOf('one'))).seq).toBe(2);
        expect(await refusal(env.client(relay).deposit(inbox, cap.capability, packetOf('two')))).toEqual({ status: 403, code: 'invalid-capability' });
      });

      it('keeps quotas of new channels and upload bytes per client address and per key', async () => {
        const relay = await env.relay({ limits: { rateBurst: 1e6, channelQuotaBurst: 3, channelQuotaPerHour: 1, uploadQuotaBurstBytes: 10_000, uploadQuotaBytesPerHour: 1 } });
        const statuses: Array<number | string> = [];
        for (let i = 0; i < 4; i++) {
          statuses.push(await env.client(relay, makeMember()).createChannel('group').then(() => 201, (e: unknown) => (e instanceof RelayClientError ? e.code : 'error')));
        }
        expect(statuses).toEqual([201, 201, 201, 'quota-exceeded']);
        const limited = await env.raw(relay, { method: 'POST', path: '/v1/channels', signer: makeMember(), body: { kind: 'group' } });
        expect([limited.status, errorBody(limited).code, Number(limited.headers.get('retry-after')) > 0]).toEqual([429, 'quota-exceeded', true]);
        // An hour later (relay clock) there is room again.
        env.clockMs += 3_600_000;
        const a = env.client(relay, makeMember());
        const channel = (await a.createChannel('group')).channelId;
        await a.createUpload(channel, 'a'.repeat(64) as never, 6_000);
        expect(await refusal(a.createUpload(channel, 'b'.repeat(64) as never, 6_000))).toEqual({ status: 429, code: 'quota-exceeded' });
      });

      it('refuses new content with 507 past maxStoredBytes, and reports it in /healthz', async () => {
        const { clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        await a.post(channel, packetOf('fills the quota'));
        const full = await env.relay({ limits: { rateBurst: 1e6, maxStoredBytes: 1 } });
        const alice = env.client(full, members[0]);
        expect(await refusal(alice.post(channel, packetOf('no room')))).toEqual({ status: 507, code: 'storage-full' });
        const health = (await env.raw(full, { method: 'GET', path: '/healthz' })).json as { storage: { writable: boolean; reason: string } };
        expect(health.storage).toMatchObject({ writable: false, reason: 'stored-bytes-quota' });
        await b.leave(channel); // leaving always works
      });

      it('deletes a channel with its last member, and keeps O(1) counters right', async () => {
        const { relay, clients, channel, members } = await group(2);
        const [a, b] = clients as [RelayClient, RelayClient];
        const before = await relay.store.stats();
        await a.post(channel, packetOf('x'));
        const withPost = await relay.store.stats();
        expect([withPost.channels, withPost.events - before.events, withPost.bytes - before.bytes]).toEqual([
          before.channels,
          1,
          64 + Buffer.from(packetOf('x')).toString('base64url').length,
        ]);
        const token = await b.createFetchToken(channel, MINUTE_MS);
        await a.leave(channel);
        expect(await relay.store.getChannel(channel)).toBeDefined();
        await b.leave(channel);
        expect(await relay.store.getChannel(channel)).toBeUndefined();
        expect(await relay.store.readEvents(channel, 0, 100, 1e9)).toEqual([]);
        expect(await relay.store.listMembers(channel)).toEqual([]);
        expect(await relay.store.useFetchToken(hashToken(token.token), channel, env.clockMs)).toBeUndefined();
        const after = await relay.store.stats();
        expect(after.channels).toBe(before.channels - 1);
        // The channel's events (2 joins, 1 post, 2 leaves) are gone from the counts.
        expect(after.events).toBe(before.events - 2);
        expect(after.bytes).toBe(before.bytes - 2 * 64);
        expect(await refusal(b.read(channel, 0))).toEqual({ status: 403, code: 'forbidden' });
        expect(members).toHaveLength(2);
      });
    });

    describe('durability and operations', () => {
      it('keeps everything acknowledged across a relay restart on the same store', async () => {
          const first = await env.relay({ limits: { rateBurst: 1e6 } });
        const a = makeMember();
        const client = env.client(first, a);
        const channel = (await client.createChannel('group')).channelId;
        const invite = await client.createCapability(channel, { kind: 'invite', ttlMs: MINUTE_MS, uses: 2 });
        for (let i = 0; i < 20; i++) await client.post(channel, packetOf(`m${i}`), `id-${i}`);
        const nonce = 'durable-nonce-0123456789';
        expect((await env.raw(first, { method: 'GET', path: `/v1/channels/${channel}`, signer: a, nonce })).status).toBe(200);
        await first.close();
        const second = await env.relay({ limits: { rateBurst: 1e6 } });
        const again = env.client(second, a);
        const events = await again.readAll(channel, 0);
        expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
        expect(packets(events)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
        expect((await again.post(channel, packetOf('m19'), 'id-19')).duplicate).toBe(true);
        expect((await env.client(second, makeMember()).join(channel, invite.capability)).joinedSeq).toBe(22);
        const replay = await env.raw(second, { method: 'GET', path: `/v1/channels/${channel}`, signer: a, nonce });
        expect(errorBody(replay).code).toBe('replayed-nonce');
      });

      it('serves /healthz and Prometheus /metrics', async () => {
        const { relay, clients, channel } = await group(1);
        const health = await env.raw(relay, { method: 'GET', path: '/healthz' });
        expect(health.status).toBe(200);
        expect(health.json).toMatchObject({ ok: true, store: relay.store.name, storage: { writable: true } });
        await clients[0]!.post(channel, packetOf('counted'));
        const socket = await env.socket(relay);
        socket.send(await clients[0]!.subscribeFrame(channel, 0));
        await socket.until((f) => framedEvents(f, channel).length === 2, 'events');
        const metrics = await env.raw(relay, { method: 'GET', path: '/metrics' });
        expect(metrics.status).toBe(200);
        expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
        const value = (metric: string): number => Number(new RegExp(`^${metric} (\\S+)$`, 'm').exec(metrics.text)?.[1] ?? NaN);
        expect(value('covey_relay_events_appended_total')).toBe(1);
        expect(value('covey_relay_events_pushed_total')).toBe(2);
        expect(value('covey_relay_connections')).toBe(1);
        expect(value('covey_relay_subscriptions')).toBe(1);
        expect(value('covey_relay_stored_events')).toBeGreaterThanOrEqual(2);
        expect(value('covey_relay_request_duration_seconds_count')).toBeGreaterThanOrEqual(3);
        expect(metrics.text).toMatch(/^# TYPE covey_relay_request_duration_seconds histogram$/m);
        expect(metrics.text).toMatch(/^covey_relay_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
      });
    });
  });
}

