/**
 * A post over HTTP against a post over the open WebSocket, from a Chromium page (issue 10's
 * bench:client: the sender's `fetch()` → `requestStart` was its largest stage that persist-before-
 * send does not require; src/relay/README.md "WebSocket" `post` frames).
 *
 * One Chromium page at the relay's origin (no service worker: the app's would add a fetch event
 * to every HTTP post), one open WebSocket, and two members subscribed from Node. Posts signed in
 * Node beforehand, the same packet size as bench:client's; per post, in the page, the time from
 * `fetch()` / `ws.send()` to the relay's answer, and in Node the time until both other members
 * have the event (page clock and Node clock joined by wall time: the same machine). The two ways
 * alternate post by post (ABAB…), so drifting load falls on both alike; in blocks of BLOCK posts
 * per way, the CPU time of the relay process and of every Chromium process per post (load-robust).
 *
 * Env: BENCH_POSTS (400 per way), BENCH_POST_GAP_MS (5: the pause between posts).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ChannelId, ServerFrame } from '../src/shared/relay-api.js';
import { RELAY_TEST_ENTRY, startRelayProcess } from '../tests/relay/helpers/process.js';
import { newMember, postFrame, setupGroup, signedHeaders, subscribeFrame } from '../tests/relay/helpers/signed-http.js';
import { OPEN_LIMITS } from '../tests/worker/helpers/client-harness.js';
import { launchBenchChromium } from './client-chromium.js';

const POSTS = Number(process.env.BENCH_POSTS ?? 400);
const GAP_MS = Number(process.env.BENCH_POST_GAP_MS ?? 5);
/** Posts per way between two CPU readings. */
const BLOCK = 50;
/** bench:client's packets: 512 base64url characters. */
const PACKET = 'A'.repeat(512);
const CLK_TCK = 100;

/** CPU seconds (user + system) of `pids`, from /proc. */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLK_TCK;
}

