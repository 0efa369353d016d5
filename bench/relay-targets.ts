/**
 * The servers `npm run bench:relay` measures, behind one interface: a bare `ws` broadcaster (the
 * baseline: no storage, no auth, no order, the limit of this machine) and the relay on SQLite or
 * Redis. Each runs in its own child process, so the 2 cores split as server / load generator the
 * same way for every target. Posts are signed before a step starts (`preparePosts`), so the load
 * generator's signing does not slow the relay targets down against the baseline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { sendJson } from '../src/relay/http/io.js';
import { RELAY_HEADERS } from '../src/shared/relay-api.js';
import type { RelayLimits } from '../src/relay/limits.js';
import type { ChannelId, ServerFrame } from '../src/shared/relay-api.js';
import { RELAY_TEST_ENTRY, startRelayProcess, type RelayProcess } from '../tests/relay/helpers/process.js';
import { redisAvailability, startRedisServer, type RedisServer } from '../tests/relay/helpers/redis-server.js';
import { threadCpuUs } from '../tests/relay/helpers/thread-cpu.js';
import { fetchRelayAuthKey, memberMacKey, newMember, setupGroup, signedHeaders, subscribeFrame, type Proof, type TestMember } from '../tests/relay/helpers/signed-http.js';

/** How long a server child may take to print its URL. */
const SERVER_START_TIMEOUT_MS = 30_000;
/** How long a subscription may take to be confirmed (a loaded machine is slow, not stuck). */
const SUBSCRIBE_TIMEOUT_MS = 60_000;
/** A post that takes longer than this counts as an error (the step goes on). */
const POST_TIMEOUT_MS = 30_000;
/** HTTP sockets the load generator keeps open per server (posts in flight are capped elsewhere). */
const AGENT_MAX_SOCKETS = 256;

/**
 * The relay's limits for the bench: all load comes from 127.0.0.x, so the per-address limits
 * (rate, connections, quotas) are lifted; everything else is the production default.
 */
export const BENCH_LIMITS: Partial<RelayLimits> = {
  rateRequestsPerSecond: 1e9,
  rateBurst: 1e9,
  maxConnections: 30_000,
  maxConnectionsPerClient: 30_000,
  maxHttpConnections: 60_000,
  maxHttpConnectionsPerClient: 60_000,
  maxRequestsInFlightPerClient: 1e9,
  channelQuotaBurst: 1e9,
  uploadQuotaBurstBytes: 1e12,
};

/**
 * How the load generator proves its posts and subscriptions to the relay: 'mac' (request MACs,
 * src/shared/relay-mac.ts: what the app sends once it knows the relay's auth key) or 'signature'
 * (Ed25519, the way before MACs).
 */
export type RelayProofKind = 'mac' | 'signature';

/** The proof of targets named without one (`sqlite`, not `sqlite@signature`): BENCH_RELAY_PROOF, default 'mac'. */
export function defaultProof(): RelayProofKind {
  const text = process.env.BENCH_RELAY_PROOF ?? '';
  if (text === '' || text === 'mac') return 'mac';
  if (text === 'signature') return 'signature';
  throw new Error(`BENCH_RELAY_PROOF must be mac or signature, got ${text}`);
}

