/**
 * `npm run bench:client` (issue 10 "Benchmark"): three UI-less clients (the real worker core on
 * fake-indexeddb, WebCrypto through the hybrid provider) on one relay.
 *
 * 1. Latency: MESSAGES messages, round robin from Alice, Bob and Carol, each sent when the previous
 *    one was shown at both others; per message the time from the `send` command to the moment the
 *    conversation view that shows it has been pushed at BOTH other clients. Targets: p50 ≤ 12 ms,
 *    p99 ≤ 30 ms (mpenc_js: p50 119 ms, p99 284 ms for three members).
 * 2. Baseline in the same run, same relay: the bare relay round trip (a signed POST of a packet of
 *    the same size → the WebSocket push at both other members, no engine, no store), so the share
 *    of the engine and the store is visible.
 * 3. Restore: a profile holding CONVERSATIONS conversations × MESSAGES_PER_CONVERSATION messages
 *    (made by real traffic: Erin, in her own thread, fills the rooms concurrently; Dave receives in
 *    this thread), closed and reopened: time to 'ready', to the conversation list, and to the first
 *    conversation shown with its 200 newest messages.
 *
 * The relay runs in its own process (SQLite on disk, synchronous=FULL, as in production). Each of
 * the three latency clients runs its engine in its own worker thread and is driven only through
 * the real postMessage bridge, like the UI; the restore part runs in this thread. The three share
 * this process's libuv thread pool, where Node runs WebCrypto: the npm script gives it 8 threads
 * (UV_THREADPOOL_SIZE) so three simulated devices do not queue behind one pool of 4.
 * Output: a table, then one JSON line.
 *
 * 4. The same latency in headless Chromium (bench/client-chromium.ts): three contexts, each with
 *    the production build's engine worker on the browser's IndexedDB and WebCrypto, the product's
 *    real environment, against the same relay; the baseline above is the one for both runtimes.
 *    The target is judged on Chromium when it ran (the Node row carries Node-only costs: its fetch,
 *    WebCrypto dispatch onto the libuv pool, fake-indexeddb), and both are printed.
 *
 * Env: BENCH_MESSAGES (200), BENCH_CONVERSATIONS (10), BENCH_MESSAGES_PER_CONVERSATION (1000),
 * BENCH_CLIENT_RUNTIME (node,chromium: which latency rows run), BENCH_CLIENT_APP_DIR (a production
 * build to serve instead of building one).
 * Profiling (local): BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of each client thread,
 * from BENCH_CPU_PROF_START_MS (45 s, after the setup) for BENCH_CPU_PROF_MS (20 s).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { WebSocket } from 'ws';
import type { ChannelId, ServerFrame } from '../src/shared/relay-api.js';
import type { ContactId, ContactsView, ConversationId, ConversationsView, ConversationView, WorkerApi } from '../src/shared/worker-api.js';
import { WorkerClient, type BridgePort } from '../src/shared/worker-bridge.js';
import { RELAY_TEST_ENTRY, startRelayProcess } from '../tests/relay/helpers/process.js';
import { keepAliveAgent, newMember, rawRequest, setupGroup, signedHeaders, subscribeFrame, type TestMember } from '../tests/relay/helpers/signed-http.js';
import { identity, OPEN_LIMITS, Profile, TestClient } from '../tests/worker/helpers/client-harness.js';
import { buildApp } from '../tests/browser/harness/app.js';
import { engineWorkerAsset, launchBenchChromium, PageClient } from './client-chromium.js';
import { printJsonLine, printTable, round } from './harness.js';

const MESSAGES = envInt('BENCH_MESSAGES', 200);
const CONVERSATIONS = envInt('BENCH_CONVERSATIONS', 10);
const MESSAGES_PER_CONVERSATION = envInt('BENCH_MESSAGES_PER_CONVERSATION', 1_000);
const RUNTIMES = (process.env.BENCH_CLIENT_RUNTIME ?? 'node,chromium').split(',').map((r) => r.trim());
for (const r of RUNTIMES) if (r !== 'node' && r !== 'chromium') throw new Error(`BENCH_CLIENT_RUNTIME: unknown runtime "${r}" (node, chromium)`);
const PREBUILT_APP = process.env.BENCH_CLIENT_APP_DIR === undefined || process.env.BENCH_CLIENT_APP_DIR === '' ? undefined : process.env.BENCH_CLIENT_APP_DIR;
/** One step may not hang the run: a message not shown within this is a failure. */
const STEP_TIMEOUT_MS = 30_000;
/** Messages in flight while building the restore profile (bounds memory and the relay's queue). */
const BUILD_WINDOW = 50;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined ? fallback : Number.parseInt(v, 10);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** Bare relay: A posts signed packets, B and C are subscribed; time post → both pushes. */
async function baseline(url: string, count: number, packetBytes: number): Promise<number[]> {
  const members: TestMember[] = [newMember(), newMember(), newMember()];
  const channel = await setupGroup(url, members);
  const waiting = new Map<string, { left: number; done: () => void }>();
  const sockets: WebSocket[] = [];
  for (const member of members.slice(1)) {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify(subscribeFrame(member, channel as ChannelId, 0))));
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
        if (frame.type === 'subscribed') resolve();
        else if (frame.type === 'event' && frame.event.type === 'packet') {
          const w = waiting.get(frame.event.packet);
          if (w !== undefined && --w.left === 0) w.done();
        }
      });
    });
  }
  const samples: number[] = [];
  const path = `/v1/channels/${channel}/events`;
  for (let i = 0; i < count; i++) {
    const packet = Buffer.alloc(packetBytes, i % 251).toString('base64url').slice(0, -8) + String(i).padStart(8, '0');
    const body = JSON.stringify({ packet });
    const start = performance.now();
    const shown = new Promise<void>((resolve) => waiting.set(packet, { left: 2, done: resolve }));
    const headers = { 'content-type': 'application/json', ...signedHeaders(members[0]!, 'POST', path, body) };
    const { status } = await rawRequest(url + path, 'POST', headers, body);
    if (status !== 201) throw new Error(`baseline post: HTTP ${status}`);
    await shown;
    samples.push(performance.now() - start);
    waiting.delete(packet);
  }
  for (const ws of sockets) ws.close();
  return samples;
}

