/**
 * V8 CPU profiles of every JavaScript thread of a reader's Chromium (the page, the engine's
 * worker, the service worker), for bench:catchup's BENCH_CATCHUP_PROFILE. Taken from a Chromium
 * trace with the `disabled-by-default-v8.cpu_profiler` category: V8 then writes a `Profile`
 * event per thread and `ProfileChunk` events with its nodes and samples. (Attaching a DevTools
 * session to each dedicated worker and calling Profiler.start/stop, the earlier way, hung.)
 * Each thread's profile is written as `<prefix>.<thread>.<pid>.<tid>.cpuprofile` (the thread id:
 * the engine's worker and its verifier thread share a name and a process), the format of
 * DevTools and bench/profile-summary.ts (names are the build's: minified).
 */
import { writeFileSync } from 'node:fs';
import { startBrowserTrace } from './cdp.js';

const CATEGORIES = ['v8', 'disabled-by-default-v8.cpu_profiler'];

interface TraceEvent {
  readonly name?: string;
  readonly pid?: number;
  readonly tid?: number;
  readonly id?: string;
  readonly args?: { readonly name?: string; readonly data?: Record<string, unknown> };
}

interface ProfileNode {
  readonly id: number;
  readonly parent?: number;
  callFrame: Record<string, unknown>;
  children?: number[];
}

export interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/** The CPU profile of each thread found in a trace's events, by "<thread name>.<pid>.<tid>". */
export function cpuProfilesFromTrace(events: readonly TraceEvent[]): Map<string, CpuProfile> {
  const threadNames = new Map<string, string>();
  for (const e of events) if (e.name === 'thread_name' && e.args?.name !== undefined) threadNames.set(`${e.pid}:${e.tid}`, e.args.name);
  const byId = new Map<string, { thread: string; profile: CpuProfile }>();
  for (const e of events) {
    if (e.name !== 'Profile' || e.id === undefined) continue;
    const startTime = Number(e.args?.data?.['startTime'] ?? 0);
    const thread = `${(threadNames.get(`${e.pid}:${e.tid}`) ?? 'thread').replace(/[^A-Za-z0-9_-]+/g, '_')}.${e.pid}.${e.tid}`;
    byId.set(`${e.pid}:${e.id}`, { thread, profile: { nodes: [], startTime, endTime: startTime, samples: [], timeDeltas: [] } });
  }
  for (const e of events) {
    if (e.name !== 'ProfileChunk' || e.id === undefined) continue;
    const entry = byId.get(`${e.pid}:${e.id}`);
    if (entry === undefined) continue;
    const data = e.args?.data ?? {};
    const chunk = (data['cpuProfile'] ?? {}) as { nodes?: ProfileNode[]; samples?: number[] };
    entry.profile.nodes.push(...(chunk.nodes ?? []));
    entry.profile.samples.push(...(chunk.samples ?? []));
    entry.profile.timeDeltas.push(...((data['timeDeltas'] as number[] | undefined) ?? []));
  }
  const out = new Map<string, CpuProfile>();
  for (const { thread, profile } of byId.values()) {
    if (profile.samples.length === 0) continue;
    // Chunks name each node's parent; DevTools' format lists children.
    const children = new Map<number, number[]>();
    for (const n of profile.nodes) if (n.parent !== undefined) children.set(n.parent, [...(children.get(n.parent) ?? []), n.id]);
    for (const n of profile.nodes) {
      n.children = children.get(n.id) ?? [];
      // Native frames come without a script: DevTools' format has every field.
      n.callFrame = { functionName: '', scriptId: '0', url: '', lineNumber: -1, columnNumber: -1, ...n.callFrame };
    }
    const endTime = profile.startTime + profile.timeDeltas.reduce((a, b) => a + b, 0);
    out.set(thread, { ...profile, endTime });
  }
  return out;
}

export interface ThreadProfiler {
  /** Stops, writes one `.cpuprofile` per JavaScript thread; returns the files. */
  stop(prefix: string): Promise<string[]>;
}

/** Starts tracing the browser of `profileDir` (DevTools port) with V8's CPU profiler on. */
export async function profileThreads(profileDir: string): Promise<ThreadProfiler> {
  const trace = await startBrowserTrace<TraceEvent>(profileDir, CATEGORIES);
  return {
    async stop(prefix) {
      const files: string[] = [];
      for (const [thread, profile] of cpuProfilesFromTrace(await trace.stop())) {
        const file = `${prefix}.${thread}.cpuprofile`;
        writeFileSync(file, JSON.stringify(profile));
        files.push(file);
      }
      return files;
    },
  };
}
