/**
 * Chromium driver: the system Chromium through playwright-core. One browser per test run
 * (global-setup.ts launches it as a server; each test file connects); a profile is a browser
 * context, or with `persistent` an on-disk profile in its own browser process. CDP reaches what
 * only Chromium has: installability errors, Background Sync events, permissions.
 */
import { rmSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type CDPSession, type ElementHandle, type Page } from 'playwright-core';
import { tempDir } from './app.js';
import { installProbe, locateInPage, PROBE_PREFIX } from './in-page.js';
import { ProblemLog } from './problems.js';
import { DriverTab, type PagePrimitives } from './tab.js';
import { UnsupportedError, type Engine, type EngineFeature, type EngineSupport, type Profile, type ProfileOptions, type Tab } from './types.js';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Quiet and deterministic: no GPU on CI, no QUIC, no background traffic or component updates. */
export const CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const SUPPORT: EngineSupport = { offline: true, persistentProfiles: true, colorScheme: true, phoneViewport: true, consoleFromStart: true, backgroundSync: true, push: true };

/** The Playwright page behind each Chromium tab, for the CDP helpers below. */
const pages = new WeakMap<Tab, Page>();

export async function chromiumEngine(serverEndpoint: string): Promise<Engine> {
  const browser: Browser = await chromium.connect(serverEndpoint);
  const profiles = new Set<Profile>();
  let count = 0;
  const engine: Engine = {
    name: 'chromium',
    supports: SUPPORT,
    whyNot: (feature: EngineFeature) => (SUPPORT[feature] ? '' : 'unsupported'),
    async newProfile(options: ProfileOptions = {}) {
      const profile = await openProfile(engine, browser, options, options.name ?? `profile-${++count}`, () => profiles.delete(profile));
      profiles.add(profile);
      return profile;
    },
    async close() {
      for (const profile of [...profiles]) await profile.close();
      await browser.close();
    },
  };
  return engine;
}

