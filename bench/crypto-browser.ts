/**
 * `npm run bench:crypto-browser`: noble against WebCrypto for the small symmetric primitives, per
 * call, in a dedicated worker of headless Chromium, Firefox and WebKit (where the engine runs: the
 * hybrid's thresholds, src/protocol/crypto/select.ts, are chosen from these numbers). Then one
 * JSON line.
 *
 * bench:crypto measures in Node, where a WebCrypto call is a hop to libuv's thread pool (~50 µs);
 * a browser's WebCrypto costs what its own implementation costs, so the crossovers differ per
 * engine. The worker code (bench/crypto-browser-worker.ts, the repo's own providers) is bundled
 * with esbuild and served from http://127.0.0.1 (a secure context, so `crypto.subtle` exists)
 * with cross-origin isolation headers (finer timers). Per browser, per primitive, per size: median
 * µs per call of alternating rounds, awaited one by one ("seq"), all in flight at once
 * ("flight"), and one by one after evicting L1 ("cold": closer to the engine, which runs other
 * code between two decryptions), and the crossover: the smallest size from which WebCrypto is at
 * least as fast at every larger size measured.
 *
 * Options: --browsers chromium,firefox,webkit (default the first two; WebKitGTK's MiniBrowser
 * runs under its own Xvfb through the browser tests' WebDriver harness), --rounds 5, --batch-ms 8
 * (one timed batch), --sizes 32,64,...,8192. ~30 s per browser on the shared 2-core machine,
 * ~20 s for WebKit. tests/browser/bench-crypto-browser.test.ts runs it at two sizes, one round,
 * in each engine of the browser tests, and reads its "detects" line and JSON line.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../tests/browser/harness/chromium.js';
import { FIREFOX_PATH } from '../tests/browser/harness/firefox.js';
import { tempDir } from '../tests/browser/harness/app.js';
import { startXvfb, stopGroup } from '../tests/browser/harness/processes.js';
import { webkitEngine } from '../tests/browser/harness/webkit.js';
import { MODES, PRIMITIVES, type CellRequest, type CellTimes, type Mode, type PacketAnswer, type PacketRequest, type Primitive, type WorkerAnswer } from './crypto-browser-cells.js';
import type { CryptoRuntime } from '../src/protocol/crypto/detect.js';
import { MEASURED_THRESHOLDS, thresholdsFor } from '../src/protocol/crypto/select.js';
import { printJsonLine, printTable, round } from './harness.js';

type BrowserName = 'chromium' | 'firefox' | 'webkit';
const BROWSERS: readonly BrowserName[] = ['chromium', 'firefox', 'webkit'];
/** WebKit only when asked: it needs Xvfb, and WebKitWebDriver's MiniBrowser is slow to start. */
const DEFAULT_BROWSERS: readonly BrowserName[] = ['chromium', 'firefox'];
/** Padded plaintext sizes of the v2 packets timed whole (128 B: a short message; catch-up packets are 128-512 B). */
const PACKET_SIZES = [128, 256, 512, 1024];
const DEFAULT_SIZES = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

const { values: options } = parseArgs({
  options: {
    browsers: { type: 'string', default: DEFAULT_BROWSERS.join(',') },
    rounds: { type: 'string', default: '5' },
    'batch-ms': { type: 'string', default: '8' },
    sizes: { type: 'string', default: DEFAULT_SIZES.join(',') },
  },
});
const browsers = options.browsers.split(',').map((b) => b.trim()) as BrowserName[];
for (const b of browsers) if (!BROWSERS.includes(b)) throw new Error(`--browsers: unknown "${b}" (known: ${BROWSERS.join(', ')})`);
const sizes = options.sizes.split(',').map(Number);
const rounds = Number(options.rounds);
const batchMs = Number(options['batch-ms']);

