/**
 * `npm run bench:protocol -- <greet|messages|all>`: protocol benchmarks beside ts-mls.
 *
 * greet (issue 3): CPU time of membership operations, all members' work summed (the members run
 * one after another in this process, so process CPU time is the total), per crypto provider:
 *  - start a group of n (CLIQUES IKA + ASKE: n-1 upflow hops, one downflow, n-1 confirmations,
 *    every member verifying every session signature), n = 2, 10, 50 and MAX_GROUP_MEMBERS;
 *  - include one member and exclude one member at n = 10, 50 and MAX_GROUP_MEMBERS;
 * beside ts-mls (bench/protocol-greet-mls.ts: createGroup, add n-1 in one commit, every member
 * joins; add one; remove one). Sizes above MAX_GROUP_MEMBERS (the codec's limit, 128) would
 * be skipped for mpENC and reported as such.
 * Static identity keys are made before timing (they are long-lived); ephemeral keys, nonces and
 * contributions are made inside it. Ends with one JSON line with the mpENC / ts-mls CPU ratios.
 *
 * messages (issue 4): bench/protocol-messages.ts.
 */
import { performance } from 'node:perf_hooks';
import { bytesEqual } from '../src/protocol/bytes.js';
import { MAX_GROUP_MEMBERS } from '../src/protocol/limits.js';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import type { MemberId } from '../src/protocol/ids.js';
import { webCryptoProvider } from '../tests/helpers/providers.js';
import { SimGroup } from '../tests/sim/channel.js';
import { formatOps, printJsonLine, printTable, round } from './harness.js';
import { GREET_MLS_TABLE_HEADERS, runGreetMlsBaseline } from './protocol-greet-mls.js';
import { printMessagesReport, runMessagesBench } from './protocol-messages.js';

interface GreetResult {
  readonly provider: string;
  readonly op: 'start' | 'include one' | 'exclude one';
  readonly n: number;
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly agreed: boolean;
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `member${String(i).padStart(3, '0')}`);

async function timedCpu(work: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await work();
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - wall0 };
}

function agreed(g: SimGroup, expected: number): boolean {
  const holders = g.honestMembers().filter((m) => m.state.current !== null && g.channel.includes(m.id));
  const first = holders[0]?.state.current;
  return (
    first !== undefined &&
    first !== null &&
    holders.length === expected &&
    first.members.length === expected &&
    holders.every((m) => bytesEqual(m.state.current!.groupKey!, first.groupKey!) && bytesEqual(m.state.current!.chainHash, first.chainHash)) &&
    g.warnings().length === 0
  );
}

/** A started group of n (untimed unless `time`), with static keys made before anything else. */
async function startGroup(crypto: CryptoProvider, n: number, extra: number): Promise<{ g: SimGroup; timing: { cpuMs: number; wallMs: number } }> {
  const g = new SimGroup({ crypto, seed: n });
  const all = names(n + extra);
  for (const name of all) await g.addMember(name);
  for (const name of all.slice(0, n)) g.join(name);
  await g.settle();
  const timing = await timedCpu(async () => {
    await g.input(g.member(all[0]!), { kind: 'start', others: all.slice(1, n) as MemberId[] });
    await g.settle();
  });
  return { g, timing };
}

async function coveyGreet(crypto: CryptoProvider, startSizes: readonly number[], changeSizes: readonly number[]): Promise<GreetResult[]> {
  const out: GreetResult[] = [];
  await startGroup(crypto, 3, 0); // warm-up (JIT, key caches), untimed
  for (const n of startSizes) {
    const { g, timing } = await startGroup(crypto, n, 0);
    out.push({ provider: crypto.name, op: 'start', n, ...timing, agreed: agreed(g, n) });
  }
  for (const n of changeSizes) {
    // Include one at n: a group of n; one more joins the channel and is included.
    const inc = await startGroup(crypto, n, 1);
    const joiner = names(n + 1)[n]!;
    inc.g.join(joiner);
    await inc.g.settle();
    const incTiming = await timedCpu(async () => {
      await inc.g.input(inc.g.member(names(1)[0]!), { kind: 'include', members: [joiner as MemberId] });
      await inc.g.settle();
    });
    out.push({ provider: crypto.name, op: 'include one', n, ...incTiming, agreed: agreed(inc.g, n + 1) });
    // Exclude one at n: from the same sizes' fresh group.
    const exc = await startGroup(crypto, n, 0);
    const victim = names(n)[n - 1]!;
    const excTiming = await timedCpu(async () => {
      await exc.g.input(exc.g.member(names(1)[0]!), { kind: 'exclude', members: [victim as MemberId] });
      await exc.g.settle();
    });
    out.push({ provider: crypto.name, op: 'exclude one', n, ...excTiming, agreed: agreed(exc.g, n - 1) });
  }
  return out;
}

