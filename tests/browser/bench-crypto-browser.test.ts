/**
 * `npm run bench:crypto-browser` still works, and a real browser's dedicated worker is detected as
 * its own engine. The script itself, run as the lead runs it, one browser at a time, at two sizes,
 * one round and 1 ms batches (a few seconds of measuring). It checks what the script reports, not
 * how fast:
 * - the worker's user agent (detect.ts `detectCryptoRuntime`, as the engine's worker calls it)
 *   names the engine it runs in: the unit tests of `cryptoRuntimeOf` only see UA strings;
 * - the thresholds it prints are `thresholdsFor` that engine (select.ts), as the engine would use;
 * - every primitive at every size has a time per call for both providers, and every packet size
 *   one per hybrid.
 * Timing is the benchmark's business.
 */
import { describe, expect, test } from 'vitest';
import { MODES, PRIMITIVES, type Mode, type ProviderName } from '../../bench/crypto-browser-cells.js';
import type { CryptoRuntime } from '../../src/protocol/crypto/detect.js';
import { thresholdsFor } from '../../src/protocol/crypto/select.js';
import { REPO_ROOT } from './harness/app.js';
import { browserRun } from './harness/engines.js';
import { runScript } from './harness/processes.js';

const SIZES = [64, 1024];
/** The padded packet sizes the script times (bench/crypto-browser.ts PACKET_SIZES). */
const PACKET_SIZES = [128, 256, 512, 1024];
/**
 * A safety net only: ~10 s for Chromium, ~15 s for Firefox, ~20 s for WebKit on the shared 2-core
 * machine; the script gives Firefox's launch 180 s when the machine is very busy.
 */
const RUN_MS = 240_000;
/**
 * The modes timed directly. 'cold' is a difference of two timings (calls with a cache scrub
 * before each, minus the scrubs alone, crypto-browser-cells.ts Mode): over one 1 ms batch its
 * sign is noise (-55 µs for noble's 64 B GCM open in one run), so it is only checked to be a number.
 */
const DIRECT_MODES: readonly Mode[] = ['sequential', 'inFlight'];

/** The script's JSON line, as far as this test reads it. */
interface BrowserResult {
  readonly userAgent: string;
  readonly runtime: string;
  readonly times: Record<string, Record<string, Record<ProviderName, Record<Mode, number>>>>;
  readonly hybrids: Record<string, unknown>;
  readonly packets: Record<string, Record<string, { sequential: number; inFlight: number }>>;
}

/** The script as the CLI runs it; past RUN_MS it is killed with its browser (and WebKit's Xvfb). */
const runBench = (args: readonly string[]) => runScript(REPO_ROOT, 'bench/crypto-browser.ts', args, {}, RUN_MS);

const positive = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

// The script launches its own browser (as the lead runs it), from the same paths as the harness;
// the engines are the run's (COVEY_BROWSERS), so a missing browser fails here as everywhere.
describe.each(browserRun().engines)('bench:crypto-browser in %s', (name) => {
  test(
    `detects "${name}" in its worker, prints thresholdsFor("${name}") and a time for every cell`,
    async () => {
      const run = await runBench(['--browsers', name, '--rounds', '1', '--batch-ms', '1', '--sizes', SIZES.join(',')]);
      expect(run.code, `bench:crypto-browser exited ${run.code}:\n${run.stderr.split('\n').slice(-30).join('\n')}`).toBe(0);
      const lines = run.stdout.trim().split('\n');
      const json = lines.filter((line) => line.startsWith('{'));
      expect(json).toHaveLength(1);
      const { bench, sizes, results } = JSON.parse(json[0]!) as { bench: string; sizes: number[]; results: Record<string, BrowserResult> };
      expect(bench).toBe('crypto-browser');
      expect(sizes).toEqual(SIZES);
      expect(Object.keys(results)).toEqual([name]);
      const result = results[name]!;

      // The worker's own user agent names this engine, and the engine's thresholds follow.
      expect(result.runtime, result.userAgent).toBe(name);
      const expected = thresholdsFor(name as CryptoRuntime);
      const detects = lines.map((line) => /^\s*the engine detects "([^"]*)": thresholds (\{.*\})$/.exec(line)).filter((m) => m !== null);
      expect(detects).toHaveLength(1);
      expect(detects[0]![1]).toBe(name);
      expect(JSON.parse(detects[0]![2]!)).toEqual(expected);
      // The packet timings ran with the engine's own thresholds under its name.
      expect(result.hybrids[name]).toEqual(expected);

      expect(Object.keys(result.times).sort()).toEqual([...PRIMITIVES].sort());
      for (const primitive of PRIMITIVES) {
        expect(Object.keys(result.times[primitive]!), primitive).toEqual(SIZES.map(String));
        for (const size of SIZES) {
          for (const provider of ['noble', 'webcrypto'] as const) {
            const cell = result.times[primitive]![String(size)]![provider];
            const where = `${primitive} ${size} B ${provider}`;
            for (const mode of DIRECT_MODES) expect(positive(cell[mode]), `${where} ${mode}: ${cell[mode]}`).toBe(true);
            expect(Number.isFinite(cell.cold), `${where} cold: ${cell.cold}`).toBe(true);
            expect(Object.keys(cell).sort(), where).toEqual([...MODES].sort());
          }
        }
      }

      expect(Object.keys(result.packets)).toEqual(PACKET_SIZES.map(String));
      for (const size of PACKET_SIZES) {
        const row = result.packets[String(size)]!;
        expect(Object.keys(row).sort(), `packet ${size} B`).toEqual(Object.keys(result.hybrids).sort());
        for (const [hybrid, t] of Object.entries(row)) {
          expect(positive(t.sequential) && positive(t.inFlight), `packet ${size} B ${hybrid}: ${JSON.stringify(t)}`).toBe(true);
        }
      }
    },
    RUN_MS + 10_000,
  );
});
