/**
 * Request MACs against the real relay (src/relay, src/shared/relay-mac.ts): the worker's relay
 * client, with the worker's signers (memberSigner) and crypto provider, proves every request and
 * frame with a MAC that the relay accepts: posts over HTTP and over the socket, reads, joins,
 * subscribes. Then the relay's auth key changes under the same address with the data kept (its
 * stored secret replaced): a refused MAC'd post and a refused MAC'd subscribe each recover by
 * fetching the key again, and nothing is lost.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { base64UrlEncode } from '../../src/protocol/bytes.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { RelayStore } from '../../src/relay/store/types.js';
import type { ChannelId, ErrorFrame, MemberKey, RelayEvent } from '../../src/shared/relay-api.js';
import { RELAY_AUTH_KEY_PATH } from '../../src/shared/relay-mac.js';
import { RelayClient, type FetchLike, type RelaySubscription, type WebSocketConstructor } from '../../src/worker/relay-client.js';
import { memberSigner, type RelaySigner } from '../../src/worker/relay-signer.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { groupOfTwo, OPEN_LIMITS, startTestRelay, TestClient, testCrypto, WAIT_MS } from './helpers/client-harness.js';

/** The address the clients use; a test decides which running relay answers it. */
const BASE = 'http://relay.test';

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function newSigner(crypto: CryptoProvider): Promise<RelaySigner> {
  const seed = crypto.randomBytes(32);
  return memberSigner(crypto, seed, base64UrlEncode(await crypto.ed25519PublicKey(seed)) as MemberKey);
}

/** The store with another stored secret: a relay on it has another auth key, the same data. */
function withNewSecret(store: RelayStore): RelayStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'vapidKeys') return async (candidate: unknown) => candidate;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * One device's view of the network: every request and frame it sends to `base`, which reaches
 * whichever relay is `target`.
 */
class Network {
  target: RunningRelay | undefined;
  constructor(readonly base: string = BASE) {}
  /** Requests in the order sent; `status` once answered. */
  readonly requests: { path: string; headers: Record<string, string>; status?: number }[] = [];
  readonly frames: Record<string, unknown>[] = [];
  /**
   * When the client knew the relay's auth key for sure: from an answer of the auth-key route
   * (its body read) to the next fetch of it (ms, the clock requests are timed with).
   */
  private readonly keyKnown: { fromMs: number; toMs: number }[] = [];

  readonly fetch: FetchLike = async (input, init) => {
    const path = input.slice(this.base.length);
    const entry: { path: string; headers: Record<string, string>; status?: number } = { path, headers: init.headers };
    this.requests.push(entry);
    if (path === RELAY_AUTH_KEY_PATH) {
      const open = this.keyKnown.at(-1);
      if (open !== undefined && open.toMs === Infinity) open.toMs = Date.now();
    }
    const response = await nodeFetch(input.replace(this.base, this.target!.url), init);
    entry.status = response.status;
    if (path !== RELAY_AUTH_KEY_PATH || !response.ok) return response;
    const body = await response.text();
    this.keyKnown.push({ fromMs: Date.now(), toMs: Infinity });
    return new Response(body, { status: response.status, headers: response.headers });
  };

  /**
   * Every proof decided while the auth key was known is a MAC; one decided while it was being
   * fetched may be a signature (a request waits for the key at most AUTH_KEY_WAIT_MS), so this
   * holds on a machine of any speed. A proof's time is its covey-time / timeMs, taken as it is
   * decided. Returns how many were MACs.
   */
  expectMacsWhileKeyKnown(): number {
    const proofs = [
      ...this.proven.map((r) => ({ timeMs: Number(r.headers['covey-time']), mac: r.headers['covey-mac'], signature: r.headers['covey-signature'] })),
      ...this.frames.filter((f) => f['key'] !== undefined).map((f) => ({ timeMs: f['timeMs'] as number, mac: f['mac'], signature: f['signature'] })),
    ];
    for (const proof of proofs) {
      expect((proof.mac === undefined) !== (proof.signature === undefined)).toBe(true);
      if (this.keyKnown.some((w) => proof.timeMs > w.fromMs && proof.timeMs < w.toMs)) {
        expect(proof).toMatchObject({ mac: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), signature: undefined });
      }
    }
    return proofs.filter((p) => p.mac !== undefined).length;
  }

  readonly WebSocket: WebSocketConstructor = ((network: Network) =>
    class extends WebSocket {
      constructor(url: string) {
        super(url.replace(network.base.replace(/^http/, 'ws'), network.target!.url.replace(/^http/, 'ws')));
      }
      override send(data: string): void {
        network.frames.push(JSON.parse(data) as Record<string, unknown>);
        super.send(data);
      }
    })(this) as unknown as WebSocketConstructor;

  /** Requests proven by a member key (not the auth key's, nor those with a capability or none). */
  get proven(): { path: string; headers: Record<string, string>; status?: number }[] {
    return this.requests.filter((r) => r.headers['covey-key'] !== undefined);
  }

  get authKeyFetches(): number {
    return this.requests.filter((r) => r.path === RELAY_AUTH_KEY_PATH).length;
  }
}

const relays: RunningRelay[] = [];
const subscriptions: RelaySubscription[] = [];
let store: RelayStore | undefined;
afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.close();
  for (const r of relays.splice(0)) await r.close();
  await store?.close();
  store = undefined;
});

async function relayOn(on: RelayStore): Promise<RunningRelay> {
  const relay = await startRelay({ store: on, port: 0, logLevel: 'silent', limits: OPEN_LIMITS, closeStore: false, push: false });
  relays.push(relay);
  return relay;
}

