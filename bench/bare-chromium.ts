/**
 * A reader's Chromium with no Playwright attached, for bench:catchup's measured catch-ups.
 *
 * Playwright attaches to every page and dedicated worker of its browser and enables the Network
 * domain in each (so that routes and WebSocket events work), so every WebSocket frame the engine
 * worker received was also serialized as a DevTools event, handed to the browser's main thread and
 * written down the pipe to Node: 10,000 events of ~1 KB during a catch-up from the relay (bench
 * trace, issue 12). That is the bench's cost, not the app's. Here the browser runs with the exact
 * command line Playwright gave it (read from /proc), except that DevTools listens on a port
 * instead of the pipe, and the bench speaks raw CDP to it: only what it asks for (no domain that
 * streams events is enabled).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';

/** Chromium features the measured browser runs without (none of them is the app's). */
const EXTRA_DISABLED_FEATURES = ['PreloadTopChromeWebUI', 'WebUIOmniboxPopup', 'WebUIOmniboxFullPopup', 'WebUIOmniboxAimPopup'];

/** The command line of the Chromium browser process running on `profileDir` (as Playwright launched it). */
export function browserCommandLine(profileDir: string): string[] {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    } catch {
      continue; // gone meanwhile
    }
    const binary = args[0] ?? '';
    // The browser process itself: not a child (--type=…) and not a wrapper script's shell.
    if (args.includes(`--user-data-dir=${profileDir}`) && !args.some((a) => a.startsWith('--type=')) && !/(^|\/)(ba|da)?sh$/.test(binary)) return args;
  }
  throw new Error(`bench:catchup: no Chromium browser process runs on ${profileDir}`);
}

export interface BareChromium {
  /** A CDP command to the browser, or to an attached target with `sessionId`. */
  send<T = Record<string, unknown>>(method: string, params?: object, sessionId?: string): Promise<T>;
  /** A page target at about:blank, attached (flat session); returns its session id. */
  newPage(): Promise<string>;
  /** Evaluates `expression` in the page (awaiting a promise) and returns its value. */
  evaluate<T>(sessionId: string, expression: string): Promise<T>;
  close(): Promise<void>;
}

/** Starts Chromium with `commandLine` (from browserCommandLine), DevTools on a free port instead of Playwright's pipe. */
export async function launchBare(commandLine: readonly string[], profileDir: string, timeoutMs: number): Promise<BareChromium> {
  const portFile = join(profileDir, 'DevToolsActivePort');
  rmSync(portFile, { force: true });
  const args = commandLine.slice(1).filter((a) => a !== '--remote-debugging-pipe' && !a.startsWith('--remote-debugging-port='));
  // Chromium's own preloading of its omnibox popup WebUI (chrome://omnibox-popup.top-chrome, a
  // renderer that parses ~100 scripts) ran during the measured catch-up (bench trace). Added to
  // the one --disable-features switch Playwright gave, so that none of its entries is lost.
  const features = args.findIndex((a) => a.startsWith('--disable-features='));
  if (features >= 0) args[features] = `${args[features]},${EXTRA_DISABLED_FEATURES.join(',')}`;
  else args.push(`--disable-features=${EXTRA_DISABLED_FEATURES.join(',')}`);
  const child: ChildProcess = spawn(commandLine[0]!, ['--remote-debugging-port=0', ...args], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Not tied to a pipe as Playwright's is: the bench leaving (an error, a signal's process.exit) takes it along.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(portFile) || readFileSync(portFile, 'utf8').trim().split('\n').length < 2) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`bench:catchup: Chromium did not open DevTools on ${profileDir}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const [port, path] = readFileSync(portFile, 'utf8').trim().split('\n');
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (result: never) => void; reject: (error: Error) => void }>();
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown; error?: { message: string } };
    if (message.id === undefined) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error.message));
    else waiter?.resolve(message.result as never);
  });
  const send = <T>(method: string, params: object = {}, sessionId?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (result: never) => void, reject });
      socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  return {
    send,
    async newPage() {
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
      return sessionId;
    },
    async evaluate<T>(sessionId: string, expression: string): Promise<T> {
      const { result, exceptionDetails } = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
        'Runtime.evaluate',
        { expression, awaitPromise: true, returnByValue: true },
        sessionId,
      );
      if (exceptionDetails !== undefined) throw new Error(`bench:catchup: in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
      return result.value as T;
    },
    async close() {
      await send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      process.off('exit', killOnExit);
      socket.close();
    },
  };
}
