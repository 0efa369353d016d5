/**
 * The engine thread's CPU per message of a catch-up, apart from the signature checks (issue 12),
 * old code against new: each source tree named in --roots runs in its own process, the processes
 * alternate (A B B A ...), and each prints what its reader spent.
 *
 * What a run does, as the worker does it for a catch-up (src/worker/conversation.ts): a reader
 * whose session is agreed (bench/messages-fixture.ts) receives a queue of MESSAGES from AUTHORS
 * in pages of PAGE (`Session.receiveAll`, BACKLOG_PAGE in the worker); after each page the session
 * snapshot is taken and split into chunks (`SnapshotChunks.split`), and every record the page
 * would write is turned into its JSON (what the store seals). The group also holds ASLEEP members
 * who never read (bench:catchup's Carol), so every message stays tracked by the ack monitor, as in
 * the browser bench. Not included: the relay event's decoding, the timeline records, the sealing
 * itself (WebCrypto) and IndexedDB.
 *
 * Ed25519 checks answer `true` without checking (--verify skip, the default; the queue is all
 * good signatures): they are a fixed ~80 µs a message in Chromium that no change here touches, and
 * they would only add noise. --verify real checks them (hybrid provider, Chromium's thresholds).
 * The other crypto is the hybrid's with Chromium's thresholds (noble below them, as in the browser),
 * but SHA-256 is node:crypto's, synchronous: Chromium's WebCrypto digest runs on the calling thread
 * in a few µs, Node's is a job on libuv's pool (~20 µs a call here) that would hide the rest.
 * --no-store leaves out the snapshot after each page. --split times only `SnapshotChunks.split` of
 * the snapshot after the catch-up, each root's in turn in one process (see `splitRounds`).
 *
 *   npx tsx bench/catchup-cpu.ts --roots /tmp/base,. [--runs 3] [--messages 10000] [--authors 5]
 *     [--asleep 1] [--page 1000] [--verify skip|real] [--no-store] [--heap-sample file.heapprofile] [--split [--rounds 16]]
 *     [--node-flags "--cpu-prof --cpu-prof-dir=/tmp/p"]
 *
 * A root is a checkout of this repository (its bench/messages-fixture.ts, src/protocol and
 * src/worker/snapshot-chunks.ts are imported from it); an old one made by
 * `git archive <rev> | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/`.
 * The queue is built once (by this tree's code) and cached in the system's temp directory.
 * Output: a table (µs of CPU per message: receive, store, GC, total; mean over runs), then one JSON line.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ChannelPacket } from '../src/protocol/channel.js';
import type { MemberId } from '../src/protocol/ids.js';
import type * as SelectModule from '../src/protocol/crypto/select.js';
import type * as ChunksModule from '../src/worker/snapshot-chunks.js';
import type * as FixtureModule from './messages-fixture.js';
import { printJsonLine, printTable, round } from './harness.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const MESSAGES = Number(option('messages', '10000'));
const AUTHORS = Number(option('authors', '5'));
const ASLEEP = Number(option('asleep', '1'));
const PAGE = Number(option('page', '1000'));
const VERIFY = option('verify', 'skip');
if (VERIFY !== 'skip' && VERIFY !== 'real') throw new Error('--verify skip|real');
/** The relay's time of the first queued event; events are 50 ms apart. */
const BASE_MS = 1_700_000_000_000;

interface QueueFile {
  readonly members: readonly MemberId[];
  readonly reader: MemberId;
  readonly label: string;
  readonly packets: readonly ChannelPacket[];
  readonly texts: readonly string[];
}

interface ChildResult {
  readonly root: string;
  readonly messages: number;
  readonly receiveUs: number;
  readonly storeUs: number;
  readonly gcUs: number;
  readonly totalUs: number;
  readonly storedBytes: number;
}

const here = fileURLToPath(import.meta.url);

/**
 * --heap-sample FILE: every allocation of the run, sampled (V8's sampling heap profiler with the
 * objects that GC already collected kept: what `--heap-prof` leaves out), written as a
 * .heapprofile (DevTools reads it). Returns the function that stops it and writes the file.
 */
async function heapSampling(): Promise<(() => Promise<void>) | undefined> {
  const file = option('heap-sample', '');
  if (file === '') return undefined;
  const { Session } = await import('node:inspector/promises');
  const inspector = new Session();
  inspector.connect();
  await inspector.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  return async () => {
    const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as { profile: unknown };
    writeFileSync(file, JSON.stringify(profile));
    inspector.disconnect();
  };
}