async function greet(): Promise<boolean> {
  // BENCH_GREET_QUICK=1: a smoke run (n = 2, 10).
  const quick = process.env['BENCH_GREET_QUICK'] === '1';
  const startWanted = quick ? [2, 10] : [2, 10, 50, 100];
  const changeWanted = quick ? [10] : [10, 50, 100];
  const fits = (n: number) => n <= MAX_GROUP_MEMBERS;
  const cap = (sizes: number[]) => [...new Set(sizes.map((n) => (fits(n) ? n : MAX_GROUP_MEMBERS)))];
  const startSizes = cap(startWanted);
  const changeSizes = cap(changeWanted).map((n) => (n === MAX_GROUP_MEMBERS ? n - 1 : n)); // include one must fit too
  const skipped = [...startWanted, ...changeWanted].filter((n) => !fits(n));
  const providers = [nobleProvider, webCryptoProvider];
  const covey: GreetResult[] = [];
  for (const p of providers) covey.push(...(await coveyGreet(p, startSizes, changeSizes)));
  const mlsStart = [...new Set([...startWanted, ...startSizes])].sort((a, b) => a - b);
  const mlsChange = [...new Set([...changeWanted, ...changeSizes])].sort((a, b) => a - b);
  const mls = await runGreetMlsBaseline({ start: mlsStart, change: mlsChange });

  const mlsOf = (op: GreetResult['op'], n: number) =>
    (op === 'start' ? mls.start : op === 'include one' ? mls.add : mls.remove).find((r) => r.n === n);
  const rows = covey.map((r) => {
    const m = mlsOf(r.op, r.n);
    return [
      r.op,
      String(r.n),
      r.provider,
      formatOps(r.cpuMs),
      formatOps(r.wallMs),
      m === undefined ? '-' : formatOps(m.timing.cpuMs),
      m === undefined ? '-' : formatOps(r.cpuMs / m.timing.cpuMs) + '×',
      r.agreed ? 'yes' : 'NO',
    ];
  });
  printTable(['mpENC operation', 'n', 'provider', 'CPU ms', 'wall ms', 'ts-mls CPU ms', 'mpENC/ts-mls', 'agreed'], rows);
  console.log('');
  printTable(GREET_MLS_TABLE_HEADERS, mls.rows);
  if (skipped.length > 0) console.log(`\nmpENC sizes above MAX_GROUP_MEMBERS (${MAX_GROUP_MEMBERS}) skipped: ${[...new Set(skipped)].join(', ')}`);

  const ratios: Record<string, Record<string, Record<string, number>>> = {};
  for (const r of covey) {
    const m = mlsOf(r.op, r.n);
    ((ratios[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = m === undefined ? NaN : round(r.cpuMs / m.timing.cpuMs);
  }
  const coveyJson: Record<string, Record<string, Record<string, { cpuMs: number; wallMs: number; agreed: boolean }>>> = {};
  for (const r of covey) ((coveyJson[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = { cpuMs: round(r.cpuMs), wallMs: round(r.wallMs), agreed: r.agreed };
  printJsonLine('protocol-greet', { maxGroupMembers: MAX_GROUP_MEMBERS, mpenc: coveyJson, tsMls: mls.json, cpuRatioMpencOverTsMls: ratios });
  return covey.every((r) => r.agreed) && [...mls.start, ...mls.add, ...mls.remove].every((r) => r.agreed);
}

async function messages(): Promise<boolean> {
  const report = await runMessagesBench();
  printMessagesReport(report);
  printJsonLine('protocol-messages', report.json);
  return report.covey.every((r) => r.allDelivered) && report.catchUp.every((c) => c.allAccepted) && (report.mls?.allDelivered ?? true);
}

const commands: Record<string, () => Promise<boolean>> = { greet, messages };
const wanted = process.argv[2] ?? 'all';
const run = wanted === 'all' ? Object.keys(commands) : [wanted];
let ok = true;
for (const name of run) {
  const command = commands[name];
  if (command === undefined) {
    console.error(`usage: npm run bench:protocol -- <${Object.keys(commands).join('|')}|all>`);
    process.exit(2);
  }
  ok = (await command()) && ok;
}
if (!ok) process.exitCode = 1;
