/**
 * The engine-neutral half of a tab: waiting, locating, text checks, axe and screenshots, built on
 * a handful of primitives each driver implements (PagePrimitives).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './app.js';
import { axeLoaded, axeSource, runAxeInPage } from './axe.js';
import { describeTarget, locateInPage, pageHasText, pageTextSample, serializeTarget, textMatcher, type SerializedTarget } from './in-page.js';
import { WAIT_TIMEOUT_MS, type AxeViolation, type Profile, type Tab, type Target, type Viewport, type WaitOptions } from './types.js';

/** How often waits look again. */
const POLL_INTERVAL_MS = 100;

export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'browser');

export type Key = 'Enter' | 'Escape' | 'Tab' | 'Backspace';

/** What a driver provides for one tab; `E` is its element handle type. */
export interface PagePrimitives<E> {
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<Awaited<R>>;
  /** Evaluates a script's source text (axe-core) in the page. */
  evaluateSource(source: string): Promise<void>;
  /** `locateInPage` run in the page, returned as an element handle. */
  find(target: SerializedTarget): Promise<E | undefined>;
  click(element: E): Promise<void>;
  type(element: E, text: string): Promise<void>;
  press(key: Key): Promise<void>;
  goto(url: string): Promise<void>;
  reload(): Promise<void>;
  url(): Promise<string>;
  setViewport(viewport: Viewport): Promise<void>;
  screenshot(): Promise<Uint8Array>;
  close(): Promise<void>;
}

export class DriverTab<E> implements Tab {
  constructor(
    readonly profile: Profile,
    private readonly page: PagePrimitives<E>,
    private readonly onClose: (tab: DriverTab<E>) => void,
  ) {}

  goto(url: string): Promise<void> {
    return this.page.goto(url);
  }

  reload(): Promise<void> {
    return this.page.reload();
  }

  url(): Promise<string> {
    return this.page.url();
  }

  /**
   * A person waits until the thing can be clicked: while the driver refuses the click (WebKit:
   * "element not interactable" during a window resize; an element re-rendered between finding
   * and clicking), find it again and retry until the wait's deadline.
   */
  async click(target: Target, options?: WaitOptions): Promise<void> {
    const deadline = Date.now() + (options?.timeoutMs ?? WAIT_TIMEOUT_MS);
    for (;;) {
      const element = await this.element(target, { timeoutMs: Math.max(0, deadline - Date.now()) });
      try {
        await this.page.click(element);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      await sleep(POLL_INTERVAL_MS);
    }
  }

  async type(target: Target, text: string, options?: WaitOptions): Promise<void> {
    await this.page.type(await this.element(target, options), text);
  }

  press(key: Key): Promise<void> {
    return this.page.press(key);
  }

  async waitFor(target: Target, options?: WaitOptions): Promise<void> {
    await this.element(target, options);
  }

  async isVisible(target: Target): Promise<boolean> {
    return (await this.page.find(serializeTarget(target))) !== undefined;
  }

  async waitForText(text: string | RegExp, options?: WaitOptions): Promise<void> {
    await this.waitUntil(pageHasText, textMatcher(text), { ...options, what: `text ${String(text)}` });
  }

  async waitUntil<A>(predicate: (arg: A) => boolean | Promise<boolean>, arg: A, options?: WaitOptions & { readonly what?: string }): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? WAIT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        if (await this.page.evaluate(predicate, arg)) return;
        lastError = undefined;
      } catch (error) {
        lastError = error; // navigating: the page's context went away; look again
      }
      if (Date.now() > deadline) break;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`${this.profile.engine.name}/${this.profile.name}: waited ${timeoutMs} ms for ${options?.what ?? 'a condition'}; page shows "${await this.textSample()}"${lastError ? `; last error: ${String(lastError)}` : ''}`);
  }

  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<Awaited<R>> {
    return this.page.evaluate(fn, arg as A);
  }

  setViewport(viewport: Viewport): Promise<void> {
    return this.page.setViewport(viewport);
  }

  async screenshot(name: string): Promise<string> {
    const dir = join(ARTIFACTS_DIR, this.profile.engine.name);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${name.replace(/[^\w.-]+/g, '-')}.png`);
    writeFileSync(path, await this.page.screenshot());
    return path;
  }

  async axe(): Promise<readonly AxeViolation[]> {
    if (!(await this.page.evaluate(axeLoaded, undefined))) await this.page.evaluateSource(axeSource());
    return this.page.evaluate(runAxeInPage, undefined);
  }

  async close(): Promise<void> {
    this.onClose(this);
    await this.page.close();
  }

  private async element(target: Target, options?: WaitOptions): Promise<E> {
    const timeoutMs = options?.timeoutMs ?? WAIT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const serialized = serializeTarget(target);
    for (;;) {
      const found = await this.page.find(serialized).catch(() => undefined);
      if (found !== undefined) return found;
      if (Date.now() > deadline) break;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`${this.profile.engine.name}/${this.profile.name}: no visible ${describeTarget(target)} after ${timeoutMs} ms; page shows "${await this.textSample()}"`);
  }

  private textSample(): Promise<string> {
    return this.page.evaluate(pageTextSample, undefined).catch((error: unknown) => `(unreadable: ${String(error)})`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { locateInPage };
