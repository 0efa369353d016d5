/**
 * Relay operations on SQLite, in-process: the built app from the same origin (SPA fallback, no
 * escape from the root), TLS, CORS preflight, graceful shutdown that drains, loopback detection,
 * and the SQLite durability settings.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore, SQLITE_FILE_NAME } from '../../src/relay/store/sqlite.js';
import { newChannelId } from '../../src/relay/ids.js';
import type { RelayEvent, ServerFrame } from '../../src/shared/relay-api.js';
import { RelayClient } from '../../src/worker/relay-client.js';
import { framedEvents, makeMember, nodeFetch, NodeWebSocket } from './helpers/relay-harness.js';

let dir: string;
const relays: RunningRelay[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'covey-relay-ops-'));
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function relayWith(options: Omit<Parameters<typeof startRelay>[0], 'store'> = {}): Promise<RunningRelay> {
  const relay = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', ...options });
  relays.push(relay);
  return relay;
}

/** A request with a path fetch() would normalise away. */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'GET', path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('relay operations', () => {
  it('serves the built app from the same origin with SPA fallback, never outside its root', async () => {
    const site = join(dir, 'dist');
    mkdirSync(join(site, 'assets'), { recursive: true });
    writeFileSync(join(site, 'index.html'), '<!doctype html><title>covey</title>');
    writeFileSync(join(site, 'assets', 'app-1234.js'), 'console.log(1)');
    writeFileSync(join(dir, 'secret.txt'), 'do not serve');
    const relay = await relayWith({ staticDir: site });
    const index = await fetch(`${relay.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await index.text()).toContain('<title>covey</title>');
    const asset = await fetch(`${relay.url}/assets/app-1234.js`);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(await asset.text()).toBe('console.log(1)');
    expect(await (await fetch(`${relay.url}/chat/some-room`)).text()).toContain('<title>covey</title>');
    const missing = await fetch(`${relay.url}/missing.png`);
    expect([missing.status, ((await missing.json()) as { code: string }).code]).toEqual([404, 'not-found']);
    for (const path of ['/../secret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt', '/%2e%2e/secret.txt']) {
      const response = await rawGet(relay.url, path);
      expect(response.body).not.toContain('do not serve');
    }
    // API paths are never answered by the static site.
    expect((await fetch(`${relay.url}/v1/unknown`)).status).toBe(404);
  });

  it('serves HTTPS when given a certificate', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const relay = await relayWith({ tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    expect(relay.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet(`${relay.url}/healthz`, { ca: readFileSync(cert) }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ ok: true, store: 'sqlite', storage: { writable: true } });
    // WebSocket push over TLS: the hub writes its frames to the TLS socket itself, corked for the
    // tick (push-wire.ts); a burst committed together arrives whole, once, in seq order.
    const member = makeMember();
    const channel = newChannelId();
    await relay.store.createChannel(channel, 'group', member.publicKey, Date.now());
    const client = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, signer: member });
    const ws = new WebSocket(`${relay.url.replace(/^https/, 'wss')}/v1/ws`, { ca: readFileSync(cert) });
    const frames: ServerFrame[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify(await client.subscribeFrame(channel, 1)));
    await expect.poll(() => frames.some((f) => f.type === 'subscribed'), { timeout: 10_000 }).toBe(true);
    const packets = Array.from({ length: 30 }, (_, i) => Buffer.from(`packet ${i}`).toString('base64url'));
    await Promise.all(packets.map((packet) => relay.store.appendEvent(channel, { type: 'packet', author: member.publicKey, packet }, Date.now())));
    const events = (): RelayEvent[] => framedEvents(frames);
    await expect.poll(() => events().length, { timeout: 10_000 }).toBe(packets.length);
    expect(events().map((e) => e.seq)).toEqual(packets.map((_, i) => i + 2));
    expect(events().map((e) => (e.type === 'packet' ? e.packet : ''))).toEqual(packets);
    ws.close();
  });

  it('answers CORS preflights', async () => {
    const relay = await relayWith();
    const response = await fetch(`${relay.url}/v1/channels`, { method: 'OPTIONS' });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-headers')).toContain('covey-signature');
    // A browser app on another origin sends request MACs too.
    expect(response.headers.get('access-control-allow-headers')).toContain('covey-mac');
  });

  it('drains on close: in-flight requests finish, sockets get 1001, new connections are refused', async () => {
    const relay = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent' });
    const member = makeMember();
    const client = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, WebSocket: NodeWebSocket, signer: member });
    const channel = (await client.createChannel('group')).channelId;
    const upload = await client.createUpload(channel, '0'.repeat(64) as never, 10);
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/ws`);
    const closeCode = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((resolve) => ws.on('open', resolve));
    // A chunk upload whose body is still arriving when shutdown begins.
    const inFlight = new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${relay.url}/v1/uploads/${upload.upload}?offset=0`, { method: 'PUT', headers: { 'content-length': '10' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(5));
      setTimeout(() => req.end(Buffer.alloc(5)), 200);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = relay.close();
    expect(await closeCode).toBe(1001);
    expect(await inFlight).toBe(200);
    await closed;
    await expect(fetch(`${relay.url}/healthz`)).rejects.toThrow();
  });

  it('answers a post frame being stored before it closes that socket on shutdown', async () => {
    const base = openSqliteStore({ dataDir: ':memory:' });
    let entered!: () => void;
    const appending = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    // The store holds the first post's append until the test lets it go (after close began).
    const store: typeof base = {
      ...base,
      appendEvent: async (...args) => {
        if (!held && args[1].type === 'packet') {
          held = true;
          entered();
          await gate;
        }
        return base.appendEvent(...args);
      },
    };
    const relay = await startRelay({ store, port: 0, logLevel: 'silent' });
    const client = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, WebSocket: NodeWebSocket, signer: makeMember() });
    const channel = (await client.createChannel('group')).channelId;
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/ws`);
    const seen: string[] = [];
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
      seen.push(frame.type === 'posted' ? `posted ${frame.id} seq ${frame.seq}` : frame.type);
    });
    const closeCode = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(JSON.stringify(RelayClient.postFrame(await client.signPost(channel, new TextEncoder().encode('late'), 'late-1'), 5)));
    await appending;
    const closed = relay.close();
    // Shutdown has begun (new work is refused) while the append is still held.
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    expect(await closeCode).toBe(1001);
    expect(seen).toEqual(['posted 5 seq 2']);
    await closed;
  });

  it('answers a malformed WebSocket handshake with a JSON 400', async () => {
    const relay = await relayWith();
    const { port } = new URL(relay.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n');
      });
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'malformed WebSocket handshake', code: 'bad-request' });
  });

  it('ends a request whose client went away mid-body (no handler waits forever)', async () => {
    const relay = await relayWith();
    const { port } = new URL(relay.url);
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write('POST /v1/channels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"kind":');
      setTimeout(() => socket.destroy(), 100);
    });
    socket.on('error', () => undefined);
    const aborted = async (): Promise<boolean> => {
      const metrics = await (await fetch(`${relay.url}/metrics`)).text();
      return /^covey_relay_requests_total\{code="bad-request"\} 1$/m.test(metrics);
    };
    await expect.poll(aborted, { timeout: 5000 }).toBe(true);
  });

  it('knows which hosts are loopback (anything else without TLS gets the loud warning)', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'relay.example']) expect(isLoopbackHost(host)).toBe(false);
  });

  it('opens SQLite in WAL mode, commits appending to the WAL and each group fdatasynced before it resolves', async () => {
    const dataDir = join(dir, 'data');
    const store = openSqliteStore({ dataDir });
    expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 1, commitSync: 'fdatasync', checkpoints: 'thread' });
    await store.createChannel('AAAAAAAAAAAAAAAAAAAAAA' as never, 'group', makeMember().publicKey, Date.now());
    const probe = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
    expect(probe.pragma('journal_mode', { simple: true })).toBe('wal');
    probe.close();
    await store.close();
  });
});
