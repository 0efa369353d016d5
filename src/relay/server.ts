/**
 * The relay server: HTTP routes (routes/router.ts), WebSocket push (push.ts), Web Push
 * (web-push/), static app, health, metrics, rate limits, quotas, storage high-water mark,
 * retention sweep, graceful shutdown. `startRelay` is used by main.ts, the tests and the
 * benchmark (in-process, port 0).
 *
 * Hostile input (issue 13): no request reaches an uncaught exception (the target is parsed
 * defensively, the upgrade listener cannot throw); every API request, upgrade and frame of a
 * client address draws on one rate-limit bucket before any work; connections are capped per
 * address and in total; a response the client does not read is cut after responseDrainTimeoutMs
 * and big bodies (blobs) are streamed with backpressure.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HealthResponse } from '../shared/relay-api.js';
import { ClientAddresses, addressKey } from './http/client-address.js';
import { retentionPolicy, type RelayDeps, type Reply, type RequestContext } from './http/context.js';
import { RelayError, isRelayError } from './http/errors.js';
import { API_SECURITY_HEADERS, CORS_HEADERS, CORS_PREFLIGHT_HEADERS, rawErrorResponse, readBody, sendBytes, sendJson } from './http/io.js';
import { idleInlineVerifier } from './auth.js';
import { constantTimeEqual } from './ids.js';
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from './limits.js';
import { makeLogger, type LogLevel, type Logger } from './log.js';
import { MacChecker, relayAuthKeyFrom } from './mac-keys.js';
import { RelayMetrics } from './metrics.js';
import { makePushHub, type StartRequest } from './push.js';
import { Quotas } from './quotas.js';
import { RateLimiter } from './rate-limit.js';
import { bodyLimit, matchRoute } from './routes/router.js';
import { staticSite } from './static.js';
import { DEFAULT_VERIFY_THREADS, startVerifierPool } from './signature-pool.js';
import { StorageGuard } from './storage-guard.js';
import { StoreUnavailableError, type RelayStore } from './store/types.js';
import { DEFAULT_PUSH_HOSTS } from './web-push/endpoint.js';
import { makeWebPush, newVapidKeys, type WebPushService, type WebPushSettings } from './web-push/dispatcher.js';

/** VAPID subject when the operator sets none: push services want a contact; set RELAY_VAPID_SUBJECT. */
export const DEFAULT_VAPID_SUBJECT = 'mailto:operator@covey-relay.invalid';

/** /metrics shows store counts at most this old (one O(1) store read per interval, whatever the scrapers). */
const METRICS_STATS_MAX_AGE_MS = 1000;
/** Longest request target accepted (Node's parser already bounds the header block). */
const MAX_TARGET_CHARS = 8192;
/** A target `URL` parsing would return unchanged as its path, with no query (see parseTarget). */
const PLAIN_PATH = /^\/[A-Za-z0-9_\-/]*$/;

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
  /** Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (RELAY_TRUSTED_PROXIES): IPs and CIDRs. */
  readonly trustedProxies?: readonly string[];
  /** Bearer token /metrics requires on the public port (RELAY_METRICS_TOKEN). */
  readonly metricsToken?: string;
  /**
   * A separate listener for /metrics and /healthz (RELAY_ADMIN_PORT, on RELAY_ADMIN_HOST,
   * default 127.0.0.1); the public port then serves no /metrics at all.
   */
  readonly admin?: { readonly port: number; readonly host?: string };
  /**
   * Where request signatures are checked (RELAY_VERIFY_THREADS; ./signature-pool.ts): absent
   * (default): one worker thread, inline when the relay serves nothing else; 0: on the event
   * loop; n: on n worker threads.
   */
  readonly verifyThreads?: number;
}

export interface RunningRelay {
  /** http(s)://host:port without a trailing slash. */
  readonly url: string;
  readonly port: number;
  /** http://host:port of the admin listener, when there is one. */
  readonly adminUrl: string | undefined;
  readonly store: RelayStore;
  readonly limits: RelayLimits;
  /** Runs the retention sweep now (tests); returns events removed. */
  sweep(): Promise<number>;
  /** Checks storage now (tests); /healthz and the 507 refusals follow the result. */
  checkStorage(): Promise<void>;
  /** Resolves once every event appended so far has been matched to its push targets (tests). */
  pushLookUpsDone(): Promise<void>;
  /** Graceful shutdown: refuse new work, close WebSockets (1001), drain requests, close store. */
  close(): Promise<void>;
}