/** A post signed and serialized ahead of time; `send` only writes it. */
export interface PreparedPost {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface SubscribeOptions {
  /** Local address to connect from (127.0.0.x spreads the load over several source addresses). */
  readonly localAddress?: string;
}

/** What a server under test offers the bench, whatever its API. */
export interface BenchTarget {
  /** Short key for the JSON line: 'baseline', 'sqlite', 'redis', ... */
  readonly key: string;
  readonly label: string;
  /** Starts the server and sets up `channelCount` channels with `channelSize` members each. */
  prepare(channelCount: number, channelSize: number, setupConcurrency?: number): Promise<void>;
  /** Opens a subscriber for one member; resolves once it will receive every later post. */
  subscribe(channel: number, member: number, onFrame: (data: Buffer) => void, options?: SubscribeOptions): Promise<WebSocket>;
  /** Signs and serializes a post of `payload` by member `author` of `channel`. */
  preparePost(channel: number, author: number, payload: Uint8Array): PreparedPost;
  /** Sends a prepared post; resolves with the HTTP status (0 on a transport error). */
  send(post: PreparedPost): Promise<number>;
  /** The status that means "accepted". */
  readonly acceptedStatus: number;
  /**
   * Drops the kept-alive HTTP sockets. Called before each step: a socket left idle while another
   * target ran may be closed by the server just as it is reused, which would fail a post.
   */
  resetConnections(): void;
  /** IPC to the server child ('memory', 'cpu', 'profile-start', 'profile-stop'). */
  request<T>(op: string, args?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

/** Where the bench post id sits in a pushed frame: the first 4 bytes of the packet (base64url). */
const PACKET_MARKER = Buffer.from('"packet":"');

/** The post id of a pushed frame (the packet's first 4 bytes), without parsing its JSON. */
export function postIdOf(frame: Buffer): number | undefined {
  const at = frame.indexOf(PACKET_MARKER);
  if (at < 0) return undefined;
  const start = at + PACKET_MARKER.length;
  // 8 base64 characters are 6 bytes: the id is the first 4.
  const head = Buffer.from(frame.toString('latin1', start, start + 8), 'base64url');
  return head.length >= 4 ? head.readUInt32BE(0) : undefined;
}

/**
 * CPU seconds redis-server has used (INFO cpu: used_cpu_sys + used_cpu_user, all its threads), in
 * µs; undefined when it cannot be read. The bench reports it beside the relay's own CPU: Redis
 * shares the machine's cores too.
 */
function redisCpuUs(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (value: number | undefined): void => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(5_000, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write('INFO cpu\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const sys = /used_cpu_sys:([\d.]+)/.exec(answer);
      const user = /used_cpu_user:([\d.]+)/.exec(answer);
      if (sys?.[1] !== undefined && user?.[1] !== undefined) done(Math.round((Number(sys[1]) + Number(user[1])) * 1e6));
    });
  });
}

function sendRequest(agent: Agent, url: string, post: PreparedPost): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url + post.path, { method: 'POST', headers: post.headers, agent, timeout: POST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(post.body);
  });
}

// ---- server children ----------------------------------------------------------------------------

interface ServerChild {
  readonly url: string;
  request<T>(op: string, args?: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

/** Runs `tsx bench/relay-targets.ts serve KIND` (with IPC) and waits for the URL line. */
async function spawnServer(kind: string): Promise<ServerChild> {
  const self = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self, 'serve', kind], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start: ${output}`)), SERVER_START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} server exited with ${code}: ${output}`));
    });
  });
  let nextId = 0;
  const waiting = new Map<number, (value: unknown) => void>();
  child.on('message', (message: { id: number; value: unknown }) => {
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  return {
    url,
    request: <T>(op: string, args: Record<string, unknown> = {}) =>
      new Promise<T>((resolve) => {
        const id = nextId++;
        waiting.set(id, (value) => resolve(value as T));
        child.send({ id, op, ...args });
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The baseline server: POST /post/:channel broadcasts the body to that channel's sockets.
 * `sameWire` (the default baseline): it answers with the relay's headers and answer fields and
 * pushes frames with the relay's fields (channel id, seq, time, author, packet), so the load
 * generator receives as many bytes per post from it as from the relay (the requests it sends carry
 * the relay's four auth headers, unchecked); otherwise the bare answer and frame of the first
 * baseline ('baseline-plain').
 */
function serveBaseline(sameWire: boolean): void {
  const subscribers = new Map<string, Set<WebSocket>>();
  let seq = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/post\/([\w-]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || match?.[1] === undefined) {
      res.writeHead(404).end();
      return;
    }
    const channel = match[1];
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seq += 1;
      // The same framing work as the relay: JSON in, JSON out, the packet in base64url.
      const { packet } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { packet: string };
      if (!sameWire) {
        const frame = JSON.stringify({ type: 'event', channel, event: { seq, type: 'packet', packet } });
        for (const ws of subscribers.get(channel) ?? []) ws.send(frame);
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ seq }));
        return;
      }
      const timeMs = Date.now();
      const author = req.headers[RELAY_HEADERS.key];
      // Encoded once for every subscriber, as the relay does.
      const frame = Buffer.from(JSON.stringify({ type: 'event', channel: channel.slice(0, 22), event: { seq, timeMs, type: 'packet', author, packet } }), 'utf8');
      for (const ws of subscribers.get(channel) ?? []) ws.send(frame, { binary: false });
      sendJson(res, 201, { seq, timeMs, duplicate: false });
    });
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const channel = new URL(req.url ?? '/', 'http://x').searchParams.get('channel') ?? '';
    let set = subscribers.get(channel);
    if (set === undefined) subscribers.set(channel, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.send(JSON.stringify({ type: 'ready' }));
  });
  server.maxConnections = 60_000;
  process.on('message', (message: { id: number; op: string }) => {
    if (message.op === 'memory') {
      globalThis.gc?.();
      process.send?.({ id: message.id, value: process.memoryUsage() });
    } else if (message.op === 'cpu') {
      process.send?.({ id: message.id, value: { ...process.cpuUsage(), mainThread: threadCpuUs() } });
    } else {
      process.send?.({ id: message.id, value: { error: `unknown op ${message.op}` } });
    }
  });
  process.on('SIGTERM', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    console.log(`baseline listening on http://127.0.0.1:${address.port}`);
  });
}

