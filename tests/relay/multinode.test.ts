// Two relay processes on one Redis (issue 5 "Tests"): members connected to different nodes post
// concurrently; every member, over HTTP on either node and over WebSocket push on its own node,
// sees the same events in the same order, seqs dense from 1. Membership changes cross nodes too:
// a member removed on node A loses its subscription on node B and can no longer post there.
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelId, PacketEvent, PostPacketResponse, RelayEvent, ServerFrame } from '../../src/shared/relay-api.js';
import { startRelayProcess, type RelayProcess } from './helpers/process.js';
import { skipWithoutRedis, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { drainEvents, fetchRelayAuthKey, macHeaders, newMember, rawRequest, setupGroup, signedJson, subscribeFrame, type TestMember } from './helpers/signed-http.js';

/** Posts per member. Kept under the relay's default per-client burst (200 per node). */
const POSTS_PER_MEMBER = 20;
const MEMBERS = 4;
/** How long a WebSocket may take to receive everything after the posts are acknowledged. */
const PUSH_TIMEOUT_MS = 15_000;

const packetOf = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
const textOf = (event: PacketEvent): string => Buffer.from(event.packet, 'base64url').toString('utf8');

/** A WebSocket subscription that records every frame. */
class Subscriber {
  readonly frames: ServerFrame[] = [];
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
    this.ws.on('message', (data: Buffer) => this.frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  async subscribe(member: TestMember, channel: ChannelId, relayAuthKey?: string): Promise<void> {
    await this.opened;
    this.ws.send(JSON.stringify(subscribeFrame(member, channel, 0, relayAuthKey === undefined ? {} : { proof: { relayAuthKey } })));
    await this.until(() => this.frames.some((f) => f.type === 'subscribed' || f.type === 'error'));
    const error = this.frames.find((f) => f.type === 'error');
    if (error !== undefined) throw new Error(`subscribe refused: ${JSON.stringify(error)}`);
  }

  events(): RelayEvent[] {
    return this.frames.flatMap((f) => (f.type === 'event' ? [f.event] : []));
  }

  async until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + PUSH_TIMEOUT_MS;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`WebSocket condition not met; frames: ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

describe.skipIf(skipWithoutRedis('multi-node relay'))('two relay processes on one Redis', () => {
  let redis: RedisServer;
  let nodes: RelayProcess[] = [];
  const subscribers: Subscriber[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { RELAY_REDIS_URL: redis.url, RELAY_LOG: 'silent' };
    nodes = await Promise.all([startRelayProcess({ env }), startRelayProcess({ env })]);
  });

  afterAll(async () => {
    for (const subscriber of subscribers) subscriber.close();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  it('gives clients on different nodes one order, over HTTP and WebSocket push', async () => {
    const [nodeA, nodeB] = nodes as [RelayProcess, RelayProcess];
    expect(nodeA.url).not.toBe(nodeB.url);
    const members = Array.from({ length: MEMBERS }, () => newMember());
    // Even members use node A, odd members node B; the channel is made on A and joined across.
    const nodeOf = (i: number): RelayProcess => (i % 2 === 0 ? nodeA : nodeB);
    const channel = await setupGroup(nodeA.url, members);

    const subs = members.map((_, i) => new Subscriber(nodeOf(i).url));
    subscribers.push(...subs);
    await Promise.all(subs.map((sub, i) => sub.subscribe(members[i] as TestMember, channel)));

    // Concurrent posting: every member posts its packets in order, all members at once.
    await Promise.all(
      members.map(async (member, i) => {
        for (let n = 0; n < POSTS_PER_MEMBER; n++) {
          const posted = await signedJson<PostPacketResponse>(nodeOf(i).url, member, 'POST', `/v1/channels/${channel}/events`, {
            packet: packetOf(`m${i}-${n}`),
          });
          expect(posted.status).toBe(201);
        }
      }),
    );
    const headSeq = MEMBERS + MEMBERS * POSTS_PER_MEMBER;

    // HTTP: every member reads through both nodes; all see the same log.
    const reads = await Promise.all(
      members.flatMap((member) => [drainEvents(nodeA.url, member, channel), drainEvents(nodeB.url, member, channel)]),
    );
    const packetsOf = (events: readonly RelayEvent[]): string[] =>
      events.filter((e): e is PacketEvent => e.type === 'packet').map(textOf);
    const reference = reads[0] as RelayEvent[];
    expect(reference.map((e) => e.seq)).toEqual(Array.from({ length: headSeq }, (_, i) => i + 1));
    for (const events of reads) {
      // A member sees the log from its own join on; where logs overlap they are identical.
      const from = events[0]?.seq ?? 1;
      expect(events).toEqual(reference.slice(from - 1));
    }
    const order = packetsOf(reference);
    expect(order).toHaveLength(MEMBERS * POSTS_PER_MEMBER);
    for (let i = 0; i < MEMBERS; i++) {
      expect(order.filter((text) => text.startsWith(`m${i}-`))).toEqual(Array.from({ length: POSTS_PER_MEMBER }, (_, n) => `m${i}-${n}`));
    }

    // WebSocket push from the member's own node: the same events, in seq order, no gaps or repeats.
    for (const [i, sub] of subs.entries()) {
      await sub.until(() => (sub.events().at(-1)?.seq ?? 0) >= headSeq);
      const pushed = sub.events();
      expect(pushed).toEqual(reference.slice((pushed[0]?.seq ?? 1) - 1));
      expect(pushed[0]).toMatchObject({ type: 'member-joined', member: members[i]?.key });
    }

    // Removal on node A reaches node B: the removed member's subscription there ends, and it
    // can no longer post through B.
    const removed = members[3] as TestMember;
    const removal = await signedJson<{ event: RelayEvent }>(nodeA.url, members[0], 'DELETE', `/v1/channels/${channel}/members/${removed.key}`);
    expect(removal.status).toBe(200);
    const removedSub = subs[3] as Subscriber;
    await removedSub.until(() => removedSub.frames.some((f) => f.type === 'unsubscribed' && f.reason === 'removed'));
    const refused = await signedJson(nodeB.url, removed, 'POST', `/v1/channels/${channel}/events`, { packet: packetOf('late') });
    expect(refused).toEqual({ status: 403, json: { error: expect.any(String), code: 'forbidden' } });
    // The others, on both nodes, see the member-left event as seq head + 1.
    for (const sub of subs.slice(0, 3)) {
      await sub.until(() => (sub.events().at(-1)?.seq ?? 0) >= headSeq + 1);
      expect(sub.events().at(-1)).toMatchObject({ seq: headSeq + 1, type: 'member-left', member: removed.key });
    }
  });

  it('has one relay auth key on every node: a MAC made with the key node A serves is accepted by node B, over HTTP and WebSocket', async () => {
    const [nodeA, nodeB] = nodes as [RelayProcess, RelayProcess];
    const authKey = await fetchRelayAuthKey(nodeA.url);
    expect(await fetchRelayAuthKey(nodeB.url)).toBe(authKey);
    const [a, b] = [newMember(), newMember()];
    const channel = await setupGroup(nodeA.url, [a, b]);
    const sub = new Subscriber(nodeB.url);
    subscribers.push(sub);
    await sub.subscribe(b, channel, authKey);
    const path = `/v1/channels/${channel}/events`;
    const body = JSON.stringify({ packet: packetOf('mac across nodes') });
    const posted = await rawRequest(nodeB.url + path, 'POST', { 'content-type': 'application/json', ...macHeaders(a, authKey, 'POST', path, body) }, body);
    expect(posted.status).toBe(201);
    await sub.until(() => sub.events().some((e) => e.type === 'packet'));
    const read = `${path}?after=0`;
    const onA = await rawRequest(nodeA.url + read, 'GET', macHeaders(b, authKey, 'GET', read, ''));
    expect(onA.status).toBe(200);
    const events = (JSON.parse(onA.body.toString('utf8')) as { events: RelayEvent[] }).events;
    expect(events.filter((e): e is PacketEvent => e.type === 'packet').map(textOf)).toEqual(['mac across nodes']);
    // Its nonce is used on every node: the same request again through node A is a replay.
    const headers = macHeaders(a, authKey, 'POST', path, body);
    expect((await rawRequest(nodeB.url + path, 'POST', { 'content-type': 'application/json', ...headers }, body)).status).toBe(201);
    const replay = await rawRequest(nodeA.url + path, 'POST', { 'content-type': 'application/json', ...headers }, body);
    expect([replay.status, (JSON.parse(replay.body.toString('utf8')) as { code: string }).code]).toEqual([401, 'replayed-nonce']);
  });
});
