/**
 * Child-process entry (tests/relay/sqlite-dir-lock.test.ts): opens the SQLite store on the data
 * directory given as argv[2] in a process of its own, prints what happened as one JSON line
 * ({ opened: true } or { error: name, message }), closes it and exits. Run by `openInChild`.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../../../src/relay/store/sqlite.js';

/** How long the child may take (tsx transpiles the store first: seconds on a loaded 2-core machine). */
const CHILD_TIMEOUT_MS = 120_000;

export type ChildOpen = { readonly opened: true } | { readonly error: string; readonly message: string };

/** Opens the store on `dataDir` in a child process; what it printed. */
export async function openInChild(dataDir: string): Promise<ChildOpen> {
  const here = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', here, dataDir], {
    cwd: resolve(dirname(here), '../../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  clearTimeout(timer);
  const line = output.split('\n').find((text) => text.startsWith('{'));
  if (code !== 0 || line === undefined) throw new Error(`open-data-dir child failed (exit code ${code}):\n${output}`);
  return JSON.parse(line) as ChildOpen;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dataDir = process.argv[2];
  if (dataDir === undefined) throw new Error('usage: open-data-dir.ts <data dir>');
  let result: ChildOpen;
  try {
    await openSqliteStore({ dataDir, warn: () => undefined }).close();
    result = { opened: true };
  } catch (error) {
    result = error instanceof Error ? { error: error.name, message: error.message } : { error: 'unknown', message: String(error) };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