async function buildQueue(): Promise<string> {
  const file = join(tmpdir(), `covey-catchup-cpu-${MESSAGES}-${AUTHORS}-${ASLEEP}.json`);
  if (existsSync(file)) return file;
  const { buildCatchUpQueue } = await import('./messages-fixture.js');
  const { webCryptoProvider } = await import('../tests/helpers/providers.js');
  const queue = await buildCatchUpQueue(webCryptoProvider, MESSAGES, AUTHORS, 1, ASLEEP);
  const packets = queue.packets.map((p, i) => ({ ...p, atMs: BASE_MS + 50 * i }));
  writeFileSync(file, JSON.stringify({ members: queue.members, reader: queue.reader, label: queue.label, packets, texts: queue.texts } satisfies QueueFile));
  return file;
}

/** One reader's catch-up with the code of `root`. */
async function child(root: string, queueFile: string): Promise<ChildResult> {
  const from = (path: string) => pathToFileURL(join(root, path)).href;
  const fixture = (await import(from('bench/messages-fixture.ts'))) as typeof FixtureModule;
  const select = (await import(from('src/protocol/crypto/select.ts'))) as typeof SelectModule;
  const chunksModule = (await import(from('src/worker/snapshot-chunks.ts'))) as typeof ChunksModule;
  const queue = JSON.parse(readFileSync(queueFile, 'utf8')) as QueueFile;
  const hybrid = await select.selectCryptoProvider('chromium');
  // (SHA-256 synchronous, as in Chromium: see the top of the file.)
  const sha256 = async (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());
  const crypto = VERIFY === 'real' ? hybrid : { ...hybrid, sha256, ed25519Verify: async () => true, ed25519VerifyFirst: async () => true };
  const sessions = await fixture.agreedSessions(crypto, queue.members, queue.label, BASE_MS);
  const session = sessions[queue.members.indexOf(queue.reader)]!;
  const chunks = new chunksModule.SnapshotChunks('bench');
  let storedBytes = 0;
  const batch = {
    put(_store: string, _key: unknown, value: unknown) {
      storedBytes += JSON.stringify(value).length;
      return batch;
    },
    delete() {
      return batch;
    },
  };
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const heap = await heapSampling();
  let receiveUs = 0;
  let storeUs = 0;
  let delivered = 0;
  const nowMs = BASE_MS + 50 * queue.packets.length + 60_000;
  for (let i = 0; i < queue.packets.length; i += PAGE) {
    const page = queue.packets.slice(i, i + PAGE);
    const a = process.cpuUsage();
    const effects = await session.receiveAll(page, nowMs);
    const b = process.cpuUsage();
    if (!args.includes('--no-store')) {
      const stored = chunks.split(session.snapshot(), batch as never);
      storedBytes += JSON.stringify(stored).length;
    }
    const c = process.cpuUsage();
    receiveUs += b.user + b.system - a.user - a.system;
    storeUs += c.user + c.system - b.user - b.system;
    for (const e of effects) {
      if (e.kind === 'warn') throw new Error(`warning: ${JSON.stringify(e.warning)}`);
      if (e.kind !== 'deliver') continue;
      if (e.message.text !== queue.texts[delivered]) throw new Error(`message ${delivered} out of order`);
      delivered++;
    }
  }
  await new Promise((r) => setTimeout(r, 50));
  gc.disconnect();
  await heap?.();
  if (delivered !== queue.packets.length) throw new Error(`delivered ${delivered} of ${queue.packets.length}`);
  const n = queue.packets.length;
  return { root, messages: n, receiveUs: receiveUs / n, storeUs: storeUs / n, gcUs: (gcMs * 1000) / n, totalUs: (receiveUs + storeUs) / n, storedBytes };
}

/**
 * --split: the snapshot after the whole catch-up (made with the first root's code), split into
 * chunks (`SnapshotChunks.split`, every chunk written, as a first step after a restore would) by
 * each root's code in turn, in this one process: ms of CPU, median of --rounds (16) each, and
 * whether every root stored the same JSON. For changes to the chunks' encoders, smaller than the
 * alternating processes resolve.
 */
