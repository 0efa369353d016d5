/**
 * Serves the built app (./dist) from the relay's own origin (issue 5 §10), with the SPA fallback:
 * an unknown path without a file extension gets index.html. Only GET/HEAD; never outside the root.
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
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Security headers for the app shell: no framing, no sniffing, same-origin scripts. */
const APP_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export interface StaticSite {
  /** Serves `path` if it is a file (or the SPA fallback applies); false when nothing matched. */
  serve(path: string, method: string, res: ServerResponse): boolean;
}

export function staticSite(dir: string): StaticSite | undefined {
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
    serve(path, method, res) {
      if (method !== 'GET' && method !== 'HEAD') return false;
      let file = fileAt(path === '/' ? '/index.html' : path);
      if (file === undefined && extname(path) === '') file = join(root, 'index.html');
      if (file === undefined) return false;
      const isHtml = file.endsWith('.html');
      // Hashed build assets never change; the shell and the service worker must be revalidated.
      const cache = path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
      res.writeHead(200, {
        ...APP_HEADERS,
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': String(statSync(file).size),
        'cache-control': isHtml ? 'no-cache' : cache,
      });
      if (method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return true;
    },
  };
}