describe('request MACs against the relay', () => {
  it('MACs every request and frame, and the relay takes them all; a changed auth key is recovered', async () => {
    const crypto = await testCrypto();
    store = openSqliteStore({ dataDir: ':memory:' });
    const first = await relayOn(store);
    const aliceNet = new Network();
    const bobNet = new Network();
    aliceNet.target = first;
    bobNet.target = first;
    const client = (net: Network, signer: RelaySigner, holder: { sub?: RelaySubscription }) =>
      new RelayClient({
        baseUrl: BASE,
        fetch: net.fetch,
        WebSocket: net.WebSocket,
        signer,
        hmacSha256: (key, data) => crypto.hmacSha256(key, data),
        postOverSocket: (signed) => holder.sub?.post(signed),
      });
    const aliceHolder: { sub?: RelaySubscription } = {};
    const alice = client(aliceNet, await newSigner(crypto), aliceHolder);
    const bob = client(bobNet, await newSigner(crypto), {});

    // Over HTTP: create, invite, join, post, read.
    const { channelId } = await alice.createChannel('group');
    const invite = await alice.createCapability(channelId, { kind: 'invite', ttlMs: 60_000, uses: 1 });
    await bob.join(channelId, invite.capability);
    const p1 = await alice.post(channelId, new Uint8Array([1]), 'p1');

    // Bob subscribes; Alice posts over her socket.
    const seen: number[] = [];
    const refused: ErrorFrame[] = [];
    let subscribedCount = 0;
    const bobSub = bob.subscribe({
      onEvent: (_c: ChannelId, e: RelayEvent) => seen.push(e.seq),
      onSubscribed: () => subscribedCount++,
      onError: (frame) => refused.push(frame),
    });
    subscriptions.push(bobSub);
    bobSub.add(channelId, 0);
    let aliceSubscribed = false;
    aliceHolder.sub = alice.subscribe({ onEvent: () => undefined, onSubscribed: () => (aliceSubscribed = true) });
    subscriptions.push(aliceHolder.sub);
    aliceHolder.sub.add(channelId, p1.seq);
    await until('both subscribed', () => subscribedCount === 1 && aliceSubscribed);
    const p2 = await alice.post(channelId, new Uint8Array([2]), 'p2');
    await until('bob sees both posts', () => seen.includes(p1.seq) && seen.includes(p2.seq));
    expect((await bob.read(channelId, 0)).events.map((e) => e.seq)).toContain(p2.seq);

    for (const net of [aliceNet, bobNet]) {
      expect(net.authKeyFetches).toBe(1);
      expect(net.proven.every((r) => r.status! < 300)).toBe(true);
      expect(net.expectMacsWhileKeyKnown()).toBeGreaterThan(0);
    }
    // Posted after the key was known, over her socket: a MAC the relay took.
    expect(aliceNet.frames.filter((f) => f['type'] === 'post')).toEqual([expect.objectContaining({ mac: expect.any(String) })]);

    // The relay's stored secret changes (its auth key with it), the data stays: the same address
    // now reaches a relay on the same store with a new key, and the old one goes away.
    const second = await relayOn(withNewSecret(store));
    aliceNet.target = second;
    bobNet.target = second;
    aliceHolder.sub.close(); // Alice posts over HTTP from here
    aliceHolder.sub = undefined;
    await relays.shift()!.close(); // Bob's socket closes; he reconnects to the new relay
    const before = { alice: aliceNet.proven.length, bobFrames: bobNet.frames.length };

    await until('bob subscribed again', () => subscribedCount === 2);
    // His first subscribe was MAC'd under the old key and refused; the second under the new one.
    const resubscribes = bobNet.frames.slice(before.bobFrames);
    expect(resubscribes.map((f) => f['type'])).toEqual(['subscribe', 'subscribe']);
    expect(typeof resubscribes[0]!['mac']).toBe('string');
    expect(refused).toEqual([]);
    expect(bobNet.authKeyFetches).toBe(2);

    const p3 = await alice.post(channelId, new Uint8Array([3]), 'p3');
    const after = aliceNet.proven.slice(before.alice);
    expect(after.map((r) => [typeof r.headers['covey-mac'], r.status])).toEqual([
      ['string', 401],
      [expect.any(String), 201],
    ]);
    expect(aliceNet.authKeyFetches).toBe(2);
    for (const net of [aliceNet, bobNet]) net.expectMacsWhileKeyKnown();
    await until('bob sees the post made after the change', () => seen.includes(p3.seq));
    expect(new Set(seen).size).toBe(seen.length); // each event once, across the change
  });

  it("the app's own traffic: every request and frame of making a group and talking in it is MAC'd", async () => {
    const relay = await startTestRelay();
    relays.push(relay);
    const nets = [new Network(relay.url), new Network(relay.url)];
    const [alice, bob] = await Promise.all(
      nets.map((net, i) => {
        net.target = relay;
        return TestClient.start(i === 0 ? 'Alice' : 'Bob', { relay, fetch: net.fetch, WebSocket: net.WebSocket });
      }),
    );
    try {
      const { aliceId, bobId } = await groupOfTwo(alice!, bob!, 'MACs');
      await alice!.until('active', () => alice!.view(aliceId)?.state === 'active');
      await alice!.call('send', { conversationId: aliceId, text: 'proven by a MAC' });
      await bob!.until('the message at Bob', () => bob!.texts(bobId).includes('proven by a MAC'));
      for (const net of nets) {
        // One relay, one fetch of its key per client (its relay link shares it among its channels).
        expect(net.authKeyFetches).toBe(1);
        expect(net.expectMacsWhileKeyKnown()).toBeGreaterThan(0);
      }
      expect(alice!.errors).toEqual([]);
      expect(bob!.errors).toEqual([]);
    } finally {
      alice!.close();
      bob!.close();
    }
  }, 60_000);
});
