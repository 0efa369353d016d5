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
 * Fairness: every row of both sides runs BENCH_GREET_ROUNDS times (default 3), row by row and
 * interleaved (the side that goes first alternates by round), each side warmed up untimed first.
 * A side's figure is its best round (lowest CPU: load from other jobs on the shared cores and
 * garbage collection only ever add), with the median and the spread (worst/best) beside; the
 * targets compare best with best. One run of ts-mls's add one at 100 varied 8.3–13.5 s across
 * single-shot runs on this machine, so a ratio from one sample of each judges nothing.
 *
 * messages (issues 4 and 8): bench/protocol-messages.ts.
 */
import { MAX_GROUP_MEMBERS } from '../src/protocol/limits.js';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import { selectCryptoProvider } from '../src/protocol/crypto/select.js';
import { webCryptoProvider } from '../tests/helpers/providers.js';
import { formatOps, printJsonLine, printTable, round } from './harness.js';
import { MLS_CIPHERSUITE, type MlsGroupResult } from './mls.js';
import { coveyGreeter, type CoveyGreeter, type GreetResult } from './protocol-greet.js';
import { mlsGreeter } from './protocol-greet-mls.js';
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

/** Samples of one row: best (lowest CPU), median and worst over the rounds. */
interface Spread {
  readonly best: number;
  readonly median: number;
  readonly worst: number;
  readonly samples: readonly number[];
}

function spreadOf(samples: readonly number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { best: sorted[0]!, median, worst: sorted[sorted.length - 1]!, samples };
}

const spreadText = (s: Spread) => `${formatOps(s.worst / s.best)}×`;