// ---- the targets --------------------------------------------------------------------------------

/** Base64url text of `bytes` random bytes: a stand-in of the relay's ids, keys, nonces and signatures, same length. */
const filler = (bytes: number): string => randomBytes(bytes).toString('base64url');

export class BaselineTarget implements BenchTarget {
  readonly key: string;
  readonly label: string;
  readonly acceptedStatus = 201;
  private child: ServerChild | undefined;
  private agent = new Agent({ keepAlive: true, maxSockets: AGENT_MAX_SOCKETS });
  /** Per channel: a relay-length channel id in the path, and the authors' keys. */
  private readonly wire = new Map<number, { readonly path: string; readonly keys: string[] }>();

  /** `sameWire`: see serveBaseline (the default 'baseline'); false: 'baseline-plain'. */
  constructor(private readonly sameWire = true) {
    this.key = sameWire ? 'baseline' : 'baselinePlain';
    this.label = sameWire ? 'baseline (bare ws)' : 'baseline (bare ws, own wire)';
  }

  resetConnections(): void {
    this.agent.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: AGENT_MAX_SOCKETS });
  }

  async prepare(): Promise<void> {
    this.child = await spawnServer(this.sameWire ? 'baseline' : 'baseline-plain');
  }

  async subscribe(channel: number, _member: number, onFrame: (data: Buffer) => void, options: SubscribeOptions = {}): Promise<WebSocket> {
    const ws = new WebSocket(`${this.url().replace(/^http/, 'ws')}/?channel=${encodeURIComponent(this.channelName(channel))}`, {
      perMessageDeflate: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('baseline subscribe timed out')), SUBSCRIBE_TIMEOUT_MS);
      ws.once('error', reject);
      ws.once('message', () => {
        clearTimeout(timer);
        ws.on('message', onFrame);
        resolve();
      });
    });
    return ws;
  }

  preparePost(channel: number, author: number, payload: Uint8Array): PreparedPost {
    const body = JSON.stringify({ packet: Buffer.from(payload).toString('base64url') });
    if (!this.sameWire) return { path: `/post/c${channel}`, headers: { 'content-type': 'application/json' }, body };
    // The relay's request, byte for byte in size: its path length and four auth headers (not checked).
    let wire = this.wire.get(channel);
    if (wire === undefined) {
      const id = `c${channel}_`.padEnd(22, filler(16));
      wire = { path: `/post/${id}`.padEnd(`/v1/channels/${id}/events`.length, '-'), keys: [] };
      this.wire.set(channel, wire);
    }
    const key = (wire.keys[author] ??= filler(32));
    // The proof header of the relay targets named without a proof (BENCH_RELAY_PROOF): a 32-byte
    // MAC or a 64-byte signature, unchecked either way.
    const proof: [string, string] = defaultProof() === 'mac' ? [RELAY_HEADERS.mac, filler(32)] : [RELAY_HEADERS.signature, filler(64)];
    const headers = {
      'content-type': 'application/json',
      [RELAY_HEADERS.key]: key,
      [RELAY_HEADERS.nonce]: filler(16),
      [RELAY_HEADERS.time]: String(Date.now()),
      [proof[0]]: proof[1],
    };
    return { path: wire.path, headers, body };
  }

  send(post: PreparedPost): Promise<number> {
    return sendRequest(this.agent, this.url(), post);
  }

  request<T>(op: string, args?: Record<string, unknown>): Promise<T> {
    if (this.child === undefined) throw new Error('baseline not started');
    return this.child.request<T>(op, args);
  }

  /** The channel name the server sees in a post's path (see preparePost). */
  private channelName(channel: number): string {
    if (!this.sameWire) return `c${channel}`;
    this.preparePost(channel, 0, new Uint8Array(4));
    return this.wire.get(channel)?.path.slice('/post/'.length) ?? `c${channel}`;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.child?.stop();
  }

  private url(): string {
    if (this.child === undefined) throw new Error('baseline not started');
    return this.child.url;
  }
}

