/**
 * `npm run relay`: starts the relay on http://127.0.0.1:8787 (PORT, HOST), SQLite in ./data
 * (RELAY_DATA_DIR) or Redis (RELAY_REDIS_URL), TLS with RELAY_TLS_CERT/RELAY_TLS_KEY, the built app
 * from ./dist (RELAY_STATIC_DIR), any limit by RELAY_LIMIT_<NAME> (limits.ts); operator settings
 * RELAY_TRUSTED_PROXIES, RELAY_METRICS_TOKEN, RELAY_ADMIN_PORT/HOST, RELAY_CONNECT_SRC,
 * RELAY_PUSH, RELAY_VAPID_SUBJECT, RELAY_PUSH_HOSTS (src/relay/README.md). Prints its URL;
 * SIGTERM/SIGINT drain and exit.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { limitsFromEnv } from './limits.js';
import { parseLogLevel } from './log.js';
import { isLoopbackHost, startRelay } from './server.js';
import { connectSourcesFromEnv } from './static.js';
import { pushHostsFromEnv } from './web-push/endpoint.js';
import { trustedProxiesFromEnv } from './http/client-address.js';
import { isDataDirInUse, lockDataDir } from './store/sqlite-dir-lock.js';
import { openStoreFromEnv, storeChoiceFromEnv } from './store/select.js';
import { verifyThreadsFromEnv } from './signature-pool.js';

const DEFAULT_PORT = 8787;

/** HOST, loopback by default: the relay is for this machine unless told otherwise. */
const hostFromEnv = (env: NodeJS.ProcessEnv): string => env['HOST'] ?? '127.0.0.1';

function portFromEnv(env: NodeJS.ProcessEnv): number {
  const port = env['PORT'] === undefined || env['PORT'] === '' ? DEFAULT_PORT : Number(env['PORT']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be 0..65535, got ${env['PORT']}`);
  return port;
}

/**
 * `main.ts --check` (`npm start` runs it before it builds the app): fails as the start itself
 * would when the port is taken or another relay holds the data directory, before the build
 * empties ./dist under the running relay (which serves its files from disk: gone while the build ran) and
 * without the wait for the build. Both are only looked at: the port is closed and the lock
 * released again before the start.
 */
async function check(): Promise<void> {
  const env = process.env;
  const port = portFromEnv(env);
  if (port !== 0) {
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(port, hostFromEnv(env), () => probe.close(() => resolve()));
    });
  }
  const store = storeChoiceFromEnv(env);
  // A directory that does not exist yet is held by no one (the start creates it).
  if (store.kind === 'sqlite' && store.dataDir !== ':memory:' && existsSync(store.dataDir)) lockDataDir(store.dataDir).release();
}

async function main(): Promise<void> {
  const env = process.env;
  const port = portFromEnv(env);
  const certPath = env['RELAY_TLS_CERT'];
  const keyPath = env['RELAY_TLS_KEY'];
  if ((certPath === undefined) !== (keyPath === undefined)) throw new Error('set both RELAY_TLS_CERT and RELAY_TLS_KEY, or neither');
  const adminPortText = env['RELAY_ADMIN_PORT'];
  const adminPort = adminPortText === undefined || adminPortText === '' ? undefined : Number(adminPortText);
  if (adminPort !== undefined && (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535)) {
    throw new Error(`RELAY_ADMIN_PORT must be 0..65535, got ${adminPortText}`);
  }
  const metricsToken = env['RELAY_METRICS_TOKEN'] === '' ? undefined : env['RELAY_METRICS_TOKEN'];
  const host = hostFromEnv(env);
  const trustedProxies = trustedProxiesFromEnv(env['RELAY_TRUSTED_PROXIES']);
  const staticDir = env['RELAY_STATIC_DIR'] ?? './dist';
  const store = await openStoreFromEnv(env);
  const relay = await startRelay({
    store,
    port,
    host,
    trustedProxies,
    ...(metricsToken === undefined ? {} : { metricsToken }),
    ...(adminPort === undefined ? {} : { admin: { port: adminPort, host: env['RELAY_ADMIN_HOST'] ?? '127.0.0.1' } }),
    staticDir,
    connectSources: connectSourcesFromEnv(env['RELAY_CONNECT_SRC']),
    push:
      env['RELAY_PUSH'] === 'off'
        ? false
        : {
            allowedHosts: pushHostsFromEnv(env['RELAY_PUSH_HOSTS']),
            ...(env['RELAY_VAPID_SUBJECT'] === undefined || env['RELAY_VAPID_SUBJECT'] === '' ? {} : { subject: env['RELAY_VAPID_SUBJECT'] }),
          },
    limits: limitsFromEnv(env),
    verifyThreads: verifyThreadsFromEnv(env['RELAY_VERIFY_THREADS']),
    // Quiet by default under the test runner (child relays of the crash and multi-node tests).
    logLevel: parseLogLevel(env['RELAY_LOG'], env['VITEST'] === undefined ? 'info' : 'warn'),
    ...(certPath !== undefined && keyPath !== undefined ? { tls: { cert: readFileSync(certPath), key: readFileSync(keyPath) } } : {}),
  });
  process.stdout.write(`Covey relay listening on ${relay.url} (store: ${store.name})\n`);
  if (existsSync(join(staticDir, 'index.html'))) process.stdout.write(`Open ${relay.url} in a browser to use Covey.\n`);
  else process.stdout.write(`No app in ${staticDir} (run \`npm run build\`, or \`npm start\` to build and serve it): relay only.\n`);
  if (relay.adminUrl !== undefined) process.stdout.write(`Admin (/metrics, /healthz) on ${relay.adminUrl}\n`);
  if (!isLoopbackHost(host) && metricsToken === undefined && adminPort === undefined) {
    process.stderr.write('WARNING: /metrics is public. Set RELAY_METRICS_TOKEN or RELAY_ADMIN_PORT.\n');
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: draining connections\n`);
    relay.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

(process.argv.includes('--check') ? check() : main()).catch((error: unknown) => {
  // The port is taken (often a Covey started earlier), or another relay uses the data directory
  // (store/sqlite-dir-lock.ts, the message names it): say what to do, not a stack trace.
  const taken = error instanceof Error && (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
  const port = process.env['PORT'] === undefined || process.env['PORT'] === '' ? DEFAULT_PORT : Number(process.env['PORT']);
  const text = taken
    ? `Port ${port} is already in use (is Covey running already?). Stop that program, or choose another port, e.g. PORT=${port + 1} npm start`
    : isDataDirInUse(error)
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  process.stderr.write(`relay failed to start: ${text}\n`);
  process.exit(1);
});
