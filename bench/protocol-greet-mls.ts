/**
 * The ts-mls side of `bench:protocol -- greet` (issue 3): start a group of n (createGroup, add
 * n-1 in one commit, every member joins from the Welcome), and add or remove one member at n.
 * All members' work summed; see bench/mls.ts for what is and is not counted.
 *
 * Add and remove at n start from the group that "start n" built (ts-mls states are immutable,
 * so both operations fork the same states), which saves rebuilding large groups; sizes without a
 * start row are built untimed. At n = 100 the start alone is ~15 s of CPU here (quadratic: each
 * joiner validates the whole ratchet tree), so the default run takes about half a minute.
 *
 * `npx tsx bench/protocol-greet-mls.ts` runs it alone (table, then one JSON line); bench/protocol.ts
 * puts `rows` and `json` beside mpENC's numbers.
 */
import { pathToFileURL } from 'node:url';
import { formatOps, printJsonLine, printTable, round } from './harness.js';
import { MLS_CIPHERSUITE, mlsAddOne, mlsRemoveOne, mlsStartGroupWithState, type MlsGroup, type MlsGroupResult } from './mls.js';

export interface GreetMlsSizes {
  /** Group sizes to start (default 2, 10, 50, 100). */
  readonly start?: readonly number[];
  /** Group sizes at which one member is added and one removed (default 10, 50, 100). */
  readonly change?: readonly number[];
}

export const DEFAULT_GREET_MLS_SIZES = { start: [2, 10, 50, 100], change: [10, 50, 100] } as const;

export interface GreetMlsBaseline {
  readonly ciphersuite: string;
  readonly start: readonly MlsGroupResult[];
  readonly add: readonly MlsGroupResult[];
  readonly remove: readonly MlsGroupResult[];
  /** Table rows: operation, n, CPU ms, wall ms, key packages CPU ms (not counted), epoch ok. */
  readonly rows: readonly (readonly string[])[];
  /** JSON-safe: per operation, n → { cpuMs, wallMs }. */
  readonly json: Record<string, unknown>;
}

export const GREET_MLS_TABLE_HEADERS = ['ts-mls operation', 'n', 'CPU ms', 'wall ms', 'key packages CPU ms', 'agreed'] as const;

export async function runGreetMlsBaseline(sizes: GreetMlsSizes = {}): Promise<GreetMlsBaseline> {
  const startSizes = sizes.start ?? DEFAULT_GREET_MLS_SIZES.start;
  const changeSizes = sizes.change ?? DEFAULT_GREET_MLS_SIZES.change;
  const start: MlsGroupResult[] = [];
  const built = new Map<number, MlsGroup>();
  for (const n of startSizes) {
    const { result, group } = await mlsStartGroupWithState(n);
    start.push(result);
    if (changeSizes.includes(n)) built.set(n, group);
  }
  const add: MlsGroupResult[] = [];
  const remove: MlsGroupResult[] = [];
  for (const n of changeSizes) {
    const group = built.get(n) ?? (await mlsStartGroupWithState(n)).group;
    add.push(await mlsAddOne(n, group));
    remove.push(await mlsRemoveOne(n, group));
    built.delete(n);
  }
  const row = (op: string, r: MlsGroupResult) => [
    op,
    String(r.n),
    formatOps(r.timing.cpuMs),
    formatOps(r.timing.wallMs),
    r.keyPackages.cpuMs === 0 ? '-' : formatOps(r.keyPackages.cpuMs),
    r.agreed ? 'yes' : 'NO',
  ];
  const rows = [...start.map((r) => row('start', r)), ...add.map((r) => row('add one', r)), ...remove.map((r) => row('remove one', r))];
  const byN = (results: readonly MlsGroupResult[]) =>
    Object.fromEntries(results.map((r) => [String(r.n), { cpuMs: round(r.timing.cpuMs), wallMs: round(r.timing.wallMs), keyPackagesCpuMs: round(r.keyPackages.cpuMs), agreed: r.agreed }]));
  const json = { ciphersuite: MLS_CIPHERSUITE, start: byN(start), add: byN(add), remove: byN(remove) };
  return { ciphersuite: MLS_CIPHERSUITE, start, add, remove, rows, json };
}

/**
 * ts-mls's side row by row, so that bench/protocol.ts can interleave each row with mpENC's and
 * repeat it: `start(n)` keeps its group for the next `change(n)` (which forks it, or builds one
 * untimed). Made after an untimed warm-up (a group of 3 started, one added and one removed), as
 * the mpENC side warms up with a group of 3: the first processMessage or joinGroup of a process
 * would otherwise pay for the JIT inside a timed row.
 */
export interface MlsGreeter {
  start(n: number): Promise<MlsGroupResult>;
  change(n: number): Promise<{ readonly add: MlsGroupResult; readonly remove: MlsGroupResult }>;
}

export async function mlsGreeter(): Promise<MlsGreeter> {
  const warm = await mlsStartGroupWithState(3);
  await mlsAddOne(3, warm.group);
  await mlsRemoveOne(3, warm.group);
  const built = new Map<number, MlsGroup>();
  return {
    async start(n) {
      built.delete(n); // the previous round's group of n is garbage before this one is built
      const { result, group } = await mlsStartGroupWithState(n);
      built.set(n, group);
      return result;
    },
    async change(n) {
      const group = built.get(n) ?? (await mlsStartGroupWithState(n)).group;
      built.delete(n);
      const add = await mlsAddOne(n, group);
      const remove = await mlsRemoveOne(n, group);
      return { add, remove };
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const baseline = await runGreetMlsBaseline();
  printTable(GREET_MLS_TABLE_HEADERS, baseline.rows);
  printJsonLine('protocol-greet-mls', baseline.json);
  if (![...baseline.start, ...baseline.add, ...baseline.remove].every((r) => r.agreed)) process.exitCode = 1;
}
