/** axe-core in any engine: its source is evaluated in the page, then `axe.run` on the document. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AxeViolation } from './types.js';

let source: string | undefined;
export function axeSource(): string {
  source ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  return source;
}

/** Runs in the page once axe is loaded: serious and critical violations (WCAG 2.x A/AA + best practice). */
export async function runAxeInPage(): Promise<AxeViolation[]> {
  type Result = { id: string; impact?: string | null; help: string; nodes: { target: unknown[] }[] };
  const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: Result[] }> } }).axe;
  const results = await axe.run(document, { resultTypes: ['violations'] });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact as 'serious' | 'critical', help: v.help, targets: v.nodes.map((n) => n.target.map(String).join(' ')) }));
}

/** True once `window.axe` exists. Runs in the page. */
export function axeLoaded(): boolean {
  return 'axe' in window;
}