/** A client whose engine runs in a worker thread, reached only through the bridge (like the UI). */
class ThreadClient {
  contacts: ContactsView | undefined;
  conversations: ConversationsView | undefined;
  view: ConversationView | undefined;
  private waiters: ((view: ConversationView) => void)[] = [];

  private constructor(
    readonly name: string,
    private readonly worker: Worker,
    readonly client: WorkerClient,
  ) {
    client.watch('contacts', {}, (v) => (this.contacts = v));
    client.watch('conversations', {}, (v) => (this.conversations = v));
  }

  static async start(name: string, relay: string): Promise<ThreadClient> {
    const worker = new Worker(new URL('./client-thread-entry.mjs', import.meta.url), { workerData: { relay } });
    const port: BridgePort = {
      postMessage: (m) => worker.postMessage(m),
      addEventListener: (_type, listener) => void worker.on('message', (data: unknown) => listener({ data })),
    };
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { t?: string }) => m.t === 'started' && resolve());
      worker.once('error', reject);
    });
    return new ThreadClient(name, worker, new WorkerClient(port, { defaultTimeoutMs: STEP_TIMEOUT_MS }));
  }

  open(id: ConversationId): void {
    this.client.watch('conversation', { conversationId: id }, (view) => {
      this.view = view;
      for (const w of this.waiters) w(view);
    });
  }

  /** Resolves with the time the pushed view first shows `text`. */
  whenShown(text: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: "${text}" not shown within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
      const check = (view: ConversationView) => {
        const timeline = view.timeline;
        for (let i = timeline.length - 1; i >= Math.max(0, timeline.length - 5); i--) {
          const item = timeline[i]!;
          if (item.type === 'message' && item.text === text) {
            clearTimeout(timer);
            this.waiters = this.waiters.filter((w) => w !== check);
            resolve(performance.now());
            return;
          }
        }
      };
      this.waiters.push(check);
    });
  }

  async until<T>(what: string, probe: () => T | undefined | false): Promise<T> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    this.client.close();
    await this.worker.terminate();
  }
}