async function openProfile(engine: Engine, shared: Browser, options: ProfileOptions, name: string, onClose: () => void): Promise<Profile> {
  const problems = new ProblemLog();
  const contextOptions = {
    viewport: options.viewport ?? null,
    colorScheme: options.colorScheme ?? 'light',
    serviceWorkers: 'allow',
    ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
  } as const;
  const userDataDir = options.persistent === true ? tempDir('covey-chromium-profile-') : undefined;
  const launch = async (): Promise<BrowserContext> => {
    const context =
      userDataDir === undefined
        ? await shared.newContext(contextOptions)
        : await chromium.launchPersistentContext(userDataDir, { ...contextOptions, executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
    await context.addInitScript(installProbe, { prefix: PROBE_PREFIX, wrapConsole: false });
    context.on('console', (message) => problems.console(message.type(), message.text()));
    context.on('weberror', (error) => problems.pageError(String(error.error())));
    // A persistent context starts with one blank page; tabs are opened through open().
    for (const page of context.pages()) await page.close();
    return context;
  };
  let context = await launch();
  let offline = false;
  const tabs: Tab[] = [];

  const profile: Profile = {
    engine,
    name,
    get tabs() {
      return [...tabs];
    },
    async open(url) {
      const page = await context.newPage();
      const tab = new DriverTab(profile, pagePrimitives(page), (closed) => tabs.splice(tabs.indexOf(closed), 1));
      pages.set(tab, page);
      tabs.push(tab);
      await page.goto(url);
      return tab;
    },
    async closeTabs() {
      for (const tab of [...tabs]) await tab.close();
    },
    async setOffline(value) {
      offline = value;
      await context.setOffline(offline);
    },
    async restart() {
      if (userDataDir === undefined) throw new UnsupportedError('chromium', 'restart a profile', 'only persistent profiles live on disk; open it with { persistent: true }');
      tabs.length = 0;
      await context.close();
      context = await launch();
      if (offline) await context.setOffline(true);
    },
    async problems() {
      return problems.list();
    },
    async close() {
      onClose();
      tabs.length = 0;
      await context.close();
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
      const element = handle.asElement();
      if (element === null) await handle.dispose();
      return element ?? undefined;
    },
    click: (element) => element.click(),
    type: async (element, text) => {
      await element.focus();
      await page.keyboard.type(text);
    },
    press: (key) => page.keyboard.press(key),
    goto: async (url) => {
      await page.goto(url);
    },
    reload: async () => {
      await page.reload();
    },
    url: async () => page.url(),
    setViewport: (viewport) => page.setViewportSize(viewport),
    screenshot: () => page.screenshot(),
    close: () => page.close(),
  };
}

/** A CDP session on a Chromium tab's page (Chromium-only steps). */
export async function cdpSession(tab: Tab): Promise<CDPSession> {
  const page = pages.get(tab);
  if (page === undefined) throw new Error('cdpSession: not a Chromium tab');
  return page.context().newCDPSession(page);
}

/** `Page.getInstallabilityErrors`: empty when Chromium would offer to install the app. */
/** The scripts of the tab's running dedicated workers (nested ones too), as Playwright sees them. */
export function workerUrls(tab: Tab): readonly string[] {
  const page = pages.get(tab);
  if (page === undefined) throw new Error('workerUrls: not a Chromium tab of this harness');
  return page.workers().map((worker) => worker.url());
}

export async function installabilityErrors(tab: Tab): Promise<readonly string[]> {
  const cdp = await cdpSession(tab);
  try {
    const { installabilityErrors: errors } = await cdp.send('Page.getInstallabilityErrors');
    return errors.map((e) => [e.errorId, ...e.errorArguments.map((a) => `${a.name}=${a.value}`)].join(' '));
  } finally {
    await cdp.detach();
  }
}

/**
 * Fires a Background Sync event at the tab's origin's service worker (`ServiceWorker.
 * dispatchSyncEvent`), as Chromium does when connectivity returns. Resolves once dispatched.
 */
export async function dispatchSyncEvent(tab: Tab, tag: string, options: { readonly lastChance?: boolean; readonly registrationTimeoutMs?: number } = {}): Promise<void> {
  const cdp = await cdpSession(tab);
  try {
    const origin = new URL(await tab.url()).origin;
    const registrationId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no service worker registration for ${origin}`)), options.registrationTimeoutMs ?? 5_000);
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
        const match = registrations.find((r) => r.scopeURL.startsWith(origin) && !r.isDeleted);
        if (match) {
          clearTimeout(timer);
          resolve(match.registrationId);
        }
      });
      void cdp.send('ServiceWorker.enable');
    });
    await cdp.send('ServiceWorker.dispatchSyncEvent', { origin, registrationId, tag, lastChance: options.lastChance ?? false });
  } finally {
    await cdp.detach();
  }
}

/** The tab's origin's service worker registration id, as CDP names it. */
async function registrationIdOf(cdp: CDPSession, origin: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no service worker registration for ${origin}`)), timeoutMs);
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const match = registrations.find((r) => r.scopeURL.startsWith(origin) && !r.isDeleted);
      if (match) {
        clearTimeout(timer);
        resolve(match.registrationId);
      }
    });
    void cdp.send('ServiceWorker.enable');
  });
}

/**
 * Delivers a Web Push message to the tab's origin's service worker (`ServiceWorker.
 * deliverPushMessage`), as the browser does when its push service delivers one: the `push`
 * event with `data` as its payload (the relay's RFC 8291 encryption is the push service's side,
 * tested at the relay level). Resolves once dispatched.
 */
export async function deliverPushMessage(tab: Tab, data: string): Promise<void> {
  const cdp = await cdpSession(tab);
  try {
    const origin = new URL(await tab.url()).origin;
    const registrationId = await registrationIdOf(cdp, origin, 5_000);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data });
  } finally {
    await cdp.detach();
  }
}

/** Grants a permission (e.g. 'notifications') to the tab's origin in its profile. */
export async function grantPermission(tab: Tab, permission: 'notifications' | 'background-sync' | 'periodic-background-sync'): Promise<void> {
  const page = pages.get(tab);
  if (page === undefined) throw new Error('grantPermission: not a Chromium tab');
  await page.context().grantPermissions([permission], { origin: new URL(page.url()).origin });
}