/** The page: starts the worker once and hands it one request at a time. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>bench:crypto-browser</title>
<script>
  const worker = new Worker('/worker.js', { type: 'module' });
  window.runCell = (request) => new Promise((resolve, reject) => {
    worker.onmessage = (event) => (event.data.error ? reject(new Error(event.data.error)) : resolve(event.data));
    worker.onerror = (event) => reject(new Error('worker: ' + event.message));
    worker.postMessage(request);
  });
</script>`;

async function serve(workerSource: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (request.url === '/') response.writeHead(200, { 'Content-Type': 'text/html', ...isolation }).end(PAGE);
    else if (request.url === '/worker.js') response.writeHead(200, { 'Content-Type': 'text/javascript', ...isolation }).end(workerSource);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, origin: `http://127.0.0.1:${address.port}` };
}

/** One browser's page: `runCell` hands a request to its worker and resolves with its answer; `close` ends the browser. */
interface BenchPage {
  runCell<T>(request: CellRequest | PacketRequest): Promise<T>;
  readonly version: string;
  close(): Promise<void>;
}

/** The page's `runCell`, called from a driver (a string: tsx's __name wrappers stay out of the page). */
const callRunCell = (request: CellRequest | PacketRequest) => `runCell(${JSON.stringify(request)})`;

async function openChromium(origin: string): Promise<BenchPage> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  const page = await browser.newPage();
  await page.goto(origin + '/');
  return { runCell: (request) => page.evaluate(callRunCell(request)) as never, version: browser.version(), close: () => browser.close() };
}

async function openFirefox(origin: string): Promise<BenchPage> {
  const userDataDir = tempDir('covey-bench-firefox-');
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX_PATH, protocol: 'webDriverBiDi', headless: true, userDataDir, timeout: 180_000 });
  const page = await browser.newPage();
  await page.goto(origin + '/');
  const close = async () => {
    await browser.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { runCell: (request) => page.evaluate(callRunCell(request)) as never, version: await browser.version(), close };
}

/** WebKitGTK's MiniBrowser under its own Xvfb, through the browser tests' WebDriver harness. */
async function openWebKit(origin: string): Promise<BenchPage> {
  const runDir = tempDir('covey-bench-webkit-');
  const { xvfb, display } = await startXvfb('1280x800', runDir);
  const engine = await webkitEngine({ display, runDir });
  const profile = await engine.newProfile();
  const tab = await profile.open(origin + '/');
  const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libwebkit2gtk-4.1-0'], { encoding: 'utf8' });
  const close = async () => {
    await engine.close();
    await stopGroup(xvfb);
    rmSync(runDir, { recursive: true, force: true });
  };
  // WebDriver's "execute script" waits for a returned promise.
  return { runCell: (request) => tab.evaluate((r) => (window as unknown as { runCell(r: unknown): Promise<never> }).runCell(r), request), version: `WebKitGTK ${version}`, close };
}

/** The smallest size from which WebCrypto is at least as fast at every larger size; undefined if never. */
function crossover(times: CellTimes, mode: Mode): number | undefined {
  let found: number | undefined;
  for (const size of [...sizes].reverse()) {
    const cell = times[String(size)]!;
    if (cell.webcrypto[mode] <= cell.noble[mode]) found = size;
    else break;
  }
  return found;
}

const us = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const bytes = (size: number | undefined) => (size === undefined ? `> ${sizes.at(-1)} B` : size >= 1024 ? `${size / 1024} KiB` : `${size} B`);

