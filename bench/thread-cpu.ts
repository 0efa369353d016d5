/**
 * CPU time per thread of a Chromium instance and its child processes (Linux /proc), for
 * bench:catchup's BENCH_CATCHUP_THREADS: which threads a catch-up kept busy (the engine worker,
 * a helper worker, IndexedDB, the renderer's main thread) and for how long. CPU time, unlike the
 * catch-up's wall time, barely moves with the machine's load, so it compares two builds on a
 * shared machine. Resolution: the kernel's clock tick (10 ms).
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10; // getconf CLK_TCK = 100 on Linux

interface ThreadTime {
  readonly process: string;
  readonly thread: string;
  readonly ms: number;
}

function stat(path: string): { comm: string; ppid: number; ms: number } | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const fields = text.slice(close + 2).split(' ');
    // After the comm: state(3) ppid(4) … utime(14) stime(15), 1-based over the whole line.
    return { comm, ppid: Number(fields[1]), ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every thread of the browser whose command line holds `marker` (its profile dir) and of its descendants. */
export function threadTimes(marker: string): Map<string, ThreadTime> {
  const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  const parentOf = new Map<string, string>();
  const roots = new Set<string>();
  for (const pid of pids) {
    const s = stat(`/proc/${pid}/stat`);
    if (s === undefined) continue;
    parentOf.set(pid, String(s.ppid));
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker) && s.comm.includes('chrom')) roots.add(pid);
    } catch {
      // gone
    }
  }
  const inTree = (pid: string): boolean => {
    for (let p: string | undefined = pid, depth = 0; p !== undefined && depth < 10; p = parentOf.get(p), depth++) if (roots.has(p)) return true;
    return false;
  };
  const out = new Map<string, ThreadTime>();
  for (const pid of pids) {
    if (!inTree(pid)) continue;
    let type: string;
    try {
      type = /--type=([a-z-]+)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))?.[1] ?? 'browser';
    } catch {
      continue;
    }
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const s = stat(`/proc/${pid}/task/${tid}/stat`);
      if (s !== undefined) out.set(`${pid}/${tid}`, { process: `${type} ${pid}`, thread: s.comm, ms: s.ms });
    }
  }
  return out;
}

/** CPU ms per thread between two readings (threads started in between count from zero), busiest first. */
export function threadDelta(before: Map<string, ThreadTime>, after: Map<string, ThreadTime>, min = 20): { process: string; thread: string; ms: number }[] {
  return [...after]
    .map(([key, t]) => ({ process: t.process, thread: t.thread, ms: t.ms - (before.get(key)?.ms ?? 0) }))
    .filter((t) => t.ms >= min)
    .sort((a, b) => b.ms - a.ms);
}
