/**
 * Child processes the harness starts (Xvfb, WebKitWebDriver and its MiniBrowser): each in its own
 * process group, killed by group when done, on this process's exit, and, as a last resort, by
 * global-setup.ts's teardown from the pid files written here.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Written by global-setup.ts's teardown: every process group still alive there is killed. */
export function pidFile(runDir: string): string {
  return join(runDir, 'process-groups.txt');
}

export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions & { readonly runDir?: string }): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (options.runDir !== undefined) appendFileSync(pidFile(options.runDir), `${child.pid}\n`);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) killGroup(c.pid);
    });
  }
  return child;
}

export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Stops a process group: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopGroup(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killGroup(child.pid);
  const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // The group's other members (MiniBrowser, its web processes) may outlive the leader briefly.
  killGroup(child.pid, 'SIGKILL');
}

/** A TCP port free right now on 127.0.0.1 (for programs that cannot report the port they chose). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Xvfb (for WebKit's MiniBrowser) in its own process group, at `size`: resolves with the display
 * it chose (`-displayfd`), or rejects if it exits first.
 */
export async function startXvfb(size: string, runDir?: string): Promise<{ readonly xvfb: ChildProcess; readonly display: string }> {
  const xvfb = spawnGroup('Xvfb', ['-displayfd', '1', '-screen', '0', `${size}x24`, '-nolisten', 'tcp'], { stdio: ['ignore', 'pipe', 'ignore'], ...(runDir !== undefined && { runDir }) });
  const display = await new Promise<string>((resolve, reject) => {
    let out = '';
    xvfb.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}`)));
  });
  return { xvfb, display };
}

export interface ScriptRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a repo script under tsx (as `npm run bench:*` does) in its own process group, so that a
 * run past `timeoutMs` is killed with everything it started (browsers, relay, Xvfb).
 */
export function runScript(cwd: string, script: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
