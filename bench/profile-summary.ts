/**
 * Reads a V8 CPU profile (`.cpuprofile`, as bench/trace-profiles.ts writes for
 * BENCH_CATCHUP_PROFILE) and prints where the time went: self time by function, inclusive time of
 * the functions named with --focus, and a timeline of the busiest function per slice.
 *
 *   npx tsx bench/profile-summary.ts file.cpuprofile [--top 40] [--slices 250] [--focus a,b]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const file = args.find((a) => a.endsWith('.cpuprofile'));
if (file === undefined) throw new Error('usage: profile-summary.ts file.cpuprofile [--top n] [--slices ms] [--focus a,b]');
const top = Number(option('top', '40'));
const sliceMs = Number(option('slices', '250'));
const focus = option('focus', '').split(',').filter((f) => f !== '');
/** --samples: every sample weighs the sampling interval (a loaded machine preempts the worker, and the
 * sample before a preemption would otherwise carry the whole gap). */
const bySamples = args.includes('--samples');
const intervalMs = Number(option('interval', '0.25'));

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const shortUrl = (url: string) => url.replace(/^.*\//, '');
const label = (f: CallFrame) => `${f.functionName === '' ? '(anonymous)' : f.functionName} ${shortUrl(f.url)}:${f.lineNumber + 1}`;

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const slices = new Map<number, Map<string, number>>();
let t = 0;
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = bySamples ? intervalMs : (profile.timeDeltas[i + 1] ?? 0) / 1000; // a sample lasts until the next one
  t += (profile.timeDeltas[i] ?? 0) / 1000;
  const node = byId.get(profile.samples[i]!)!;
  const name = label(node.callFrame);
  total += dt;
  self.set(name, (self.get(name) ?? 0) + dt);
  const slice = Math.floor(t / sliceMs);
  const s = slices.get(slice) ?? new Map<string, number>();
  slices.set(slice, s);
  s.set(name, (s.get(name) ?? 0) + dt);
  if (focus.length > 0) {
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const fn = byId.get(id)!.callFrame.functionName;
      for (const f of focus) if (fn === f && !seen.has(f)) {
        seen.add(f);
        inclusive.set(f, (inclusive.get(f) ?? 0) + dt);
      }
    }
  }
}

const ms = (v: number) => v.toFixed(0).padStart(7);
console.log(`${file}: ${total.toFixed(0)} ms sampled`);
console.log('\nself time, top functions:');
for (const [name, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${name}`);
if (focus.length > 0) {
  console.log('\ninclusive time:');
  for (const f of focus) console.log(`${ms(inclusive.get(f) ?? 0)} ms  ${f}`);
}
console.log(`\ntimeline (slices of ${sliceMs} ms: busiest three, idle):`);
for (const [slice, s] of [...slices].sort((a, b) => a[0] - b[0])) {
  const idle = s.get(label({ functionName: '(idle)', url: '', lineNumber: -1 })) ?? 0;
  const busy = [...s].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 3);
  console.log(`${String(slice * sliceMs).padStart(6)} ms  idle ${ms(idle)}  ${busy.map(([n, v]) => `${n} ${v.toFixed(0)}`).join(' | ')}`);
}