async function greet(): Promise<boolean> {
  // BENCH_GREET_QUICK=1: a smoke run (n = 2, 10). BENCH_GREET_ROUNDS: rounds (default 3, quick 1).
  const quick = process.env['BENCH_GREET_QUICK'] === '1';
  const rounds = Math.max(1, Number(process.env['BENCH_GREET_ROUNDS'] ?? (quick ? 1 : 3)));
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
  const mlsStart = [...new Set([...startWanted, ...startSizes])].sort((a, b) => a - b);
  const mlsChange = [...new Set([...changeWanted, ...changeSizes, ...sleepySizes])].sort((a, b) => a - b);

  // Both sides measured the same number of times, row by row and interleaved (mpENC then ts-mls
  // in even rounds, ts-mls first in odd ones), so that both see the same machine: CPU time here
  // moves with the load of the shared cores and with the heap the process holds. Each side's
  // figure is its best round (its steady state: noise only ever adds), median and spread beside.
  const greeters: CoveyGreeter[] = [];
  for (const p of providers) greeters.push(await coveyGreeter(p));
  const mlsSide = await mlsGreeter();
  const covey: GreetResult[] = [];
  const mlsRuns: { op: 'start' | 'add' | 'remove'; r: MlsGroupResult }[] = [];
  for (let round = 0; round < rounds; round++) {
    const pair = async (coveyWork: () => Promise<void>, mlsWork: () => Promise<void>) => {
      if (round % 2 === 0) {
        await coveyWork();
        await mlsWork();
      } else {
        await mlsWork();
        await coveyWork();
      }
    };
    for (const n of mlsStart) {
      await pair(
        async () => {
          if (startSizes.includes(n)) for (const gr of greeters) covey.push(await gr.start(n));
        },
        async () => {
          mlsRuns.push({ op: 'start', r: await mlsSide.start(n) });
        },
      );
    }
    for (const n of mlsChange) {
      await pair(
        async () => {
          if (changeSizes.includes(n)) for (const gr of greeters) covey.push(...(await gr.change(n, false)));
          if (sleepySizes.includes(n)) for (const gr of greeters) covey.push(...(await gr.change(n, true)));
        },
        async () => {
          const { add, remove } = await mlsSide.change(n);
          mlsRuns.push({ op: 'add', r: add }, { op: 'remove', r: remove });
        },
      );
    }
  }

  // Rows: one per (provider, operation, n) for mpENC, per (operation, n) for ts-mls, in first-seen order.
  const group = <T, K extends string>(items: readonly T[], keyOf: (t: T) => K): Map<K, T[]> => {
    const m = new Map<K, T[]>();
    for (const t of items) (m.get(keyOf(t)) ?? m.set(keyOf(t), []).get(keyOf(t))!).push(t);
    return m;
  };
  const coveyRows = [...group(covey, (r) => `${r.provider}|${r.op}|${r.n}`).values()].map((rs) => ({
    provider: rs[0]!.provider,
    op: rs[0]!.op,
    n: rs[0]!.n,
    cpu: spreadOf(rs.map((r) => r.cpuMs)),
    wall: spreadOf(rs.map((r) => r.wallMs)),
    publicKeyOps: Math.max(...rs.map((r) => r.publicKeyOps)),
    sameWork: rs.every((r) => r.publicKeyOps === rs[0]!.publicKeyOps),
    agreed: rs.every((r) => r.agreed),
  }));
  const mlsRows = [...group(mlsRuns, (x) => `${x.op}|${x.r.n}`).values()].map((xs) => ({
    op: xs[0]!.op,
    n: xs[0]!.r.n,
    cpu: spreadOf(xs.map((x) => x.r.timing.cpuMs)),
    wall: spreadOf(xs.map((x) => x.r.timing.wallMs)),
    keyPackagesCpuMs: spreadOf(xs.map((x) => x.r.keyPackages.cpuMs)).median,
    agreed: xs.every((x) => x.r.agreed),
  }));
  const mlsOf = (op: GreetResult['op'], n: number) => mlsRows.find((m) => m.n === n && m.op === (op === 'start' ? 'start' : op.startsWith('include') ? 'add' : 'remove'));

  const rows = coveyRows.map((r) => {
    const m = mlsOf(r.op, r.n);
    return [
      r.op,
      String(r.n),
      r.provider,
      formatOps(r.cpu.best),
      formatOps(r.cpu.median),
      spreadText(r.cpu),
      m === undefined ? '-' : formatOps(m.cpu.best),
      m === undefined ? '-' : formatOps(m.cpu.median),
      m === undefined ? '-' : spreadText(m.cpu),
      m === undefined ? '-' : formatOps(r.cpu.best / m.cpu.best) + '×',
      m === undefined ? '-' : formatOps(r.cpu.median / m.cpu.median) + '×',
      formatOps(r.publicKeyOps) + (r.sameWork ? '' : ' (varied)'),
      r.agreed ? 'yes' : 'NO',
    ];
  });
  console.log(`greet: ${rounds} round(s), each row of both sides once per round, interleaved; best = lowest CPU of the rounds, spread = worst/best\n`);
  printTable(
    ['mpENC operation', 'n', 'provider', 'CPU best', 'CPU median', 'spread', 'ts-mls best', 'ts-mls median', 'ts-mls spread', 'ratio best', 'ratio median', 'pk ops', 'agreed'],
    rows,
  );
  console.log('');
  printTable(
    ['ts-mls operation', 'n', 'CPU best', 'CPU median', 'CPU worst', 'wall best', 'key packages CPU ms', 'agreed'],
    mlsRows.map((m) => [
      m.op === 'start' ? 'start' : `${m.op} one`,
      String(m.n),
      formatOps(m.cpu.best),
      formatOps(m.cpu.median),
      formatOps(m.cpu.worst),
      formatOps(m.wall.best),
      m.keyPackagesCpuMs === 0 ? '-' : formatOps(m.keyPackagesCpuMs),
      m.agreed ? 'yes' : 'NO',
    ]),
  );
  if (skipped.length > 0) console.log(`\nmpENC sizes above MAX_GROUP_MEMBERS (${MAX_GROUP_MEMBERS}) skipped: ${[...new Set(skipped)].join(', ')}`);

  const ratios: Record<string, Record<string, Record<string, number>>> = {};
  const medianRatios: Record<string, Record<string, Record<string, number>>> = {};
  for (const r of coveyRows) {
    const m = mlsOf(r.op, r.n);
    ((ratios[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = m === undefined ? NaN : round(r.cpu.best / m.cpu.best);
    ((medianRatios[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = m === undefined ? NaN : round(r.cpu.median / m.cpu.median);
  }
  const targets = GREET_TARGET_ROWS.flatMap(([op, n]) => {
    const ratio = ratios['hybrid']?.[op]?.[String(n)];
    const median = medianRatios['hybrid']?.[op]?.[String(n)];
    return ratio === undefined ? [] : [{ op, n, ratio, medianRatio: median ?? NaN, met: ratio <= GREET_TARGET_RATIO }];
  });
  if (targets.length > 0) {
    console.log(
      `\nissue 8 targets (hybrid, best CPU vs ts-mls best ≤ ${GREET_TARGET_RATIO}x; median ratio beside): ${targets.map((t) => `${t.op} ${t.n}: ${t.ratio}x ${t.met ? 'met' : 'NOT MET'} (median ${t.medianRatio}x)`).join('; ')}`,
    );
  }
  // Issue 8: total work must not grow because someone slept (public-key operations counted, CPU beside).
  const asleep = coveyRows.flatMap((r) => {
    if (!r.op.endsWith(', 1/3 asleep')) return [];
    const awake = coveyRows.find((a) => a.provider === r.provider && a.n === r.n && a.op === r.op.replace(', 1/3 asleep', ''));
    if (awake === undefined) return [];
    return [{ provider: r.provider, op: awake.op, n: r.n, publicKeyOps: round(r.publicKeyOps / awake.publicKeyOps), cpu: round(r.cpu.best / awake.cpu.best), grew: r.publicKeyOps > awake.publicKeyOps }];
  });
  if (asleep.length > 0) {
    console.log(
      `issue 8 sleepers (1/3 of members asleep during the operation ÷ all awake, best CPU): ${asleep.map((a) => `${a.provider} ${a.op} ${a.n}: public-key ops ${a.publicKeyOps}x, CPU ${a.cpu}x${a.grew ? ' (work GREW)' : ''}`).join('; ')}`,
    );
  }
  const spreadJson = (s: Spread) => ({ cpuMs: round(s.best), cpuMsMedian: round(s.median), cpuMsWorst: round(s.worst) });
  const coveyJson: Record<string, Record<string, Record<string, Record<string, unknown>>>> = {};
  for (const r of coveyRows) {
    ((coveyJson[r.provider] ??= {})[r.op] ??= {})[String(r.n)] = { ...spreadJson(r.cpu), wallMs: round(r.wall.best), publicKeyOps: r.publicKeyOps, agreed: r.agreed };
  }
  const mlsJson: Record<string, unknown> = { ciphersuite: MLS_CIPHERSUITE };
  for (const m of mlsRows) {
    ((mlsJson[m.op] ??= {}) as Record<string, unknown>)[String(m.n)] = { ...spreadJson(m.cpu), wallMs: round(m.wall.best), keyPackagesCpuMs: round(m.keyPackagesCpuMs), agreed: m.agreed };
  }
  printJsonLine('protocol-greet', {
    maxGroupMembers: MAX_GROUP_MEMBERS,
    rounds,
    figure: 'best of the rounds (lowest CPU); ratios best/best, medians beside',
    mpenc: coveyJson,
    tsMls: mlsJson,
    cpuRatioMpencOverTsMls: ratios,
    cpuRatioMedians: medianRatios,
    targets,
    asleepOverAwake: asleep,
  });
  return coveyRows.every((r) => r.agreed) && mlsRows.every((m) => m.agreed);
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
