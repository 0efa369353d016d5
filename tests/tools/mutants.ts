/**
 * `npm run mutants [-- --only name,name] [--stages text] [--list]`: the mutation check of issue 9 §1.
 *
 * Applies each one-line bug of tests/tools/mutant-list.ts, one at a time, to a scratch copy of the
 * repo (src, tests, bench and configs copied; node_modules symlinked; the shared spec folder
 * symlinked beside it, where the trace tests look for it), runs the mutant's relevant Vitest files
 * and then a short simulation, and prints which stage caught it: a table, then one JSON line.
 *
 * Exits 1 if any mutant survives, or if any anchor no longer matches exactly once ("mutant X not
 * applicable: anchor moved"): whoever refactors the engine updates the list, so that the check
 * keeps testing the code that exists. The unmutated copy must pass every stage first (otherwise
 * "caught" would mean nothing).
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTANTS, type Mutant, type Stage } from './mutant-list.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** What a copy needs to run tests and simulations (node_modules is linked, not copied). */
const COPIED = ['src', 'tests', 'bench', 'sw', 'package.json', 'vitest.config.ts'];
/** A stage that runs longer than this is killed and counts as caught (a hang fails CI too). */
const STAGE_TIMEOUT_MS = 240_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The mutated text, or an error saying why the mutant does not apply. */
export function applyMutant(source: string, m: Mutant): { text: string } | { error: string } {
  const pattern = typeof m.anchor === 'string' ? new RegExp(escapeRegExp(m.anchor), 'g') : new RegExp(m.anchor.source, m.anchor.flags.includes('g') ? m.anchor.flags : m.anchor.flags + 'g');
  const hits = [...source.matchAll(pattern)].length;
  if (hits === 0) return { error: `mutant ${m.name} not applicable: anchor moved (not found in ${m.file})` };
  if (hits > 1) return { error: `mutant ${m.name} not applicable: anchor found ${hits} times in ${m.file} (make it unique)` };
  const text = source.replace(pattern, () => m.replacement);
  return { text };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface StageResult {
  readonly failed: boolean;
  readonly timedOut: boolean;
  readonly ms: number;
  readonly tail: string;
  /** The first line that says what failed (a failing test, a violation, an undetected attack). */
  readonly evidence: string;
}

/** Lines worth quoting as the reason a stage failed. */
const EVIDENCE = /VIOLATION|UNDETECTED|FAIL |AssertionError|Error:|^\s*×\s/;

function runStage(cwd: string, stage: Stage): Promise<StageResult> {
  const started = Date.now();
  const [command, ...args] = stage.command;
  return new Promise((done) => {
    const child = spawn(command!, args, {
      cwd,
      env: { ...process.env, ...stage.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    let first = '';
    const keep = (chunk: Buffer) => {
      const text = chunk.toString();
      if (first === '') first = text.split('\n').find((l) => EVIDENCE.test(l))?.trim().slice(0, 240) ?? '';
      output = (output + text).slice(-4_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the whole group: vitest forks its workers
      } catch {
        // already gone
      }
    }, stage.timeoutMs ?? STAGE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ failed: code !== 0 || timedOut, timedOut, ms: Date.now() - started, tail: output, evidence: first });
    });
  });
}

function makeScratch(): { root: string; repo: string } {
  const root = mkdtempSync(join(tmpdir(), 'covey-mutants-'));
  const repo = join(root, 'repo');
  const configs = readdirSync(REPO).filter((f) => /^tsconfig.*\.json$/.test(f));
  for (const item of [...COPIED, ...configs]) if (existsSync(join(REPO, item))) cpSync(join(REPO, item), join(repo, item), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(repo, 'node_modules'), 'dir');
  // tests/helpers/trace.ts reads ../shared/spec/vectors beside the repo.
  const shared = process.env['COVEY_SHARED_DIR'] ?? join(REPO, '..', 'shared');
  if (existsSync(shared)) symlinkSync(resolve(shared), join(root, 'shared'), 'dir');
  else console.error(`note: no shared spec folder at ${shared} (set COVEY_SHARED_DIR): trace tests will fail in the baseline`);
  return { root, repo };
}

