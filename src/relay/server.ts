/**
 * The relay server: HTTP routes (routes/router.ts), WebSocket push (push.ts), static app, health,
 * metrics, rate limits, retention sweep, graceful shutdown. `startRelay` is used by main.ts, the
 * tests and the benchmark (in-process, port 0).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { HealthResponse } from '../shared/relay-api.js';
import { retentionPolicy, type RelayDeps, type Reply, type RequestContext } from './http/context.js';
import { RelayError, isRelayError } from './http/errors.js';
import { CORS_HEADERS, rawErrorResponse, readBody, sendBytes, sendJson } from './http/io.js';
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from './limits.js';
import { makeLogger, type LogLevel, type Logger } from './log.js';
import { RelayMetrics } from './metrics.js';
import { makePushHub } from './push.js';
import { RateLimiter } from './rate-limit.js';
import { bodyLimit, matchRoute } from './routes/router.js';
import { staticSite } from './static.js';
import type { RelayStore } from './store/types.js';
import { DEFAULT_PUSH_HOSTS } from './web-push/endpoint.js';
import { makeWebPush, newVapidKeys, type WebPushService, type WebPushSettings } from './web-push/dispatcher.js';

/** VAPID subject when the operator sets none: push services want a contact; set RELAY_VAPID_SUBJECT. */
export const DEFAULT_VAPID_SUBJECT = 'mailto:operator@covey-relay.invalid';

export interface RelayOptions {
  readonly store: RelayStore;
  /** 0 = any free port (tests). Default 8787. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Overrides of DEFAULT_RELAY_LIMITS. */
  readonly limits?: Partial<RelayLimits>;
  /** PEM certificate and key: serve HTTPS/WSS. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Directory of the built app to serve (index.html required); omitted: no static files. */
  readonly staticDir?: string;
  /** Other relays the app may connect to (RELAY_CONNECT_SRC): added to the app's CSP connect-src. */
  readonly connectSources?: readonly string[];
  readonly logLevel?: LogLevel;
  /** Relay clock; tests inject a fake one. */
  readonly now?: () => number;
  /** Close the store in close() (default true: the relay owns it). */
  readonly closeStore?: boolean;
  /**
   * Web Push (issue 12 §5): false turns it off (RELAY_PUSH=off); otherwise the VAPID subject
   * (RELAY_VAPID_SUBJECT), the push services allowed (RELAY_PUSH_HOSTS), and for tests only,
   * `allowLoopback` (http(s) endpoints on this machine).
   */
  readonly push?: false | Partial<WebPushSettings>;
}

export interface RunningRelay {
  /** http(s)://host:port without a trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly store: RelayStore;
  readonly limits: RelayLimits;
  /** Runs the retention sweep now (tests); returns events removed. */
  sweep(): Promise<number>;
  /** Graceful shutdown: refuse new work, close WebSockets (1001), drain requests, close store. */
  close(): Promise<void>;
}

