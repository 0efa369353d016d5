/**
 * Request MACs in the worker's relay client (src/worker/relay-mac-keys.ts, src/shared/relay-mac.ts)
 * against a fake relay that checks proofs as the real one does: a member's MAC key agrees with
 * the relay's side of the static DH; once the auth key is known requests and frames carry
 * `covey-mac` / `mac` and no signature; an older relay (404), an unreachable or hung auth-key
 * route and a signer that cannot MAC fall back to signatures; a MAC refused under an old key
 * (the relay's data reset) makes the client fetch the key again and retry once.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { base64UrlDecode, base64UrlEncode } from '../../src/protocol/bytes.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { selectCryptoProvider } from '../../src/protocol/crypto/select.js';
import { relaySigningText, relaySubscribePath, type ChannelId, type MemberKey } from '../../src/shared/relay-api.js';
import { RELAY_AUTH_KEY_PATH, relayMacKey } from '../../src/shared/relay-mac.js';
import { RelayClient, type FetchLike } from '../../src/worker/relay-client.js';
import { AUTH_KEY_RECHECK_MS, AUTH_KEY_RETRY_BASE_MS, AUTH_KEY_WAIT_MS } from '../../src/worker/relay-mac-keys.js';
import { memberSigner, x25519SecretOfSeed, type RelaySigner } from '../../src/worker/relay-signer.js';
import { FakeSocket } from '../relay/helpers/fake-socket.js';

const CHANNEL = 'AAAAAAAAAAAAAAAAAAAAAA' as ChannelId;
const BASE = 'http://relay.test';
const EVENTS_PATH = `/v1/channels/${CHANNEL}/events`;

function member(): RelaySigner & { seed: Uint8Array } {
  const seed = ed25519.utils.randomSecretKey();
  const publicKey = base64UrlEncode(ed25519.getPublicKey(seed)) as MemberKey;
  return { ...memberSigner(nobleProvider, seed, publicKey), seed };
}

/** The relay's side (what src/relay checks): X25519 of its auth secret and the member key's Montgomery form. */
function relaySideMacKey(authSecret: Uint8Array, memberKey: string): Uint8Array {
  const shared = x25519.getSharedSecret(authSecret, ed25519.utils.toMontgomery(base64UrlDecode(memberKey)));
  return relayMacKey(shared, memberKey as MemberKey, base64UrlEncode(x25519.getPublicKey(authSecret)));
}

type Proof = 'mac' | 'signature';
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  /** What proved it, and whether the relay took it. */
  readonly proof: Proof | 'none';
  readonly valid: boolean;
}

/**
 * A relay that answers the auth-key route as told and checks every other request's proof like
 * src/relay: a MAC under its current auth key, or an Ed25519 signature; else 401 bad-signature.
 */
class FakeRelay {
  authSecret = x25519.utils.randomSecretKey();
  /** What GET RELAY_AUTH_KEY_PATH does. */
  authRoute: 'key' | 'absent' | 'error' | 'hang' = 'key';
  authKeyFetches = 0;
  /** The `cache` mode of each auth-key fetch (the browser's HTTP cache may answer one without it). */
  readonly authKeyCache: (string | undefined)[] = [];
  readonly seen: Seen[] = [];

  get authKey(): string {
    return base64UrlEncode(x25519.getPublicKey(this.authSecret));
  }

  /** The relay's data was reset: a new auth key. */
  rotate(): void {
    this.authSecret = x25519.utils.randomSecretKey();
  }

  check(method: string, path: string, parts: { key: string; nonce: string; timeMs: number; mac?: string | undefined; signature?: string | undefined }, body: Uint8Array): { proof: Proof | 'none'; valid: boolean } {
    const text = new TextEncoder().encode(relaySigningText(method, path, base64UrlEncode(sha256(body)), parts.nonce, parts.timeMs));
    if (parts.mac !== undefined && parts.signature !== undefined) return { proof: 'none', valid: false };
    if (parts.mac !== undefined) {
      const expected = base64UrlEncode(hmac(sha256, relaySideMacKey(this.authSecret, parts.key), text));
      return { proof: 'mac', valid: expected === parts.mac };
    }
    if (parts.signature !== undefined) {
      return { proof: 'signature', valid: ed25519.verify(base64UrlDecode(parts.signature), text, base64UrlDecode(parts.key)) };
    }
    return { proof: 'none', valid: false };
  }

