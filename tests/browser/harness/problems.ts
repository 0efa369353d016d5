/** Collects a profile's console errors, uncaught errors and CSP violations, from any engine. */
import { PROBE_PREFIX } from './in-page.js';
import type { PageProblem } from './types.js';

/** Engines report CSP violations in the console as errors: Chromium and WebKit "Refused to ...", Firefox "Content-Security-Policy: ..." (over BiDi, as an error). */
const CSP_MESSAGE = /^(Error: )?Refused to |Content[- ]Security[- ]Policy/i;

export class ProblemLog {
  private readonly items: PageProblem[] = [];
  private readonly seen = new Set<string>();

  add(problem: PageProblem): void {
    const key = `${problem.kind}:${problem.text}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.items.push(problem);
  }

  /** A console message from the engine: errors count; the probe's debug lines carry its findings. */
  console(type: string, text: string): void {
    if (text.startsWith(PROBE_PREFIX)) {
      this.add(JSON.parse(text.slice(PROBE_PREFIX.length)) as PageProblem);
      return;
    }
    if (type !== 'error') return;
    this.add({ kind: CSP_MESSAGE.test(text) ? 'csp-violation' : 'console-error', text });
  }

  /** An uncaught error the engine reports (Firefox also reports CSP violations this way). */
  pageError(text: string): void {
    this.add({ kind: CSP_MESSAGE.test(text) ? 'csp-violation' : 'page-error', text });
  }

  list(): readonly PageProblem[] {
    return [...this.items];
  }
}
