/**
 * The mpENC side of `bench:protocol -- greet`: CPU time of membership operations, all members'
 * work summed (the members run one after another in this process, so process CPU time is the
 * total), per crypto provider:
 *  - start a group of n (CLIQUES IKA + ASKE v2: each member contributes in turn, every member
 *    checks every contribution; async-groups rule 1);
 *  - include one member and exclude one member at n (rule 1: the initiator and the newcomer act;
 *    every other member derives the key later and confirms, rule 5);
 *  - the same include and exclude with a third of the members asleep during the operation: they
 *    wake afterwards, catch up and confirm (issue 8: total work must not grow because someone slept).
 * Static identity keys are made before timing (they are long-lived); ephemeral keys, nonces and
 * contributions inside it.
 */
import { performance } from 'node:perf_hooks';
import { bytesEqual } from '../src/protocol/bytes.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import type { MemberId } from '../src/protocol/ids.js';
import { SimGroup } from '../tests/sim/channel.js';
import { settleHeap } from './harness.js';

export type GreetOp = 'start' | 'include one' | 'exclude one' | 'include one, 1/3 asleep' | 'exclude one, 1/3 asleep';

export interface GreetResult {
  readonly provider: string;
  readonly op: GreetOp;
  readonly n: number;
  readonly cpuMs: number;
  readonly wallMs: number;
  /** Everyone in the channel ends in the same subsession (members, key, chain hash), no warning. */
  readonly agreed: boolean;
  /**
   * Public-key operations all members made (Ed25519 verify + sign, X25519): the work count that
   * must not grow when members sleep through the operation (issue 8), free of the machine's noise.
   */
  readonly publicKeyOps: number;
}

/** Counts the public-key calls made through `crypto` (the bulk of a greeting's floor). */
function countingProvider(crypto: CryptoProvider): { readonly crypto: CryptoProvider; readonly count: () => number } {
  let calls = 0;
  const counted = new Set<PropertyKey>(['ed25519Verify', 'ed25519Sign', 'x25519']);
  const wrapped = new Proxy(crypto, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!counted.has(key)) return method.bind(target);
      return (...args: unknown[]) => {
        calls += 1;
        return method.apply(target, args);
      };
    },
  });
  return { crypto: wrapped, count: () => calls };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `member${String(i).padStart(3, '0')}`);

let countCalls: () => number = () => 0;

async function timedCpu(work: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number; publicKeyOps: number }> {
  settleHeap();
  const calls0 = countCalls();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await work();
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - wall0, publicKeyOps: countCalls() - calls0 };
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
    // Rule 5: every member's confirmation reached every member.
    holders.every((m) => m.state.current!.confirmed.length === expected) &&
    g.warnings().length === 0
  );
}

/** A started group of n (untimed unless `time`), with static keys made before anything else. */
async function startGroup(crypto: CryptoProvider, n: number, extra: number): Promise<{ g: SimGroup; timing: { cpuMs: number; wallMs: number; publicKeyOps: number } }> {
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

/** Every third member (not the initiator, not a newcomer) sleeps during `work`, then wakes and catches up. */
async function withSleepers(g: SimGroup, asleep: boolean, work: () => Promise<void>): Promise<void> {
  const sleepers = asleep ? names(g.members.size).slice(1).filter((_, i) => i % 3 === 2) : [];
  for (const s of sleepers) g.member(s).paused = true;
  await work();
  for (const s of sleepers) g.member(s).paused = false;
  await g.settle();
}

/**
 * One provider's side of the greet bench, row by row, so that bench/protocol.ts can interleave
 * each row with ts-mls's and repeat it (every call builds its groups afresh, untimed).
 */
export interface CoveyGreeter {
  readonly provider: string;
  start(n: number): Promise<GreetResult>;
  /** Include one and exclude one at n (each from its own fresh group of n). */
  change(n: number, asleep: boolean): Promise<GreetResult[]>;
}

export async function coveyGreeter(provider: CryptoProvider): Promise<CoveyGreeter> {
  const counting = countingProvider(provider);
  const crypto = counting.crypto;
  const use = () => {
    countCalls = counting.count;
  };
  use();
  await startGroup(crypto, 3, 0); // warm-up (JIT, key caches), untimed
  return {
    provider: crypto.name,
    async start(n) {
      use();
      const { g, timing } = await startGroup(crypto, n, 0);
      return { provider: crypto.name, op: 'start', n, ...timing, agreed: agreed(g, n) };
    },
    async change(n, asleep) {
      use();
      return changeRows(crypto, n, asleep);
    },
  };
}

async function changeRows(crypto: CryptoProvider, n: number, asleep: boolean): Promise<GreetResult[]> {
  const out: GreetResult[] = [];
  // Include one at n: a group of n; one more joins the channel and is included.
  const inc = await startGroup(crypto, n, 1);
  const joiner = names(n + 1)[n]!;
  inc.g.join(joiner);
  await inc.g.settle();
  const incTiming = await timedCpu(() =>
    withSleepers(inc.g, asleep, async () => {
      await inc.g.input(inc.g.member(names(1)[0]!), { kind: 'include', members: [joiner as MemberId] });
      await inc.g.settle();
    }),
  );
  out.push({ provider: crypto.name, op: asleep ? 'include one, 1/3 asleep' : 'include one', n, ...incTiming, agreed: agreed(inc.g, n + 1) });
  // Exclude one at n: from the same sizes' fresh group.
  const exc = await startGroup(crypto, n, 0);
  const victim = names(n)[n - 1]!;
  const excTiming = await timedCpu(() =>
    withSleepers(exc.g, asleep, async () => {
      await exc.g.input(exc.g.member(names(1)[0]!), { kind: 'exclude', members: [victim as MemberId] });
      await exc.g.settle();
    }),
  );
  out.push({ provider: crypto.name, op: asleep ? 'exclude one, 1/3 asleep' : 'exclude one', n, ...excTiming, agreed: agreed(exc.g, n - 1) });
  return out;
}

/** Every row once, in order: start sizes, include/exclude at each change size, then asleep. */
export async function coveyGreet(provider: CryptoProvider, startSizes: readonly number[], changeSizes: readonly number[], sleepySizes: readonly number[]): Promise<GreetResult[]> {
  const greeter = await coveyGreeter(provider);
  const out: GreetResult[] = [];
  for (const n of startSizes) out.push(await greeter.start(n));
  for (const n of changeSizes) out.push(...(await greeter.change(n, false)));
  for (const n of sleepySizes) out.push(...(await greeter.change(n, true)));
  return out;
}
