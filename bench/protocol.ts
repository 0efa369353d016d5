/**
 * `npm run bench:protocol -- <greet|messages|all>`: protocol benchmarks beside ts-mls.
 *
 * greet (issues 3 and 8): CPU time of membership operations, all members' work summed
 * (bench/protocol-greet.ts), per crypto provider (the hybrid the app uses, and plain WebCrypto;
 * BENCH_GREET_NOBLE=1 adds noble, about 2.5x slower):
 *  - start a group of n, n = 2, 10, 50 and 100;
 *  - include one member and exclude one member at n = 10, 50 and 100;
 *  - the same at n = 100 with a third of the members asleep during the operation;
 * beside ts-mls (bench/protocol-greet-mls.ts: createGroup, add n-1 in one commit, every member
 * joins; add one; remove one). Sizes above MAX_GROUP_MEMBERS (the codec's limit, 128) would
 * be skipped for mpENC and reported as such. Ends with one JSON line with the mpENC / ts-mls CPU
 * ratios and issue 8's targets (hybrid: start 50 and 100, include and exclude one at 100 ≤ 0.5x).
 *
 * messages (issues 4 and 8): bench/protocol-messages.ts.
 */
import { MAX_GROUP_MEMBERS } from '../src/protocol/limits.js';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import { selectCryptoProvider } from '../src/protocol/crypto/select.js';
import { webCryptoProvider } from '../tests/helpers/providers.js';
import { formatOps, printJsonLine, printTable, round } from './harness.js';
import { coveyGreet, type GreetResult } from './protocol-greet.js';
import { GREET_MLS_TABLE_HEADERS, runGreetMlsBaseline } from './protocol-greet-mls.js';
import { printMessagesReport, runMessagesBench } from './protocol-messages.js';

/** Issue 8: CPU ratio mpENC / ts-mls the hybrid provider must stay under, per row. */
const GREET_TARGET_RATIO = 0.5;
const GREET_TARGET_ROWS: readonly (readonly [GreetResult['op'], number])[] = [
  ['start', 50],
  ['start', 100],
  ['include one', 100],
  ['exclude one', 100],
  ['include one, 1/3 asleep', 100],
  ['exclude one, 1/3 asleep', 100],
];

