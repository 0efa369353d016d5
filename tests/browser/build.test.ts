/**
 * The production build the browsers run (global-setup.ts), checked as files and as the relay
 * serves them: the precache covers every asset, the manifest and icons are what browsers need to
 * install Covey, index.html has nothing a strict CSP would block, and the initial JavaScript is
 * within its budget.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { INITIAL_JS_TARGET_GZIP_BYTES, initialJavaScript } from '../../scripts/size.js';
import { startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun } from './harness/engines.js';

const appDir = browserRun().appDir;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((path) => statSync(join(dir, path)).isFile())
    .map((path) => relative(dir, join(dir, path)).split('\\').join('/'));
}

/** Width and height from a PNG's IHDR chunk (PNG spec §11.2.2). */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(bytes.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

interface ManifestIcon {
  src: string;
  sizes: string;
  type: string;
  purpose?: string;
}

describe('production build', () => {
  test('the service worker precaches every asset the app can load, and no source maps', () => {
    const sw = readFileSync(join(appDir, 'sw.js'), 'utf8');
    const precached = new Set([...sw.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]));
    const assets = filesUnder(appDir).filter((f) => /\.(html|js|css|svg|png|ico|webmanifest|txt)$/.test(f) && f !== 'sw.js' && !f.startsWith('.vite/'));
    expect(assets).toEqual(expect.arrayContaining(['index.html', 'manifest.webmanifest', 'robots.txt', 'favicon.ico']));
    expect(assets.filter((a) => a.endsWith('.js')).length).toBeGreaterThan(0);
    for (const asset of assets) expect(precached, asset).toContain(asset);
    for (const url of precached) expect(url).not.toMatch(/\.map$/);
  });

  test('the web app manifest has what installing needs, with real icons of the stated sizes', () => {
    const manifest = JSON.parse(readFileSync(join(appDir, 'manifest.webmanifest'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ id: '/', name: 'Covey', short_name: 'Covey', start_url: '/', scope: '/', display: 'standalone' });
    expect(manifest['description']).toEqual(expect.any(String));
    expect(manifest['theme_color']).toMatch(/^#[0-9a-f]{6}$/);
    expect(manifest['background_color']).toMatch(/^#[0-9a-f]{6}$/);
    const icons = manifest['icons'] as ManifestIcon[];
    const bySizeAndPurpose = icons.map((i) => `${i.sizes} ${i.purpose ?? 'any'}`);
    expect(bySizeAndPurpose).toEqual(expect.arrayContaining(['192x192 any', '512x512 any', '512x512 maskable']));
    for (const icon of icons) {
      expect(icon.type).toBe('image/png');
      const [width, height] = icon.sizes.split('x').map(Number);
      expect(pngSize(readFileSync(join(appDir, icon.src)))).toEqual({ width, height });
    }
    expect(pngSize(readFileSync(join(appDir, 'icons', 'apple-touch-icon.png')))).toEqual({ width: 180, height: 180 });
  });

  test('index.html: no inline script or style (strict CSP), and the install and theme metadata', () => {
    const html = readFileSync(join(appDir, 'index.html'), 'utf8');
    for (const script of html.match(/<script\b[^>]*>/g) ?? []) expect(script).toMatch(/\bsrc="\/assets\//);
    expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/); // no inline script body
    expect(html).not.toMatch(/\sstyle\s*=/);
    expect(html).not.toMatch(/<style\b/);
    expect(html).not.toMatch(/\son[a-z]+\s*=/); // no inline event handlers
    expect(html).toMatch(/<meta name="theme-color" content="#[0-9a-f]{6}" media="\(prefers-color-scheme: light\)"/);
    expect(html).toMatch(/<meta name="theme-color" content="#[0-9a-f]{6}" media="\(prefers-color-scheme: dark\)"/);
    expect(html).toContain('<link rel="apple-touch-icon" href="/icons/apple-touch-icon.png"');
    expect(html).toContain('<meta name="apple-mobile-web-app-capable" content="yes"');
    expect(html).toContain('<meta name="apple-mobile-web-app-title" content="Covey"');
    expect(html).toContain('<link rel="manifest" href="/manifest.webmanifest"');
  });

  test(`initial JavaScript is at most ${INITIAL_JS_TARGET_GZIP_BYTES / 1024} KiB gzipped (scripts/size.ts)`, () => {
    const report = initialJavaScript(appDir);
    expect(report.chunks.length).toBeGreaterThan(0);
    expect(report.gzipBytes).toBeLessThanOrEqual(INITIAL_JS_TARGET_GZIP_BYTES);
  });
});

describe('served by the relay', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: appDir });
  });
  afterAll(async () => {
    await relay?.dispose();
  });

  test.each([
    ['/manifest.webmanifest', 'application/manifest+json'],
    ['/sw.js', 'text/javascript; charset=utf-8'],
    ['/icons/icon-192.png', 'image/png'],
    ['/robots.txt', 'text/plain; charset=utf-8'],
    ['/favicon.ico', 'image/x-icon'],
  ])('%s as %s', async (path, contentType) => {
    const response = await fetch(`${relay.url}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(contentType);
  });

  test('the service worker script and the shell are revalidated, so updates reach installed apps', async () => {
    for (const path of ['/sw.js', '/', '/manifest.webmanifest']) {
      expect((await fetch(`${relay.url}${path}`)).headers.get('cache-control'), path).toBe('no-cache');
    }
  });

  test('robots.txt keeps search engines out', async () => {
    expect(await (await fetch(`${relay.url}/robots.txt`)).text()).toMatch(/User-agent: \*\s+Disallow: \//);
  });
});
