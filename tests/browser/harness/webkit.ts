/**
 * WebKit driver: WebKitGTK's MiniBrowser through WebKitWebDriver and selenium-webdriver, on the
 * run's Xvfb display (global-setup.ts). WebKitWebDriver serves one session at a time and a session
 * is one MiniBrowser process, so a profile is its own WebKitWebDriver + MiniBrowser; its tabs are
 * windows of that browser.
 *
 * What WebKit cannot do here, and why (see `whyNot`):
 * - no network emulation (WebDriver classic has none, MiniBrowser has no offline switch): tests
 *   stop the relay instead;
 * - no persistent profiles: MiniBrowser in automation mode always uses an ephemeral data store, so
 *   storage lives as long as the profile (closeTabs() keeps it; nothing survives close());
 * - console messages: there is no console channel and no script before the page's own, so the
 *   probe is installed after each navigation; errors and CSP violations before that, and the
 *   console of workers, are not seen;
 * - no phone-narrow windows: MiniBrowser's toolbar keeps the window at least 447 px wide;
 * - no Background Sync and no Push in WebKitGTK.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Builder, Capabilities, Key, type WebDriver, type WebElement } from 'selenium-webdriver';
import { installProbe, locateInPage, PROBE_PREFIX, readProbe, type SerializedTarget } from './in-page.js';
import { freePort, spawnGroup, stopGroup } from './processes.js';
import { ProblemLog } from './problems.js';
import { DriverTab, sleep, type Key as KeyName, type PagePrimitives } from './tab.js';
import { UnsupportedError, type Engine, type EngineFeature, type EngineSupport, type Profile, type ProfileOptions, type Tab } from './types.js';

/** MiniBrowser's GTK window is never narrower than its toolbar. */
const MIN_WINDOW_WIDTH_PX = 447;
/** WebKitWebDriver answers /status within this after starting (it is a small C++ server). */
const DRIVER_START_TIMEOUT_MS = 10_000;

const SUPPORT: EngineSupport = { offline: false, persistentProfiles: false, colorScheme: true, phoneViewport: false, consoleFromStart: false, backgroundSync: false, push: false };
const WHY_NOT: Partial<Record<EngineFeature, string>> = {
  offline: 'WebDriver classic has no network emulation and MiniBrowser no offline switch; the relay is stopped instead',
  persistentProfiles: 'MiniBrowser in automation mode always uses an ephemeral data store (storage lives until the profile closes)',
  phoneViewport: "MiniBrowser's toolbar holds its window at least 447 px wide; take phone screenshots in Chromium or Firefox",
  consoleFromStart: 'WebKitWebDriver has no console channel and cannot run a script before the page: the probe, installed after each navigation, sees what happens in the page after it (WebKitGTK does not buffer CSP reports for ReportingObserver), nothing of its workers',
  backgroundSync: 'WebKit has no Background Sync API; the app flushes its outbox on open, on `online` and on reconnect',
  push: 'WebKitGTK has no Web Push',
};

/** Window resizes tried before setViewport gives up (one usually does; two when the toolbar was not laid out yet). */
const VIEWPORT_ATTEMPTS = 5;
/** The page's size counts as settled when it reads the same this long apart (X resizes are asynchronous). */
const VIEWPORT_SETTLE_MS = 150;
/** Longest wait for one resize to settle. */
const VIEWPORT_SETTLE_TIMEOUT_MS = 3_000;

/**
 * Sizes the focused window so that the page (innerWidth × innerHeight) is `viewport`. The window
 * includes MiniBrowser's toolbar, whose height is known only once it is laid out, and under Xvfb
 * a resize lands asynchronously: so each round sizes the window, waits until the page's size
 * stops changing, and corrects the window by what the page still lacks, until the page has the
 * size (one measure-and-correct step once left the page at 702 px high instead of 740 under
 * Xvfb). Throws if the page never gets the size.
 */
async function sizePage(driver: WebDriver, viewport: { readonly width: number; readonly height: number }): Promise<void> {
  const window = driver.manage().window();
  const readInner = async (): Promise<[number, number]> => (await driver.executeScript('return [innerWidth, innerHeight];')) as [number, number];
  const settledInner = async (): Promise<[number, number]> => {
    const deadline = Date.now() + VIEWPORT_SETTLE_TIMEOUT_MS;
    let last = await readInner();
    for (;;) {
      await sleep(VIEWPORT_SETTLE_MS);
      const now = await readInner();
      if ((now[0] === last[0] && now[1] === last[1]) || Date.now() > deadline) return now;
      last = now;
    }
  };
  let inner: [number, number] = [Number.NaN, Number.NaN];
  let want = { width: viewport.width, height: viewport.height };
  for (let attempt = 0; attempt < VIEWPORT_ATTEMPTS; attempt++) {
    await window.setRect(want);
    inner = await settledInner();
    if (inner[0] === viewport.width && inner[1] === viewport.height) return;
    // Correct from the size the window really has (it may differ from the one asked for).
    const outer = await window.getRect();
    want = { width: outer.width + viewport.width - inner[0], height: outer.height + viewport.height - inner[1] };
  }
  throw new Error(`WebKit: the page stayed ${inner[0]}×${inner[1]}, not ${viewport.width}×${viewport.height}, after ${VIEWPORT_ATTEMPTS} window resizes`);
}