async function greet(): Promise<boolean> {
  // BENCH_GREET_QUICK=1: a smoke run (n = 2, 10).
  const quick = process.env['BENCH_GREET_QUICK'] === '1';
  const startWanted = quick ? [2, 10] : [2, 10, 50, 100];
  const changeWanted = quick ? [10] : [10, 50, 100];
  const sleepyWanted = quick ? [10] : [100];
  const fits = (n: number) => n <= MAX_GROUP_MEMBERS;
  const cap = (sizes: number[]) => [...new Set(sizes.map((n) => (fits(n) ? n : MAX_GROUP_MEMBERS)))];
  const startSizes = cap(startWanted);
  const changeSizes = cap(changeWanted).map((n) => (n === MAX_GROUP_MEMBERS ? n - 1 : n)); // include one must fit too
  const sleepySizes = cap(sleepyWanted).map((n) => (n === MAX_GROUP_MEMBERS ? n - 1 : n));
  const skipped = [...startWanted, ...changeWanted].filter((n) => !fits(n));
  const providers: CryptoProvider[] = [await selectCryptoProvider(), webCryptoProvider];
  if (process.env['BENCH_GREET_NOBLE'] === '1') providers.push(nobleProvider);
  const covey: GreetResult[] = [];
  for (const p of providers) covey.push(...(await coveyGreet(p, startSizes, changeSizes, sleepySizes)));
  const mlsStart = [...new Set([...startWanted, ...startSizes])].sort((a, b) => a - b);
  const mlsChange = [...new Set([...changeWanted, ...changeSizes, ...sleepySizes])].sort((a, b) => a - b);
  const mls = await runGreetMlsBaseline({ start: mlsStart, change: mlsChange });

  const mlsOf = (op: GreetResult['op'], n: number) =>
    (op === 'start' ? mls.start : op.startsWith('include') ? mls.add : mls.remove).find((r) => r.n === n);
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
      formatOps(r.publicKeyOps),
      r.agreed ? 'yes' : 'NO',
    ];
  });
  printTable(['mpENC operation', 'n', 'provider', 'CPU ms', 'wall ms', 'ts-mls CPU ms', 'mpENC/ts-mls', 'pk ops', 'agreed'], rows);
  console.log('');
  printTable(GREET_MLS_TABLE_HEADERS, mls.rows);
  if (skipped.length > 0) console.log(`\nmpENC sizes above MAX_GROUP_MEMBERS (${MAX_GROUP_MEMBERS}) skipped: ${[...new Set(skipped)].join(', ')}`);

  const ratios: Record<string, Record<string, Record<string, number>>> = {};
  for (const r of covey) {
    const m = mlsOf(r.op, r.n);
    ((ratios[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = m === undefined ? NaN : round(r.cpuMs / m.timing.cpuMs);
  }
  const targets = GREET_TARGET_ROWS.flatMap(([op, n]) => {
    const ratio = ratios['hybrid']?.[op]?.[String(n)];
    return ratio === undefined ? [] : [{ op, n, ratio, met: ratio <= GREET_TARGET_RATIO }];
  });
  if (targets.length > 0) {
    console.log(`\nissue 8 targets (hybrid, CPU vs ts-mls ≤ ${GREET_TARGET_RATIO}x): ${targets.map((t) => `${t.op} ${t.n}: ${t.ratio}x ${t.met ? 'met' : 'NOT MET'}`).join('; ')}`);
  }
  // Issue 8: total work must not grow because someone slept (public-key operations counted, CPU beside).
  const asleep = covey.flatMap((r) => {
    if (!r.op.endsWith(', 1/3 asleep')) return [];
    const awake = covey.find((a) => a.provider === r.provider && a.n === r.n && a.op === r.op.replace(', 1/3 asleep', ''));
    if (awake === undefined) return [];
    return [{ provider: r.provider, op: awake.op, n: r.n, publicKeyOps: round(r.publicKeyOps / awake.publicKeyOps), cpu: round(r.cpuMs / awake.cpuMs), grew: r.publicKeyOps > awake.publicKeyOps }];
  });
  if (asleep.length > 0) {
    console.log(
      `issue 8 sleepers (1/3 of members asleep during the operation ÷ all awake): ${asleep.map((a) => `${a.provider} ${a.op} ${a.n}: public-key ops ${a.publicKeyOps}x, CPU ${a.cpu}x${a.grew ? ' (work GREW)' : ''}`).join('; ')}`,
    );
  }
  const coveyJson: Record<string, Record<string, Record<string, { cpuMs: number; wallMs: number; publicKeyOps: number; agreed: boolean }>>> = {};
  for (const r of covey) ((coveyJson[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = { cpuMs: round(r.cpuMs), wallMs: round(r.wallMs), publicKeyOps: r.publicKeyOps, agreed: r.agreed };
  printJsonLine('protocol-greet', { maxGroupMembers: MAX_GROUP_MEMBERS, mpenc: coveyJson, tsMls: mls.json, cpuRatioMpencOverTsMls: ratios, targets, asleepOverAwake: asleep });
  return covey.every((r) => r.agreed) && [...mls.start, ...mls.add, ...mls.remove].every((r) => r.agreed);
}

/** Issue 8: catch-up of 10,000 messages from 5 authors at ≥ 0.7 × the provider's verify rate. */
const CATCH_UP_TARGET = 0.7;
/** Rate per CPU second at the largest queue vs the smallest within this factor counts as linear (noise here is ±20 %). */
const LINEAR_SPREAD = 1.25;

interface CatchUpJson {
  readonly pagedOverVerify?: number;
  readonly pagedOverVerifyCpu?: number;
  readonly scaling?: Record<string, { readonly msgsPerCpuSec: number; readonly overVerifyCpu: number }>;
}

async function messages(): Promise<boolean> {
  const report = await runMessagesBench();
  printMessagesReport(report);
  // Issue 8: catch-up (paged, as a worker reads the relay) ≥ 0.7 × the provider's verify rate, in
  // messages per CPU second (wall beside it: WebCrypto's thread pool makes wall rates depend on
  // the cores free on a shared machine), and linear in the queue (the same ratio at every size).
  const results = (report.json['catchUp'] as { results?: Record<string, CatchUpJson> } | null)?.results ?? {};
  const hybrid = results['hybrid'];
  if (hybrid?.pagedOverVerifyCpu !== undefined) {
    const met = hybrid.pagedOverVerifyCpu >= CATCH_UP_TARGET;
    console.log(
      `\nissue 8 target (hybrid, catch-up ≥ ${CATCH_UP_TARGET}x its verify rate per CPU second): ${hybrid.pagedOverVerifyCpu}x ${met ? 'met' : 'NOT MET'} (${hybrid.pagedOverVerify}x per wall second)`,
    );
    const scaling = Object.entries(hybrid.scaling ?? {});
    if (scaling.length > 1) {
      const ratios = scaling.map(([, c]) => c.overVerifyCpu);
      const spread = Math.max(...ratios) / Math.min(...ratios);
      console.log(
        `issue 8 linear catch-up (hybrid, msgs/CPU-s ÷ verify/CPU-s by queue size): ${scaling.map(([n, c]) => `${n}: ${c.msgsPerCpuSec} msg/CPU-s = ${c.overVerifyCpu}x`).join('; ')}; largest/smallest ${round(spread)} ${spread <= LINEAR_SPREAD ? '(linear)' : '(NOT linear)'}`,
      );
    }
  }
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
