/**
 * Child-process entry for tests and the benchmark that need a relay in its own process (its own
 * core, its own heap to measure) but with test settings main.ts does not take: limits, an
 * in-memory store. Started by `startRelayProcess({ entry: RELAY_TEST_ENTRY, ipc: true, env })`.
 *
 * Env: RELAY_TEST_STORE = 'memory' | a data dir | 'redis:<url>'; RELAY_TEST_LIMITS = JSON of
 * Partial<RelayLimits>. IPC requests (process.send): {id, op: 'memory'} → GC, then
 * {heapUsed, rss}; {id, op: 'stats'} → store.stats(). Prints its URL like main.ts.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RelayLimits } from '../../../src/relay/limits.js';
import { startRelay } from '../../../src/relay/server.js';
import { openRedisStore } from '../../../src/relay/store/redis.js';
import { openSqliteStore } from '../../../src/relay/store/sqlite.js';
import type { RelayStore } from '../../../src/relay/store/types.js';

async function openStore(spec: string): Promise<RelayStore> {
  if (spec.startsWith('redis:')) return await openRedisStore({ url: spec.slice('redis:'.length), warn: () => undefined });
  return openSqliteStore({ dataDir: spec === 'memory' ? ':memory:' : spec });
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const store = await openStore(process.env.RELAY_TEST_STORE ?? 'memory');
const limits = JSON.parse(process.env.RELAY_TEST_LIMITS ?? '{}') as Partial<RelayLimits>;
const relay = await startRelay({ store, port: Number(process.env.PORT ?? 0), host: '127.0.0.1', logLevel: 'silent', limits });

process.on('message', (message: { id: number; op: string }) => {
  const reply = (value: unknown): void => {
    process.send?.({ id: message.id, value });
  };
  if (message.op === 'memory') {
    gc();
    gc();
    const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
    reply({ heapUsed, rss, external, arrayBuffers });
  } else if (message.op === 'stats') {
    void store.stats().then(reply);
  } else {
    reply({ error: `unknown op ${message.op}` });
  }
});
process.on('SIGTERM', () => {
  void relay.close().then(() => process.exit(0));
});
process.stdout.write(`test relay listening on ${relay.url}\n`);
