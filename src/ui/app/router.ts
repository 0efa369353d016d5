/**
 * Where the person is: a section (the list on the left, or the whole screen on a phone) and an
 * optional detail (the pane on the right, or a screen of its own on a phone). Kept in
 * `history.state`, never in the URL: the URL's fragment is reserved for contact and invite links
 * (issue 10 §5), and the back button (Android's too) closes a detail the way Signal's does.
 */
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import type { ContactId, ConversationId } from '../../shared/worker-api.js';

export type Section = 'chats' | 'contacts' | 'settings';

export type Detail =
  | { readonly name: 'conversation'; readonly id: ConversationId; readonly panel?: 'members' }
  | { readonly name: 'contact'; readonly id: ContactId }
  | { readonly name: 'add-contact' }
  | { readonly name: 'my-card' }
  | { readonly name: 'new-group' };

export interface Route {
  readonly section: Section;
  readonly detail: Detail | null;
}

export const HOME: Route = { section: 'chats', detail: null };

export interface Navigator {
  readonly route: Route;
  /** Opens a screen; the back button returns to the current one. */
  go(route: Route): void;
  /** Replaces the current screen (no history entry): after "create group", go to the group. */
  replace(route: Route): void;
  /** Back one screen, or home when there is no history of ours. */
  back(): void;
}

export const RouterContext = createContext<Navigator | null>(null);

export function useRouter(): Navigator {
  const router = useContext(RouterContext);
  if (router === null) throw new Error('useRouter outside <RouterContext.Provider>');
  return router;
}

const SECTIONS: ReadonlySet<string> = new Set<Section>(['chats', 'contacts', 'settings']);
const DETAILS: ReadonlySet<string> = new Set(['conversation', 'contact', 'add-contact', 'my-card', 'new-group']);

/** history.state survives reloads: check its shape rather than trust it. */
function routeFrom(state: unknown): Route | null {
  if (typeof state !== 'object' || state === null) return null;
  const { covey } = state as { covey?: unknown };
  if (typeof covey !== 'object' || covey === null) return null;
  const { section, detail, depth } = covey as { section?: unknown; detail?: unknown; depth?: unknown };
  if (typeof section !== 'string' || !SECTIONS.has(section) || typeof depth !== 'number') return null;
  if (detail === null) return { section: section as Section, detail: null };
  if (typeof detail !== 'object' || detail === null) return null;
  const name = (detail as { name?: unknown }).name;
  if (typeof name !== 'string' || !DETAILS.has(name)) return null;
  const id = (detail as { id?: unknown }).id;
  if ((name === 'conversation' || name === 'contact') && typeof id !== 'string') return null;
  return { section: section as Section, detail: detail as Detail };
}

function depthFrom(state: unknown): number {
  const covey = (state as { covey?: { depth?: unknown } } | null)?.covey;
  return typeof covey?.depth === 'number' ? covey.depth : 0;
}

export function useHistoryRouter(): Navigator {
  const [route, setRoute] = useState<Route>(() => routeFrom(history.state) ?? HOME);
  useEffect(() => {
    const onPop = (event: PopStateEvent) => setRoute(routeFrom(event.state) ?? HOME);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const go = useCallback((next: Route) => {
    history.pushState({ covey: { ...next, depth: depthFrom(history.state) + 1 } }, '');
    setRoute(next);
  }, []);
  const replace = useCallback((next: Route) => {
    history.replaceState({ covey: { ...next, depth: depthFrom(history.state) } }, '');
    setRoute(next);
  }, []);
  const back = useCallback(() => {
    if (depthFrom(history.state) > 0) history.back();
    else {
      setRoute((current) => {
        const next = current.detail !== null ? { section: current.section, detail: null } : HOME;
        history.replaceState({ covey: { ...next, depth: 0 } }, '');
        return next;
      });
    }
  }, []);
  return { route, go, replace, back };
}
