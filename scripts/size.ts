/**
 * `npm run size`: the gzipped size of the initial JavaScript (issue 11 §6, issue 12 benchmark):
 * the entry chunk of index.html plus every chunk it imports statically, transitively. Lazy chunks
 * (dynamic imports) and the engine's worker bundle are not initial: the first render does not
 * wait for them. Prints a table and one JSON line; exits 1 above the target.
 *
 * Reusable: `initialJavaScript(distDir)` (tests/browser/build.test.ts, bench:catchup).
 * Usage: tsx scripts/size.ts [distDir=dist]   (`npm run size` builds first)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Issue 11 §6: "initial JavaScript ≤ 60 KB gzipped" (KB = 1024 bytes). */
export const INITIAL_JS_TARGET_GZIP_BYTES = 60 * 1024;
/** zlib's default level: what a web server compresses with unless tuned (level 9 saves ~1%). */
const GZIP_LEVEL = 6;

interface ViteManifestChunk {
  readonly file: string;
  readonly isEntry?: boolean;
  readonly imports?: readonly string[];
  readonly dynamicImports?: readonly string[];
}

export interface ChunkSize {
  readonly file: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

export interface InitialJavaScript {
  readonly chunks: readonly ChunkSize[];
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** Reads `<distDir>/.vite/manifest.json` (vite.config.ts sets build.manifest). */
export function initialJavaScript(distDir: string): InitialJavaScript {
  const manifest = JSON.parse(readFileSync(join(distDir, '.vite', 'manifest.json'), 'utf8')) as Record<string, ViteManifestChunk>;
  const entry = manifest['index.html'];
  if (entry?.isEntry !== true) throw new Error(`${distDir}: the Vite manifest has no index.html entry (was it built with build.manifest?)`);
  const html = readFileSync(join(distDir, 'index.html'), 'utf8');
  if (!html.includes(`src="/${entry.file}"`)) throw new Error(`${distDir}/index.html does not load the manifest's entry ${entry.file}`);
  const seen = new Set<string>();
  const visit = (key: string): void => {
    if (seen.has(key)) return;
    const chunk = manifest[key];
    if (chunk === undefined) throw new Error(`Vite manifest: unknown import ${key}`);
    seen.add(key);
    for (const imported of chunk.imports ?? []) visit(imported);
  };
  visit('index.html');
  const chunks = [...seen].map((key) => {
    const file = (manifest[key] as ViteManifestChunk).file;
    const bytes = readFileSync(join(distDir, file));
    return { file, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: GZIP_LEVEL }).length };
  });
  return {
    chunks,
    bytes: chunks.reduce((sum, c) => sum + c.bytes, 0),
    gzipBytes: chunks.reduce((sum, c) => sum + c.gzipBytes, 0),
  };
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function main(): void {
  const distDir = resolve(process.argv[2] ?? 'dist');
  const report = initialJavaScript(distDir);
  const rows = [...report.chunks.map((c) => [c.file, kib(c.bytes), kib(c.gzipBytes)]), ['total (initial JS)', kib(report.bytes), kib(report.gzipBytes)]];
  const width = Math.max(...rows.map((r) => r[0]?.length ?? 0));
  console.log(`${'chunk'.padEnd(width)}  ${'raw'.padStart(10)}  ${'gzip'.padStart(10)}`);
  for (const [file, raw, gz] of rows) console.log(`${(file ?? '').padEnd(width)}  ${(raw ?? '').padStart(10)}  ${(gz ?? '').padStart(10)}`);
  const withinTarget = report.gzipBytes <= INITIAL_JS_TARGET_GZIP_BYTES;
  console.log(`target ≤ ${kib(INITIAL_JS_TARGET_GZIP_BYTES)} gzipped: ${withinTarget ? 'met' : 'MISSED'}`);
  console.log(JSON.stringify({ metric: 'initial-js', gzipBytes: report.gzipBytes, bytes: report.bytes, targetGzipBytes: INITIAL_JS_TARGET_GZIP_BYTES, withinTarget, chunks: report.chunks }));
  if (!withinTarget) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