/** What the group setup needs of a client, in a Node thread or in a Chromium page. */
interface SetupClient {
  readonly name: string;
  readonly client: { readonly api: WorkerApi };
  readonly contacts: ContactsView | undefined;
  readonly conversations: ConversationsView | undefined;
  readonly view: ConversationView | undefined;
  until<T>(what: string, probe: () => T | undefined | false): Promise<T>;
  open(id: ConversationId): void | Promise<void>;
}

/** Alice adds Bob from his card; Bob accepts. Returns Alice's contact id for Bob. */
async function threadConnect(a: SetupClient, b: SetupClient): Promise<ContactId> {
  const card = await b.client.api.myCard({});
  const { contactId } = await a.client.api.addContact({ link: card.link });
  const request = await b.until('request', () => b.contacts?.requests.find((r) => r.name === a.name));
  await b.client.api.acceptContactRequest({ requestId: request.id });
  await a.until('connected', () => a.contacts?.contacts.some((c) => c.id === contactId && c.state === 'connected'));
  return contactId;
}

/** Erin (in her thread) adds Dave (in this thread) from his card; Dave accepts. Returns Erin's contact id for Dave. */
async function connectThreadTo(a: ThreadClient, b: TestClient): Promise<ContactId> {
  const card = await b.call('myCard', {});
  const { contactId } = await a.client.api.addContact({ link: card.link });
  const request = await b.until('request', () => b.contacts?.requests.find((r) => r.name === a.name));
  await b.call('acceptContactRequest', { requestId: request.id });
  await a.until('connected', () => a.contacts?.contacts.some((c) => c.id === contactId && c.state === 'connected'));
  return contactId;
}

