/**
 * A throwaway three-node Redis Cluster for the relay's cluster test (issue 13 "Scale-out"):
 * `redis-server --cluster-enabled yes` ×3 on free loopback ports (each with a free cluster bus
 * port and its own dir, AOF with appendfsync always), joined by `redis-cli --cluster create
 * ... --cluster-yes` (three masters, no replicas). `cluster-require-full-coverage no`: while a
 * node is down, the other nodes keep serving their slots (what the test shows). A short node
 * timeout makes the cluster notice a dead node in about a second.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

/** How long a cluster may take to form (or to heal after a node comes back). */
const CLUSTER_READY_TIMEOUT_MS = 30_000;
/** The cluster's node timeout: how soon a dead node is noticed. */
const NODE_TIMEOUT_MS = 1_000;

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** Every node's redis:// URL, comma-separated: the relay's RELAY_REDIS_URL. */
  readonly url: string;
  /** The node serving the slot of `key`. */
  nodeOf(key: string): Promise<RedisServer>;
  /** Waits until every running node says cluster_state:ok. */
  waitHealthy(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-8_000)));
    child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-8_000)));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} exited with ${code}: ${output}`))));
  });
}

async function clusterInfo(port: number): Promise<string> {
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
    return String(await admin.call('CLUSTER', 'INFO'));
  } catch {
    return '';
  } finally {
    admin.disconnect();
  }
}

export async function startRedisCluster(size = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const down = new Set<RedisServer>();
  try {
    for (let i = 0; i < size; i++) {
      const busPort = await freePort();
      nodes.push(
        await startRedisServer({
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-port', String(busPort),
            '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
            '--cluster-require-full-coverage', 'no',
          ],
        }),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-yes']);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
  const cluster: RedisCluster = {
    nodes,
    url: nodes.map((node) => node.url).join(','),
    async nodeOf(key) {
      const admin = new Redis(nodes.find((node) => !down.has(node))?.url ?? '');
      try {
        const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', key));
        const ranges = (await admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
        const range = ranges.find(([from, to]) => slot >= from && slot <= to);
        const port = range?.[2][1];
        const node = nodes.find((candidate) => candidate.port === port);
        if (node === undefined) throw new Error(`no node serves slot ${slot}`);
        return node;
      } finally {
        admin.disconnect();
      }
    },
    async waitHealthy() {
      const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
      // Bounded by the deadline.
      for (;;) {
        const infos = await Promise.all(nodes.filter((node) => !down.has(node)).map((node) => clusterInfo(node.port)));
        if (infos.every((info) => /^cluster_state:ok/m.test(info))) return;
        if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy: ${infos.join(' | ')}`);
        await sleep(100);
      }
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
  // Track which nodes are down, so helpers ask a live one.
  for (const node of nodes) {
    const { kill, restart, stop } = node;
    Object.assign(node, {
      kill: async () => {
        down.add(node);
        await kill();
      },
      stop: async () => {
        down.add(node);
        await stop();
      },
      restart: async () => {
        await restart();
        down.delete(node);
      },
    });
  }
  await cluster.waitHealthy();
  return cluster;
}
