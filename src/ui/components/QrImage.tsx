import type { JSX } from 'preact';
import type { QrCode } from '../../shared/worker-api.js';

/** ISO/IEC 18004 asks for four light modules around the code. */
const QUIET_ZONE_MODULES = 4;

/**
 * A QR code from the worker's module grid, drawn as one SVG path: no HTML from anywhere, no image
 * URL. Always dark on light, also in dark mode: scanners expect it.
 */
export function QrImage({ qr, label }: { qr: QrCode; label: string }): JSX.Element {
  let d = '';
  qr.rows.forEach((row, y) => {
    let x = 0;
    while (x < row.length) {
      if (!row[x]) {
        x++;
        continue;
      }
      const start = x;
      while (x < row.length && row[x]) x++;
      d += `M${start + QUIET_ZONE_MODULES} ${y + QUIET_ZONE_MODULES}h${x - start}v1h${start - x}z`;
    }
  });
  const side = qr.size + 2 * QUIET_ZONE_MODULES;
  return (
    <svg class="qr" viewBox={`0 0 ${side} ${side}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={side} height={side} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
