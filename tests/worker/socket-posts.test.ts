/**
 * Posts over the open WebSocket (src/worker/README.md "Outbox"): while the socket we read on is
 * open, the outbox's posts go over it as `post` frames, not as HTTP requests; with no open socket
 * they go over HTTP; a socket that closes before the answer sends the post over HTTP (or, after a
 * refusal of its nonce, over the next socket with a fresh signature), and the relay stores it once
 * (postId). A crash with a post frame unanswered loses and duplicates nothing.
 */
import { WebSocket as NodeWs } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { ChannelId, PacketEvent } from '../../src/shared/relay-api.js';
import type { ConversationId } from '../../src/shared/worker-api.js';
import type { FetchLike, WebSocketConstructor, WebSocketLike } from '../../src/worker/relay-client.js';
import { groupOfTwo, OPEN_LIMITS, Profile, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});
const clients: TestClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** What one client's network does: its HTTP posts and post frames counted, its socket breakable. */
class Network {
  httpPosts = 0;
  postFrames = 0;
  /** New sockets fail to connect (the relay is out of reach for WebSockets). */
  refuseSockets = false;
  /** The next post frame: 'drop' it and close the socket (the relay never sees it), or 'lose-answer' (sent; its answer dropped and the socket closed). */
  nextPost: 'pass' | 'drop' | 'lose-answer' = 'pass';
  /**
   * Drop the answer to every post of a written message (`wake`), and every such event (the crash
   * test: the engine stops before either comes). Protocol posts (acks) go on, so none of them
   * holds up the channel's outbox.
   */
  holdAnswers = false;
  /** Post frames of written messages, by id (their answers are what holdAnswers drops). */
  private readonly written = new Set<number>();
  /** Answers dropped ('lose-answer', holdAnswers). */
  answersLost = 0;
  /** The close code of every socket of this client that closed. */
  readonly closeCodes: number[] = [];
  private readonly sockets: NodeWs[] = [];

  readonly fetch: FetchLike = (input, init) => {
    if (init.method === 'POST' && /\/v1\/channels\/[^/]+\/events$/.test(input)) this.httpPosts++;
    return fetch(input, init as RequestInit);
  };

  readonly WebSocket: WebSocketConstructor = ((network: Network) =>
    class implements WebSocketLike {
      private readonly ws: NodeWs;
      private loseAnswerTo: number | undefined;
      constructor(url: string) {
        this.ws = new NodeWs(network.refuseSockets ? 'ws://127.0.0.1:9/v1/ws' : url);
        this.ws.on('error', () => undefined);
        network.sockets.push(this.ws);
      }
      get readyState(): number {
        return this.ws.readyState;
      }
      send(data: string): void {
        const frame = JSON.parse(data) as { type: string; id?: number };
        if (frame.type === 'post') {
          network.postFrames++;
          if (frame.id !== undefined && (frame as { body?: string }).body?.includes('"wake":true') === true) network.written.add(frame.id);
          const action = network.nextPost;
          network.nextPost = 'pass';
          if (action === 'drop') {
            this.ws.terminate();
            return;
          }
          if (action === 'lose-answer') this.loseAnswerTo = frame.id;
        }
        this.ws.send(data);
      }
      close(code?: number, reason?: string): void {
        this.ws.close(code, reason);
      }
      addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: { readonly data: unknown; readonly code?: number }) => void): void {
        if (type === 'close') {
          this.ws.addEventListener('close', (event) => {
            network.closeCodes.push(event.code);
            listener({ data: undefined, code: event.code });
          });
          return;
        }
        if (type !== 'message') {
          this.ws.addEventListener(type, () => listener({ data: undefined }));
          return;
        }
        this.ws.addEventListener('message', (event) => {
          const frame = JSON.parse(String(event.data)) as { type: string; id?: number; event?: { wake?: boolean } };
          if (frame.type === 'posted' && frame.id === this.loseAnswerTo) {
            // Stored, but the answer never arrives: the socket dies first.
            network.answersLost++;
            this.ws.terminate();
            return;
          }
          const written = frame.type === 'posted' ? frame.id !== undefined && network.written.has(frame.id) : frame.type === 'event' && frame.event?.wake === true;
          if (network.holdAnswers && written) {
            if (frame.type === 'posted') network.answersLost++;
            return;
          }
          listener({ data: event.data });
        });
      }
    })(this);

  /** Ends every open socket now (the client reconnects with backoff). */
  cut(): void {
    for (const ws of this.sockets) ws.terminate();
  }
}

