/**
 * How the relay serves the app (issue 11 §5, issue 12 §1, issue 13 "app served without CSP"):
 * the exact Content-Security-Policy and security headers, HSTS only over TLS, content types and
 * caching of the manifest, the service worker, hashed assets and index.html; and the API's
 * cross-origin headers (channels may live on another relay).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { connectSourcesFromEnv } from '../../src/relay/static.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';

let dir: string;
let site: string;
const relays: RunningRelay[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'covey-relay-app-'));
  site = join(dir, 'dist');
  mkdirSync(join(site, 'assets'), { recursive: true });
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>covey</title>');
  writeFileSync(join(site, 'sw.js'), 'self.addEventListener("fetch", () => {});');
  writeFileSync(join(site, 'manifest.webmanifest'), '{"name":"Covey"}');
  writeFileSync(join(site, 'icon-192.png'), 'png');
  writeFileSync(join(site, 'assets', 'index-1a2b3c.js'), 'export {};');
  writeFileSync(join(site, 'assets', 'index-1a2b3c.css'), 'body{}');
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function relayWith(options: Omit<Parameters<typeof startRelay>[0], 'store'> = {}): Promise<RunningRelay> {
  const relay = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', staticDir: site, ...options });
  relays.push(relay);
  return relay;
}

/** The CSP as a map of directive → sources. */
function directives(csp: string | null): Map<string, string[]> {
  return new Map(
    (csp ?? '')
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0] !== '')
      .map(([name = '', ...sources]) => [name, sources]),
  );
}

describe('serving the app', () => {
  it('sends a strict CSP that names this relay\'s WebSocket origin and the configured relays', async () => {
    const relay = await relayWith({ connectSources: ['https://other.example', 'wss://other.example'] });
    const response = await fetch(`${relay.url}/`);
    const host = new URL(relay.url).host;
    const csp = directives(response.headers.get('content-security-policy'));
    expect(Object.fromEntries(csp)).toEqual({
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'connect-src': ["'self'", `ws://${host}`, 'https://other.example', 'wss://other.example'],
      'img-src': ["'self'", 'data:', 'blob:'],
      'font-src': ["'self'"],
      'media-src': ["'self'", 'blob:'],
      'worker-src': ["'self'"],
      'manifest-src': ["'self'"],
      'frame-ancestors': ["'none'"],
      'base-uri': ["'none'"],
      'object-src': ["'none'"],
      'form-action': ["'self'"],
    });
    const all = [...csp.values()].flat();
    expect(all).not.toContain("'unsafe-inline'");
    expect(all).not.toContain("'unsafe-eval'");
    expect(response.headers.get('permissions-policy')).toMatch(/^camera=\(self\), microphone=\(\), geolocation=\(\)/);
    expect(response.headers.get('permissions-policy')?.match(/=\(self\)/g)).toHaveLength(1);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('strict-transport-security')).toBeNull(); // no TLS here
    // The SPA fallback and every other file carry the same policy.
    for (const path of ['/chat/room', '/manifest.webmanifest', '/sw.js', '/assets/index-1a2b3c.js']) {
      expect((await fetch(`${relay.url}${path}`)).headers.get('content-security-policy')).toBe(response.headers.get('content-security-policy'));
    }
    // A Host header that is not a host never reaches the policy.
    const forged = await new Promise<string>((resolve, reject) => {
      httpGet(`${relay.url}/`, { headers: { host: "evil.example 'unsafe-inline'" } }, (res) => {
        res.resume();
        resolve(String(res.headers['content-security-policy']));
      }).on('error', reject);
    });
    expect(directives(forged).get('connect-src')).toEqual(["'self'", 'https://other.example', 'wss://other.example']);
  });

  it('serves the manifest, the service worker, hashed assets and index.html with the right types and caching', async () => {
    const relay = await relayWith();
    const cases: Array<[string, RegExp, string]> = [
      ['/', /^text\/html/, 'no-cache'],
      ['/index.html', /^text\/html/, 'no-cache'],
      ['/chat/room', /^text\/html/, 'no-cache'],
      ['/sw.js', /^text\/javascript/, 'no-cache'],
      ['/manifest.webmanifest', /^application\/manifest\+json$/, 'no-cache'],
      ['/icon-192.png', /^image\/png$/, 'no-cache'],
      ['/assets/index-1a2b3c.js', /^text\/javascript/, 'public, max-age=31536000, immutable'],
      ['/assets/index-1a2b3c.css', /^text\/css/, 'public, max-age=31536000, immutable'],
    ];
    for (const [path, type, cache] of cases) {
      const response = await fetch(`${relay.url}${path}`);
      expect({ path, status: response.status, type: response.headers.get('content-type'), cache: response.headers.get('cache-control') }).toMatchObject({
        path,
        status: 200,
        cache,
      });
      expect(response.headers.get('content-type')).toMatch(type);
    }
  });

  it('adds HSTS and a wss: connect-src over TLS', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const relay = await relayWith({ tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const options: RequestOptions = { ca: readFileSync(cert) };
      httpsGet(`${relay.url}/`, options, (res) => {
        res.resume();
        resolve(res.headers);
      }).on('error', reject);
    });
    expect(headers['strict-transport-security']).toBe('max-age=31536000');
    expect(directives(String(headers['content-security-policy'])).get('connect-src')).toEqual(["'self'", `wss://${new URL(relay.url).host}`]);
  });

  it('lets other app origins call the API (CORS), and marks API answers as never-a-page', async () => {
    const relay = await relayWith();
    const preflight = await fetch(`${relay.url}/v1/channels/AAAAAAAAAAAAAAAAAAAAAA/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.other.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'covey-fetch-token' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('covey-fetch-token');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('DELETE');
    const api = await fetch(`${relay.url}/v1/push/key`, { headers: { origin: 'https://app.other.example' } });
    expect(api.headers.get('access-control-allow-origin')).toBe('*');
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    expect(api.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'; sandbox");
  });

  it('reads RELAY_CONNECT_SRC and refuses anything that is not an origin', () => {
    expect(connectSourcesFromEnv(undefined)).toEqual([]);
    expect(connectSourcesFromEnv('https://a.example, wss://a.example:8443 https://*.relays.example')).toEqual([
      'https://a.example',
      'wss://a.example:8443',
      'https://*.relays.example',
    ]);
    for (const bad of ["'unsafe-inline'", '*', 'https://a.example/path', 'javascript:alert(1)', 'https://a.example;script-src']) {
      expect(() => connectSourcesFromEnv(bad)).toThrow(/RELAY_CONNECT_SRC/);
    }
  });
});
