/**
 * Contact and invite links arrive in the URL fragment (`#c=…`, `#i=…`, issue 10 §5), which no
 * server sees. The UI hands the whole link to the worker (`previewLink`) and never parses the card.
 */
export type LinkKind = 'contact' | 'invite';

export function linkKindOf(fragment: string): LinkKind | null {
  if (fragment.startsWith('#c=')) return 'contact';
  if (fragment.startsWith('#i=')) return 'invite';
  return null;
}

/** The link this page was opened with, if any. */
export function pendingLinkKind(): LinkKind | null {
  return linkKindOf(location.hash);
}

/** Forget the link from the address bar (and from history) once handled. */
export function clearLinkFromUrl(): void {
  if (location.hash === '') return;
  history.replaceState(history.state, '', location.pathname + location.search);
}
