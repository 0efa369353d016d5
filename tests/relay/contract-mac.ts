/**
 * Request MACs at the relay (src/shared/relay-mac.ts, src/relay/README.md "Authentication"), over
 * real HTTP and WebSocket, for any store: contract-sqlite.test.ts and contract-redis.test.ts call
 * `macContract`. Requests are made with tests/relay/helpers/signed-http.ts, which derives the MAC
 * key from the description, independently of the relay and of the worker's client.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RELAY_LIMITS } from '../../src/relay/limits.js';
import type { RunningRelay } from '../../src/relay/server.js';
import { relayDeferredPostPath, relayPostPath, type ChannelId, type MemberKey, type ServerFrame } from '../../src/shared/relay-api.js';
import { RELAY_AUTH_KEY_PATH } from '../../src/shared/relay-mac.js';
import { RelayTestEnv, type FrameCollector, type MakeStoreHarness, type StoreHarness } from './helpers/relay-harness.js';
import {
  fetchRelayAuthKey,
  macHeaders,
  newMember,
  newNonce,
  postFrame,
  rawRequest,
  setupGroup,
  signedHeaders,
  subscribeFrame,
  type RawResponse,
  type TestMember,
} from './helpers/signed-http.js';

const json = { 'content-type': 'application/json' };
const packetOf = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/** A relay auth key no relay has: a fresh X25519 public key. */
function otherAuthKey(): string {
  const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  return String(jwk.x);
}

/** Status and error code of an answer. */
function outcome(response: RawResponse): [number, string | undefined] {
  const text = response.body.toString('utf8');
  const body = text === '' ? {} : (JSON.parse(text) as { code?: string });
  return [response.status, body.code];
}

