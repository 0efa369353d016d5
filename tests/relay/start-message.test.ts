/**
 * What `npm start` tells a new user: where to open Covey once it runs, and what to do when the
 * port is taken (a stack trace said only "EADDRINUSE").
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startRelayProcess, type RelayProcess } from './helpers/process.js';

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
});
