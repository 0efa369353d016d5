/**
 * Starts a throwaway `redis-server` for the relay's Redis tests: loopback only, a free port the
 * OS picks, its own temp dir, and the durability the relay promises (issue 5 §8: "a write is
 * durable before the relay acknowledges it"): no RDB snapshots, AOF with `appendfsync always`.
 *
 * Missing binary: under CI (CI=true) that is a failure with the install command, never a silent
 * skip; on a developer machine the suite is skipped with a message (see `redisAvailability`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long a fresh redis-server may take to answer PING before the test gives up. */
const REDIS_START_TIMEOUT_MS = 15_000;
/** How long a stopping redis-server may take to exit after SIGTERM before SIGKILL. */
const REDIS_STOP_TIMEOUT_MS = 5_000;

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** SIGKILL: Redis dies at once; what it acknowledged is in the fsynced AOF. */
  kill(): Promise<void>;
  /** Starts Redis again on the same port and directory (it reloads the AOF); after kill(). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export type RedisAvailability = { available: true } | { available: false; reason: string };

/** Whether `redis-server` (and with `cli`, `redis-cli`) is on PATH. Tests use it with `describe.skipIf` outside CI. */
export function redisAvailability(cli = false): RedisAvailability {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return {
      available: false,
      reason: 'redis-server not found on PATH (install: apt-get install -y redis-server, or run scripts/system-deps.sh)',
    };
  }
  const cliProbe = cli ? spawnSync('redis-cli', ['--version'], { encoding: 'utf8' }) : undefined;
  if (cliProbe !== undefined && (cliProbe.error !== undefined || cliProbe.status !== 0)) {
    return { available: false, reason: 'redis-cli not found on PATH (install: apt-get install -y redis-tools, or run scripts/system-deps.sh)' };
  }
  return { available: true };
}

/**
 * The decision a Redis suite makes at load time: run, skip with a message, or fail (CI).
 * Returns true when the suite should be skipped.
 */
export function skipWithoutRedis(suiteName: string, cli = false): boolean {
  const availability = redisAvailability(cli);
  if (availability.available) return false;
  if (process.env.CI === 'true') {
    throw new Error(`${suiteName}: ${availability.reason}. CI must run the Redis tests, so this is a failure.`);
  }
  console.warn(`${suiteName}: SKIPPED: ${availability.reason}`);
  return true;
}

/** A port the OS says is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port from the OS'));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one inline PING and resolves true on "+PONG". */
async function ping(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface RedisServerOptions {
  /** 'always' (default: what the relay promises) or, for the benchmark's comparison only, 'no'. */
  readonly appendfsync?: 'always' | 'no';
  /** More redis-server arguments (a cluster node's, say). */
  readonly args?: readonly string[];
}

/** Starts redis-server; a port race (another process took the port) retries with a new port. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const PORT_ATTEMPTS = 3;
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    try {
      return await startOnce(await freePort(), options);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

interface RunningChild {
  readonly child: ChildProcess;
  log(): string;
  spawnError(): Error | undefined;
}

function spawnRedis(args: readonly string[]): RunningChild {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keepLog = (chunk: Buffer): void => {
    // Bounded: only the tail matters for an error message.
    log = (log + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keepLog);
  child.stderr?.on('data', keepLog);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  return { child, log: () => log, spawnError: () => spawnError };
}

async function waitForPing(running: RunningChild, port: number): Promise<void> {
  const deadline = Date.now() + REDIS_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (running.spawnError() !== undefined || running.child.exitCode !== null) break;
    if (await ping(port)) return;
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer PING: ${running.spawnError()?.message ?? ''} ${running.log()}`);
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (!(await waitForExit(child, REDIS_STOP_TIMEOUT_MS))) {
    child.kill('SIGKILL');
    await waitForExit(child, REDIS_STOP_TIMEOUT_MS);
  }
}

async function startOnce(port: number, options: RedisServerOptions): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'covey-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', options.appendfsync ?? 'always',
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...(options.args ?? []),
  ];
  let running = spawnRedis(args);
  const stop = async (): Promise<void> => {
    await terminate(running.child, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPing(running, port);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    kill: () => terminate(running.child, 'SIGKILL'),
    restart: async () => {
      running = spawnRedis(args);
      await waitForPing(running, port);
    },
  };
}
