/**
 * "A raw dump holds no message text, display name or group name" (issue 10 "Tests"): every value
 * of every store, with byte arrays read as UTF-8 and Latin-1, searched for each needle as text,
 * base64 and base64url (at every alignment) and hex.
 */
function forms(needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  const out = new Set<string>([needle, bytes.toString('hex')]);
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
    // Skip the characters that depend on the unknown bytes before the needle.
    const skip = shift === 0 ? 0 : Math.ceil((shift * 4) / 3);
    for (const text of [padded.toString('base64'), padded.toString('base64url')]) {
      const core = text.replace(/=+$/, '').slice(skip, -2);
      if (core.length >= 6) out.add(core);
    }
  }
  return [...out];
}

function flatten(value: unknown, out: string[], depth = 0): void {
  if (depth > 50) return;
  if (value instanceof Uint8Array || ArrayBuffer.isView(value)) {
    const b = Buffer.from((value as Uint8Array).buffer, (value as Uint8Array).byteOffset, (value as Uint8Array).byteLength);
    out.push(b.toString('utf8'), b.toString('latin1'));
  } else if (value instanceof ArrayBuffer) flatten(new Uint8Array(value), out, depth + 1);
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) flatten(v, out, depth + 1);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      flatten(v, out, depth + 1);
    }
  } else out.push(String(value));
}

/** The needles found anywhere in the dump (empty when it is clean). */
export function plaintextIn(dump: unknown, needles: readonly string[]): string[] {
  const texts: string[] = [];
  flatten(dump, texts);
  const haystack = texts.join('\u0000');
  return needles.filter((n) => forms(n).some((f) => haystack.includes(f)));
}