/** True for hosts only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function clientOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
  const logger: Logger = makeLogger(options.logLevel ?? 'info');
  const metrics = new RelayMetrics();
  const now = options.now ?? Date.now;
  let webPush: WebPushService | undefined;
  if (options.push !== false) {
    const vapid = await options.store.vapidKeys(newVapidKeys());
    webPush = makeWebPush(
      options.store,
      vapid,
      limits,
      {
        subject: options.push?.subject ?? DEFAULT_VAPID_SUBJECT,
        allowedHosts: options.push?.allowedHosts ?? DEFAULT_PUSH_HOSTS,
        allowLoopback: options.push?.allowLoopback ?? false,
      },
      logger,
    );
  }
  const deps: RelayDeps = { store: options.store, limits, metrics, now, webPush };
  const rateLimiter = new RateLimiter(limits.rateRequestsPerSecond, limits.rateBurst, limits.rateMaxClients);
  const hub = makePushHub(deps, rateLimiter, logger);
  const site = options.staticDir === undefined ? undefined : staticSite(options.staticDir, options.connectSources ?? []);
  const host = options.host ?? '127.0.0.1';
  let draining = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<{ code: string; route: string }> => {
    const method = req.method ?? 'GET';
    const pathWithQuery = req.url ?? '/';
    const url = new URL(pathWithQuery, 'http://relay.invalid');
    const path = url.pathname;
    if (method === 'OPTIONS') {
      res.writeHead(204, CORS_HEADERS);
      res.end();
      return { code: 'ok', route: 'OPTIONS' };
    }
    if (draining) throw new RelayError('shutting-down', 'relay is shutting down');
    if (path === '/healthz' && method === 'GET') {
      const health: HealthResponse = { ok: true, store: options.store.name };
      sendJson(res, 200, health);
      return { code: 'ok', route: '/healthz' };
    }
    if (path === '/metrics' && method === 'GET') {
      const text = metrics.render(await options.store.stats(), webPush?.counts);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(text);
      return { code: 'ok', route: '/metrics' };
    }
    const match = matchRoute(method, path);
    if (match.kind === 'none') {
      if (path === '/v1/ws') throw new RelayError('bad-request', 'GET /v1/ws expects a WebSocket upgrade');
      if (!path.startsWith('/v1/') && site?.serve(path, method, res, { host: req.headers.host, secure: options.tls !== undefined }) === true) return { code: 'ok', route: 'static' };
      throw new RelayError('not-found', 'no such route');
    }
    if (match.kind === 'wrong-method') throw new RelayError('method-not-allowed', `method ${method} not allowed here`);
    const waitS = rateLimiter.take(clientOf(req), now());
    if (waitS > 0) throw new RelayError('rate-limited', 'too many requests', { 'retry-after': String(waitS) });
    const body = await readBody(req, bodyLimit(match.route.body, limits));
    const ctx: RequestContext = { req, method, pathWithQuery, query: url.searchParams, body, nowMs: now(), deps };
    const reply: Reply = await match.route.handler(ctx, ...match.params);
    if ('json' in reply) sendJson(res, reply.status, reply.json);
    else sendBytes(res, reply.status, reply.bytes, reply.headers);
    return { code: 'ok', route: `${method} ${match.route.name}` };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    inFlight += 1;
    const finish = (code: string, route: string, status: number): void => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.observeRequest(code, seconds);
      logger.info('request', { method: req.method, route, status, code, ms: Math.round(seconds * 1e4) / 10, client: clientOf(req) });
      inFlight -= 1;
      if (draining && inFlight === 0) drained?.();
    };
    answer(req, res).then(
      ({ code, route }) => finish(code, route, res.statusCode),
      (error: unknown) => {
        const relayError = isRelayError(error) ? error : new RelayError('internal', 'internal error');
        if (!isRelayError(error)) logger.error('request failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        if (!res.headersSent) {
          // After a refused body the rest of it is not read: close rather than read it all.
          const closeAfter = relayError.code === 'body-too-large' || draining;
          sendJson(res, relayError.status, relayError.toBody(), { ...relayError.headers, ...(closeAfter ? { connection: 'close' } : {}) });
          if (closeAfter) req.resume();
        } else {
          res.destroy();
        }
        finish(relayError.code, req.method ?? '?', relayError.status);
      },
    );
  };

  const server: Server = options.tls === undefined ? createHttpServer(onRequest) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest);
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = Math.min(limits.requestTimeoutMs, 60_000);
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://relay.invalid').pathname;
    socket.on('error', () => socket.destroy());
    if (path !== '/v1/ws') {
      socket.end(rawErrorResponse(404, 'not-found', 'no such route'));
      return;
    }
    hub.upgrade(req, socket, head, clientOf(req));
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end(rawErrorResponse(400, 'bad-request', 'malformed HTTP request'));
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8787, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls === undefined ? 'http' : 'https';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (options.tls === undefined && !isLoopbackHost(host)) {
    const banner = '!'.repeat(78);
    process.stderr.write(
      `${banner}\n!! WARNING: the relay listens on ${host} WITHOUT TLS. Signatures stop replays, but traffic,\n` +
        `!! capabilities and metadata are visible on the network. Set RELAY_TLS_CERT and RELAY_TLS_KEY,\n` +
        `!! or bind to 127.0.0.1 behind a TLS-terminating proxy.\n${banner}\n`,
    );
    logger.warn('listening beyond loopback without TLS', { host, port });
  }

  const policy = retentionPolicy(limits);
  const sweep = (): Promise<number> => options.store.sweep(policy, now());
  const sweepTimer = setInterval(() => {
    sweep().catch((error: unknown) => logger.error('retention sweep failed', { error: String(error) }));
  }, limits.sweepIntervalMs);
  sweepTimer.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      clearInterval(sweepTimer);
      webPush?.close();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await hub.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, limits.shutdownGraceMs).unref();
        });
      }
      server.closeAllConnections();
      await serverClosed;
      if (options.closeStore !== false) await options.store.close();
      logger.info('relay stopped', { url });
    })();
    return closing;
  };

  logger.info('relay listening', { url, store: options.store.name });
  return { url, port, store: options.store, limits, sweep, close };
}