let miniBrowserPath: string | undefined;
/** MiniBrowser ships inside libwebkit2gtk-4.1-0 (not on PATH): ask dpkg where. */
export function findMiniBrowser(): string {
  if (process.env['MINIBROWSER_PATH']) return process.env['MINIBROWSER_PATH'];
  miniBrowserPath ??= execFileSync('dpkg', ['-L', 'libwebkit2gtk-4.1-0'], { encoding: 'utf8' })
    .split('\n')
    .find((line) => line.endsWith('/MiniBrowser'));
  if (miniBrowserPath === undefined) throw new Error('MiniBrowser not found in libwebkit2gtk-4.1-0 (apt-get install libwebkit2gtk-4.1-0)');
  return miniBrowserPath;
}

export interface WebKitSetup {
  /** X display number of the run's Xvfb. */
  readonly display: string;
  /** The run's directory, for the leftover-process safety net. */
  readonly runDir: string;
}

export async function webkitEngine(setup: WebKitSetup): Promise<Engine> {
  const profiles = new Set<Profile>();
  let count = 0;
  const engine: Engine = {
    name: 'webkit',
    supports: SUPPORT,
    whyNot: (feature) => (SUPPORT[feature] ? '' : (WHY_NOT[feature] ?? 'unsupported')),
    async newProfile(options: ProfileOptions = {}) {
      if (options.userAgent !== undefined) throw new UnsupportedError('webkit', 'pose as another browser', 'user-agent override is wired for Chromium only');
      if (options.persistent === true) throw new UnsupportedError('webkit', 'open a persistent profile', WHY_NOT.persistentProfiles ?? '');
      const profile = await openProfile(engine, setup, options, options.name ?? `profile-${++count}`, () => profiles.delete(profile));
      profiles.add(profile);
      return profile;
    },
    async close() {
      for (const profile of [...profiles]) await profile.close();
    },
  };
  return engine;
}

async function startDriver(setup: WebKitSetup): Promise<{ readonly process: ChildProcess; readonly url: string }> {
  const port = await freePort();
  const child = spawnGroup('WebKitWebDriver', [`--port=${port}`], { env: { ...process.env, DISPLAY: `:${setup.display}` }, stdio: 'ignore', runDir: setup.runDir });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + DRIVER_START_TIMEOUT_MS;
  for (;;) {
    try {
      if ((await fetch(`${url}/status`)).ok) return { process: child, url };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopGroup(child);
      throw new Error(`WebKitWebDriver did not start on port ${port}`);
    }
    await sleep(50);
  }
}