/** A group of two made by Erin (thread) with Dave (this thread), active at both. */
async function roomOf(owner: ThreadClient, other: TestClient, contact: ContactId, name: string): Promise<{ erin: ConversationId; dave: ConversationId }> {
  const erin = (await owner.client.api.createGroup({ name, contactIds: [contact] })).conversationId;
  const invitation = await other.until('invitation', () => other.conversations?.invitations.find((i) => i.groupName === name));
  const dave = (await other.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
  await other.until(`${name} active at Dave`, () => other.view(dave)?.state === 'active' && other.view(dave)!.members.length === 2);
  await owner.until(`${name} active at Erin`, () => owner.conversations?.conversations.some((c) => c.id === erin && c.state === 'active'));
  return { erin, dave };
}

/** Alice, Bob and Carol: contacts, then a group of three, active and open at each. */
async function groupOfThree<C extends SetupClient>(threads: readonly C[]): Promise<Map<C, ConversationId>> {
  const [alice, bob, carol] = threads as [C, C, C];
  for (const t of threads) await t.client.api.createIdentity({ displayName: t.name });
  const ab = await threadConnect(alice, bob);
  const ac = await threadConnect(alice, carol);
  const ids = new Map<C, ConversationId>();
  ids.set(alice, (await alice.client.api.createGroup({ name: 'Bench', contactIds: [ab, ac] })).conversationId);
  for (const t of [bob, carol]) {
    const invitation = await t.until('invitation', () => t.conversations?.invitations[0]);
    ids.set(t, (await t.client.api.acceptInvitation({ invitationId: invitation.id })).conversationId);
  }
  for (const t of threads) {
    await t.open(ids.get(t)!);
    await t.until('the group of three', () => t.view?.state === 'active' && t.view.members.filter((m) => m.role === 'member').length === 3);
  }
  return ids;
}

/**
 * The latency in Chromium: per message, the time between the page clocks of the sender (before
 * `send` is posted to its worker) and of the later of the two others (their view shows it); and
 * the same span as the driver saw it (plus the DevTools protocol round trips).
 */
async function chromiumLatency(browser: Browser, relayUrl: string, workerPath: string): Promise<{ samples: number[]; driver: number[] }> {
  const pages: PageClient[] = [];
  try {
    for (const name of ['Alice', 'Bob', 'Carol']) pages.push(await PageClient.start(browser, name, relayUrl, workerPath, STEP_TIMEOUT_MS));
    const setupStart = performance.now();
    const ids = await groupOfThree(pages);
    console.error(`chromium setup ${Math.round(performance.now() - setupStart)} ms`);
    const samples: number[] = [];
    const driver: number[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const from = pages[i % 3]!;
      const others = pages.filter((t) => t !== from);
      const text = `message ${i} from ${from.name}: the quick brown fox jumps over the lazy dog`;
      await Promise.all(others.map((o) => o.arm(text)));
      const shown = others.map((o) => o.shownAt(text));
      const wallStart = performance.now();
      const start = await from.send(ids.get(from)!, text);
      const times = await Promise.all(shown);
      driver.push(performance.now() - wallStart);
      samples.push(Math.max(...times) - start);
    }
    return { samples, driver };
  } finally {
    for (const p of pages) await p.close();
  }
}

/** The latency with each engine in its own Node worker thread behind the bridge. */
async function nodeLatency(relayUrl: string, threadClients: ThreadClient[]): Promise<{ samples: number[]; cpuMsPerMessage: number; loadDuring: number[] }> {
  const setupStart = performance.now();
  const threads = await Promise.all(['Alice', 'Bob', 'Carol'].map((n) => ThreadClient.start(n, relayUrl)));
  threadClients.push(...threads);
  const ids = await groupOfThree(threads);
  console.error(`node setup ${Math.round(performance.now() - setupStart)} ms`);
  const samples: number[] = [];
  // CPU of this process (the three client threads and the driver; the relay is another
  // process) per message: less swayed than wall time by what else loads the machine.
  const cpuBefore = process.cpuUsage();
  const loadBefore = loadavg()[0]!;
  for (let i = 0; i < MESSAGES; i++) {
    const from = threads[i % 3]!;
    const others = threads.filter((t) => t !== from);
    const text = `message ${i} from ${from.name}: the quick brown fox jumps over the lazy dog`;
    const shown = others.map((o) => o.whenShown(text));
    const start = performance.now();
    await from.client.api.send({ conversationId: ids.get(from)!, text });
    const times = await Promise.all(shown);
    samples.push(Math.max(...times) - start);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const loadDuring = [loadBefore, loadavg()[0]!];
  for (const t of threads) {
    threadClients.splice(threadClients.indexOf(t), 1);
    await t.close();
  }
  return { samples, cpuMsPerMessage: (cpu.user + cpu.system) / 1000 / MESSAGES, loadDuring };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-bench-client-'));
  const withChromium = RUNTIMES.includes('chromium');
  // Chromium runs the production build, served by the relay (its origin is the app's). It is
  // built while the restore profile is (neither is measured), to keep the run under 3 minutes;
  // the relay needs an index.html to serve a directory at all, and reads files when asked.
  const appDir = withChromium ? (PREBUILT_APP ?? join(dataDir, 'app')) : undefined;
  if (appDir !== undefined && PREBUILT_APP === undefined) {
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'index.html'), '<!doctype html><title>building</title>');
  }
  mkdirSync(join(dataDir, 'relay'));
  const relay = await startRelayProcess({
    entry: RELAY_TEST_ENTRY,
    env: { RELAY_TEST_STORE: join(dataDir, 'relay'), RELAY_TEST_LIMITS: JSON.stringify(OPEN_LIMITS), ...(appDir === undefined ? {} : { RELAY_TEST_STATIC: appDir }) },
  });
  const clients: TestClient[] = [];
  const threadClients: ThreadClient[] = [];
  let browser: Browser | undefined;
  try {
    // 1. send → shown at both others in Node threads (in Chromium: 4, once the app is built).
    const node = RUNTIMES.includes('node') ? await nodeLatency(relay.url, threadClients) : null;
    const packetBytes = 512;

    // 2. Baseline on the same relay.
    const base = await baseline(relay.url, MESSAGES, Math.round((packetBytes * 3) / 4));

    // 3. Restore: Dave's profile gets CONVERSATIONS × MESSAGES_PER_CONVERSATION from Erin. Erin
    // runs in her own thread (as a separate device would) and the rooms fill concurrently, so
    // building 10,000 messages uses both cores instead of queueing two engines on one thread.
    const buildStart = performance.now();
    const appBuilt =
      appDir === undefined || PREBUILT_APP !== undefined
        ? Promise.resolve()
        : buildApp({ outDir: appDir, version: 'bench-client' }).then(() => console.error(`app built in ${Math.round(performance.now() - buildStart)} ms`));
    const erin = await ThreadClient.start('Erin', relay.url);
    threadClients.push(erin);
    await erin.client.api.createIdentity({ displayName: erin.name });
    const daveProfile = new Profile('Dave');
    let dave = await TestClient.start('Dave', { relay, profile: daveProfile });
    clients.push(dave);
    await identity(dave);
    const ed = await connectThreadTo(erin, dave);
    const rooms: { erin: ConversationId; dave: ConversationId }[] = [];
    for (let c = 0; c < CONVERSATIONS; c++) rooms.push(await roomOf(erin, dave, ed, `Room ${c}`));
    const fill = async (room: { erin: ConversationId; dave: ConversationId }) => {
      for (let i = 0; i < MESSAGES_PER_CONVERSATION; i += BUILD_WINDOW) {
        const batch = Math.min(BUILD_WINDOW, MESSAGES_PER_CONVERSATION - i);
        for (let k = 0; k < batch; k++) await erin.client.api.send({ conversationId: room.erin, text: `room message ${i + k}` });
        const engine = dave.host.engine!;
        await dave.until('the batch at Dave', () => (engine.conversations.get(room.dave)?.record.nextPosition ?? 0) > i + batch, 300_000).catch((error: unknown) => {
          const state = (c: TestClient) => ({ errors: c.errors.slice(-5), outbox: c.host.engine?.outbox.describe(), relays: c.app?.relays.map((r) => `${r.state} ${r.problem ?? ''}`) });
          console.error('stalled while building the restore profile', JSON.stringify({ dave: state(dave) }));
          throw error;
        });
      }
    };
    await Promise.all(rooms.map(fill));
    await new Promise((r) => setTimeout(r, 3_000)); // acks settle
    const buildMs = performance.now() - buildStart;
    console.error(`restore profile built in ${Math.round(buildMs)} ms`);
    dave.close();
    clients.splice(clients.indexOf(dave), 1);

    const restoreStart = performance.now();
    dave = await TestClient.start('Dave', { relay, profile: daveProfile });
    clients.push(dave);
    const readyMs = (await dave.until('ready', () => dave.app?.phase === 'ready' && performance.now(), 300_000)) - restoreStart;
    const listMs = (await dave.until('list', () => dave.conversations?.conversations.length === CONVERSATIONS && performance.now(), 300_000)) - restoreStart;
    const first = rooms.at(-1)!.dave;
    const shownMs =
      (await dave.until('first conversation', () => (dave.view(first)?.timeline.filter((t) => t.type === 'message').length ?? 0) >= Math.min(200, MESSAGES_PER_CONVERSATION) && performance.now(), 300_000)) -
      restoreStart;

    dave.close();
    clients.splice(clients.indexOf(dave), 1);
    await erin.close();
    threadClients.splice(threadClients.indexOf(erin), 1);

    // 4. The latency in Chromium, on the same relay (its baseline is the one above).
    await appBuilt;
    let inChromium: { samples: number[]; driver: number[]; loadDuring: number[] } | null = null;
    if (appDir !== undefined) {
      browser = await launchBenchChromium();
      const loadBefore = loadavg()[0]!;
      const measured = await chromiumLatency(browser, relay.url, engineWorkerAsset(appDir));
      inChromium = { ...measured, loadDuring: [loadBefore, loadavg()[0]!] };
      await browser.close();
      browser = undefined;
    }

    const bare = stats(base);
    const rows: string[][] = [];
    const latencyRow = (label: string, samples: number[]) => {
      const l = stats(samples);
      rows.push([label, String(l.n), l.p50.toFixed(1), l.p99.toFixed(1), l.max.toFixed(1)]);
      return l;
    };
    const shareRow = (label: string, l: ReturnType<typeof stats>) => rows.push([label, '', (l.p50 - bare.p50).toFixed(1), (l.p99 - bare.p99).toFixed(1), '']);
    const nodeStats = node === null ? null : latencyRow('send → shown at both others: Node (3 worker threads, fake-indexeddb)', node.samples);
    const chromiumStats = inChromium === null ? null : latencyRow('send → shown at both others: Chromium (3 contexts, IndexedDB)', inChromium.samples);
    if (inChromium !== null) latencyRow('  the same, as the driver saw it (+ DevTools round trips)', inChromium.driver);
    rows.push(['baseline: bare relay post → both pushes (same relay, same run)', String(bare.n), bare.p50.toFixed(1), bare.p99.toFixed(1), bare.max.toFixed(1)]);
    if (nodeStats !== null) shareRow('engine + store share, Node (p50 / p99 difference)', nodeStats);
    if (chromiumStats !== null) shareRow('engine + store share, Chromium (p50 / p99 difference)', chromiumStats);
    printTable(['measure', 'n', 'p50 ms', 'p99 ms', 'max ms'], rows);
    console.log('');
    printTable(
      ['restore of a profile (Node)', 'conversations', 'messages', 'ms'],
      [
        ['to ready (store opened, sessions restored)', String(CONVERSATIONS), String(CONVERSATIONS * MESSAGES_PER_CONVERSATION), readyMs.toFixed(0)],
        ['to the conversation list shown', '', '', listMs.toFixed(0)],
        ['to a conversation shown (200 newest)', '', '', shownMs.toFixed(0)],
      ],
    );
    if (node !== null) console.log(`Node clients' CPU per message (3 threads + driver): ${node.cpuMsPerMessage.toFixed(2)} ms; load average during the Node run ${node.loadDuring.map((l) => l.toFixed(1)).join(' → ')} (2 cores)`);
    if (inChromium !== null) console.log(`load average during the Chromium run ${inChromium.loadDuring.map((l) => l.toFixed(1)).join(' → ')} (2 cores)`);
    // The product runs in the browser: the target is judged there when Chromium ran.
    const judged = chromiumStats ?? nodeStats!;
    const judgedOn = chromiumStats !== null ? 'chromium' : 'node';
    const meets = (l: ReturnType<typeof stats> | null) => l !== null && l.p50 <= 12 && l.p99 <= 30;
    console.log(
      `targets (judged on ${judgedOn === 'chromium' ? 'Chromium, the product’s runtime' : 'Node'}): p50 ≤ 12 ms ${judged.p50 <= 12 ? 'met' : 'MISSED'}, p99 ≤ 30 ms ${judged.p99 <= 30 ? 'met' : 'MISSED'}` +
        (nodeStats !== null && chromiumStats !== null ? `; Node: ${meets(nodeStats) ? 'met' : 'MISSED'}` : '') +
        `; packet ${packetBytes} base64 chars`,
    );
    const latencyJson = (l: ReturnType<typeof stats>) => ({ n: l.n, p50Ms: round(l.p50), p99Ms: round(l.p99), maxMs: round(l.max) });
    printJsonLine('client', {
      results: {
        latency: nodeStats === null ? null : { ...latencyJson(nodeStats), cpuMsPerMessage: round(node!.cpuMsPerMessage), loadAverage: node!.loadDuring.map(round) },
        latencyChromium: chromiumStats === null ? null : { ...latencyJson(chromiumStats), driver: latencyJson(stats(inChromium!.driver)), loadAverage: inChromium!.loadDuring.map(round) },
        baseline: { n: bare.n, p50Ms: round(bare.p50), p99Ms: round(bare.p99), maxMs: round(bare.max) },
        restore: { conversations: CONVERSATIONS, messagesPerConversation: MESSAGES_PER_CONVERSATION, readyMs: round(readyMs), listMs: round(listMs), conversationShownMs: round(shownMs) },
        targets: { p50Ms: 12, p99Ms: 30, judgedOn, met: meets(judged), metNode: nodeStats === null ? null : meets(nodeStats), metChromium: chromiumStats === null ? null : meets(chromiumStats) },
      },
    });
  } finally {
    await browser?.close();
    for (const t of threadClients) await t.close();
    for (const c of clients) c.close();
    keepAliveAgent.destroy();
    await relay.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