/** Messages a person wrote (wake) stored in the relay's log of `channel`, by text order of arrival. */
async function storedMessages(channel: ChannelId): Promise<number> {
  return storedMessagesOn(relay, channel);
}

async function storedMessagesOn(on: RunningRelay, channel: ChannelId): Promise<number> {
  const events = await on.store.readEvents(channel, 0, 10_000, 64 * 1024 * 1024);
  return events.filter((e): e is PacketEvent => e.type === 'packet' && e.wake === true).length;
}

async function pair(network: Network, profile?: Profile, on: RunningRelay = relay) {
  const alice = await TestClient.start('Alice', { relay: on, fetch: network.fetch, WebSocket: network.WebSocket, ...(profile === undefined ? {} : { profile }) });
  const bob = await TestClient.start('Bob', { relay: on });
  clients.push(alice, bob);
  const { aliceId, bobId } = await groupOfTwo(alice, bob, 'Socket posts');
  await alice.until('active', () => alice.view(aliceId)?.state === 'active');
  await bob.until('roster', () => bob.view(bobId)?.name === 'Socket posts');
  const channel = alice.host.engine!.conversations.get(aliceId)!.channel;
  return { alice, bob, aliceId, bobId, channel };
}

async function sendAndSee(alice: TestClient, aliceId: ConversationId, bob: TestClient, bobId: ConversationId, text: string): Promise<void> {
  await alice.call('send', { conversationId: aliceId, text });
  await bob.until(`"${text}" at Bob`, () => bob.texts(bobId).includes(text));
  await alice.until(`"${text}" delivered`, () =>
    alice.view(aliceId)?.timeline.some((t) => t.type === 'message' && t.text === text && t.delivery.state === 'delivered-to-all'),
  );
}

