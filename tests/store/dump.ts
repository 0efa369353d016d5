/**
 * "A raw dump holds no message text, display name or group name" (issue 10 "Tests"): every value
 * of every store, with byte arrays read as UTF-8 and Latin-1, searched for each needle as text (a
 * short one as a word on its own), base64 and base64url (at every alignment) and hex.
 */
function forms(needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  const out = new Set<string>([bytes.toString('hex')]);
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

/**
 * A needle shorter than this counts only as a word on its own. Base64 text and ciphertext read as
 * Latin-1 hold any short string by chance: 'Bob' turns up once per 262,144 characters of base64,
 * so an exported backup held it now and then (a scenario test failed so). A name that leaks stands between
 * separators anyway (a JSON string, a field of its own, "Bob joined", "Bob's"); inside base64 it
 * never does, and inside random bytes it needs a separator on both sides (about 1 in 170 more).
 */
const WHOLE_WORD_BELOW = 8;
const SEPARATOR = String.raw`[\s\u0000"'\x60.,:;!?()[\]{}<>]`;

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function found(needle: string, haystack: string): boolean {
  if (needle.length >= WHOLE_WORD_BELOW) return haystack.includes(needle);
  return new RegExp(`(?:^|${SEPARATOR})${escape(needle)}(?:$|${SEPARATOR})`, 'u').test(haystack);
}

/** The needles found anywhere in the dump (empty when it is clean). */
export function plaintextIn(dump: unknown, needles: readonly string[]): string[] {
  const texts: string[] = [];
  flatten(dump, texts);
  const haystack = texts.join('\u0000');
  // The encoded forms are 6 characters or more of base64 or hex: chance matches are negligible.
  return needles.filter((n) => found(n, haystack) || forms(n).some((f) => haystack.includes(f)));
}