/**
 * The relay with one store: 'sqlite' (WAL, fsynced before each answer), 'sqlite-off' (the same
 * relay with synchronous=OFF: nothing is fsynced, the group-commit comparison's ceiling), 'redis'
 * (appendfsync always) or 'redis-off' (appendfsync no).
 */
export type RelayStoreKind = 'sqlite' | 'sqlite-off' | 'redis' | 'redis-off';

export interface RelayTargetOptions {
  /** Where signatures are checked (RELAY_VERIFY_THREADS): absent = the default (one worker thread, inline when idle), 0 = the event loop, n = worker threads. */
  readonly verifyThreads?: number;
  /**
   * Run the relay of another checkout (BENCH_BEFORE_DIR: e.g. `git worktree add /tmp/before <commit>`
   * with this checkout's node_modules linked in), to compare before and after in one run.
   */
  readonly root?: string;
  /** How posts and subscriptions are proven; default `defaultProof()`. A relay from before MACs needs 'signature'. */
  readonly proof?: RelayProofKind;
  /** SQLite on its own thread (RELAY_SQLITE_THREAD=on) or, the default as in main.ts, in the event loop's thread. */
  readonly sqliteThread?: boolean;
}

export class RelayTarget implements BenchTarget {
  readonly acceptedStatus = 201;
  private relay: RelayProcess | undefined;
  private redis: RedisServer | undefined;
  private dataDir: string | undefined;
  private channels: Array<{ id: ChannelId; members: TestMember[] }> = [];
  private agent = new Agent({ keepAlive: true, maxSockets: AGENT_MAX_SOCKETS });
  /** The proof of this target's posts and subscriptions (a MAC needs the relay's auth key, known once started). */
  private proof: Proof = 'signature';

