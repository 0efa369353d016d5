/**
 * `npm run icons`: renders Covey's icons from design/covey-mark.svg through headless Chromium
 * (the system one, as in the browser tests), so the PNGs in public/ are reproducible. Run it after
 * changing the mark; commit the SVG and the PNGs together.
 *
 * - icons/icon-{192,512}.png: purpose "any", the mark on a rounded navy square, transparent corners;
 * - icons/maskable-512.png: full-bleed navy, the mark inside the central 80% safe zone (W3C
 *   manifest "maskable" icons: platforms cut any shape out of that circle);
 * - icons/apple-touch-icon.png: 180 px, opaque (iOS fills transparency with black), iOS rounds it;
 * - favicon.svg and favicon.ico (a 32 px PNG in an ICO container, for browsers that ask for it).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BRAND_COLOUR = '#1d3b53';
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** The mark's drawing (without its <svg> wrapper), on a 512 grid. */
const markBody = readFileSync(join(root, 'design/covey-mark.svg'), 'utf8')
  .replace(/^[\s\S]*?<svg[^>]*>/, '')
  .replace(/<\/svg>\s*$/, '')
  .replace(/<!--[\s\S]*?-->/g, '')
  .trim();

/** The mark's bounding box is x 96..416, y 112..432: centre it at (256, 256), then scale. */
function icon(options: { readonly cornerRadius: number; readonly markScale: number }): string {
  const { cornerRadius, markScale } = options;
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" width="512" height="512">',
    `<rect width="512" height="512" rx="${cornerRadius}" fill="${BRAND_COLOUR}"/>`,
    `<g transform="translate(256 256) scale(${markScale}) translate(-256 -272)">${markBody}</g>`,
    '</svg>',
  ].join('');
}

const anyIcon = icon({ cornerRadius: 112, markScale: 1 });
// Safe zone: a circle of radius 0.4 × 512 = 204.8; the mark's farthest point (the bubble's
// corners, ~200 from the centre at scale 1) must stay inside after scaling.
const maskableIcon = icon({ cornerRadius: 0, markScale: 0.8 });
const appleIcon = icon({ cornerRadius: 0, markScale: 0.9 });

async function main(): Promise<void> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage();
    const render = async (svg: string, sizePx: number): Promise<Buffer> => {
      await page.setViewportSize({ width: sizePx, height: sizePx });
      const data = Buffer.from(svg).toString('base64');
      await page.setContent(`<!doctype html><html><body style="margin:0"><img alt="" width="${sizePx}" height="${sizePx}" src="data:image/svg+xml;base64,${data}"></body></html>`);
      await page.locator('img').evaluate((img: HTMLImageElement) => img.decode());
      return page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: sizePx, height: sizePx } });
    };
    const out = (path: string, bytes: Buffer | string): void => {
      const full = join(root, 'public', path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, bytes);
      console.log(`public/${path}: ${bytes.length} bytes`);
    };
    out('icons/icon-192.png', await render(anyIcon, 192));
    out('icons/icon-512.png', await render(anyIcon, 512));
    out('icons/maskable-512.png', await render(maskableIcon, 512));
    out('icons/apple-touch-icon.png', await render(appleIcon, 180));
    out('favicon.svg', anyIcon + '\n');
    out('favicon.ico', icoOf(await render(anyIcon, 32), 32));
  } finally {
    await browser.close();
  }
}

/** An ICO file holding one PNG image (allowed since Windows Vista; every browser reads it). */
function icoOf(png: Buffer, sizePx: number): Buffer {
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(sizePx, 6);
  header.writeUInt8(sizePx, 7);
  header.writeUInt8(0, 8); // no palette
  header.writeUInt8(0, 9);
  header.writeUInt16LE(1, 10); // colour planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(png.length, 14);
  header.writeUInt32LE(header.length, 18); // image data offset
  return Buffer.concat([header, png]);
}

await main();
