/**
 * Functions that run inside the page (every engine). Their source text is sent to the browser,
 * so each is self-contained: no imports, no outer variables, no helpers outside its body.
 */
import type { Target } from './types.js';

/** A string or a RegExp, in a form that survives JSON. */
export type TextMatcher = { readonly exact: string } | { readonly source: string; readonly flags: string };
export type SerializedTarget =
  | { readonly role: string; readonly name?: TextMatcher }
  | { readonly label: TextMatcher }
  | { readonly testId: string }
  | { readonly text: TextMatcher };

export function textMatcher(value: string | RegExp): TextMatcher {
  return typeof value === 'string' ? { exact: value } : { source: value.source, flags: value.flags };
}

export function serializeTarget(target: Target): SerializedTarget {
  if ('role' in target) return target.name === undefined ? { role: target.role } : { role: target.role, name: textMatcher(target.name) };
  if ('label' in target) return { label: textMatcher(target.label) };
  if ('testId' in target) return { testId: target.testId };
  return { text: textMatcher(target.text) };
}

export function describeTarget(target: Target): string {
  if ('role' in target) return target.name === undefined ? `role=${target.role}` : `role=${target.role} name=${String(target.name)}`;
  if ('label' in target) return `label=${String(target.label)}`;
  if ('testId' in target) return `testId=${target.testId}`;
  return `text=${String(target.text)}`;
}

/** Finds the first visible element for a target, or null. Runs in the page. */
export function locateInPage(target: SerializedTarget): Element | null {
  const squash = (text: string | null | undefined): string => (text ?? '').replace(/\s+/g, ' ').trim();
  const matches = (matcher: TextMatcher, text: string): boolean =>
    'exact' in matcher ? squash(text) === squash(matcher.exact) : new RegExp(matcher.source, matcher.flags).test(text);
  const visible = (el: Element): boolean => {
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return rect.width > 0 && rect.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  };
  const byIds = (ids: string | null): string =>
    squash((ids ?? '').split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' '));
  const labelOf = (el: Element): string => {
    const labelledBy = el.getAttribute('aria-labelledby');
    if (labelledBy) return byIds(labelledBy);
    const aria = el.getAttribute('aria-label');
    if (aria) return squash(aria);
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) {
      const labels = el.labels ? Array.from(el.labels).map((l) => l.textContent).join(' ') : '';
      if (squash(labels)) return squash(labels);
      const placeholder = el.getAttribute('placeholder');
      if (placeholder) return squash(placeholder);
    }
    return '';
  };
  const nameOf = (el: Element): string => {
    const label = labelOf(el);
    if (label) return label;
    if (el instanceof HTMLImageElement) return squash(el.alt);
    const text = squash(el.textContent);
    return text || squash(el.getAttribute('title'));
  };
  const implicitRole = (el: Element): string => {
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute('type') ?? 'text').toLowerCase();
    switch (tag) {
      case 'button': return 'button';
      case 'a': return el.hasAttribute('href') ? 'link' : '';
      case 'input':
        if (['button', 'submit', 'reset', 'image'].includes(type)) return 'button';
        if (type === 'checkbox') return 'checkbox';
        if (type === 'radio') return 'radio';
        if (type === 'search') return 'searchbox';
        if (type === 'range') return 'slider';
        if (['text', 'email', 'tel', 'url', 'password'].includes(type)) return 'textbox';
        return '';
      case 'textarea': return 'textbox';
      case 'select': return 'combobox';
      case 'h1': case 'h2': case 'h3': case 'h4': case 'h5': case 'h6': return 'heading';
      case 'img': return el.getAttribute('alt') === '' ? 'presentation' : 'img';
      case 'ul': case 'ol': return 'list';
      case 'li': return 'listitem';
      case 'nav': return 'navigation';
      case 'main': return 'main';
      case 'dialog': return 'dialog';
      case 'form': return 'form';
      case 'output': return 'status';
      case 'section': return el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby') ? 'region' : '';
      case 'article': return 'article';
      default: return '';
    }
  };
  const all = Array.from(document.querySelectorAll('*')).filter(visible);
  if ('testId' in target) return all.find((el) => el.getAttribute('data-testid') === target.testId) ?? null;
  if ('role' in target) {
    const name = target.name;
    return all.find((el) => (el.getAttribute('role') ?? implicitRole(el)) === target.role && (name === undefined || matches(name, nameOf(el)))) ?? null;
  }
  if ('label' in target) {
    const controls = all.filter((el) => el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement || el.hasAttribute('contenteditable') || el.getAttribute('role') === 'textbox');
    return controls.find((el) => matches(target.label, labelOf(el))) ?? null;
  }
  // Innermost match: no child element matches too.
  const found = all.filter((el) => matches(target.text, squash((el as HTMLElement).innerText ?? el.textContent)));
  return found.find((el) => !found.some((other) => other !== el && el.contains(other))) ?? null;
}