/** True for hosts only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The path and query of a request target, or undefined. Only origin-form ("/path?query") is
 * served: absolute-form and authority-form targets are for proxies, and `URL` throws on some that
 * Node's parser lets through (`GET http://[/`, issue 13 "Broken" 1).
 */
export function parseTarget(target: string | undefined): { path: string; query: URLSearchParams } | undefined {
  if (target === undefined || !target.startsWith('/') || target.startsWith('//') || target.length > MAX_TARGET_CHARS) return undefined;
  // Most targets (every post) are letters, digits, '-', '_' and '/': `URL` would give them back
  // unchanged (nothing to percent-encode or resolve, no query), so skip parsing them.
  if (PLAIN_PATH.test(target)) return { path: target, query: new URLSearchParams() };
  try {
    const url = new URL(target, 'http://relay.invalid');
    return { path: url.pathname, query: url.searchParams };
  } catch {
    return undefined;
  }
}

/** Seconds a client should wait before retrying when the store is unavailable (a node restarting, a failover). */
const STORE_UNAVAILABLE_RETRY_S = 5;

/** An error that is not a RelayError: the store being unreachable (503), or a bug (500). */
function asRelayError(error: unknown): RelayError {
  if (error instanceof StoreUnavailableError) {
    return new RelayError('store-unavailable', 'the storage for this request is unavailable; retry later', {
      'retry-after': String(STORE_UNAVAILABLE_RETRY_S),
    });
  }
  return new RelayError('internal', 'internal error');
}

/** Cuts a response the client does not read within `timeoutMs` (its buffers are then freed). */
function guardDrain(res: ServerResponse, timeoutMs: number): void {
  if (res.writableFinished || res.destroyed) return;
  const timer = setTimeout(() => res.destroy(), timeoutMs);
  timer.unref();
  const clear = (): void => clearTimeout(timer);
  res.once('finish', clear);
  res.once('close', clear);
}