function stageName(s: Stage): string {
  return s.label ?? s.command.join(' ');
}

async function main(): Promise<void> {
  const only = arg('only')?.split(',');
  // --stages sim: run only the stages whose label contains this text (to see what else catches a mutant).
  const stageFilter = arg('stages');
  const chosen = only === undefined ? MUTANTS : MUTANTS.filter((m) => only.includes(m.name));
  const list = stageFilter === undefined ? chosen : chosen.map((m) => ({ ...m, stages: m.stages.filter((s) => stageName(s).includes(stageFilter)) }));
  if (only !== undefined && list.length !== only.length) throw new Error(`unknown mutant in --only ${only.join(',')}`);
  if (process.argv.includes('--list')) {
    for (const m of list) console.log(`${m.name.padEnd(28)} ${m.file}: ${m.bug}`);
    return;
  }
  // Every anchor must apply before anything runs: a moved anchor fails at once, loudly.
  const problems: string[] = [];
  for (const m of list) {
    const r = applyMutant(readFileSync(join(REPO, m.file), 'utf8'), m);
    if ('error' in r) problems.push(r.error);
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.log(JSON.stringify({ bench: 'mutants', mutants: list.length, notApplicable: problems.length, caught: null }));
    process.exit(1);
  }

  const started = Date.now();
  const { root, repo } = makeScratch();
  try {
    // Baseline: the unmutated copy passes every stage that any mutant uses.
    const stages = new Map<string, Stage>();
    for (const m of list) for (const s of m.stages) stages.set(stageName(s), s);
    for (const s of stages.values()) {
      const r = await runStage(repo, s);
      console.error(`baseline ${stageName(s)}: ${r.failed ? 'FAILED' : 'ok'} (${(r.ms / 1000).toFixed(1)} s)`);
      if (r.failed) {
        console.error(r.tail);
        throw new Error(`the unmutated copy fails "${stageName(s)}": fix that first`);
      }
    }
    const rows: { name: string; caughtBy: string | null; ms: number }[] = [];
    for (const m of list) {
      const path = join(repo, m.file);
      const original = readFileSync(path, 'utf8');
      const mutated = applyMutant(original, m);
      if ('error' in mutated) throw new Error(mutated.error);
      writeFileSync(path, mutated.text);
      const t0 = Date.now();
      let caughtBy: string | null = null;
      let evidence = '';
      try {
        for (const s of m.stages) {
          const r = await runStage(repo, s);
          if (r.failed) {
            caughtBy = `${stageName(s)}${r.timedOut ? ' (timeout)' : ''}`;
            evidence = r.evidence;
            break;
          }
        }
      } finally {
        writeFileSync(path, original);
      }
      rows.push({ name: m.name, caughtBy, ms: Date.now() - t0 });
      console.error(`${m.name}: ${caughtBy === null ? 'SURVIVED' : `caught by ${caughtBy}`} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      if (evidence !== '') console.error(`  ${evidence}`);
    }
    const width = Math.max(...rows.map((r) => r.name.length));
    console.log(`${'mutant'.padEnd(width)}  ${'caught by'.padEnd(44)}  s`);
    for (const r of rows) console.log(`${r.name.padEnd(width)}  ${(r.caughtBy ?? 'SURVIVED').padEnd(44)}  ${(r.ms / 1000).toFixed(1)}`);
    const survived = rows.filter((r) => r.caughtBy === null).map((r) => r.name);
    console.log(
      JSON.stringify({
        bench: 'mutants',
        mutants: rows.length,
        caught: rows.length - survived.length,
        survived,
        caughtBy: Object.fromEntries(rows.map((r) => [r.name, r.caughtBy])),
        ms: Date.now() - started,
      }),
    );
    if (survived.length > 0) process.exitCode = 1;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