async function main(): Promise<void> {
  const started = performance.now();
  const bundle = await build({ entryPoints: ['bench/crypto-browser-worker.ts'], bundle: true, format: 'esm', target: 'es2022', write: false, minify: true });
  const { server, origin } = await serve(bundle.outputFiles[0]!.text);
  const json: Record<string, unknown> = {};
  try {
    for (const name of browsers) {
      const page = name === 'chromium' ? await openChromium(origin) : name === 'firefox' ? await openFirefox(origin) : await openWebKit(origin);
      const answers: Partial<Record<Primitive, WorkerAnswer>> = {};
      let hybrids: PacketRequest['hybrids'] = {};
      let packets: PacketAnswer = { times: {} };
      try {
        for (const primitive of PRIMITIVES) {
          const request: CellRequest = { primitive, sizes, rounds, batchMs };
          answers[primitive] = await page.runCell<WorkerAnswer>(request);
        }
        const runtime = answers[PRIMITIVES[0]!]!.runtime as CryptoRuntime;
        const own = thresholdsFor(runtime);
        hybrids = { node: MEASURED_THRESHOLDS, [runtime]: own, 'aes-ctr-all': { ...own, aesCtrMinBytes: 0 } };
        packets = await page.runCell<PacketAnswer>({ kind: 'packet', paddedSizes: PACKET_SIZES, hybrids, rounds, batchMs });
      } finally {
        await page.close();
      }
      const first = answers[PRIMITIVES[0]!]!;
      console.log(`\n${name} ${page.version}: dedicated worker, µs per call, median of ${rounds} alternating rounds (crossOriginIsolated: ${first.crossOriginIsolated})`);
      console.log(`  ${first.userAgent}\n  the engine detects "${first.runtime}": thresholds ${JSON.stringify(thresholdsFor(first.runtime as CryptoRuntime))}\n`);
      const rows: string[][] = [];
      const crossovers: Record<string, Record<Mode, number | null>> = {};
      for (const primitive of PRIMITIVES) {
        const times = answers[primitive]!.times;
        for (const size of sizes) {
          const c = times[String(size)]!;
          rows.push([`${primitive} ${bytes(size)}`, ...MODES.flatMap((mode) => [us(c.noble[mode]), us(c.webcrypto[mode])])]);
        }
        const found = MODES.map((mode) => crossover(times, mode));
        crossovers[primitive] = Object.fromEntries(MODES.map((mode, i) => [mode, found[i] ?? null])) as Record<Mode, number | null>;
        rows.push([`  ${primitive} crossover`, ...found.flatMap((size) => ['', bytes(size)])]);
      }
      printTable(['primitive size', 'noble seq', 'web seq', 'noble flight', 'web flight', 'noble cold', 'web cold'], rows);
      const rounded = Object.fromEntries(
        PRIMITIVES.map((p) => [p, Object.fromEntries(Object.entries(answers[p]!.times).map(([size, c]) => [size, {
          noble: Object.fromEntries(MODES.map((mode) => [mode, round(c.noble[mode])])),
          webcrypto: Object.fromEntries(MODES.map((mode) => [mode, round(c.webcrypto[mode])])),
        }]))]),
      );
      const names = Object.keys(hybrids);
      console.log(`\nv2 data packet received (message id, signature check, one-use key decryption, decoding), µs per packet; hybrids: ${names.map((n) => `${n} ${JSON.stringify(hybrids[n])}`).join(', ')}\n`);
      printTable(
        ['padded size', ...names.map((n) => `${n} seq`), ...names.map((n) => `${n} flight`)],
        PACKET_SIZES.map((size) => {
          const row = packets.times[String(size)]!;
          return [bytes(size), ...names.map((n) => us(row[n]!.sequential)), ...names.map((n) => us(row[n]!.inFlight))];
        }),
      );
      const packetTimes = Object.fromEntries(Object.entries(packets.times).map(([size, row]) => [size, Object.fromEntries(Object.entries(row).map(([n, t]) => [n, { sequential: round(t.sequential), inFlight: round(t.inFlight) }]))]));
      json[name] = { version: page.version, userAgent: first.userAgent, runtime: first.runtime, times: rounded, crossovers, hybrids, packets: packetTimes };
    }
  } finally {
    server.close();
  }
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  printJsonLine('crypto-browser', { unit: 'us/call', rounds, batchMs, sizes, results: json });
}

await main();