export function macContract(name: string, makeHarness: MakeStoreHarness): void {
  describe(`request MACs (${name})`, () => {
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

    /** A relay on the real clock (the helpers sign with Date.now) with generous rate limits. */
    async function relayOf(options: Parameters<RelayTestEnv['relay']>[0] = {}): Promise<RunningRelay> {
      return env.relay({ now: Date.now, ...options, limits: { rateBurst: 1e6, rateRequestsPerSecond: 1e6, ...options.limits } });
    }

    /** A relay, its auth key and a group of `n` members made with signatures. */
    async function group(n: number, options: Parameters<RelayTestEnv['relay']>[0] = {}) {
      const relay = await relayOf(options);
      const authKey = await fetchRelayAuthKey(relay.url);
      const members = Array.from({ length: n }, () => newMember());
      const channel = await setupGroup(relay.url, members);
      return { relay, authKey, members, channel };
    }

    /** POST a packet with the given auth headers. */
    function post(relay: RunningRelay, channel: ChannelId, auth: (body: string) => Record<string, string>, text = 'hi'): Promise<RawResponse> {
      const body = JSON.stringify({ packet: packetOf(text) });
      return rawRequest(relay.url + relayPostPath(channel), 'POST', { ...json, ...auth(body) }, body);
    }

    /** GET with the given auth headers. */
    function get(relay: RunningRelay, path: string, headers: Record<string, string>): Promise<RawResponse> {
      return rawRequest(relay.url + path, 'GET', headers);
    }

    /** The answer to post frame `id`. */
    async function answerTo(socket: FrameCollector, id: number): Promise<ServerFrame> {
      const frames = await socket.until((f) => f.some((x) => (x.type === 'posted' || x.type === 'error') && x.id === id), `the answer to post ${id}`);
      return frames.find((x) => (x.type === 'posted' || x.type === 'error') && x.id === id)!;
    }

    /** Packet texts of the channel as `member` reads it (signed). */
    async function packets(relay: RunningRelay, member: TestMember, channel: ChannelId): Promise<string[]> {
      const path = `/v1/channels/${channel}/events?after=0`;
      const read = await get(relay, path, signedHeaders(member, 'GET', path, ''));
      const events = (JSON.parse(read.body.toString('utf8')) as { events: Array<{ type: string; packet?: string }> }).events;
      return events.flatMap((e) => (e.type === 'packet' && e.packet !== undefined ? [Buffer.from(e.packet, 'base64url').toString('utf8')] : []));
    }

    describe('GET /v1/auth-key', () => {
      it('serves one X25519 key for the store: the same across relays on it, restarts and push off; cacheable; rate-limited', async () => {
        const first = await relayOf();
        const answer = await rawRequest(first.url + RELAY_AUTH_KEY_PATH, 'GET', {});
        expect(answer.status).toBe(200);
        expect(answer.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
        const key = (JSON.parse(answer.body.toString('utf8')) as { key: string }).key;
        expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
        // A second relay on the same store (Redis: a second node at once), then a restart with push off.
        const second = await relayOf();
        expect(await fetchRelayAuthKey(second.url)).toBe(key);
        await env.cleanup();
        const restarted = await relayOf({ push: false });
        expect(await fetchRelayAuthKey(restarted.url)).toBe(key);
        // Another store, another key: it is derived from the store's secret, not a constant.
        const otherHarness = await makeHarness();
        try {
          const otherEnv = new RelayTestEnv(otherHarness);
          const other = await otherEnv.relay({ now: Date.now });
          expect(await fetchRelayAuthKey(other.url)).not.toBe(key);
          await otherEnv.cleanup();
        } finally {
          await otherHarness.destroy();
        }
        // Unauthenticated, but it draws on the address's rate-limit budget like every API request.
        const limited = await relayOf({ limits: { rateBurst: 2, rateRequestsPerSecond: 0.001 } });
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push((await rawRequest(limited.url + RELAY_AUTH_KEY_PATH, 'GET', {})).status);
        expect(statuses).toEqual([200, 200, 429]);
      });
    });

    describe('over HTTP', () => {
      it('accepts MAC\'d requests on every signed route, as their member', async () => {
        const { relay, authKey, members, channel } = await group(2);
        const [a, b] = members as [TestMember, TestMember];
        expect(outcome(await post(relay, channel, (body) => macHeaders(a, authKey, 'POST', relayPostPath(channel), body), 'by mac'))).toEqual([201, undefined]);
        const readPath = `/v1/channels/${channel}/events?after=0`;
        const read = await get(relay, readPath, macHeaders(b, authKey, 'GET', readPath, ''));
        expect(read.status).toBe(200);
        const events = (JSON.parse(read.body.toString('utf8')) as { events: Array<{ type: string; author?: MemberKey }> }).events;
        expect(events.filter((e) => e.type === 'packet')).toEqual([expect.objectContaining({ author: a.key, packet: packetOf('by mac') })]);
        // Creating a channel, a fetch token, a cursor, a deferred post: every route that reads a proof.
        const create = JSON.stringify({ kind: 'group' });
        expect((await rawRequest(relay.url + '/v1/channels', 'POST', { ...json, ...macHeaders(a, authKey, 'POST', '/v1/channels', create) }, create)).status).toBe(201);
        const tokenPath = `/v1/channels/${channel}/fetch-tokens`;
        const token = JSON.stringify({ ttlMs: 60_000 });
        expect((await rawRequest(relay.url + tokenPath, 'POST', { ...json, ...macHeaders(b, authKey, 'POST', tokenPath, token) }, token)).status).toBe(201);
        const cursorPath = `/v1/channels/${channel}/cursor`;
        const cursor = JSON.stringify({ seq: 3 });
        expect((await rawRequest(relay.url + cursorPath, 'PUT', { ...json, ...macHeaders(b, authKey, 'PUT', cursorPath, cursor) }, cursor)).status).toBe(200);
        const deferredPath = relayDeferredPostPath(channel);
        const deferred = JSON.stringify({ packet: packetOf('deferred'), postId: 'd-1', ifNoLeaveAfter: 3 });
        const oldMs = Date.now() - 2 * DEFAULT_RELAY_LIMITS.maxClockSkewMs;
        expect((await rawRequest(relay.url + deferredPath, 'POST', { ...json, ...macHeaders(a, authKey, 'POST', deferredPath, deferred, { timeMs: oldMs }) }, deferred)).status).toBe(201);
        expect(await packets(relay, a, channel)).toEqual(['by mac', 'deferred']);
      });

      it('counts the proofs it checked in /metrics, by kind and verdict, and the MAC keys it holds', async () => {
        const { relay, authKey, members, channel } = await group(2);
        const [a, b] = members as [TestMember, TestMember];
        const metrics = async (): Promise<{ macOk: number; macBad: number; sigOk: number; sigBad: number; cached: number }> => {
          const text = (await rawRequest(`${relay.url}/metrics`, 'GET', {}, '')).body.toString('utf8');
          const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
          return {
            macOk: value('covey_relay_request_proofs_total{proof="mac",result="accepted"}'),
            macBad: value('covey_relay_request_proofs_total{proof="mac",result="refused"}'),
            sigOk: value('covey_relay_request_proofs_total{proof="signature",result="accepted"}'),
            sigBad: value('covey_relay_request_proofs_total{proof="signature",result="refused"}'),
            cached: value('covey_relay_mac_keys_cached'),
          };
        };
        const before = await metrics();
        const path = relayPostPath(channel);
        expect((await post(relay, channel, (body) => macHeaders(a, authKey, 'POST', path, body), 'one')).status).toBe(201);
        expect((await post(relay, channel, (body) => macHeaders(b, authKey, 'POST', path, body), 'two')).status).toBe(201);
        expect((await post(relay, channel, (body) => macHeaders(a, otherAuthKey(), 'POST', path, body), 'bad')).status).toBe(401);
        expect((await post(relay, channel, (body) => signedHeaders(a, 'POST', path, body), 'signed')).status).toBe(201);
        expect((await post(relay, channel, (body) => ({ ...signedHeaders(a, 'POST', path, body), 'covey-key': b.key }), 'bad sig')).status).toBe(401);
        const after = await metrics();
        expect({
          macOk: after.macOk - before.macOk,
          macBad: after.macBad - before.macBad,
          sigOk: after.sigOk - before.sigOk,
          sigBad: after.sigBad - before.sigBad,
          cached: after.cached,
        }).toEqual({ macOk: 2, macBad: 1, sigOk: 1, sigBad: 1, cached: 2 });
      });

      it("refuses a wrong MAC, another member's, another relay's, both proofs and malformed MACs alike: 401 bad-signature, nothing stored", async () => {
        const { relay, authKey, members, channel } = await group(2);
        const [a, b] = members as [TestMember, TestMember];
        const path = relayPostPath(channel);
        const withMac = (mac: string) => (body: string) => ({ ...macHeaders(a, authKey, 'POST', path, body), 'covey-mac': mac });
        const flip = (mac: string): string => {
          const bytes = Buffer.from(mac, 'base64url');
          bytes[0] = (bytes[0] ?? 0) ^ 1;
          return bytes.toString('base64url');
        };
        const cases: Array<[string, (body: string) => Record<string, string>]> = [
          ['wrong mac', (body) => withMac(flip(macHeaders(a, authKey, 'POST', path, body)['covey-mac']!))(body)],
          ["b's MAC under a's key", (body) => ({ ...macHeaders(b, authKey, 'POST', path, body), 'covey-key': a.key })],
          ["a's MAC for another relay auth key", (body) => macHeaders(a, otherAuthKey(), 'POST', path, body)],
          ['MAC over another body', (body) => macHeaders(a, authKey, 'POST', path, `${body} `)],
          [
            'signature and mac',
            (body) => {
              const nonce = newNonce();
              const timeMs = Date.now();
              return { ...macHeaders(a, authKey, 'POST', path, body, { nonce, timeMs }), ...signedHeaders(a, 'POST', path, body, { nonce, timeMs }) };
            },
          ],
          ['empty mac', withMac('')],
          ['short mac', withMac('A'.repeat(42))],
          ['long mac', withMac('A'.repeat(44))],
          ['non-canonical mac', withMac(`${'A'.repeat(42)}B`)],
          ['not base64url', withMac(`${'A'.repeat(42)}=`)],
          ['a signature in covey-mac', (body) => withMac(signedHeaders(a, 'POST', path, body)['covey-signature']!)(body)],
        ];
        for (const [what, auth] of cases) expect({ what, outcome: outcome(await post(relay, channel, auth, what)) }).toEqual({ what, outcome: [401, 'bad-signature'] });
        expect(await packets(relay, a, channel)).toEqual([]);
      });

      it('refuses a small-order or non-canonical member key with a MAC like with a signature', async () => {
        const { relay, authKey, members, channel } = await group(1);
        const a = members[0]!;
        const weak = [
          Buffer.alloc(32).toString('base64url'), // order 4 (y = 0)
          Buffer.from(`ec${'ff'.repeat(30)}7f`, 'hex').toString('base64url'), // y = p - 1: u = 0, X25519 output all zero
          Buffer.from(`ee${'ff'.repeat(30)}7f`, 'hex').toString('base64url'), // y = p + 1 (non-canonical 1)
        ];
        for (const key of weak) {
          const response = await post(relay, channel, (body) => ({ ...macHeaders(a, authKey, 'POST', relayPostPath(channel), body), 'covey-key': key }));
          expect(outcome(response)).toEqual([401, 'bad-signature']);
        }
      });

      it('one nonce store for both proofs: signature then MAC, MAC then MAC, MAC then signature are replays', async () => {
        const { relay, authKey, members, channel } = await group(1);
        const a = members[0]!;
        const path = `/v1/channels/${channel}/events?after=0`;
        const postPath = relayPostPath(channel);
        // Reads (the nonce is used by authenticate) and posts (used by the append).
        for (const [first, second] of [
          ['signature', 'mac'],
          ['mac', 'mac'],
          ['mac', 'signature'],
        ] as const) {
          const nonce = newNonce();
          const proof = (kind: 'signature' | 'mac') => (kind === 'mac' ? { relayAuthKey: authKey } : 'signature');
          expect((await get(relay, path, signedHeaders(a, 'GET', path, '', { nonce, proof: proof(first) }))).status).toBe(200);
          expect(outcome(await get(relay, path, signedHeaders(a, 'GET', path, '', { nonce, proof: proof(second) })))).toEqual([401, 'replayed-nonce']);
          const postNonce = newNonce();
          expect(outcome(await post(relay, channel, (body) => signedHeaders(a, 'POST', postPath, body, { nonce: postNonce, proof: proof(first) }), first))[0]).toBe(201);
          expect(outcome(await post(relay, channel, (body) => signedHeaders(a, 'POST', postPath, body, { nonce: postNonce, proof: proof(second) }), second))).toEqual([
            401,
            'replayed-nonce',
          ]);
        }
        // A MAC'd request outside the time window is stale, as a signed one.
        const stale = await get(relay, path, macHeaders(a, authKey, 'GET', path, '', { timeMs: Date.now() - 2 * DEFAULT_RELAY_LIMITS.maxClockSkewMs }));
        expect(outcome(stale)).toEqual([401, 'stale-timestamp']);
        expect(await packets(relay, a, channel)).toEqual(['signature', 'mac', 'mac']);
      });

      it('a non-member with a valid MAC gets the same 403 as for a missing channel', async () => {
        const { relay, authKey, channel } = await group(1);
        const stranger = newMember();
        const missing = 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId;
        const answers = [];
        for (const id of [channel, missing]) {
          const path = `/v1/channels/${id}/events?after=0`;
          answers.push(await get(relay, path, macHeaders(stranger, authKey, 'GET', path, '')));
          answers.push(await post(relay, id, (body) => macHeaders(stranger, authKey, 'POST', relayPostPath(id), body)));
        }
        expect(answers.map(outcome)).toEqual(Array.from({ length: 4 }, () => [403, 'forbidden']));
        expect(new Set(answers.map((a) => a.body.toString('utf8'))).size).toBe(1);
      });
    });

    describe('over the WebSocket', () => {
      it('accepts a MAC\'d subscribe and post frame; refuses bad, foreign, double and malformed proofs with bad-signature', async () => {
        const { relay, authKey, members, channel } = await group(2);
        const [a, b] = members as [TestMember, TestMember];
        const mac = { proof: { relayAuthKey: authKey } } as const;
        const reader = await env.socket(relay);
        reader.send(subscribeFrame(b, channel, 2, mac));
        await reader.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed');
        const socket = await env.socket(relay);
        socket.send(postFrame(a, channel, JSON.stringify({ packet: packetOf('framed') }), 1, mac));
        expect(await answerTo(socket, 1)).toMatchObject({ type: 'posted', seq: 3, duplicate: false });
        await reader.until((f) => f.some((x) => x.type === 'event' && x.event.seq === 3), 'the pushed event');

        const body = JSON.stringify({ packet: packetOf('refused') });
        const good = postFrame(a, channel, body, 0, mac);
        const signed = postFrame(a, channel, body, 0, { nonce: good.nonce, timeMs: good.timeMs });
        const cases: Array<[string, unknown]> = [
          ['wrong mac', { ...good, id: 10, mac: Buffer.alloc(32).toString('base64url') }],
          ["b's mac under a's key", { ...postFrame(b, channel, body, 11, mac), key: a.key }],
          ['another relay', postFrame(a, channel, body, 12, { proof: { relayAuthKey: otherAuthKey() } })],
          ['both', { ...good, id: 13, signature: signed.signature }],
          ['mac not text', { ...signed, id: 14, mac: 5 }],
          ['mac null', { ...signed, id: 15, mac: null }],
          ['short mac', { ...good, id: 16, mac: 'A'.repeat(42) }],
        ];
        for (const [what, frame] of cases) {
          socket.send(frame);
          const answer = await answerTo(socket, (frame as { id: number }).id);
          expect({ what, code: answer.type === 'error' ? answer.code : answer.type }).toEqual({ what, code: 'bad-signature' });
        }
        // The same for subscriptions.
        const sub = subscribeFrame(a, channel, 0, mac);
        const subscriber = await env.socket(relay);
        for (const frame of [
          { ...sub, mac: Buffer.alloc(32).toString('base64url') },
          { ...sub, signature: subscribeFrame(a, channel, 0, { nonce: sub.nonce, timeMs: sub.timeMs }).signature },
          { ...subscribeFrame(a, channel, 0, { proof: { relayAuthKey: otherAuthKey() } }) },
          { ...sub, mac: 'A'.repeat(44) },
        ]) {
          const before = subscriber.frames.length;
          subscriber.send(frame);
          await subscriber.until((f) => f.length > before, 'refusal');
          expect(subscriber.frames[before]).toMatchObject({ type: 'error', code: 'bad-signature', channel });
        }
        // A post frame's nonce is the request's: the same MAC'd post over HTTP afterwards is a replay.
        const once = postFrame(a, channel, JSON.stringify({ packet: packetOf('once') }), 20, mac);
        socket.send(once);
        expect(await answerTo(socket, 20)).toMatchObject({ type: 'posted', seq: 4 });
        const replay = await rawRequest(relay.url + relayPostPath(channel), 'POST', { ...json, 'covey-key': once.key, 'covey-nonce': once.nonce, 'covey-time': String(once.timeMs), 'covey-mac': once.mac! }, once.body);
        expect(outcome(replay)).toEqual([401, 'replayed-nonce']);
        subscriber.send(sub);
        await subscriber.until((f) => f.some((x) => x.type === 'subscribed'), 'subscribed after the refusals');
        subscriber.send(sub);
        await subscriber.until((f) => f.some((x) => x.type === 'error' && x.code === 'replayed-nonce'), 'replayed subscription');
        expect(await packets(relay, a, channel)).toEqual(['framed', 'once']);
      });

      it('a non-member subscribing with a valid MAC gets forbidden, as for a missing channel', async () => {
        const { relay, authKey, channel } = await group(1);
        const stranger = newMember();
        const socket = await env.socket(relay);
        socket.send(subscribeFrame(stranger, channel, 0, { proof: { relayAuthKey: authKey } }));
        socket.send(subscribeFrame(stranger, 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId, 0, { proof: { relayAuthKey: authKey } }));
        const frames = await socket.until((f) => f.filter((x) => x.type === 'error').length === 2, 'two refusals');
        expect(frames.map((f) => (f.type === 'error' ? [f.code, f.error] : f.type))).toEqual([
          ['forbidden', 'not a member of this channel'],
          ['forbidden', 'not a member of this channel'],
        ]);
      });
    });
  });
}