describe('posts over the open WebSocket', () => {
  it('go over the socket while it is open, with no HTTP post; over HTTP while there is none', async () => {
    const network = new Network();
    const { alice, bob, aliceId, bobId, channel } = await pair(network);
    network.httpPosts = 0;
    network.postFrames = 0;
    await sendAndSee(alice, aliceId, bob, bobId, 'over the socket');
    expect(network.postFrames).toBeGreaterThanOrEqual(1);
    expect(network.httpPosts).toBe(0);

    // No socket to the relay (refused): posts go over HTTP.
    network.refuseSockets = true;
    network.cut();
    await alice.until('offline', () => alice.app?.relays.some((r) => r.state !== 'connected'));
    const frames = network.postFrames;
    await alice.call('send', { conversationId: aliceId, text: 'over HTTP' });
    await bob.until('"over HTTP" at Bob', () => bob.texts(bobId).includes('over HTTP'));
    await alice.until('its post answered', () => network.httpPosts >= 1 && alice.view(aliceId)?.timeline.some((t) => t.type === 'message' && t.text === 'over HTTP' && t.delivery.state !== 'waiting-to-send'));
    expect(network.postFrames).toBe(frames);
    expect(bob.texts(bobId)).toEqual(['over the socket', 'over HTTP']);
    expect(await storedMessages(channel)).toBe(2);
    expect(alice.errors).toEqual([]);
  }, 60_000);

  it('a socket that closes before the answer: the post goes again and is stored once', async () => {
    const network = new Network();
    const { alice, bob, aliceId, bobId, channel } = await pair(network);
    // The relay never saw the frame: the same signed request goes over HTTP at once.
    network.httpPosts = 0;
    network.nextPost = 'drop';
    await sendAndSee(alice, aliceId, bob, bobId, 'dropped frame');
    expect(network.postFrames).toBeGreaterThanOrEqual(1);
    expect(network.httpPosts).toBeGreaterThanOrEqual(1);
    // The relay stored it and its answer was lost with the socket: over HTTP the nonce is spent
    // (replayed-nonce, retried), then a fresh signature finds the postId stored: once.
    await alice.until('connected again', () => alice.app?.relays.every((r) => r.state === 'connected'));
    network.nextPost = 'lose-answer';
    await sendAndSee(alice, aliceId, bob, bobId, 'lost answer');
    await alice.until('outbox empty', () => alice.host.engine?.outbox.count() === 0);
    expect(network.answersLost).toBe(1);
    await sendAndSee(alice, aliceId, bob, bobId, 'after');
    expect(bob.texts(bobId)).toEqual(['dropped frame', 'lost answer', 'after']);
    expect(await storedMessages(channel)).toBe(3);
    expect(bob.warnings.filter((w) => !w.includes('relay'))).toEqual([]);
  }, 60_000);

  it('a relay whose frame limit is below a post frame (1009): the post goes over HTTP, and every later one at once', async () => {
    const small = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', limits: { ...OPEN_LIMITS, maxWsFrameBytes: 1024 } });
    try {
      const network = new Network();
      const { alice, bob, aliceId, bobId, channel } = await pair(network, undefined, small);
      network.httpPosts = 0;
      network.postFrames = 0;
      await sendAndSee(alice, aliceId, bob, bobId, 'too big for a frame');
      expect(network.closeCodes.filter((code) => code === 1009)).toHaveLength(1);
      expect(network.httpPosts).toBeGreaterThanOrEqual(1);
      const frames = network.postFrames;
      await alice.until('connected again', () => alice.app?.relays.every((r) => r.state === 'connected'));
      await sendAndSee(alice, aliceId, bob, bobId, 'straight over HTTP');
      await sendAndSee(alice, aliceId, bob, bobId, 'and again');
      // No frame tried again, no socket closed for one.
      expect(network.postFrames).toBe(frames);
      expect(network.closeCodes.filter((code) => code === 1009)).toHaveLength(1);
      expect(bob.texts(bobId)).toEqual(['too big for a frame', 'straight over HTTP', 'and again']);
      expect(await storedMessagesOn(small, channel)).toBe(3);
    } finally {
      await small.close();
    }
  }, 60_000);

  it('a crash with a post frame unanswered loses and duplicates nothing', async () => {
    const network = new Network();
    const profile = new Profile('Alice');
    const { alice, bob, aliceId, bobId, channel } = await pair(network, profile);
    network.holdAnswers = true;
    await alice.call('send', { conversationId: aliceId, text: 'in flight' });
    await bob.until('"in flight" at Bob', () => bob.texts(bobId).includes('in flight'));
    await alice.until('its answer dropped', () => network.answersLost >= 1);
    // Still in the outbox (neither the answer nor its own event came back): crash now.
    expect(alice.host.engine?.outbox.count()).toBeGreaterThanOrEqual(1);
    alice.close();
    network.holdAnswers = false;
    const again = await TestClient.start('Alice', { relay, profile, fetch: network.fetch, WebSocket: network.WebSocket });
    clients.push(again);
    await again.until('ready', () => again.app?.phase === 'ready');
    await again.until('outbox empty', () => again.host.engine?.outbox.count() === 0);
    await sendAndSee(again, aliceId, bob, bobId, 'after restart');
    expect(bob.texts(bobId)).toEqual(['in flight', 'after restart']);
    expect(again.texts(aliceId)).toEqual(['in flight', 'after restart']);
    expect(await storedMessages(channel)).toBe(2);
  }, 60_000);
});
