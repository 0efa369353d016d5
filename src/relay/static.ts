/**
 * Serves the built app (./dist) from the relay's own origin (issue 5 §10), with the SPA fallback:
 * an unknown path without a file extension gets index.html. Only GET/HEAD; never outside the root.
 *
 * Every app response carries the security headers of issue 11 §5 / issue 13: a strict
 * Content-Security-Policy (scripts and styles from this origin only, no inline code, no eval;
 * connections only to this relay, its WebSocket origin, and the relays an operator lists),
 * HSTS over TLS, a Permissions-Policy that allows the camera (QR scanning) and nothing else,
 * no sniffing, no referrer, no framing. Caching: the service worker script and index.html are
 * revalidated on every load (an update must be seen), hashed build assets are immutable.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Vite puts content-hashed build output here: a changed file gets a new name. */
const HASHED_ASSETS_PREFIX = '/assets/';
/** The service worker script: at the root so its scope is the whole app. */
const SERVICE_WORKER_PATHS = new Set(['/sw.js']);
/** HSTS lifetime: one year (the usual value; a shorter one gains nothing once TLS is set up). */
const HSTS_MAX_AGE_S = 365 * 24 * 60 * 60;

/** Camera for QR scanning (same origin only); every other powerful feature off. */
export const PERMISSIONS_POLICY = [
  'camera=(self)',
  'microphone=()',
  'geolocation=()',
  'display-capture=()',
  'payment=()',
  'usb=()',
  'midi=()',
  'accelerometer=()',
  'gyroscope=()',
  'magnetometer=()',
  'xr-spatial-tracking=()',
].join(', ');

/** A Host header we can put into a CSP source: host name or IP literal, optional port. */
const HOST_PATTERN = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;
/** What RELAY_CONNECT_SRC may list: http(s)/ws(s) origins (no paths, no quotes, no wildcards but a leading `*.`). */
const CONNECT_SOURCE_PATTERN = /^(?:https?|wss?):\/\/(?:\*\.)?[A-Za-z0-9.-]+(?::\d{1,5})?$/;

export interface AppRequest {
  /** The request's Host header (the origin the browser loaded the app from). */
  readonly host: string | undefined;
  /** True when the browser reached us over TLS (directly, or via a trusted proxy that says so). */
  readonly secure: boolean;
}

/** Parses RELAY_CONNECT_SRC (comma- or space-separated origins of other relays); throws on anything else. */
export function connectSourcesFromEnv(text: string | undefined): readonly string[] {
  if (text === undefined || text.trim() === '') return [];
  const sources = text.split(/[\s,]+/).filter((part) => part !== '');
  for (const source of sources) {
    if (!CONNECT_SOURCE_PATTERN.test(source)) throw new Error(`RELAY_CONNECT_SRC: ${source} is not an http(s)/ws(s) origin`);
  }
  return sources;
}

/**
 * The app's Content-Security-Policy. connect-src names this relay's WebSocket origin explicitly:
 * older Safari does not let 'self' cover ws:/wss:.
 */
export function appContentSecurityPolicy(request: AppRequest, connectSources: readonly string[]): string {
  const connect = ["'self'"];
  if (request.host !== undefined && HOST_PATTERN.test(request.host)) connect.push(`${request.secure ? 'wss' : 'ws'}://${request.host}`);
  connect.push(...connectSources);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "media-src 'self' blob:",
    "worker-src 'self'",
    "manifest-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
    "form-action 'self'",
  ].join('; ');
}

/** Headers of every app response. */
export function appSecurityHeaders(request: AppRequest, connectSources: readonly string[]): Record<string, string> {
  return {
    'content-security-policy': appContentSecurityPolicy(request, connectSources),
    'permissions-policy': PERMISSIONS_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    ...(request.secure ? { 'strict-transport-security': `max-age=${HSTS_MAX_AGE_S}` } : {}),
  };
}

/** Cache-Control for a served file: see the module comment. */
export function cacheControlFor(path: string, file: string): string {
  if (file.endsWith('.html') || SERVICE_WORKER_PATHS.has(path)) return 'no-cache';
  if (path.startsWith(HASHED_ASSETS_PREFIX)) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

export interface StaticSite {
  /** Serves `path` if it is a file (or the SPA fallback applies); false when nothing matched. */
  serve(path: string, method: string, res: ServerResponse, request: AppRequest): boolean;
}

export function staticSite(dir: string, connectSources: readonly string[] = []): StaticSite | undefined {
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) return undefined;
  const fileAt = (path: string): string | undefined => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0')) return undefined;
    const full = resolve(root, normalize(`.${sep}${decoded}`));
    if (full !== root && !full.startsWith(root + sep)) return undefined;
    try {
      return statSync(full).isFile() ? full : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    serve(path, method, res, request) {
      if (method !== 'GET' && method !== 'HEAD') return false;
      let file = fileAt(path === '/' ? '/index.html' : path);
      if (file === undefined && extname(path) === '') file = join(root, 'index.html');
      if (file === undefined) return false;
      res.writeHead(200, {
        ...appSecurityHeaders(request, connectSources),
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': String(statSync(file).size),
        'cache-control': cacheControlFor(path, file),
      });
      if (method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return true;
    },
  };
}
