/**
 * Runs a relay as a child process, the way `npm run relay` does, so tests can SIGKILL it at any
 * moment (crash test) or run several of them on one Redis (multi-node test).
 *
 * The child is `node --import tsx src/relay/main.ts` rather than `npx tsx ...`: npx and tsx's CLI
 * each add a parent process, and a SIGKILL to a parent leaves the relay itself running. Here the
 * pid we signal is the relay's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/**
 * How long a relay may take to print its URL (tsx transpiles on first start: slow on 2 cores; at a
 * load average of 30, a relay from another checkout took over 30 s).
 */
const RELAY_START_TIMEOUT_MS = 120_000;
/** How long a relay may take to drain and exit after SIGTERM before we SIGKILL it. */
const RELAY_STOP_TIMEOUT_MS = 10_000;
/** Bytes of child output kept for error messages. */
const LOG_TAIL_CHARS = 8_000;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface RelayProcess {
  readonly url: string;
  readonly pid: number;
  /** Everything the child printed so far (tail). */
  log(): string;
  /** SIGKILL: no drain, no flush; what was acknowledged must survive anyway. */
  kill(): Promise<void>;
  /** SIGTERM and wait for a graceful exit (SIGKILL after a timeout). Returns the exit code. */
  stop(): Promise<number | null>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** With `ipc: true`: one request to the child (tests/relay/helpers/process-relay.ts ops). */
  request<T>(op: string, args?: Record<string, unknown>): Promise<T>;
}

export interface RelayProcessOptions {
  /** 0 lets the relay ask the OS for a free port (it prints the URL it bound). */
  port?: number;
  /** Extra environment, e.g. RELAY_DATA_DIR or RELAY_REDIS_URL. */
  env?: Record<string, string>;
  /** Entry point relative to the repo root. */
  entry?: string;
  /** Open an IPC channel (for process-relay.ts's memory and stats requests). */
  ipc?: boolean;
  /** Another checkout to run the entry from (the benchmark's before/after comparison); default this one. */
  root?: string;
}

/** The test relay entry: main.ts's job with test limits and an in-memory store option. */
export const RELAY_TEST_ENTRY = 'tests/relay/helpers/process-relay.ts';
/** How long an IPC request to the child may take. */
const IPC_TIMEOUT_MS = 30_000;

/** The first http(s) URL in the child's output is the one it serves on. */
const URL_PATTERN = /(https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d+)/;

export async function startRelayProcess(options: RelayProcessOptions = {}): Promise<RelayProcess> {
  const entry = options.entry ?? 'src/relay/main.ts';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(options.port ?? 0),
    HOST: '127.0.0.1',
    ...options.env,
  };
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: options.root ?? repoRoot,
    env,
    stdio: options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let nextRequestId = 0;
  const pending = new Map<number, (value: unknown) => void>();
  child.on('message', (message: { id: number; value: unknown }) => {
    pending.get(message.id)?.(message.value);
    pending.delete(message.id);
  });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay did not print its URL within ${RELAY_START_TIMEOUT_MS} ms:\n${output}`));
    }, RELAY_START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
      const match = URL_PATTERN.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (code ${code}, signal ${signal}) before printing its URL:\n${output}`));
    });
  });

  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  const pid = child.pid;
  if (pid === undefined) throw new Error('relay child has no pid');

  return {
    url,
    pid,
    exited,
    log: () => output,
    request: <T>(op: string, args: Record<string, unknown> = {}) =>
      new Promise<T>((resolveRequest, reject) => {
        if (options.ipc !== true) throw new Error('startRelayProcess: request() needs ipc: true');
        const id = nextRequestId++;
        const timer = setTimeout(() => reject(new Error(`relay child did not answer ${op}`)), IPC_TIMEOUT_MS);
        pending.set(id, (value) => {
          clearTimeout(timer);
          resolveRequest(value as T);
        });
        child.send({ id, op, ...args });
      }),
    kill: async () => {
      if (isRunning()) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (isRunning()) child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (isRunning()) child.kill('SIGKILL');
      }, RELAY_STOP_TIMEOUT_MS);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