/** Waits for 'drain' (or the end of the response); false when it timed out or closed. */
function waitDrain(res: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** Streams a reply of known length: the next piece is read only once the client took the last one. */
async function sendStream(
  res: ServerResponse,
  reply: Extract<Reply, { next: unknown }>,
  drainTimeoutMs: number,
): Promise<void> {
  res.writeHead(reply.status, {
    ...CORS_HEADERS,
    ...API_SECURITY_HEADERS,
    'content-type': 'application/octet-stream',
    'content-length': String(reply.length),
    ...reply.headers,
  });
  let offset = 0;
  // Bounded: each piece moves `offset` forward, up to the announced length.
  while (offset < reply.length) {
    const piece = await reply.next(offset);
    if (piece.length === 0) throw new Error(`stream ended at ${offset} of ${reply.length} bytes`);
    offset += piece.length;
    if (!res.write(piece) && !(await waitDrain(res, drainTimeoutMs))) {
      res.destroy();
      return;
    }
  }
  res.end();
  guardDrain(res, drainTimeoutMs);
}

export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
  const logger: Logger = makeLogger(options.logLevel ?? 'info');
  /** One log line per request only at level info (its fields are not even built otherwise). */
  const logRequests = (options.logLevel ?? 'info') === 'info';
  const metrics = new RelayMetrics();
  const now = options.now ?? Date.now;
  const store = options.store;
  const clients = new ClientAddresses(options.trustedProxies ?? []);
  const tls = options.tls !== undefined;
  // Read (or first stored) even with push off: the relay auth key derives from it (mac-keys.ts),
  // the same on every node of this store and across restarts.
  const vapid = await store.vapidKeys(newVapidKeys());
  const macs = new MacChecker(relayAuthKeyFrom(vapid.privateKey), limits.macKeyCacheEntries);
  let webPush: WebPushService | undefined;
  if (options.push !== false) {
    webPush = makeWebPush(
      store,
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
  const storage = new StorageGuard(store, limits, logger);
  await storage.start();
  const rateLimiter = new RateLimiter(limits.rateRequestsPerSecond, limits.rateBurst, limits.rateMaxClients);
  // The hub needs deps and deps reach the hub (removals end its subscriptions): bound after both exist.
  const late: { hub?: ReturnType<typeof makePushHub> } = {};
  /** Requests being served, HTTP and posts over WebSockets (the idle check of the signature verifier, the drain). */
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  // The same idle check for the SQLite store's fdatasync of a lone write (sqlite.ts INLINE_SYNC_MAX_MS).
  if (options.verifyThreads === undefined) store.idleWhen?.(() => inFlight <= 1);
  const warnVerifier = (message: string): void => logger.warn(message);
  const verifier =
    options.verifyThreads === undefined
      ? // Idle: this request is the only one being served (a WebSocket frame other than a post: none is).
        idleInlineVerifier(startVerifierPool(DEFAULT_VERIFY_THREADS, warnVerifier), () => inFlight > 1)
      : options.verifyThreads > 0
        ? startVerifierPool(options.verifyThreads, warnVerifier)
        : undefined;
  const deps: RelayDeps = {
    store,
    limits,
    metrics,
    now,
    webPush,
    storage,
    quotas: new Quotas(limits),
    memberRemoved: (channelId, event) => late.hub?.memberRemoved(channelId, event),
    verifier,
    macs,
  };
  const inFlightByClient = new Map<string, number>();
  /** A request starts (HTTP, or a post over a WebSocket): counted in flight until `done`. */
  const startRequest: StartRequest = (client) => {
    inFlight += 1;
    const clientInFlight = (inFlightByClient.get(client) ?? 0) + 1;
    inFlightByClient.set(client, clientInFlight);
    let ended = false;
    return {
      over: clientInFlight > limits.maxRequestsInFlightPerClient,
      done: () => {
        if (ended) return;
        ended = true;
        inFlight -= 1;
        const left = (inFlightByClient.get(client) ?? 1) - 1;
        if (left <= 0) inFlightByClient.delete(client);
        else inFlightByClient.set(client, left);
        if (draining && inFlight === 0) drained?.();
      },
    };
  };
  const pushHub = makePushHub(deps, rateLimiter, logger, startRequest);
  late.hub = pushHub;
  const site = options.staticDir === undefined ? undefined : staticSite(options.staticDir, options.connectSources ?? []);
  const host = options.host ?? '127.0.0.1';

  const health = (): HealthResponse => ({ ok: true, store: store.name, storage: storage.status() });
  const renderMetrics = async (res: ServerResponse): Promise<void> => {
    // Counters from memory; store counts (O(1) counters, no scan: issue 13 "Broken" 4) at most
    // METRICS_STATS_MAX_AGE_MS old, one refresh however many scrape.
    await storage.fresh(METRICS_STATS_MAX_AGE_MS);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store', ...API_SECURITY_HEADERS });
    res.end(metrics.render(storage.stored(), webPush?.counts, storage.status(), macs.cachedKeys));
  };

  const rateLimit = (client: string): void => {
    const waitS = rateLimiter.take(client, now());
    if (waitS > 0) throw new RelayError('rate-limited', 'too many requests', { 'retry-after': String(waitS) });
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, client: string, secure: boolean): Promise<{ code: string; route: string }> => {
    const method = req.method ?? 'GET';
    const pathWithQuery = req.url ?? '/';
    const target = parseTarget(pathWithQuery);
    if (target === undefined) throw new RelayError('bad-request', 'request target must be a path (origin-form)');
    const { path, query } = target;
    if (method === 'OPTIONS') {
      res.writeHead(204, CORS_PREFLIGHT_HEADERS);
      res.end();
      return { code: 'ok', route: 'OPTIONS' };
    }
    if (draining) throw new RelayError('shutting-down', 'relay is shutting down');
    if (path === '/healthz' && method === 'GET') {
      sendJson(res, 200, health());
      return { code: 'ok', route: '/healthz' };
    }
    // Everything else costs the client address, before any other work.
    rateLimit(client);
    if (path === '/metrics' && method === 'GET') {
      if (options.admin !== undefined) throw new RelayError('not-found', 'no such route');
      if (options.metricsToken !== undefined) {
        const header = req.headers.authorization ?? '';
        if (!constantTimeEqual(header, `Bearer ${options.metricsToken}`)) throw new RelayError('unauthorized', 'metrics need the operator token');
      }
      await renderMetrics(res);
      return { code: 'ok', route: '/metrics' };
    }
    const match = matchRoute(method, path);
    if (match.kind === 'none') {
      if (path === '/v1/ws') throw new RelayError('bad-request', 'GET /v1/ws expects a WebSocket upgrade');
      if (!path.startsWith('/v1/') && site?.serve(path, method, res, { host: req.headers.host, secure }) === true) return { code: 'ok', route: 'static' };
      throw new RelayError('not-found', 'no such route');
    }
    if (match.kind === 'wrong-method') throw new RelayError('method-not-allowed', `method ${method} not allowed here`);
    const body = await readBody(req, bodyLimit(match.route.body, limits));
    const ctx: RequestContext = { headers: req.headers, method, pathWithQuery, query, body, nowMs: now(), deps, client };
    const reply: Reply = await match.route.handler(ctx, ...match.params);
    if ('json' in reply) sendJson(res, reply.status, reply.json, reply.headers);
    else if ('bytes' in reply) sendBytes(res, reply.status, reply.bytes, reply.headers);
    else await sendStream(res, reply, limits.responseDrainTimeoutMs);
    guardDrain(res, limits.responseDrainTimeoutMs);
    return { code: 'ok', route: `${method} ${match.route.name}` };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const { address: client, secure } = clients.of(req, tls);
    const request = startRequest(client);
    const finish = (code: string, route: string, status: number): void => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.observeRequest(code, seconds);
      if (logRequests) logger.info('request', { method: req.method, route, status, code, ms: Math.round(seconds * 1e4) / 10, client });
      request.done();
    };
    const work =
      request.over
        ? Promise.reject(new RelayError('rate-limited', 'too many requests in flight from this client', { 'retry-after': '1' }))
        : answer(req, res, client, secure);
    work.then(
      ({ code, route }) => finish(code, route, res.statusCode),
      (error: unknown) => {
        const relayError = isRelayError(error) ? error : asRelayError(error);
        if (error instanceof StoreUnavailableError) logger.warn('store unavailable', { error: error.message });
        else if (!isRelayError(error)) logger.error('request failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        if (!res.headersSent) {
          // After a refused body the rest of it is not read: close rather than read it all.
          const closeAfter = relayError.code === 'body-too-large' || draining;
          sendJson(res, relayError.status, relayError.toBody(), { ...relayError.headers, ...(closeAfter ? { connection: 'close' } : {}) });
          guardDrain(res, limits.responseDrainTimeoutMs);
          if (closeAfter) req.resume();
        } else {
          res.destroy();
        }
        finish(relayError.code, req.method ?? '?', relayError.status);
      },
    );
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    // Nothing here may throw: an exception in this listener would end the process.
    try {
      const target = parseTarget(req.url);
      if (target === undefined) {
        socket.end(rawErrorResponse(400, 'bad-request', 'request target must be a path (origin-form)'));
        return;
      }
      if (target.path !== '/v1/ws') {
        socket.end(rawErrorResponse(404, 'not-found', 'no such route'));
        return;
      }
      pushHub.upgrade(req, socket, head, clients.of(req, tls).address);
    } catch (error) {
      logger.error('upgrade failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      socket.destroy();
    }
  };

  /** TCP connections per socket address (trusted proxies carry many clients: exempt). */
  const socketsByAddress = new Map<string, number>();
  const onConnection = (socket: Socket): void => {
    metrics.tcpConnections += 1;
    socket.once('close', () => {
      metrics.tcpConnections -= 1;
    });
    const peer = socket.remoteAddress;
    if (peer === undefined || clients.isTrusted(peer.replace(/^::ffff:/, ''))) return;
    const key = addressKey(peer.replace(/^::ffff:/, ''));
    const count = (socketsByAddress.get(key) ?? 0) + 1;
    if (count > limits.maxHttpConnectionsPerClient) {
      // Plain HTTP gets a JSON answer; over TLS the handshake has not happened yet: just close.
      if (tls) socket.destroy();
      else socket.end(rawErrorResponse(503, 'too-many-connections', 'too many connections from this client'));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socketsByAddress.set(key, count);
    socket.once('close', () => {
      const left = (socketsByAddress.get(key) ?? 1) - 1;
      if (left <= 0) socketsByAddress.delete(key);
      else socketsByAddress.set(key, left);
    });
  };

  const server: Server = options.tls === undefined ? createHttpServer(onRequest) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest);
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = Math.min(limits.requestTimeoutMs, 60_000);
  server.maxConnections = limits.maxHttpConnections;
  server.on('connection', onConnection);
  server.on('upgrade', onUpgrade);
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end(rawErrorResponse(400, 'bad-request', 'malformed HTTP request'));
    else socket.destroy();
  });

  const listen = (target: Server, port: number, on: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      target.once('error', reject);
      target.listen(port, on, () => {
        target.off('error', reject);
        resolve((target.address() as AddressInfo).port);
      });
    });
  const port = await listen(server, options.port ?? 8787, host);
  const scheme = options.tls === undefined ? 'http' : 'https';
  const hostInUrl = (name: string): string => (name.includes(':') ? `[${name}]` : name);
  const url = `${scheme}://${hostInUrl(host)}:${port}`;
  if (options.tls === undefined && !isLoopbackHost(host)) {
    const banner = '!'.repeat(78);
    process.stderr.write(
      `${banner}\n!! WARNING: the relay listens on ${host} WITHOUT TLS. Signatures stop replays, but traffic,\n` +
        `!! capabilities and metadata are visible on the network. Set RELAY_TLS_CERT and RELAY_TLS_KEY,\n` +
        `!! or bind to 127.0.0.1 behind a TLS-terminating proxy.\n${banner}\n`,
    );
    logger.warn('listening beyond loopback without TLS', { host, port });
  }

  // The admin listener: /metrics and /healthz only, no rate limit, never the app or the API.
  let adminServer: Server | undefined;
  let adminUrl: string | undefined;
  if (options.admin !== undefined) {
    const admin = createHttpServer((req, res) => {
      const target = parseTarget(req.url);
      if (req.method === 'GET' && target?.path === '/metrics') {
        renderMetrics(res).catch(() => res.destroy());
        return;
      }
      if (req.method === 'GET' && target?.path === '/healthz') return sendJson(res, 200, health());
      sendJson(res, 404, { error: 'no such route', code: 'not-found' });
    });
    admin.on('clientError', (_error, socket) => socket.destroy());
    const adminHost = options.admin.host ?? '127.0.0.1';
    adminUrl = `http://${hostInUrl(adminHost)}:${await listen(admin, options.admin.port, adminHost)}`;
    adminServer = admin;
  }

  const policy = retentionPolicy(limits);
  const sweep = (): Promise<number> => store.sweep(policy, now());
  const sweepTimer = setInterval(() => {
    sweep().catch((error: unknown) => logger.error('retention sweep failed', { error: String(error) }));
  }, limits.sweepIntervalMs);
  sweepTimer.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      clearInterval(sweepTimer);
      storage.stop();
      webPush?.close();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const adminClosed = new Promise<void>((resolve) => (adminServer === undefined ? resolve() : adminServer.close(() => resolve())));
      server.closeIdleConnections();
      adminServer?.closeAllConnections();
      await pushHub.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, limits.shutdownGraceMs).unref();
        });
      }
      server.closeAllConnections();
      await Promise.all([serverClosed, adminClosed]);
      await verifier?.close();
      if (options.closeStore !== false) await store.close();
      logger.info('relay stopped', { url });
    })();
    return closing;
  };

  logger.info('relay listening', { url, store: store.name, ...(adminUrl === undefined ? {} : { adminUrl }) });
  return { url, port, adminUrl, store, limits, sweep, checkStorage: () => storage.check(), pushLookUpsDone: async () => webPush?.lookUpsDone(), close };
}
