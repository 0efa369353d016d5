/**
 * The mutation check's anchors (tests/tools/mutant-list.ts) still name the code they mutate:
 * each matches exactly once and changes it. CI does not run `npm run mutants` (minutes), so this
 * is what makes a refactor of the engine update the list rather than silently drop a mutant.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../tools/mutant-list.js';
import { applyMutant } from '../tools/mutants.js';

describe('mutation check anchors', () => {
  it.each(MUTANTS.map((m) => [m.name, m] as const))('%s applies exactly once', (_name, m) => {
    const source = readFileSync(m.file, 'utf8');
    const result = applyMutant(source, m);
    expect('error' in result ? result.error : '').toBe('');
    if ('text' in result) expect(result.text).not.toBe(source);
  });

  it('names every mutant once, with at least one stage', () => {
    expect(new Set(MUTANTS.map((m) => m.name)).size).toBe(MUTANTS.length);
    for (const m of MUTANTS) expect(m.stages.length, m.name).toBeGreaterThan(0);
  });
});
