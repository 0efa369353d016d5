/**
 * Issue 13, the parts that are about the server rather than the store (in-process, SQLite):
 * connection caps per address, /metrics behind a token or on an admin port, client addresses
 * behind trusted proxies (X-Forwarded-For, IPv6 /64), the disk high-water mark, and a removal
 * that ends subscriptions even when the store's event hint is lost.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { addressKey, ClientAddresses } from '../../src/relay/http/client-address.js';
import { parseTarget, startRelay, type RelayOptions, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { RelayStore } from '../../src/relay/store/types.js';
import type { ServerFrame } from '../../src/shared/relay-api.js';
import { RelayClientError } from '../../src/worker/relay-client.js';
import { framedEvents, makeMember, nodeFetch, NodeWebSocket, packetOf } from './helpers/relay-harness.js';
import { RelayClient } from '../../src/worker/relay-client.js';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const relays: RunningRelay[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});

async function relayWith(options: Partial<RelayOptions> = {}, store: RelayStore = openSqliteStore({ dataDir: ':memory:' })): Promise<RunningRelay> {
  const relay = await startRelay({ store, port: 0, logLevel: 'silent', ...options });
  relays.push(relay);
  return relay;
}

/** Opens a raw TCP connection; resolves with what the relay says before closing (or '' if it keeps it open). */
function openConnection(port: number): Promise<{ socket: Socket; early: Promise<string> }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const early = new Promise<string>((done) => {
      socket.on('close', () => done(text));
      setTimeout(() => done(''), 300);
    });
    socket.on('connect', () => resolve({ socket, early }));
  });
}

describe('connections per address', () => {
  it('refuses TCP connections beyond maxHttpConnectionsPerClient with a 503 JSON answer', async () => {
    const relay = await relayWith({ limits: { maxHttpConnectionsPerClient: 3 } });
    const port = relay.port;
    const open = await Promise.all([openConnection(port), openConnection(port), openConnection(port)]);
    for (const { early } of open) expect(await early).toBe('');
    const fourth = await openConnection(port);
    const answer = await fourth.early;
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(JSON.parse(answer.split('\r\n\r\n')[1] ?? '')).toEqual({ error: 'too many connections from this client', code: 'too-many-connections' });
    // A slot frees when a connection closes.
    open[0]!.socket.destroy();
    await expect.poll(async () => (await fetch(`${relay.url}/healthz`).catch(() => undefined))?.status, { timeout: 5_000 }).toBe(200);
  });
});