  readonly fetch: FetchLike = async (url, init) => {
    const path = url.slice(BASE.length);
    if (path === RELAY_AUTH_KEY_PATH) {
      this.authKeyFetches++;
      this.authKeyCache.push(init.cache);
      switch (this.authRoute) {
        case 'key':
          return Response.json({ key: this.authKey });
        case 'absent':
          return Response.json({ error: 'no such route', code: 'not-found' }, { status: 404 });
        case 'error':
          throw new TypeError('fetch failed');
        case 'hang':
          return new Promise<Response>(() => undefined);
      }
    }
    const h = init.headers;
    const body = init.body ?? new Uint8Array(0);
    const { proof, valid } = this.check(
      init.method,
      path,
      { key: h['covey-key'] ?? '', nonce: h['covey-nonce'] ?? '', timeMs: Number(h['covey-time']), mac: h['covey-mac'], signature: h['covey-signature'] },
      body,
    );
    this.seen.push({ method: init.method, path, headers: h, body, proof, valid });
    if (!valid) return Response.json({ error: 'request proof does not verify', code: 'bad-signature' }, { status: 401 });
    return Response.json({ seq: this.seen.length, timeMs: 1, duplicate: false }, { status: 201 });
  };
}


/** Waits (in event-loop turns, which fake timers leave alone) until `condition` holds, for at most 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
}

function client(relay: FakeRelay, signer: RelaySigner, extra: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}): RelayClient {
  return new RelayClient({ baseUrl: BASE, fetch: relay.fetch, signer, ...extra });
}

afterEach(() => {
  vi.useRealTimers();
  FakeSocket.all = [];
});

describe('request MAC keys', () => {
  it("a member's MAC key is the relay's: X25519 of the seed's clamped SHA-512 half and the auth key, HKDF'd", async () => {
    const m = member();
    const authSecret = x25519.utils.randomSecretKey();
    const authKey = base64UrlEncode(x25519.getPublicKey(authSecret));
    expect(x25519SecretOfSeed(m.seed)).toEqual(ed25519.utils.toMontgomerySecret(m.seed));
    const expected = relaySideMacKey(authSecret, m.publicKey);
    // Both providers: noble, and the hybrid (WebCrypto's X25519 in Node).
    expect(await m.macKey!(authKey)).toEqual(expected);
    const hybrid = memberSigner(await selectCryptoProvider(), m.seed, m.publicKey);
    expect(await hybrid.macKey!(authKey)).toEqual(expected);
  });
});

describe('relay client with request MACs', () => {
  it('MACs every request once the auth key is known (fetched once for all copies), and no signature', async () => {
    const relay = new FakeRelay();
    const alice = member();
    const bob = member();
    const a = client(relay, alice);
    const b = a.withSigner(bob);
    await a.post(CHANNEL, new Uint8Array([1, 2, 3]), 'p1');
    await b.read(CHANNEL, 0);
    await a.ackCursor(CHANNEL, 1);
    await b.post(CHANNEL, new Uint8Array([4]), { postId: 'p2', ifNoLeaveAfter: 3 });
    expect(relay.authKeyFetches).toBe(1);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual(Array(4).fill(['mac', true]));
    for (const s of relay.seen) expect(s.headers['covey-signature']).toBeUndefined();
    expect(relay.seen.map((s) => s.headers['covey-key'])).toEqual([alice.publicKey, bob.publicKey, alice.publicKey, bob.publicKey]);
  });

  it('MACs subscribe and post frames, which the relay checks like the requests', async () => {
    const relay = new FakeRelay();
    const alice = member();
    const a = client(relay, alice);
    const subscribe = await a.subscribeFrame(CHANNEL, 5);
    expect(subscribe.signature).toBeUndefined();
    expect(relay.check('SUBSCRIBE', relaySubscribePath(CHANNEL), subscribe, new Uint8Array(0))).toEqual({ proof: 'mac', valid: true });
    const signed = await a.signPost(CHANNEL, new Uint8Array([9]), 'p1');
    const frame = RelayClient.postFrame(signed, 0);
    expect(frame.signature).toBeUndefined();
    expect(relay.check('POST', EVENTS_PATH, frame, new TextEncoder().encode(frame.body))).toEqual({ proof: 'mac', valid: true });
  });

  it('signs when the relay has no auth key (404), and asks again only after AUTH_KEY_RECHECK_MS', async () => {
    const relay = new FakeRelay();
    relay.authRoute = 'absent';
    let clock = 1_000_000;
    const a = client(relay, member(), { now: () => clock });
    await a.post(CHANNEL, new Uint8Array([1]), 'p1');
    await a.read(CHANNEL, 0);
    const frame = await a.subscribeFrame(CHANNEL, 0);
    expect(frame.mac).toBeUndefined();
    expect(relay.check('SUBSCRIBE', relaySubscribePath(CHANNEL), frame, new Uint8Array(0))).toEqual({ proof: 'signature', valid: true });
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([
      ['signature', true],
      ['signature', true],
    ]);
    expect(relay.authKeyFetches).toBe(1);
    // The relay was upgraded meanwhile.
    relay.authRoute = 'key';
    clock += AUTH_KEY_RECHECK_MS - 1;
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(1);
    clock += 1;
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(2);
    expect(relay.seen.map((s) => s.proof)).toEqual(['signature', 'signature', 'signature', 'mac']);
  });

  it('signs when the auth key cannot be fetched, and asks again with backoff', async () => {
    const relay = new FakeRelay();
    relay.authRoute = 'error';
    let clock = 1_000_000;
    const a = client(relay, member(), { now: () => clock });
    await a.read(CHANNEL, 0);
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(1);
    clock += AUTH_KEY_RETRY_BASE_MS;
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(2);
    // Failed twice: the delay doubled.
    clock += AUTH_KEY_RETRY_BASE_MS;
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(2);
    relay.authRoute = 'key';
    clock += AUTH_KEY_RETRY_BASE_MS;
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(3);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([...Array(4).fill(['signature', true]), ['mac', true]]);
  });

  it('does not hold a request behind an auth-key fetch that hangs: signed after AUTH_KEY_WAIT_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const relay = new FakeRelay();
    relay.authRoute = 'hang';
    const a = client(relay, member());
    const read = a.read(CHANNEL, 0);
    await until(() => relay.authKeyFetches === 1);
    await vi.advanceTimersByTimeAsync(AUTH_KEY_WAIT_MS - 1);
    expect(relay.seen).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await read;
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([['signature', true]]);
    // Still being fetched: the next request waits as long, no second fetch.
    const again = a.read(CHANNEL, 0);
    await vi.advanceTimersByTimeAsync(AUTH_KEY_WAIT_MS);
    await again;
    expect(relay.authKeyFetches).toBe(1);
  });

  it('never fetches the auth key for a signer that cannot MAC', async () => {
    const relay = new FakeRelay();
    const m = member();
    const a = client(relay, { publicKey: m.publicKey, sign: m.sign });
    await a.post(CHANNEL, new Uint8Array([1]), 'p1');
    expect(relay.authKeyFetches).toBe(0);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([['signature', true]]);
  });

  it("a MAC refused under the relay's old key: fetches the new key and retries once, MAC'd, with a fresh nonce", async () => {
    const relay = new FakeRelay();
    const a = client(relay, member());
    await a.read(CHANNEL, 0);
    relay.rotate(); // the relay's data was reset
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(2);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([
      ['mac', true],
      ['mac', false],
      ['mac', true],
    ]);
    expect(relay.seen[2]!.headers['covey-nonce']).not.toBe(relay.seen[1]!.headers['covey-nonce']);
    // The first answer may come from the HTTP cache; after the refusal, not (it may be the old key).
    expect(relay.authKeyCache).toEqual([undefined, 'no-cache']);
    await a.read(CHANNEL, 0);
    expect(relay.authKeyFetches).toBe(2);
  });

  it('a post made ahead, MAC-refused: proven again under the new key and sent once more, the same body', async () => {
    const relay = new FakeRelay();
    const a = client(relay, member());
    const signed = await a.signPost(CHANNEL, new Uint8Array([7]), { postId: 'p1', ifNoLeaveAfter: 2 });
    relay.rotate();
    expect(await a.postSigned(signed)).toMatchObject({ seq: 2 });
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([
      ['mac', false],
      ['mac', true],
    ]);
    expect(relay.seen[1]!.body).toEqual(signed.body);
  });

  it('a relay that refuses our MACs under the key it still gives: the retry and later requests are signed', async () => {
    const relay = new FakeRelay();
    const a = client(relay, member());
    await a.read(CHANNEL, 0);
    const check = relay.check.bind(relay);
    relay.check = (method, path, parts, body) => (parts.mac !== undefined ? { proof: 'mac', valid: false } : check(method, path, parts, body));
    await a.read(CHANNEL, 0);
    await a.read(CHANNEL, 0);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([
      ['mac', true],
      ['mac', false],
      ['signature', true],
      ['signature', true],
    ]);
    expect(relay.authKeyFetches).toBe(2);
  });

  it("retries a refused MAC once only: a second refusal is the caller's", async () => {
    const relay = new FakeRelay();
    // The relay's key changes right after each time it is given out: every MAC is refused.
    const fetch: FetchLike = async (url, init) => {
      const answer = await relay.fetch(url, init);
      if (url.endsWith(RELAY_AUTH_KEY_PATH)) relay.rotate();
      return answer;
    };
    const a = new RelayClient({ baseUrl: BASE, fetch, signer: member() });
    await expect(a.read(CHANNEL, 0)).rejects.toMatchObject({ status: 401, code: 'bad-signature' });
    expect(relay.authKeyFetches).toBe(2);
    expect(relay.seen.map((s) => [s.proof, s.valid])).toEqual([
      ['mac', false],
      ['mac', false],
    ]);
  });

  it("resubscribes once, MAC'd under the new key, when the relay refuses a MAC'd subscribe; a second refusal is reported", async () => {
    const relay = new FakeRelay();
    const a = client(relay, member(), { WebSocket: FakeSocket });
    const errors: string[] = [];
    const subscribed: ChannelId[] = [];
    const sub = a.subscribe({ onEvent: () => undefined, onError: (f) => errors.push(f.code), onSubscribed: (c) => subscribed.push(c) });
    sub.add(CHANNEL, 3);
    const socket = FakeSocket.all[0]!;
    socket.emit('open');
    await until(() => socket.sent.length >= 1);
    const path = relaySubscribePath(CHANNEL);
    const parts = (i: number) => socket.sent[i] as { key: string; nonce: string; timeMs: number; mac?: string };
    expect(relay.check('SUBSCRIBE', path, parts(0), new Uint8Array(0))).toEqual({ proof: 'mac', valid: true });
    relay.rotate();
    socket.frame({ type: 'error', code: 'bad-signature', error: 'request proof does not verify', channel: CHANNEL });
    await until(() => socket.sent.length >= 2);
    expect(socket.sent[1]).toMatchObject({ type: 'subscribe', channel: CHANNEL, afterSeq: 3 });
    expect(relay.check('SUBSCRIBE', path, parts(1), new Uint8Array(0))).toEqual({ proof: 'mac', valid: true });
    expect(relay.authKeyFetches).toBe(2);
    expect(errors).toEqual([]);
    relay.rotate();
    socket.frame({ type: 'error', code: 'bad-signature', error: 'request proof does not verify', channel: CHANNEL });
    expect(errors).toEqual(['bad-signature']);
    // Once confirmed, a later refusal is retried again.
    socket.frame({ type: 'subscribed', channel: CHANNEL, headSeq: 3, firstSeq: 1 });
    socket.frame({ type: 'error', code: 'bad-signature', error: 'request proof does not verify', channel: CHANNEL });
    await until(() => socket.sent.length >= 3);
    expect(socket.sent).toHaveLength(3);
    expect(errors).toEqual(['bad-signature']);
    sub.close();
  });

  it('a MAC-refused post over the socket is proven again and sent once more', async () => {
    const relay = new FakeRelay();
    const holder: { subscription?: ReturnType<RelayClient['subscribe']> } = {};
    const a = client(relay, member(), { WebSocket: FakeSocket, postOverSocket: (signed) => holder.subscription?.post(signed) });
    const subscription = a.subscribe({ onEvent: () => undefined });
    holder.subscription = subscription;
    const socket = FakeSocket.all[0]!;
    socket.emit('open');
    const signed = await a.signPost(CHANNEL, new Uint8Array([5]), 'p1');
    relay.rotate();
    const posted = a.postSigned(signed);
    await until(() => socket.sent.length >= 1);
    const first = socket.sent[0] as { id: number; key: string; nonce: string; timeMs: number; mac?: string; body: string };
    expect(relay.check('POST', EVENTS_PATH, first, new TextEncoder().encode(first.body))).toEqual({ proof: 'mac', valid: false });
    socket.frame({ type: 'error', code: 'bad-signature', error: 'request proof does not verify', id: first.id });
    await until(() => socket.sent.length >= 2);
    const second = socket.sent[1] as typeof first;
    expect(second.body).toBe(first.body);
    expect(relay.check('POST', EVENTS_PATH, second, new TextEncoder().encode(second.body))).toEqual({ proof: 'mac', valid: true });
    socket.frame({ type: 'posted', id: second.id, seq: 4, timeMs: 1, duplicate: false });
    expect(await posted).toEqual({ seq: 4, timeMs: 1, duplicate: false });
    subscription.close();
  });
});