async function openProfile(engine: Engine, setup: WebKitSetup, options: ProfileOptions, name: string, onClose: () => void): Promise<Profile> {
  const problems = new ProblemLog();
  const driverProcess = await startDriver(setup);
  const args = ['--automation', ...(options.colorScheme === 'dark' ? ['--dark-mode'] : [])];
  let driver: WebDriver;
  try {
    driver = await new Builder()
      .usingServer(driverProcess.url)
      .withCapabilities(new Capabilities({ browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: findMiniBrowser(), args } }))
      .build();
  } catch (error) {
    await stopGroup(driverProcess.process);
    throw error;
  }
  // WebDriver ends the session with its last window, so the first window is kept (blank) when
  // the app is "closed", and the next open() reuses it.
  let spareWindow: string | undefined = await driver.getWindowHandle();
  let current = spareWindow;
  const tabs: Tab[] = [];
  const windows = new Map<Tab, string>();

  const focus = async (handle: string): Promise<void> => {
    if (current === handle) return;
    await driver.switchTo().window(handle);
    current = handle;
  };
  const collect = async (handle: string): Promise<void> => {
    await focus(handle);
    const found = await driver.executeScript(`return (${readProbe.toString()})();`).catch(() => []);
    for (const problem of found as ReturnType<typeof readProbe>) problems.add(problem);
  };
  const probe = async (): Promise<void> => {
    await driver.executeScript(`(${installProbe.toString()})(arguments[0]);`, { prefix: PROBE_PREFIX, wrapConsole: true });
  };

  const profile: Profile = {
    engine,
    name,
    get tabs() {
      return [...tabs];
    },
    async open(url) {
      let handle: string;
      if (spareWindow !== undefined) {
        handle = spareWindow;
        spareWindow = undefined;
      } else {
        // A window, not a tab: WebKit does not paint a background tab, and a screenshot of one never came back.
        await driver.switchTo().newWindow('window');
        handle = await driver.getWindowHandle();
      }
      current = handle;
      const page = windowPrimitives(driver, handle, { focus, collect, probe });
      const tab = new DriverTab(profile, page, (closed) => {
        tabs.splice(tabs.indexOf(closed), 1);
        windows.delete(closed);
      });
      tabs.push(tab);
      windows.set(tab, handle);
      if (options.viewport !== undefined) await page.setViewport(options.viewport);
      await page.goto(url);
      return tab;
    },
    async closeTabs() {
      for (const tab of [...tabs]) await tab.close();
    },
    async setOffline() {
      throw new UnsupportedError('webkit', 'emulate offline', WHY_NOT.offline ?? '');
    },
    async restart() {
      throw new UnsupportedError('webkit', 'restart a profile', WHY_NOT.persistentProfiles ?? '');
    },
    async problems() {
      for (const handle of windows.values()) await collect(handle);
      return problems.list();
    },
    async close() {
      onClose();
      tabs.length = 0;
      windows.clear();
      await driver.quit().catch(() => undefined);
      await stopGroup(driverProcess.process);
    },
  };

  /**
   * Closing a window really closes it (its page, workers and Web Locks go away; navigating to
   * about:blank would leave it in the back/forward cache). WebDriver ends the session with its
   * last window, so before closing the last one a blank spare opens, which the next open() uses.
   */
  const closeWindow = async (handle: string): Promise<void> => {
    await collect(handle);
    if (windows.size === 0 && spareWindow === undefined) {
      await driver.switchTo().newWindow('tab');
      spareWindow = await driver.getWindowHandle();
      current = spareWindow;
      await focus(handle);
    }
    await driver.close();
    current = '';
    const rest = await driver.getAllWindowHandles();
    if (rest[0] !== undefined) await focus(rest[0]);
  };

  function windowPrimitives(
    webDriver: WebDriver,
    handle: string,
    hooks: { focus(h: string): Promise<void>; collect(h: string): Promise<void>; probe(): Promise<void> },
  ): PagePrimitives<WebElement> {
    const run = async <R>(script: string, ...args: unknown[]): Promise<R> => {
      await hooks.focus(handle);
      return (await webDriver.executeScript(script, ...args)) as R;
    };
    const navigated = async (): Promise<void> => {
      await hooks.probe().catch(() => undefined); // an error page may refuse scripts
    };
    return {
      evaluate: (fn, arg) => run(`return (${fn.toString()})(arguments[0]);`, arg ?? null),
      evaluateSource: async (source) => {
        await run(source);
      },
      find: async (target: SerializedTarget) => (await run<WebElement | null>(`return (${locateInPage.toString()})(arguments[0]);`, target)) ?? undefined,
      click: async (element) => {
        await hooks.focus(handle);
        await element.click();
      },
      type: async (element, text) => {
        await hooks.focus(handle);
        await element.sendKeys(text);
      },
      press: async (key: KeyName) => {
        await hooks.focus(handle);
        await webDriver.switchTo().activeElement().sendKeys(Key[key === 'Backspace' ? 'BACK_SPACE' : key === 'Enter' ? 'ENTER' : key === 'Escape' ? 'ESCAPE' : 'TAB']);
      },
      goto: async (url) => {
        await hooks.collect(handle);
        await webDriver.get(url);
        await navigated();
      },
      reload: async () => {
        await hooks.collect(handle);
        await webDriver.navigate().refresh();
        await navigated();
      },
      url: async () => {
        await hooks.focus(handle);
        return webDriver.getCurrentUrl();
      },
      setViewport: async (viewport) => {
        if (viewport.width < MIN_WINDOW_WIDTH_PX) throw new UnsupportedError('webkit', `use a ${viewport.width} px wide viewport`, WHY_NOT.phoneViewport ?? '');
        await hooks.focus(handle);
        await sizePage(webDriver, viewport);
      },
      screenshot: async () => {
        await hooks.focus(handle);
        return Buffer.from(await webDriver.takeScreenshot(), 'base64');
      },
      close: async () => {
        await hooks.focus(handle);
        await closeWindow(handle);
      },
    };
  }
  return profile;
}
