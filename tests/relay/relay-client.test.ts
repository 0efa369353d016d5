/**
 * The worker's relay client against fakes: signatures the relay would accept, error mapping,
 * and the subscription helper's resume, dedupe, removal and reconnect backoff (fake timers).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { relaySigningText, type ChannelId, type RelayEvent } from '../../src/shared/relay-api.js';
import { RelayClient, RelayClientError, type FetchLike } from '../../src/worker/relay-client.js';
import { FakeSocket } from './helpers/fake-socket.js';
import { makeMember } from './helpers/relay-harness.js';

const CHANNEL = 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId;


function verifies(publicKey: string, text: string, signature: string): boolean {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
  return verify(null, Buffer.from(text), key, Buffer.from(signature, 'base64url'));
}

/** Lets real async work (crypto.subtle) finish while timers are fake: setImmediate is not faked. */
/**
 * Waits (in event-loop turns, which fake timers leave alone) until `condition` holds, for at most
 * 5 s of real time: signing goes through WebCrypto on libuv's thread pool, which a loaded machine
 * can keep busy for longer than a fixed number of turns.
 */
async function until(condition: () => boolean): Promise<void> {
  const WAIT_LIMIT_MS = 5_000;
  const deadline = performance.now() + WAIT_LIMIT_MS;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
}

const packet = (seq: number): RelayEvent => ({ seq, timeMs: 0, type: 'packet', author: null, packet: 'AA' });

afterEach(() => {
  vi.useRealTimers();
  FakeSocket.all = [];
});