/** Every descendant of `root` (this process's Chromium: the browser and its children). */
function descendants(root: number, exclude: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    for (const [child, p] of parent) {
      if (p !== pid || child === exclude) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

const pct = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'covey-post-ways-'));
  mkdirSync(join(dataDir, 'relay'));
  // The page comes from the relay itself (a page Playwright fulfils counts as public: Chromium's
  // local network access checks then refuse its socket to the loopback relay).
  mkdirSync(join(dataDir, 'site'));
  writeFileSync(join(dataDir, 'site', 'index.html'), '<!doctype html><title>post ways</title>');
  const relay = await startRelayProcess({
    entry: RELAY_TEST_ENTRY,
    env: { RELAY_TEST_STORE: join(dataDir, 'relay'), RELAY_TEST_LIMITS: JSON.stringify(OPEN_LIMITS), RELAY_TEST_STATIC: join(dataDir, 'site') },
  });
  const browser = await launchBenchChromium();
  try {
    const [alice, bob, carol] = [newMember(), newMember(), newMember()];
    const channel: ChannelId = await setupGroup(relay.url, [alice, bob, carol]);
    // Bob and Carol read from Node: the time each post's event reaches both.
    const arrived = new Map<string, number[]>();
    for (const reader of [bob, carol]) {
      const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/ws`);
      await new Promise((resolve) => ws.once('open', resolve));
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as ServerFrame;
        if (frame.type !== 'event' || frame.event.type !== 'packet') return;
        const at = performance.timeOrigin + performance.now();
        const id = frame.event.packet.slice(0, 16);
        arrived.set(id, [...(arrived.get(id) ?? []), at]);
      });
      ws.send(JSON.stringify(subscribeFrame(reader, channel, 3)));
    }
    const context = await browser.newContext({ serviceWorkers: 'block' });
    const page = await context.newPage();
    page.on('crash', () => console.error('post-ways: the page crashed'));
    page.on('console', (m) => console.error(`post-ways (page): ${m.text()}`));
    page.on('pageerror', (e) => console.error(`post-ways (page): ${e.message}`));
    await page.goto(`${relay.url}/`);
    // tsx (esbuild keepNames) wraps named functions in __name(): give the page a no-op one.
    await page.evaluate('globalThis.__name ??= (f) => f');
    await page.evaluate(async (wsUrl) => {
      const ws = new WebSocket(wsUrl);
      const waiting = new Map<number, () => void>();
      ws.onmessage = (event) => {
        const frame = JSON.parse(String(event.data)) as { type: string; id?: number };
        if (frame.id !== undefined) waiting.get(frame.id)?.();
      };
      await new Promise((resolve) => (ws.onopen = resolve));
      const w = window as unknown as Record<string, unknown>;
      w['viaHttp'] = async (url: string, headers: Record<string, string>, body: string) => {
        const started = performance.timeOrigin + performance.now();
        const response = await fetch(url, { method: 'POST', headers, body });
        await response.json();
        return [started, performance.timeOrigin + performance.now()];
      };
      w['viaSocket'] = async (frame: { id: number }) => {
        const started = performance.timeOrigin + performance.now();
        const answered = new Promise<void>((resolve) => waiting.set(frame.id, resolve));
        ws.send(JSON.stringify(frame));
        await answered;
        return [started, performance.timeOrigin + performance.now()];
      };
    }, `${relay.url.replace(/^http/, 'ws')}/v1/ws`);

    const chromium = descendants(process.pid, relay.pid);
    const ways = ['http', 'socket'] as const;
    const answerMs = { http: [] as number[], socket: [] as number[] };
    const bothMs = { http: [] as number[], socket: [] as number[] };
    const cpu = { http: { relay: 0, chromium: 0, posts: 0 }, socket: { relay: 0, chromium: 0, posts: 0 } };
    const load = [loadavg()[0]!];
    let n = 0;
    for (let block = 0; block < POSTS / BLOCK; block++) {
      // A block of BLOCK posts per way, ABAB inside, CPU read per way: alternate which goes first.
      for (const way of block % 2 === 0 ? ways : [...ways].reverse()) {
        const relayBefore = cpuSeconds([relay.pid]);
        const chromiumBefore = cpuSeconds(chromium);
        for (let i = 0; i < BLOCK; i++) {
          n++;
          const id = `${String(n).padStart(8, '0')}xxxxxxxx`;
          const body = JSON.stringify({ packet: id + PACKET.slice(16), postId: `p${n}`, wake: true });
          const path = `/v1/channels/${channel}/events`;
          const [started, answered] =
            way === 'http'
              ? await page.evaluate(([url, headers, b]) => (window as unknown as { viaHttp: (u: string, h: Record<string, string>, b: string) => Promise<[number, number]> }).viaHttp(url, headers, b), [
                  relay.url + path,
                  { 'content-type': 'application/json', ...signedHeaders(alice, 'POST', path, body) },
                  body,
                ] as const)
              : await page.evaluate((frame) => (window as unknown as { viaSocket: (f: unknown) => Promise<[number, number]> }).viaSocket(frame), postFrame(alice, channel, body, n));
          answerMs[way].push(answered - started);
          const deadline = Date.now() + 10_000;
          while ((arrived.get(id)?.length ?? 0) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
          const at = arrived.get(id) ?? [];
          if (at.length === 2) bothMs[way].push(Math.max(...at) - started);
          await new Promise((r) => setTimeout(r, GAP_MS));
        }
        cpu[way].relay += cpuSeconds([relay.pid]) - relayBefore;
        cpu[way].chromium += cpuSeconds(chromium) - chromiumBefore;
        cpu[way].posts += BLOCK;
      }
      load.push(loadavg()[0]!);
    }
    console.log(`post ways: ${POSTS} posts per way, blocks of ${BLOCK}, load average ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} (2 cores)`);
    console.log('way      answer p50 / p90 / p99 ms    both others p50 / p90 / p99 ms    CPU ms/post relay / Chromium');
    for (const way of ways) {
      const a = answerMs[way];
      const b = bothMs[way];
      console.log(
        `${way.padEnd(8)} ${[50, 90, 99].map((p) => pct(a, p).toFixed(2)).join(' / ').padEnd(28)} ${[50, 90, 99].map((p) => pct(b, p).toFixed(2)).join(' / ').padEnd(33)} ` +
          `${((cpu[way].relay * 1000) / cpu[way].posts).toFixed(2)} / ${((cpu[way].chromium * 1000) / cpu[way].posts).toFixed(2)}`,
      );
    }
    console.log(JSON.stringify({ bench: 'post-ways', posts: POSTS, load: [Math.min(...load), Math.max(...load)], answerMs: { http: pct(answerMs.http, 50), socket: pct(answerMs.socket, 50) }, bothMs: { http: pct(bothMs.http, 50), socket: pct(bothMs.socket, 50) }, cpu }));
  } finally {
    await browser.close();
    await relay.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
