/**
 * What `npm start` tells a new user: where to open Covey once it runs, and what to do when the
 * port is taken (a stack trace said only "EADDRINUSE").
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/redis-server.js';
import { startRelayProcess, type RelayProcess } from './helpers/process.js';

/** `main.ts --check`, as `npm start` runs it before the build: its exit code and what it printed. */
function check(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/relay/main.ts', '--check'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'covey-start-'));
const running: RelayProcess[] = [];
afterAll(async () => {
  for (const relay of running) await relay.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('says where to open the app, and what to do when the port is in use', async () => {
    const app = join(dir, 'app');
    const env = { RELAY_DATA_DIR: join(dir, 'data'), RELAY_STATIC_DIR: app, RELAY_LOG: 'silent' };
    mkdirSync(app);
    writeFileSync(join(app, 'index.html'), '<!doctype html><title>Covey</title>');
    const first = await startRelayProcess({ env });
    running.push(first);
    await expect.poll(() => first.log()).toContain(`Open ${first.url} in a browser to use Covey.`);

    const port = Number(new URL(first.url).port);
    const second = startRelayProcess({ port, env: { ...env, RELAY_DATA_DIR: join(dir, 'data2') } });
    const failure = await second.then(
      (relay) => {
        running.push(relay);
        return '';
      },
      (error: unknown) => String(error),
    );
    expect(failure).toContain(`Port ${port} is already in use`);
    expect(failure).toContain(`PORT=${port + 1} npm start`);
    expect(failure).not.toContain('    at ');
  });

  it('checks the port and the data directory before it builds the app, and holds neither', async () => {
    const env = { RELAY_DATA_DIR: join(dir, 'held'), RELAY_STATIC_DIR: join(dir, 'app'), RELAY_LOG: 'silent' };
    const held = await startRelayProcess({ env });
    running.push(held);
    const port = Number(new URL(held.url).port);
    const portTaken = await check({ ...env, RELAY_DATA_DIR: join(dir, 'other'), PORT: String(port) });
    expect(portTaken.code).toBe(1);
    expect(portTaken.output).toContain(`Port ${port} is already in use`);
    const free = await freePort();
    const dirTaken = await check({ ...env, PORT: String(free) });
    expect(dirTaken.code).toBe(1);
    expect(dirTaken.output).toContain(`the data directory ${env.RELAY_DATA_DIR} is in use by another relay process`);
    expect(dirTaken.output).not.toContain('    at ');
    // Both free: it passes, and leaves the port and the directory to the start that follows.
    await held.stop();
    running.splice(running.indexOf(held), 1);
    expect(await check({ ...env, PORT: String(free) })).toEqual({ code: 0, output: '' });
    const started = await startRelayProcess({ port: free, env });
    running.push(started);
    expect(new URL(started.url).port).toBe(String(free));
  });
});
