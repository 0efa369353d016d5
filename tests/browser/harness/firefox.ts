/**
 * Firefox driver: Firefox ESR through puppeteer-core over WebDriver BiDi. One browser per test run
 * (global-setup.ts launches it); Firefox allows one BiDi session at a time, so each test file
 * connects, and disconnects when done (browser tests run one file at a time). A profile is a
 * BiDi user context (own cookies, storage, service workers), or with `persistent` an on-disk
 * profile in its own Firefox.
 */
import { rmSync } from 'node:fs';
import puppeteer, { type Browser, type BrowserContext, type ElementHandle, type Page } from 'puppeteer-core';
import { tempDir } from './app.js';
import { installProbe, locateInPage, PROBE_PREFIX } from './in-page.js';
import { ProblemLog } from './problems.js';
import { DriverTab, type PagePrimitives } from './tab.js';
import { UnsupportedError, type Engine, type EngineFeature, type EngineSupport, type Profile, type ProfileOptions, type Tab } from './types.js';

export const FIREFOX_PATH = process.env['FIREFOX_PATH'] ?? '/usr/bin/firefox-esr';

const SUPPORT: EngineSupport = { offline: true, persistentProfiles: true, colorScheme: false, phoneViewport: true, consoleFromStart: true, backgroundSync: false, push: true };
const WHY_NOT: Partial<Record<EngineFeature, string>> = {
  colorScheme: 'puppeteer emulates media features over CDP only, and Firefox speaks BiDi here; take dark screenshots in Chromium',
  backgroundSync: 'Firefox has no Background Sync API; the app flushes its outbox on open, on `online` and on reconnect',
};

/**
 * How long Firefox may take to start. Puppeteer's default (30 s) ran out once in a fresh-clone CI
 * while the app's production build shared the 2 cores (a start takes ~3 s when quiet): a slow
 * start is not a missing browser. Playwright's launches (Chromium) already allow 180 s.
 */
const FIREFOX_LAUNCH_TIMEOUT_MS = 180_000;

export async function launchFirefox(userDataDir: string): Promise<Browser> {
  return puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX_PATH, protocol: 'webDriverBiDi', headless: true, userDataDir, timeout: FIREFOX_LAUNCH_TIMEOUT_MS });
}

export async function firefoxEngine(wsEndpoint: string): Promise<Engine> {
  const browser = await puppeteer.connect({ browserWSEndpoint: wsEndpoint, protocol: 'webDriverBiDi' });
  const profiles = new Set<Profile>();
  let count = 0;
  const engine: Engine = {
    name: 'firefox',
    supports: SUPPORT,
    whyNot: (feature) => (SUPPORT[feature] ? '' : (WHY_NOT[feature] ?? 'unsupported')),
    async newProfile(options: ProfileOptions = {}) {
      if (options.userAgent !== undefined) throw new UnsupportedError('firefox', 'pose as another browser', 'user-agent override is wired for Chromium only');
      if (options.colorScheme === 'dark') throw new UnsupportedError('firefox', 'choose a colour scheme', WHY_NOT.colorScheme ?? '');
      const profile = await openProfile(engine, browser, options, options.name ?? `profile-${++count}`, () => profiles.delete(profile));
      profiles.add(profile);
      return profile;
    },
    async close() {
      for (const profile of [...profiles]) await profile.close();
      // Ends this file's BiDi session; the browser stays up for the next file.
      await browser.disconnect();
    },
  };
  return engine;
}

async function openProfile(engine: Engine, shared: Browser, options: ProfileOptions, name: string, onClose: () => void): Promise<Profile> {
  const problems = new ProblemLog();
  const userDataDir = options.persistent === true ? tempDir('covey-firefox-profile-') : undefined;
  let own: Browser | undefined;
  const launch = async (): Promise<BrowserContext> => {
    if (userDataDir === undefined) return shared.createBrowserContext();
    own = await launchFirefox(userDataDir);
    return own.defaultBrowserContext();
  };
  let context = await launch();
  let offline = false;
  const tabs: Tab[] = [];
  const pages = new Map<Tab, Page>();

  const profile: Profile = {
    engine,
    name,
    get tabs() {
      return [...tabs];
    },
    async open(url) {
      // Its own window, as on its own device: Firefox renders only the selected tab of a window,
      // so a page in a background tab is hidden (rAF ~2/s, IntersectionObserver stalls) and
      // every click on it (puppeteer scrolls into view first) waited seconds to a minute.
      const page = await context.newPage({ type: 'window' });
      await page.evaluateOnNewDocument(installProbe, { prefix: PROBE_PREFIX, wrapConsole: false });
      page.on('console', (message) => problems.console(message.type(), message.text()));
      page.on('pageerror', (error) => problems.pageError(String(error)));
      if (options.viewport !== undefined) await page.setViewport(options.viewport);
      if (offline) await page.setOfflineMode(true);
      const tab = new DriverTab(profile, pagePrimitives(page), (closed) => {
        tabs.splice(tabs.indexOf(closed), 1);
        pages.delete(closed);
      });
      tabs.push(tab);
      pages.set(tab, page);
      await page.goto(url);
      return tab;
    },
    async closeTabs() {
      for (const tab of [...tabs]) await tab.close();
    },
    async setOffline(value) {
      // BiDi emulates the network per browsing context: every tab now, and each new one in open().
      offline = value;
      for (const page of pages.values()) await page.setOfflineMode(value);
    },
    async restart() {
      if (userDataDir === undefined || own === undefined) throw new UnsupportedError('firefox', 'restart a profile', 'only persistent profiles live on disk; open it with { persistent: true }');
      tabs.length = 0;
      pages.clear();
      await own.close();
      context = await launch();
    },
    async problems() {
      return problems.list();
    },
    async close() {
      onClose();
      tabs.length = 0;
      pages.clear();
      if (own !== undefined) await own.close();
      else await context.close();
      if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
    },
  };
  return profile;
}

function pagePrimitives(page: Page): PagePrimitives<ElementHandle> {
  return {
    evaluate: (fn, arg) => page.evaluate(fn as never, arg) as never,
    evaluateSource: async (source) => {
      await page.evaluate(source);
    },
    find: async (target) => {
      const handle = await page.evaluateHandle(locateInPage, target);
      const element = handle.asElement() as ElementHandle | null;
      if (element === null) await handle.dispose();
      return element ?? undefined;
    },
    click: (element) => element.click(),
    type: (element, text) => element.type(text),
    press: (key) => page.keyboard.press(key),
    goto: async (url) => {
      await page.goto(url);
    },
    reload: async () => {
      await page.reload();
    },
    url: async () => page.url(),
    setViewport: (viewport) => page.setViewport(viewport),
    screenshot: () => page.screenshot(),
    close: () => page.close(),
  };
}
