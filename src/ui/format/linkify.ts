/**
 * Message text → plain-text and link segments (issue 11 §5). Only http(s) URLs become links;
 * everything else, HTML included, stays text that Preact puts in text nodes. The DOM never sees
 * peer HTML: there is no innerHTML anywhere in the UI.
 */
export type TextSegment = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'link'; readonly text: string; readonly href: string };

/** Long enough for any real link; a longer "URL" is shown as text. */
const MAX_LINK_CHARS = 2_048;
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
/** Sentence punctuation after a link is not part of it ("see https://x.org."). */
const TRAILING = /[.,;:!?'")\]}]+$/;

function trimTrailing(candidate: string): string {
  let url = candidate.replace(TRAILING, '');
  // Keep a closing parenthesis that closes one inside the URL (Wikipedia links).
  const rest = candidate.slice(url.length);
  if (rest.startsWith(')') && (url.match(/\(/g)?.length ?? 0) > (url.match(/\)/g)?.length ?? 0)) url += ')';
  return url;
}

function safeHref(text: string): string | null {
  if (text.length > MAX_LINK_CHARS) return null;
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

export function linkify(text: string): TextSegment[] {
  const segments: TextSegment[] = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const start = match.index;
    const candidate = trimTrailing(match[0]);
    const href = safeHref(candidate);
    if (href === null) continue;
    if (start > last) segments.push({ kind: 'text', text: text.slice(last, start) });
    segments.push({ kind: 'link', text: candidate, href });
    last = start + candidate.length;
  }
  if (last < text.length) segments.push({ kind: 'text', text: text.slice(last) });
  return segments;
}