  resetConnections(): void {
    this.agent.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: AGENT_MAX_SOCKETS });
  }

  constructor(
    readonly key: string,
    readonly label: string,
    private readonly kind: RelayStoreKind,
    private readonly options: RelayTargetOptions = {},
  ) {}

  /** 'mac' or 'signature'. */
  get proofKind(): RelayProofKind {
    return this.options.proof ?? defaultProof();
  }

  async prepare(channelCount: number, channelSize: number, setupConcurrency = 10): Promise<void> {
    let storeSpec: string;
    if (this.kind === 'redis' || this.kind === 'redis-off') {
      const availability = redisAvailability();
      if (!availability.available) throw new Error(availability.reason);
      this.redis = await startRedisServer(this.kind === 'redis-off' ? { appendfsync: 'no' } : {});
      storeSpec = `redis:${this.redis.url}`;
    } else {
      this.dataDir = mkdtempSync(join(tmpdir(), 'covey-bench-'));
      storeSpec = this.kind === 'sqlite-off' ? `sqlite-off:${this.dataDir}` : this.dataDir;
    }
    this.relay = await startRelayProcess({
      entry: RELAY_TEST_ENTRY,
      ipc: true,
      ...(this.options.root === undefined ? {} : { root: this.options.root }),
      env: {
        RELAY_TEST_STORE: storeSpec,
        RELAY_TEST_LIMITS: JSON.stringify(BENCH_LIMITS),
        RELAY_TEST_VERIFY_THREADS: this.options.verifyThreads === undefined ? '' : String(this.options.verifyThreads),
        RELAY_SQLITE_THREAD: this.options.sqliteThread === true ? 'on' : 'off',
      },
    });
    const url = this.relay.url;
    this.channels = new Array(channelCount);
    // Bounded: `channelCount` channels, `setupConcurrency` at a time.
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let c = next++; c < channelCount; c = next++) {
        const members = Array.from({ length: channelSize }, () => newMember());
        this.channels[c] = { id: await setupGroup(url, members, this.agent), members };
      }
    };
    await Promise.all(Array.from({ length: setupConcurrency }, worker));
    if (this.proofKind === 'mac') {
      const relayAuthKey = await fetchRelayAuthKey(url, this.agent);
      this.proof = { relayAuthKey };
      // Each member's MAC key now (one X25519 each), as the app keeps it: not inside a step.
      for (const channel of this.channels) for (const member of channel.members) memberMacKey(member, relayAuthKey);
    }
  }

  async subscribe(channel: number, member: number, onFrame: (data: Buffer) => void, options: SubscribeOptions = {}): Promise<WebSocket> {
    const { id, members } = this.channel(channel);
    const key = members[member];
    if (key === undefined) throw new RangeError(`no member ${member} in channel ${channel}`);
    const ws = new WebSocket(`${this.url().replace(/^http/, 'ws')}/v1/ws`, {
      perMessageDeflate: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('relay subscribe timed out')), SUBSCRIBE_TIMEOUT_MS);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      ws.once('error', fail);
      ws.once('open', () => ws.send(JSON.stringify(subscribeFrame(key, id, 0, { proof: this.proof }))));
      const onSetup = (data: Buffer): void => {
        const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
        if (frame.type === 'error') fail(new Error(`subscribe refused: ${frame.code}`));
        if (frame.type !== 'subscribed') return;
        clearTimeout(timer);
        ws.off('message', onSetup);
        ws.on('message', onFrame);
        resolve();
      };
      ws.on('message', onSetup);
    });
    return ws;
  }

  preparePost(channel: number, author: number, payload: Uint8Array): PreparedPost {
    const { id, members } = this.channel(channel);
    const member = members[author];
    if (member === undefined) throw new RangeError(`no member ${author} in channel ${channel}`);
    const path = `/v1/channels/${id}/events`;
    const body = JSON.stringify({ packet: Buffer.from(payload).toString('base64url') });
    return { path, headers: { 'content-type': 'application/json', ...signedHeaders(member, 'POST', path, body, { proof: this.proof }) }, body };
  }

  send(post: PreparedPost): Promise<number> {
    return sendRequest(this.agent, this.url(), post);
  }

  async request<T>(op: string, args?: Record<string, unknown>): Promise<T> {
    if (this.relay === undefined) throw new Error(`${this.label} not started`);
    const reply = await this.relay.request<T>(op, args);
    // 'cpu': Redis's own CPU beside the relay's (`store`), when the store is a Redis of ours.
    if (op !== 'cpu' || this.redis === undefined) return reply;
    const store = await redisCpuUs(this.redis.port);
    return (store === undefined ? reply : { ...reply, store }) as T;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.relay?.stop();
    await this.redis?.stop();
    if (this.dataDir !== undefined) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private channel(index: number): { id: ChannelId; members: TestMember[] } {
    const channel = this.channels[index];
    if (channel === undefined) throw new RangeError(`no channel ${index}`);
    return channel;
  }

  private url(): string {
    if (this.relay === undefined) throw new Error(`${this.label} not started`);
    return this.relay.url;
  }
}

/**
 * The target called `name`: 'baseline', 'baseline-plain', or a relay target ('sqlite', 'redis',
 * 'sqlite-off', 'sqlite-thread', 'sqlite-vt', ...), optionally with the proof its load uses: 'sqlite@signature',
 * 'redis@mac' (key and label then name it: 'sqliteSignature', 'relay, SQLite (signatures)').
 * Without one a relay target uses BENCH_RELAY_PROOF (default 'mac') and keeps its plain key.
 */
