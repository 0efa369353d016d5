/**
 * QR codes of links (issue 10 §5), made with `qr` (by the author of noble). The UI draws the
 * module matrix itself (or uses the SVG text), so no image URL or HTML is needed. Reading codes is
 * the UI's camera job; the scanned text goes to `previewLink` / `addContact` like a pasted link.
 */
import encodeQR from 'qr';
import type { QrCode } from '../shared/worker-api.js';

export function makeQr(text: string): QrCode {
  // `qr` insists on a quiet zone of at least one module: cut it off (the UI draws its own margin).
  const rows = encodeQR(text, 'raw', { ecc: 'medium', border: 1 })
    .slice(1, -1)
    .map((row) => row.slice(1, -1));
  const svg = encodeQR(text, 'svg', { ecc: 'medium', border: 2 });
  return { size: rows.length, rows, svg };
}
