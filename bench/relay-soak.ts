/**
 * The soak of `npm run bench:relay` (issue 13 "Scale-out that keeps up", fourth item): one server
 * process holding 10,000 idle WebSockets (each subscribed to a channel nobody posts in) plus 1,000
 * active ones. Reports the server's RSS per connection (after a GC, measured in the child) and the
 * p99 post-to-push latency of the active subscribers before and after the idle ones arrive. The
 * bare `ws` baseline holds the same connections in the same run.
 *
 * Every connection comes from this machine, so the relay's per-address WebSocket cap is raised
 * for the bench (relay-targets.ts BENCH_LIMITS), and the idle sockets are spread over several
 * loopback source addresses (127.0.0.2 ... ) so no single address pair runs out of ports.
 */
import type { WebSocket } from 'ws';
import type { DeliveryCounter} from './relay-load.js';
import { openSubscribers, runStep, type StepChannel } from './relay-load.js';
import { makeTarget } from './relay-targets.js';

/** Subscribers connecting at once. */
const CONNECT_CONCURRENCY = 100;
/** Channels set up at once (create, invite, joins) on the relay. */
const SETUP_CONCURRENCY = 20;
/** Loopback source addresses the idle sockets come from. */
const IDLE_SOURCE_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

export interface SoakOptions {
  readonly idle: number;
  readonly active: number;
  readonly channelSize: number;
  /** Posts per second to the active channels during the two latency steps. */
  readonly rate: number;
  readonly stepMs: number;
}

export interface SoakResult {
  readonly key: string;
  readonly label: string;
  readonly idleConnected: number;
  readonly idleOpenAtEnd: number;
  readonly rssStartMiB: number;
  readonly rssActiveMiB: number;
  readonly rssAllMiB: number;
  /** (RSS with every connection - RSS with the active ones) / idle connections. */
  readonly rssPerIdleKiB: number;
  /** (RSS with every connection - RSS before any) / all connections. */
  readonly rssPerConnectionKiB: number;
  readonly p99ActiveOnlyMs: number;
  readonly p99WithIdleMs: number;
  readonly p50WithIdleMs: number;
  readonly missing: number;
}

interface Memory {
  readonly rss: number;
}

const MIB = 1024 * 1024;

export async function runSoak(name: string, options: SoakOptions, counter: DeliveryCounter): Promise<SoakResult> {
  const target = makeTarget(name);
  const activeChannels = Math.ceil(options.active / options.channelSize);
  const idleChannels = Math.ceil(options.idle / options.channelSize);
  const sockets: WebSocket[] = [];
  try {
    const started = performance.now();
    await target.prepare(activeChannels + idleChannels, options.channelSize, SETUP_CONCURRENCY);
    const rssStart = (await target.request<Memory>('memory')).rss;
    const open = async (count: number, firstChannel: number, addresses: readonly string[]): Promise<void> => {
      const opened = await openSubscribers(count, CONNECT_CONCURRENCY, (i) => {
        const channel = firstChannel + Math.floor(i / options.channelSize);
        const address = addresses[i % Math.max(1, addresses.length)];
        return target.subscribe(channel, i % options.channelSize, counter.onFrame, address === undefined ? {} : { localAddress: address });
      });
      sockets.push(...opened);
    };
    await open(options.active, 0, []);
    console.error(`bench:relay:   ${target.label}: ${options.active} active subscribers ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const channels: StepChannel[] = Array.from({ length: activeChannels }, (_, index) => ({
      index,
      subscribers: Math.min(options.channelSize, options.active - index * options.channelSize),
      authors: [0],
    }));
    const activeOnly = await runStep(target, counter, channels, options.rate, options.stepMs);
    const rssActive = (await target.request<Memory>('memory')).rss;
    const idleStart = performance.now();
    await open(options.idle, activeChannels, IDLE_SOURCE_ADDRESSES);
    console.error(`bench:relay:   ${target.label}: ${options.idle} idle subscribers ready in ${((performance.now() - idleStart) / 1000).toFixed(1)} s`);
    const rssAll = (await target.request<Memory>('memory')).rss;
    const withIdle = await runStep(target, counter, channels, options.rate, options.stepMs);
    const idleOpen = sockets.slice(options.active).filter((ws) => ws.readyState === ws.OPEN).length;
    return {
      key: target.key,
      label: target.label,
      idleConnected: options.idle,
      idleOpenAtEnd: idleOpen,
      rssStartMiB: rssStart / MIB,
      rssActiveMiB: rssActive / MIB,
      rssAllMiB: rssAll / MIB,
      rssPerIdleKiB: (rssAll - rssActive) / options.idle / 1024,
      rssPerConnectionKiB: (rssAll - rssStart) / (options.idle + options.active) / 1024,
      p99ActiveOnlyMs: activeOnly.p99Ms,
      p99WithIdleMs: withIdle.p99Ms,
      p50WithIdleMs: withIdle.p50Ms,
      missing: activeOnly.missing + withIdle.missing,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await target.close();
  }
}
