/**
 * Tiny shared benchmark helpers (bench/*.ts): measure ops/s of a sync or async operation within a
 * time budget, print an aligned table, and end a run with one JSON line that scripts can parse.
 * Numbers are for comparison on one machine, never assertions (tests make no timing claims).
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface Measurement {
  readonly opsPerSec: number;
  /** Operations timed (warm-up excluded). */
  readonly ops: number;
  readonly elapsedMs: number;
}

export interface MeasureOptions {
  /** Time to spend timing, after warm-up (default BENCH_BUDGET_MS or 400 ms). */
  readonly budgetMs?: number;
  /** Time to spend warming up first (default a quarter of the budget). */
  readonly warmupMs?: number;
  /** Run at least this many timed operations, whatever the budget (default 3). */
  readonly minOps?: number;
  /** Hard cap on timed operations, to bound very fast loops (default 1,000,000). */
  readonly maxOps?: number;
}

/** Default budget per measurement; `BENCH_BUDGET_MS=100 npm run bench:crypto` for a quick look. */
export const DEFAULT_BUDGET_MS = Number(process.env['BENCH_BUDGET_MS'] ?? 400);

/**
 * Runs `op` back to back (awaiting each call, so async work is measured end to end) and reports
 * operations per second. Time is checked every batch; batches grow so the clock is not the cost.
 */
export async function measure(op: () => unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  const warmupMs = options.warmupMs ?? budgetMs / 4;
  const minOps = options.minOps ?? 3;
  const maxOps = options.maxOps ?? 1_000_000;
  await runFor(op, warmupMs, 1, maxOps);
  return runFor(op, budgetMs, minOps, maxOps);
}

async function runFor(op: () => unknown, budgetMs: number, minOps: number, maxOps: number): Promise<Measurement> {
  let ops = 0;
  let batch = 1;
  const start = performance.now();
  let now = start;
  while (ops < maxOps && (ops < minOps || now - start < budgetMs)) {
    for (let i = 0; i < batch; i++) await op();
    ops += batch;
    now = performance.now();
    if (now - start < budgetMs / 20) batch = Math.min(batch * 2, 1024);
  }
  const elapsedMs = now - start;
  return { opsPerSec: elapsedMs > 0 ? (ops * 1000) / elapsedMs : Infinity, ops, elapsedMs };
}

/** 1234567.8 → "1,234,568"; 12.345 → "12.3"; small numbers keep three significant digits. */
export function formatOps(value: number | undefined): string {
  if (value === undefined) return '-';
  if (!Number.isFinite(value)) return '∞';
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}

/** Prints rows under headers, columns padded to width; numbers right-aligned. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** The last line of a benchmark run: one JSON object, e.g. {"bench":"crypto","results":{...}}. */
export function printJsonLine(bench: string, payload: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench, ...payload }));
}

/** Rounds a figure for the JSON line (ops/s do not need 15 significant digits). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const scale = 10 ** Math.max(0, digits - Math.ceil(Math.log10(Math.abs(value))));
  return Math.round(value * scale) / scale;
}

let collector: (() => void) | null | undefined;

/**
 * A full garbage collection, untimed, before a timed membership operation (bench:protocol greet):
 * so that a row does not pay for collecting the garbage of the setup or of the row before it
 * (ts-mls's add one at 100 spent 1.7-3.3 s of its ~10 s in GC pauses, varying with what the
 * heap held when it started). GC during the operation is still counted. BENCH_SETTLE_HEAP=0 skips it.
 */
export function settleHeap(): void {
  if (process.env['BENCH_SETTLE_HEAP'] === '0') return;
  if (collector === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    } catch {
      collector = null;
    }
  }
  collector?.();
}
