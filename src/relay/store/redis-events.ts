/**
 * The pub/sub side of the Redis store: one subscriber connection per relay node, on the event
 * channel every append publishes to (./redis-scripts.ts). On Redis Cluster a PUBLISH reaches the
 * subscribers of every node, so the connection may go to any node; when it drops (that node died,
 * the network blinked) this link connects again, to the next candidate node, with backoff, and
 * then asks the store's listeners to resync: pub/sub is fire-and-forget, so whatever was
 * published meanwhile is read back from the channels' logs (push.ts re-reads every subscription
 * up to its head).
 */
import { Redis, type RedisOptions } from 'ioredis';

/** First and longest wait before connecting again. */
const RECONNECT_FIRST_MS = 50;
const RECONNECT_MAX_MS = 2_000;
/**
 * TCP keepalive's first probe after this much idle time (ioredis' `keepAlive`). When a silently
 * dead connection (no FIN) is declared dead is up to the kernel's probe interval and count
 * (minutes with Linux defaults).
 */
const KEEPALIVE_MS = 10_000;

/** Where the subscriber may connect: a redis:// URL, or a host and port (cluster nodes). */
export type EventLinkTarget = { readonly url: string } | { readonly host: string; readonly port: number };

export interface EventLinkOptions {
  /** The nodes to try, in order (asked again before each attempt: cluster membership changes). */
  readonly targets: () => readonly EventLinkTarget[];
  /** Options every connection gets (timeouts, credentials). */
  readonly connection: RedisOptions;
  readonly channel: string;
  readonly onMessage: (message: string) => void;
  /** Called after every reconnect, once subscribed again. */
  readonly onResync: () => void;
  readonly warn: (message: string) => void;
}

export interface EventLink {
  close(): Promise<void>;
}

/** Connects and subscribes; rejects if no target can be reached at first. */
export async function openEventLink(options: EventLinkOptions): Promise<EventLink> {
  let closed = false;
  let current: Redis | undefined;
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const connectOnce = async (target: EventLinkTarget): Promise<Redis> => {
    const settings: RedisOptions = {
      ...options.connection,
      lazyConnect: true,
      // This link reconnects by itself, possibly to another node.
      retryStrategy: () => null,
      keepAlive: KEEPALIVE_MS,
      enableOfflineQueue: true,
    };
    const subscriber = 'url' in target ? new Redis(target.url, settings) : new Redis({ ...settings, host: target.host, port: target.port });
    subscriber.on('error', () => {
      // Reported through 'end' (and the command connection's own errors).
    });
    subscriber.on('message', (_channel: string, message: string) => options.onMessage(message));
    try {
      await subscriber.connect();
      await subscriber.subscribe(options.channel);
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
    return subscriber;
  };

  const connectAny = async (): Promise<Redis> => {
    const targets = options.targets();
    if (targets.length === 0) throw new Error('no Redis node to subscribe on');
    let lastError: unknown;
    // Bounded: one try per target, starting where the last attempt left off.
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(attempt + i) % targets.length];
      if (target === undefined) continue;
      try {
        const subscriber = await connectOnce(target);
        attempt += i;
        return subscriber;
      } catch (error) {
        lastError = error;
      }
    }
    attempt += 1;
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  };

  const watch = (subscriber: Redis): void => {
    subscriber.once('end', () => {
      if (closed || current !== subscriber) return;
      current = undefined;
      options.warn('pub/sub connection lost: reconnecting, then every subscription catches up from the logs');
      reconnect(0);
    });
  };

  const reconnect = (failures: number): void => {
    if (closed) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** failures);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connectAny().then(
        (subscriber) => {
          if (closed) {
            subscriber.disconnect();
            return;
          }
          current = subscriber;
          watch(subscriber);
          options.onResync();
        },
        (error: unknown) => {
          if (failures === 0) options.warn(`pub/sub reconnect failed (${error instanceof Error ? error.message : String(error)}); retrying`);
          attempt += 1;
          reconnect(failures + 1);
        },
      );
    }, delay);
    retryTimer.unref();
  };

  current = await connectAny();
  watch(current);
  return {
    async close() {
      closed = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      const subscriber = current;
      current = undefined;
      if (subscriber !== undefined) {
        await subscriber.quit().catch(() => undefined);
        subscriber.disconnect();
      }
    },
  };
}