/** True when the page's visible text contains the matcher. Runs in the page. */
export function pageHasText(matcher: TextMatcher): boolean {
  const text = (document.body?.innerText ?? '').replace(/\s+/g, ' ');
  return 'exact' in matcher ? text.includes(matcher.exact.replace(/\s+/g, ' ').trim()) : new RegExp(matcher.source, matcher.flags).test(text);
}

/** The first part of the page's visible text, for failure messages. Runs in the page. */
export function pageTextSample(): string {
  return (document.body?.innerText ?? '').replace(/\s+/g, ' ').slice(0, 400);
}

/**
 * The problem probe: records CSP violations (and, where asked, uncaught errors and console.error
 * calls) into
 * `window.__coveyProblems` and mirrors each as a console.debug line the driver can read natively
 * (PROBE_PREFIX). Installed before the page's scripts where the engine allows (Chromium, Firefox);
 * in WebKit right after each navigation, so the buffered ReportingObserver catches CSP reports
 * that happened before. Runs in the page; idempotent.
 */
export const PROBE_PREFIX = '__covey_probe__';
export function installProbe(options: { readonly prefix: string; readonly wrapConsole: boolean }): void {
  const prefix = options.prefix;
  type Problem = { kind: 'console-error' | 'page-error' | 'csp-violation'; text: string };
  const w = window as unknown as { __coveyProblems?: Problem[] };
  if (w.__coveyProblems) return;
  const problems: Problem[] = [];
  w.__coveyProblems = problems;
  const seen = new Set<string>();
  const debug = console.debug.bind(console);
  const record = (problem: Problem): void => {
    const key = `${problem.kind}:${problem.text}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(problem);
    debug(prefix + JSON.stringify(problem));
  };
  const cspText = (directive: string, blocked: string, source: string, line: number | undefined): string =>
    `${directive} blocked ${blocked || '(inline)'}${source ? ` at ${source}:${line ?? 0}` : ''}`;
  document.addEventListener('securitypolicyviolation', (e) => record({ kind: 'csp-violation', text: cspText(e.effectiveDirective || e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber) }), true);
  if ('ReportingObserver' in window) {
    type CspBody = { effectiveDirective?: string; blockedURL?: string; sourceFile?: string; lineNumber?: number };
    const Observer = (window as unknown as { ReportingObserver: new (cb: (reports: { type: string; body: CspBody }[]) => void, o: object) => { observe(): void } }).ReportingObserver;
    new Observer((reports) => {
      for (const r of reports) if (r.type === 'csp-violation') record({ kind: 'csp-violation', text: cspText(r.body.effectiveDirective ?? '', r.body.blockedURL ?? '', r.body.sourceFile ?? '', r.body.lineNumber) });
    }, { types: ['csp-violation'], buffered: true }).observe();
  }
  window.addEventListener('error', (e) => record({ kind: 'page-error', text: String(e.message || e.error) }));
  window.addEventListener('unhandledrejection', (e) => record({ kind: 'page-error', text: `unhandled rejection: ${String((e.reason as Error | undefined)?.message ?? e.reason)}` }));
  if (!options.wrapConsole) return; // the driver hears console.error natively, from the start
  const error = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    record({ kind: 'console-error', text: args.map(String).join(' ') });
    error(...args);
  };
}

/** Reads what the probe recorded on this page (WebKit, which has no console channel here). */
export function readProbe(): { kind: 'console-error' | 'page-error' | 'csp-violation'; text: string }[] {
  return (window as unknown as { __coveyProblems?: { kind: 'console-error' | 'page-error' | 'csp-violation'; text: string }[] }).__coveyProblems ?? [];
}