async function splitRounds(roots: readonly string[], queueFile: string): Promise<void> {
  const from = (root: string, path: string) => pathToFileURL(join(root, path)).href;
  const fixture = (await import(from(roots[0]!, 'bench/messages-fixture.ts'))) as typeof FixtureModule;
  const select = (await import(from(roots[0]!, 'src/protocol/crypto/select.ts'))) as typeof SelectModule;
  const modules = await Promise.all(roots.map(async (r) => (await import(from(r, 'src/worker/snapshot-chunks.ts'))) as typeof ChunksModule));
  const queue = JSON.parse(readFileSync(queueFile, 'utf8')) as QueueFile;
  const hybrid = await select.selectCryptoProvider('chromium');
  const sha256 = async (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());
  const crypto = { ...hybrid, sha256, ed25519Verify: async () => true, ed25519VerifyFirst: async () => true };
  const sessions = await fixture.agreedSessions(crypto, queue.members, queue.label, BASE_MS);
  const session = sessions[queue.members.indexOf(queue.reader)]!;
  const nowMs = BASE_MS + 50 * queue.packets.length + 60_000;
  for (let i = 0; i < queue.packets.length; i += PAGE) await session.receiveAll(queue.packets.slice(i, i + PAGE), nowMs);
  const snapshot = session.snapshot();
  // What each split stores, turned into JSON after the timing (the split alone is timed).
  let puts: unknown[] = [];
  const batch = {
    put(_store: string, key: unknown, value: unknown) {
      puts.push(key, value);
      return batch;
    },
    delete() {
      return batch;
    },
  };
  const rounds = Number(option('rounds', '16'));
  const ms = roots.map((): number[] => []);
  const stored = roots.map((): string[] => []);
  for (let r = 0; r < rounds; r++) {
    const order = roots.map((_, k) => k);
    if (r % 2 === 1) order.reverse();
    for (const k of order) {
      puts = [];
      const before = process.cpuUsage();
      const record = new modules[k]!.SnapshotChunks('bench').split(snapshot, batch as never);
      const used = process.cpuUsage(before);
      ms[k]!.push((used.user + used.system) / 1000);
      stored[k]!.push(JSON.stringify([puts, record]));
    }
  }
  const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const same = stored.every((s) => s.every((x, i) => x === stored[0]![i]));
  printTable(
    ['root', 'split ms (median)', 'rounds'],
    roots.map((root, k) => [root, median(ms[k]!).toFixed(1), String(rounds)]),
  );
  printJsonLine('catchup-cpu-split', { messages: queue.packets.length, rounds, sameOutput: same, rows: roots.map((root, k) => ({ root, medianMs: round(median(ms[k]!)) })) });
}

async function main(): Promise<void> {
  if (args.includes('--split')) {
    await splitRounds(option('roots', '.').split(',').map((r) => resolve(r)), await buildQueue());
    return;
  }
  if (args.includes('--child')) {
    const result = await child(option('root', '.'), option('queue', ''));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const roots = option('roots', '.').split(',').map((r) => resolve(r));
  const runs = Number(option('runs', '3'));
  const nodeFlags = option('node-flags', '').split(' ').filter((f) => f !== '');
  const queueFile = await buildQueue();
  const results = new Map<string, ChildResult[]>(roots.map((r) => [r, []]));
  for (let run = 0; run < runs; run++) {
    // A B, then B A: neither side always runs first.
    const order = run % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const out = spawnSync(process.execPath, [...process.execArgv, ...nodeFlags, here, ...args, '--child', '--root', root, '--queue', queueFile], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (out.status !== 0) throw new Error(`${root}: ${out.stderr}`);
      const result = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as ChildResult;
      results.get(root)!.push(result);
      console.error(`run ${run + 1} ${root}: total ${result.totalUs.toFixed(1)} µs/msg (receive ${result.receiveUs.toFixed(1)}, store ${result.storeUs.toFixed(1)}, GC ${result.gcUs.toFixed(1)})`);
    }
  }
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const rows = roots.map((root) => {
    const rs = results.get(root)!;
    return {
      root,
      receiveUs: mean(rs.map((r) => r.receiveUs)),
      storeUs: mean(rs.map((r) => r.storeUs)),
      gcUs: mean(rs.map((r) => r.gcUs)),
      totalUs: mean(rs.map((r) => r.totalUs)),
      totals: rs.map((r) => round(r.totalUs)),
      storedBytes: rs[0]!.storedBytes,
    };
  });
  printTable(
    ['root', 'receive µs/msg', 'store µs/msg', 'GC µs/msg (in both)', 'total µs/msg', 'runs', 'JSON bytes'],
    rows.map((r) => [r.root, r.receiveUs.toFixed(1), r.storeUs.toFixed(1), r.gcUs.toFixed(1), r.totalUs.toFixed(1), r.totals.join(' / '), String(r.storedBytes)]),
  );
  printJsonLine('catchup-cpu', { messages: MESSAGES, authors: AUTHORS, asleep: ASLEEP, page: PAGE, verify: VERIFY, runs, rows: rows.map((r) => ({ ...r, receiveUs: round(r.receiveUs), storeUs: round(r.storeUs), gcUs: round(r.gcUs), totalUs: round(r.totalUs) })) });
}

await main();
