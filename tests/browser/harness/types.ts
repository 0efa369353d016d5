/**
 * The browser-neutral driver interface. Scenarios (tests/browser/*.test.ts) speak only this; one
 * small driver per engine implements it (chromium.ts: playwright-core, firefox.ts: puppeteer-core
 * over WebDriver BiDi, webkit.ts: selenium-webdriver + WebKitWebDriver + MiniBrowser).
 */

export type EngineName = 'chromium' | 'firefox' | 'webkit';

/** What an engine's driver can do here; each `false` has its reason in `Engine.whyNot`. */
export interface EngineSupport {
  /** Emulated network loss (pages; Chromium: the service worker too). Else: stop the relay only. */
  readonly offline: boolean;
  /** On-disk profiles in their own browser process that survive `Profile.restart()`. */
  readonly persistentProfiles: boolean;
  /** `prefers-color-scheme` chosen per profile. */
  readonly colorScheme: boolean;
  /** Viewports as narrow as a phone (PHONE, 360 px). */
  readonly phoneViewport: boolean;
  /**
   * Console errors and CSP violations during the page's own load, and console errors of its
   * workers (the engine's), are seen. Else only the page's, after the harness hooked in (right
   * after each navigation the harness makes).
   */
  readonly consoleFromStart: boolean;
  /** The browser has Background Sync (Chromium; tests fire it over CDP). */
  readonly backgroundSync: boolean;
  /** The browser has Web Push. */
  readonly push: boolean;
}
export type EngineFeature = keyof EngineSupport;

export interface Viewport {
  readonly width: number;
  readonly height: number;
}

/** Phone and desktop sizes for screenshots and layout checks (issue 11 §6: from 360 px). */
export const PHONE: Viewport = { width: 360, height: 740 };
export const DESKTOP: Viewport = { width: 1280, height: 800 };

export interface ProfileOptions {
  /** A label for screenshots and errors (default: profile-N). */
  readonly name?: string;
  readonly viewport?: Viewport;
  readonly colorScheme?: 'light' | 'dark';
  /**
   * An on-disk profile in its own browser process: storage survives `restart()`. Chromium treats
   * it as a normal profile (the shared browser's contexts are incognito-like), which
   * installability and `beforeinstallprompt` need.
   */
  readonly persistent?: boolean;
  /** Chromium only: pose as another browser (e.g. iOS Safari, for its install instructions). */
  readonly userAgent?: string;
}

/**
 * Something on the page, found the way a person (or a screen reader) finds it:
 * - `{ role, name }`: ARIA role (explicit or implicit: button, link, textbox, heading, ...) and
 *   accessible name (aria-labelledby, aria-label, <label>, text content, alt, title);
 * - `{ label }`: a form control by its label (or aria-label/placeholder);
 * - `{ testId }`: `data-testid`, for things that have no better handle;
 * - `{ text }`: the innermost visible element whose text matches.
 * Strings match whole (whitespace collapsed); a RegExp matches anywhere.
 */
export type Target =
  | { readonly role: string; readonly name?: string | RegExp }
  | { readonly label: string | RegExp }
  | { readonly testId: string }
  | { readonly text: string | RegExp };

export interface WaitOptions {
  /** Default WAIT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

/** What went wrong on a page: any of these fails the "no console errors, no CSP violations" checks. */
export interface PageProblem {
  readonly kind: 'console-error' | 'page-error' | 'csp-violation';
  readonly text: string;
}

/** An axe-core result of impact serious or critical. */
export interface AxeViolation {
  readonly id: string;
  readonly impact: 'serious' | 'critical';
  readonly help: string;
  /** CSS selectors of the offending nodes. */
  readonly targets: readonly string[];
}

export interface Engine {
  readonly name: EngineName;
  readonly supports: EngineSupport;
  /** Why `supports[feature]` is false ('' when it is true): tests print it instead of skipping silently. */
  whyNot(feature: EngineFeature): string;
  /** An isolated profile (own storage, service workers, caches); several may be open at once. */
  newProfile(options?: ProfileOptions): Promise<Profile>;
  /** Closes every profile opened through this engine and lets go of the browser. */
  close(): Promise<void>;
}

export interface Profile {
  readonly engine: Engine;
  readonly name: string;
  readonly tabs: readonly Tab[];
  /** Opens a new tab (a window, in WebKit) at `url`; it is offline if the profile is. */
  open(url: string): Promise<Tab>;
  /** Closes every tab: the app is closed; its storage, caches and service worker remain. */
  closeTabs(): Promise<void>;
  /** Emulates losing the network (every tab, new tabs too). Throws where `supports.offline` is false. */
  setOffline(offline: boolean): Promise<void>;
  /** Persistent profiles only: quits the browser and starts it again on the same storage. Tabs close. */
  restart(): Promise<void>;
  /** Console errors, uncaught errors and CSP violations seen so far in this profile's tabs. */
  problems(): Promise<readonly PageProblem[]>;
  /** Closes the profile and drops its storage. */
  close(): Promise<void>;
}

export interface Tab {
  readonly profile: Profile;
  goto(url: string): Promise<void>;
  reload(): Promise<void>;
  url(): Promise<string>;
  /** Waits until `target` is visible, then clicks it like a person (real input events). */
  click(target: Target, options?: WaitOptions): Promise<void>;
  /** Focuses `target` and types `text` key by key. */
  type(target: Target, text: string, options?: WaitOptions): Promise<void>;
  /** Presses one key ('Enter', 'Escape', 'Tab', ...) in the focused element. */
  press(key: 'Enter' | 'Escape' | 'Tab' | 'Backspace'): Promise<void>;
  waitFor(target: Target, options?: WaitOptions): Promise<void>;
  /** Visible now (no waiting). */
  isVisible(target: Target): Promise<boolean>;
  /** Waits until the page's visible text contains `text`. */
  waitForText(text: string | RegExp, options?: WaitOptions): Promise<void>;
  /** Waits until `predicate` (run in the page) returns true. */
  waitUntil<A>(predicate: (arg: A) => boolean | Promise<boolean>, arg: A, options?: WaitOptions & { readonly what?: string }): Promise<void>;
  /**
   * Runs `fn` in the page (its source is sent, so it must not use anything from the test's
   * scope: pass data through `arg`, JSON-serialisable). Promises are awaited.
   */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<Awaited<R>>;
  setViewport(viewport: Viewport): Promise<void>;
  /** Saves a PNG under test-artifacts/browser/<engine>/<name>.png; returns the path. */
  screenshot(name: string): Promise<string>;
  /** Runs axe-core on the page; returns serious and critical violations only. */
  axe(): Promise<readonly AxeViolation[]>;
  close(): Promise<void>;
}

/** How long waits last by default: generous for a loaded 2-core CI machine. */
export const WAIT_TIMEOUT_MS = 15_000;

export class UnsupportedError extends Error {
  constructor(engine: EngineName, feature: string, reason: string) {
    super(`${engine} cannot ${feature}: ${reason}`);
    this.name = 'UnsupportedError';
  }
}