describe('relay client', () => {
  it('signs method, path with query, body hash, nonce and time as the relay checks them', async () => {
    const member = makeMember();
    const calls: { url: string; init: Parameters<FetchLike>[1] }[] = [];
    const fetch: FetchLike = async (url, init) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ seq: 5, timeMs: 1, duplicate: false }), { status: 201 });
    };
    const client = new RelayClient({ baseUrl: 'http://relay.test', fetch, signer: member, now: () => 1234 });
    expect(await client.post(CHANNEL, new Uint8Array([1, 2, 3]), 'p1')).toEqual({ seq: 5, timeMs: 1, duplicate: false });
    const { url, init } = calls[0]!;
    expect(url).toBe(`http://relay.test/v1/channels/${CHANNEL}/events`);
    const body = init.body ?? new Uint8Array(0);
    expect(JSON.parse(Buffer.from(body).toString('utf8'))).toEqual({ packet: 'AQID', postId: 'p1' });
    const h = init.headers;
    expect(h['covey-key']).toBe(member.publicKey);
    expect(h['covey-time']).toBe('1234');
    const text = relaySigningText('POST', `/v1/channels/${CHANNEL}/events`, createHash('sha256').update(body).digest('base64url'), h['covey-nonce']!, 1234);
    expect(verifies(member.publicKey, text, h['covey-signature']!)).toBe(true);
    await client.read(CHANNEL, 7, 9);
    expect(calls[1]?.url).toBe(`http://relay.test/v1/channels/${CHANNEL}/events?after=7&limit=9`);
    expect(calls[1]?.init.headers['covey-nonce']).not.toBe(h['covey-nonce']);
  });

  it('turns relay errors into RelayClientError with status and code', async () => {
    const answers = [
      new Response(JSON.stringify({ error: 'not a member', code: 'forbidden' }), { status: 403 }),
      new Response('<html>bad gateway</html>', { status: 502 }),
    ];
    const client = new RelayClient({ baseUrl: 'http://relay.test', fetch: async () => answers.shift()!, signer: makeMember() });
    await expect(client.channelInfo(CHANNEL)).rejects.toMatchObject({ status: 403, code: 'forbidden', message: 'not a member' });
    const error = await client.channelInfo(CHANNEL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RelayClientError);
    expect(error).toMatchObject({ status: 502, code: 'unknown' });
  });

  it('subscribes on open, delivers each seq once, resumes after a drop with growing backoff', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const member = makeMember();
    const client = new RelayClient({
      baseUrl: 'http://relay.test',
      fetch: async () => new Response('{}'),
      WebSocket: FakeSocket,
      signer: member,
      now: () => 1000,
      randomBytes: (n) => new Uint8Array(n).fill(127), // jitter factor ~1
    });
    const seen: number[] = [];
    const states: string[] = [];
    const sub = client.subscribe({ onEvent: (_c, e) => seen.push(e.seq), onConnection: (s) => states.push(s) });
    sub.add(CHANNEL, 3);
    const first = FakeSocket.all[0]!;
    expect(first.url).toBe('ws://relay.test/v1/ws');
    first.emit('open');
    await until(() => first.sent.length > 0);
    expect(first.sent).toMatchObject([{ type: 'subscribe', channel: CHANNEL, afterSeq: 3, key: member.publicKey, timeMs: 1000 }]);
    first.frame({ type: 'event', channel: CHANNEL, event: packet(4) });
    first.frame({ type: 'event', channel: CHANNEL, event: packet(4) });
    first.frame({ type: 'event', channel: CHANNEL, event: packet(5) });
    expect(seen).toEqual([4, 5]);

    first.close();
    expect(states).toEqual(['open', 'closed']);
    await vi.advanceTimersByTimeAsync(400);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(FakeSocket.all).toHaveLength(2);
    // The second attempt fails too: the delay doubles.
    FakeSocket.all[1]!.close();
    await vi.advanceTimersByTimeAsync(900);
    expect(FakeSocket.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    const third = FakeSocket.all[2]!;
    third.emit('open');
    await until(() => third.sent.length > 0);
    expect(third.sent).toMatchObject([{ type: 'subscribe', channel: CHANNEL, afterSeq: 5 }]);
    third.frame({ type: 'subscribed', channel: CHANNEL, headSeq: 6, firstSeq: 1 });
    third.frame({ type: 'event', channel: CHANNEL, event: packet(6) });
    expect(seen).toEqual([4, 5, 6]);
    expect(sub.positions().get(CHANNEL)).toBe(6);

    // Removal drops the channel; close stops reconnecting.
    third.frame({ type: 'unsubscribed', channel: CHANNEL, reason: 'removed' });
    expect(sub.positions().has(CHANNEL)).toBe(false);
    sub.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(3);
  });

  it('asks for batches and takes an events frame as its events one by one, each seq once', async () => {
    const client = new RelayClient({ baseUrl: 'http://relay.test', fetch: async () => new Response('{}'), WebSocket: FakeSocket, signer: makeMember() });
    const seen: number[] = [];
    const sub = client.subscribe({ onEvent: (_c, e) => seen.push(e.seq) });
    try {
      sub.add(CHANNEL, 3);
      const socket = FakeSocket.all[0]!;
      socket.emit('open');
      await until(() => socket.sent.length > 0);
      expect(socket.sent).toMatchObject([{ type: 'subscribe', channel: CHANNEL, afterSeq: 3, batch: true }]);
      socket.frame({ type: 'subscribed', channel: CHANNEL, headSeq: 9, firstSeq: 1 });
      // A batch overlapping what came already (a repeat after a resubscribe) adds only the new seqs.
      socket.frame({ type: 'events', channel: CHANNEL, events: [packet(4), packet(5), packet(6)] });
      socket.frame({ type: 'events', channel: CHANNEL, events: [packet(5), packet(6), packet(7), packet(8)] });
      socket.frame({ type: 'event', channel: CHANNEL, event: packet(9) });
      // Another channel's batch, and a malformed one, change nothing.
      socket.frame({ type: 'events', channel: 'BBBBBBBBBBBBBBBBBBBBBB' as ChannelId, events: [packet(10)] });
      socket.emit('message', JSON.stringify({ type: 'events', channel: CHANNEL, events: 'not a list' }));
      expect(seen).toEqual([4, 5, 6, 7, 8, 9]);
      expect(sub.positions().get(CHANNEL)).toBe(9);
    } finally {
      sub.close();
    }
  });

  it('resends subscribes the relay refused as rate-limited, with backoff, until confirmed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = new RelayClient({
      baseUrl: 'http://relay.test',
      fetch: async () => new Response('{}'),
      WebSocket: FakeSocket,
      signer: makeMember(),
      now: () => 1000,
      randomBytes: (n) => new Uint8Array(n).fill(127),
    });
    const other = 'BBBBBBBBBBBBBBBBBBBBBB' as ChannelId;
    const sub = client.subscribe({ onEvent: () => undefined });
    sub.add(CHANNEL, 0);
    sub.add(other, 0);
    const socket = FakeSocket.all[0]!;
    socket.emit('open');
    await until(() => socket.sent.length >= 2);
    socket.frame({ type: 'subscribed', channel: CHANNEL, headSeq: 1, firstSeq: 1 });
    socket.frame({ type: 'error', code: 'rate-limited', error: 'rate limited; retry in 1 s' });
    await vi.advanceTimersByTimeAsync(900);
    expect(socket.sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    await until(() => socket.sent.length >= 3);
    // Only the refused channel is sent again.
    expect(socket.sent.slice(2)).toMatchObject([{ type: 'subscribe', channel: other }]);
    // Refused again: the delay doubles.
    socket.frame({ type: 'error', code: 'rate-limited', error: 'rate limited; retry in 1 s' });
    await vi.advanceTimersByTimeAsync(1_900);
    expect(socket.sent).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(200);
    await until(() => socket.sent.length >= 4);
    socket.frame({ type: 'subscribed', channel: other, headSeq: 1, firstSeq: 1 });
    socket.frame({ type: 'error', code: 'rate-limited', error: 'a ping was refused' });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(socket.sent).toHaveLength(4); // both confirmed: nothing to resend
    sub.close();
  });

  it('resends, freshly signed, a subscribe the relay refused as stale (signed before a clock jump or held up)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let clock = 1_000;
    const client = new RelayClient({
      baseUrl: 'http://relay.test',
      fetch: async () => new Response('{}'),
      WebSocket: FakeSocket,
      signer: makeMember(),
      now: () => clock,
      randomBytes: (n) => new Uint8Array(n).fill(127),
    });
    const subscribed: ChannelId[] = [];
    const sub = client.subscribe({ onEvent: () => undefined, onSubscribed: (channel) => subscribed.push(channel) });
    sub.add(CHANNEL, 3);
    const socket = FakeSocket.all[0]!;
    socket.emit('open');
    await until(() => socket.sent.length >= 1);
    const first = JSON.stringify(socket.sent[0]);
    clock += 30 * 60_000; // the device's clock moved on (or the frame sat in a queue)
    socket.frame({ type: 'error', code: 'stale-timestamp', error: 'timestamp outside the window', channel: CHANNEL });
    await vi.advanceTimersByTimeAsync(1_600);
    await until(() => socket.sent.length >= 2);
    expect(socket.sent[1]).toMatchObject({ type: 'subscribe', channel: CHANNEL, afterSeq: 3 });
    expect(JSON.stringify(socket.sent[1])).not.toBe(first); // signed again, at the new time
    socket.frame({ type: 'subscribed', channel: CHANNEL, headSeq: 3, firstSeq: 1 });
    expect(subscribed).toEqual([CHANNEL]);
    sub.close();
  });
});