describe('/metrics', () => {
  it('wants the operator token when one is set, and is rate-limited like the API', async () => {
    const relay = await relayWith({ metricsToken: 'secret-token-0123456789', limits: { rateBurst: 3, rateRequestsPerSecond: 0.001 } });
    const without = await fetch(`${relay.url}/metrics`);
    expect([without.status, ((await without.json()) as { code: string }).code]).toEqual([401, 'unauthorized']);
    const wrong = await fetch(`${relay.url}/metrics`, { headers: { authorization: 'Bearer secret-token-0123456780' } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${relay.url}/metrics`, { headers: { authorization: 'Bearer secret-token-0123456789' } });
    expect(right.status).toBe(200);
    expect(await right.text()).toMatch(/^covey_relay_storage_writable 1$/m);
    const limited = await fetch(`${relay.url}/metrics`, { headers: { authorization: 'Bearer secret-token-0123456789' } });
    expect(limited.status).toBe(429);
    // Health checks stay free.
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
  });

  it('moves to the admin listener when there is one (public port: 404)', async () => {
    const relay = await relayWith({ admin: { port: 0 } });
    expect(relay.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${relay.url}/metrics`)).status).toBe(404);
    const metrics = await fetch(`${relay.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^covey_relay_channels \d+$/m);
    expect(((await (await fetch(`${relay.adminUrl}/healthz`)).json()) as { ok: boolean }).ok).toBe(true);
    expect((await fetch(`${relay.adminUrl}/v1/push/key`)).status).toBe(404);
  });
});

describe('client addresses', () => {
  const request = (peer: string, forwardedFor?: string, proto?: string): IncomingMessage =>
    ({
      socket: { remoteAddress: peer },
      headers: { ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }), ...(proto === undefined ? {} : { 'x-forwarded-proto': proto }) },
    }) as unknown as IncomingMessage;

  it('believes X-Forwarded-For only from trusted proxies, and only right of the first untrusted hop', () => {
    const none = new ClientAddresses([]);
    expect(none.of(request('127.0.0.1', '203.0.113.9'), false)).toEqual({ address: '127.0.0.1', secure: false });
    const proxies = new ClientAddresses(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
    expect(proxies.of(request('127.0.0.1', '203.0.113.9'), false)).toEqual({ address: '203.0.113.9', secure: false });
    // Spoofed entries left of the real client are ignored; trusted hops right of it are skipped.
    expect(proxies.of(request('10.1.2.3', '1.1.1.1, 203.0.113.9, 10.9.9.9'), false).address).toBe('203.0.113.9');
    expect(proxies.of(request('::ffff:127.0.0.1', 'garbage, 198.51.100.7'), false).address).toBe('198.51.100.7');
    expect(proxies.of(request('127.0.0.1', 'not-an-ip'), false).address).toBe('127.0.0.1');
    expect(proxies.of(request('192.0.2.1', '203.0.113.9'), false).address).toBe('192.0.2.1'); // untrusted peer
    expect(proxies.of(request('127.0.0.1', '203.0.113.9', 'https'), false).secure).toBe(true);
    expect(none.of(request('127.0.0.1', '203.0.113.9', 'https'), false).secure).toBe(false);
    expect(() => new ClientAddresses(['10.0.0.0/33'])).toThrow(/RELAY_TRUSTED_PROXIES/);
    expect(() => new ClientAddresses(['proxy.example'])).toThrow(/RELAY_TRUSTED_PROXIES/);
  });

  it('keys IPv6 clients by their /64', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
  });

  it('rate-limits each forwarded client on its own behind a trusted proxy, all as one without', async () => {
    const limits = { rateBurst: 2, rateRequestsPerSecond: 0.001 };
    const statuses = async (relay: RunningRelay, client: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push((await fetch(`${relay.url}/v1/push/key`, { headers: { 'x-forwarded-for': client } })).status);
      return out;
    };
    const proxied = await relayWith({ trustedProxies: ['127.0.0.1'], limits });
    expect(await statuses(proxied, '203.0.113.1')).toEqual([200, 200, 429]);
    expect(await statuses(proxied, '203.0.113.2')).toEqual([200, 200, 429]);
    const direct = await relayWith({ limits });
    expect(await statuses(direct, '203.0.113.1')).toEqual([200, 200, 429]);
    expect(await statuses(direct, '203.0.113.2')).toEqual([429, 429, 429]);
  });
});

describe('request targets', () => {
  it('accepts only origin-form paths', () => {
    expect(parseTarget('/v1/ws?x=1')?.path).toBe('/v1/ws');
    for (const bad of ['http://[/', 'http://relay/v1/ws', '*', 'example.com:443', '//v1/ws', undefined, `/${'x'.repeat(9000)}`]) {
      expect(parseTarget(bad)).toBeUndefined();
    }
  });

  it('gives every target the path and query URL parsing gives it (plain paths skip the parse)', () => {
    const pieces = ['v1', 'channels', 'AbC-_9', '', '.', '..', '%2e', '%41', 'a b', 'x?y=1', '?a=%20&b', '#frag', '\\', 'é', '~', ';'];
    let random = 3;
    const next = (n: number): number => {
      random = (random * 1103515245 + 12345) % 2 ** 31;
      return (random >>> 12) % n;
    };
    for (let i = 0; i < 2000; i++) {
      const target = `/${Array.from({ length: 1 + next(5) }, () => pieces[next(pieces.length)]).join('/')}`;
      const parsed = parseTarget(target);
      if (target.startsWith('//')) continue;
      let url: URL | undefined;
      try {
        url = new URL(target, 'http://relay.invalid');
      } catch {
        url = undefined;
      }
      expect([target, parsed?.path, parsed?.query.toString()]).toEqual([target, url?.pathname, url?.searchParams.toString()]);
    }
    expect(parseTarget('/v1/channels/AbC-_9/events')).toEqual({ path: '/v1/channels/AbC-_9/events', query: new URLSearchParams() });
  });
});

describe('storage high-water mark', () => {
  it('refuses new content below minFreeDiskBytes, says so in /healthz, and still lets members leave', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covey-relay-disk-'));
    try {
      const store = openSqliteStore({ dataDir });
      const [a, b] = [makeMember(), makeMember()];
      const clients = (relay: RunningRelay): [RelayClient, RelayClient] => {
        const alice = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, signer: a });
        return [alice, alice.withSigner(b)];
      };
      const first = await relayWith({ limits: { rateBurst: 1e6 }, closeStore: false }, store);
      const [alice0, bob0] = clients(first);
      const channel = (await alice0.createChannel('group')).channelId;
      await bob0.join(channel, (await alice0.createCapability(channel, { kind: 'invite', ttlMs: 60_000, uses: 1 })).capability);
      await first.close();
      // The disk "fills": more free space wanted than any disk has.
      const full = await relayWith({ limits: { rateBurst: 1e6, minFreeDiskBytes: Number.MAX_SAFE_INTEGER }, closeStore: false }, store);
      const [alice, bob] = clients(full);
      const health = (await (await fetch(`${full.url}/healthz`)).json()) as { storage: { writable: boolean; reason: string; freeBytes: number } };
      expect(health.storage).toMatchObject({ writable: false, reason: 'disk-low' });
      expect(health.storage.freeBytes).toBeGreaterThan(0);
      const refused = { status: 507, code: 'storage-full' };
      const outcome = async (promise: Promise<unknown>): Promise<unknown> =>
        promise.then(
          () => 'accepted',
          (e: unknown) => (e instanceof RelayClientError ? { status: e.status, code: e.code } : e),
        );
      expect(await outcome(alice.post(channel, packetOf('x')))).toEqual(refused);
      expect(await outcome(alice.createChannel('group'))).toEqual(refused);
      expect(await outcome(alice.createUpload(channel, 'a'.repeat(64) as never, 10))).toEqual(refused);
      // Reading, acking and leaving still work.
      expect((await alice.read(channel, 0)).events).toHaveLength(2);
      await alice.ackCursor(channel, 2);
      await bob.leave(channel);
      expect((await fetch(`${full.url}/metrics`)).status).toBe(200);
      expect(await (await fetch(`${full.url}/metrics`)).text()).toMatch(/^covey_relay_storage_writable 0$/m);
      await full.close();
      const again = await relayWith({ limits: { rateBurst: 1e6 } }, store);
      expect((await clients(again)[0].post(channel, packetOf('room again'))).seq).toBe(4);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Alice's group with Bob in it, and an open WebSocket whose frames are collected (not subscribed yet). */
async function pairWithSocket(relay: RunningRelay) {
  const [a, b] = [makeMember(), makeMember()];
  const alice = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, signer: a, WebSocket: NodeWebSocket });
  const bob = alice.withSigner(b);
  const channel = (await alice.createChannel('group')).channelId;
  await bob.join(channel, (await alice.createCapability(channel, { kind: 'invite', ttlMs: 60_000, uses: 1 })).capability);
  const frames: ServerFrame[] = [];
  const ws = new NodeWebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/ws`);
  ws.addEventListener('message', (event) => frames.push(JSON.parse(String(event.data)) as ServerFrame));
  await new Promise<void>((resolve) => ws.addEventListener('open', () => resolve()));
  return { alice, bob, b, channel, frames, ws };
}

describe('removal ends subscriptions', () => {
  it('even when the store never tells the hub about the member-left event', async () => {
    const base = openSqliteStore({ dataDir: ':memory:' });
    // A store whose event hints are lost (a Redis pub/sub outage, say).
    const deaf: RelayStore = Object.assign(Object.create(base) as RelayStore, { subscribe: () => () => undefined });
    const relay = await relayWith({ limits: { rateBurst: 1e6 } }, deaf);
    const { alice, bob, b, channel, frames, ws } = await pairWithSocket(relay);
    ws.send(JSON.stringify(await bob.subscribeFrame(channel, 2)));
    await expect.poll(() => frames.some((f) => f.type === 'subscribed')).toBe(true);
    await alice.removeMember(channel, b.publicKey);
    await expect.poll(() => frames.find((f) => f.type === 'unsubscribed'), { timeout: 5_000 }).toMatchObject({ channel, reason: 'removed' });
    ws.close();
  });
});

describe('store resync', () => {
  it('delivers the events a lost pub/sub hid, in order, once the store asks for a resync', async () => {
    const base = openSqliteStore({ dataDir: ':memory:' });
    // A store whose event hints can be switched off (a Redis pub/sub outage), then asks to resync.
    let deaf = false;
    let resync: (() => void) | undefined;
    const flaky: RelayStore = Object.assign(Object.create(base) as RelayStore, {
      subscribe: (listener: Parameters<RelayStore['subscribe']>[0], onResync?: () => void) => {
        resync = onResync;
        return base.subscribe((channel, event, frame) => {
          if (!deaf) listener(channel, event, frame);
        });
      },
    });
    const relay = await relayWith({ limits: { rateBurst: 1e6 } }, flaky);
    const { alice, bob, channel, frames, ws } = await pairWithSocket(relay);
    ws.send(JSON.stringify(await bob.subscribeFrame(channel, 2)));
    await expect.poll(() => frames.some((f) => f.type === 'subscribed')).toBe(true);
    const seqs = (): number[] => framedEvents(frames).map((e) => e.seq);
    await alice.post(channel, packetOf('heard'));
    await expect.poll(seqs).toEqual([3]);
    deaf = true;
    await alice.post(channel, packetOf('lost 1'));
    await alice.post(channel, packetOf('lost 2'));
    deaf = false;
    expect(seqs()).toEqual([3]);
    expect(resync).toBeTypeOf('function');
    resync?.();
    await expect.poll(seqs, { timeout: 5_000 }).toEqual([3, 4, 5]);
    await alice.post(channel, packetOf('live again'));
    await expect.poll(seqs, { timeout: 5_000 }).toEqual([3, 4, 5, 6]);
    ws.close();
  });
});

describe('catch-up meets a live event', () => {
  it('delivers an event posted while the catch-up read was out, even when that read found nothing', async () => {
    const base = openSqliteStore({ dataDir: ':memory:' });
    // The race a store with separate connections allows (Redis: the post goes out on one, the read
    // on another): the read runs before the append, its answer is handled after the event's hint.
    let holdNextRead = false;
    let readHeld: () => void = () => undefined;
    let releaseRead: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (readHeld = resolve));
    const gate = new Promise<void>((resolve) => (releaseRead = resolve));
    const racy: RelayStore = Object.assign(Object.create(base) as RelayStore, {
      readEvents: async (...args: Parameters<RelayStore['readEvents']>) => {
        const events = await base.readEvents(...args);
        if (holdNextRead) {
          holdNextRead = false;
          readHeld();
          await gate;
        }
        return events;
      },
    });
    const relay = await relayWith({ limits: { rateBurst: 1e6 } }, racy);
    const { alice, bob, channel, frames, ws } = await pairWithSocket(relay);
    holdNextRead = true;
    ws.send(JSON.stringify(await bob.subscribeFrame(channel, 2)));
    await held;
    expect((await alice.post(channel, packetOf('while the read was out'))).seq).toBe(3);
    releaseRead();
    await expect.poll(() => framedEvents(frames).map((e) => e.seq), { timeout: 3_000 }).toEqual([3]);
    ws.close();
  });
});
