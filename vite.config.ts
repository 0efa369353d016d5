/**
 * Vite build of the app (UI thread, engine worker) and of the service worker (sw/, through
 * vite-plugin-pwa's injectManifest: our own short worker, Workbox only for precaching).
 *
 * COVEY_VERSION names the build (default: package.json's version). It is compiled into the UI and
 * the service worker; a new version changes sw.js, so installed apps see an update.
 */
import { readFileSync } from 'node:fs';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';
import { VitePWA, type ManifestOptions } from 'vite-plugin-pwa';

const packageVersion = (JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string }).version;
const version = process.env['COVEY_VERSION'] ?? packageVersion;

/**
 * Everything the app can load offline is precached: the shell, every JS chunk (the engine
 * worker and its lazy chunks included), styles, icons, the manifest. Source maps are not.
 */
const PRECACHE_GLOB_PATTERNS = ['**/*.{html,js,css,svg,png,ico,webmanifest,txt,woff2,wasm}'];
/** Workbox skips larger files with only a warning; the build fails instead (sw-precache.test.ts). */
const MAX_PRECACHED_FILE_BYTES = 4 * 1024 * 1024;

/** Brand navy: the toolbar and splash colour; the icons are drawn on it (public/icons/README.md). */
const BRAND_COLOUR = '#1d3b53';

/** The web app manifest (issue 12 §1): what a browser needs to install Covey. */
const webAppManifest = {
  id: '/',
  name: 'Covey',
  short_name: 'Covey',
  description: 'End-to-end encrypted group chat that keeps working offline.',
  lang: 'en',
  dir: 'ltr',
  start_url: '/',
  scope: '/',
  display: 'standalone',
  theme_color: BRAND_COLOUR,
  background_color: BRAND_COLOUR,
  categories: ['social', 'communication'],
  icons: [
    { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
    { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
    { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
} satisfies Partial<ManifestOptions>;

export default defineConfig({
  define: { __COVEY_VERSION__: JSON.stringify(version) },
  plugins: [
    preact(),
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'sw',
      filename: 'sw.ts',
      // src/ui/shell registers the worker itself (workbox-window), with the update prompt.
      injectRegister: false,
      manifest: webAppManifest,
      // PRECACHE_GLOB_PATTERNS already take public/ (icons included): listing them again duplicates entries.
      includeManifestIcons: false,
      injectManifest: {
        // A classic (not module) worker: every engine we promise runs it, and it loads no imports.
        rollupFormat: 'iife',
        globPatterns: PRECACHE_GLOB_PATTERNS,
        maximumFileSizeToCacheInBytes: MAX_PRECACHED_FILE_BYTES,
      },
      devOptions: { enabled: false },
    }),
  ],
  // manifest: .vite/manifest.json maps each chunk to its static imports (scripts/size.ts reads it).
  build: { target: 'es2022', sourcemap: true, manifest: true },
  worker: { format: 'es' },
});