export function makeTarget(name: string): BenchTarget {
  const [base = '', proofText, ...rest] = name.split('@');
  if (rest.length > 0 || (proofText !== undefined && proofText !== 'mac' && proofText !== 'signature')) {
    throw new Error(`bad bench target ${name}: a proof suffix is @mac or @signature`);
  }
  const target = makePlainTarget(base, proofText);
  if (proofText !== undefined && !(target instanceof RelayTarget)) throw new Error(`${base} takes no proof suffix`);
  return target;
}

function makePlainTarget(name: string, proof: RelayProofKind | undefined): BenchTarget {
  const relay = (key: string, label: string, kind: RelayStoreKind, options: RelayTargetOptions = {}): RelayTarget => {
    const chosen = proof ?? options.proof ?? defaultProof();
    const suffix = proof === undefined ? '' : proof === 'mac' ? 'Mac' : 'Signature';
    return new RelayTarget(`${key}${suffix}`, `${label} (${chosen === 'mac' ? 'MACs' : 'signatures'})`, kind, { ...options, proof: chosen });
  };
  switch (name) {
    case 'baseline':
      return new BaselineTarget();
    case 'baseline-plain':
      return new BaselineTarget(false);
    case 'sqlite':
      return relay('sqlite', 'relay, SQLite', 'sqlite');
    case 'sqlite-off':
      return relay('sqliteOff', 'relay, SQLite synchronous=OFF', 'sqlite-off');
    case 'redis':
      return relay('redis', 'relay, Redis', 'redis');
    case 'redis-off':
      return relay('redisOff', 'relay, Redis appendfsync no', 'redis-off');
    case 'sqlite-before':
    case 'redis-before': {
      const root = process.env.BENCH_BEFORE_DIR;
      if (root === undefined || root === '') throw new Error(`${name} needs BENCH_BEFORE_DIR (a checkout of the code to compare with)`);
      const kind = name === 'sqlite-before' ? 'sqlite' : 'redis';
      // A checkout from before request MACs knows signatures only: say `sqlite-before@mac` to insist.
      return relay(`${kind}Before`, `relay before, ${kind === 'sqlite' ? 'SQLite' : 'Redis'}`, kind, { root, proof: 'signature' });
    }
    case 'sqlite-thread':
      // The store on its own thread (RELAY_SQLITE_THREAD=on): beside 'sqlite', its A/B in one run.
      return relay('sqliteThread', 'relay, SQLite on its own thread', 'sqlite', { sqliteThread: true });
    case 'sqlite-vt':
      return relay('sqliteVerifyThread', 'relay, SQLite, 1 signature thread', 'sqlite', { verifyThreads: 1 });
    case 'redis-vt':
      return relay('redisVerifyThread', 'relay, Redis, 1 signature thread', 'redis', { verifyThreads: 1 });
    case 'sqlite-inline':
      return relay('sqliteInline', 'relay, SQLite, signatures on the event loop', 'sqlite', { verifyThreads: 0 });
    case 'redis-inline':
      return relay('redisInline', 'relay, Redis, signatures on the event loop', 'redis', { verifyThreads: 0 });
    default:
      throw new Error(`unknown bench target ${name}`);
  }
}

/**
 * BENCH_RELAY_PROOFS ("mac,signature"): every relay target of `names` once per proof
 * ('sqlite' → 'sqlite@mac', 'sqlite@signature'), next to each other so the ramp alternates between
 * them step by step; baselines and names with a proof already stay as they are. Unset: `names`.
 */
export function withProofs(names: readonly string[]): string[] {
  const text = process.env.BENCH_RELAY_PROOFS ?? '';
  if (text === '') return [...names];
  const proofs = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const proof of proofs) if (proof !== 'mac' && proof !== 'signature') throw new Error(`BENCH_RELAY_PROOFS: unknown proof ${proof}`);
  return names.flatMap((name) => (name.startsWith('baseline') || name.includes('@') ? [name] : proofs.map((proof) => `${name}@${proof}`)));
}

// `tsx bench/relay-targets.ts serve baseline|baseline-plain`: the baseline server child.
if (process.argv[2] === 'serve') {
  if (process.argv[3] !== 'baseline' && process.argv[3] !== 'baseline-plain') throw new Error(`unknown server kind ${process.argv[3]}`);
  serveBaseline(process.argv[3] === 'baseline');
}
