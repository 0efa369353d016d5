/**
 * The one notification Covey shows (issue 12 §4): "New messages in Covey" with a count, and
 * nothing else: no name, no group, no words (the service worker could not know them anyway: it
 * holds no key). One notification, replaced as news arrives (tag), closed by the app when it
 * opens (it has read the inbox by then).
 */
import { NEWS_NOTIFICATION_TAG } from '../src/shared/service-worker-messages.js';

declare const self: ServiceWorkerGlobalScope;

export const NEWS_TITLE = 'New messages in Covey';

/** What the notification carries between wake-ups (the count since the person last looked). */
interface NewsData {
  readonly count: number;
}

/** The body for `count` new messages (0: the relay said there is news; we could not count it). */
export function newsBody(count: number): string {
  if (count <= 0) return 'Open Covey to read them.';
  return count === 1 ? '1 new message' : `${count} new messages`;
}

/**
 * Shows or updates the notification: `fresh` more messages on top of those it already counted.
 * `unknown`: the relay woke us but the fetch failed, so say there is news without a number.
 * (Only called while no tab runs the engine: an open app shows the news itself.)
 */
export async function showNews(fresh: number, options: { readonly unknown?: boolean } = {}): Promise<void> {
  const [current] = await self.registration.getNotifications({ tag: NEWS_NOTIFICATION_TAG });
  const before = (current?.data as NewsData | undefined)?.count ?? 0;
  const count = before + fresh;
  if (count === 0 && options.unknown !== true) return;
  const data: NewsData = { count };
  await self.registration.showNotification(NEWS_TITLE, {
    body: newsBody(count),
    tag: NEWS_NOTIFICATION_TAG,
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data,
  });
}

/** A click opens the app (or brings its window forward). */
export async function openApp(): Promise<void> {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const app = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (app !== undefined) {
    await app.focus();
    return;
  }
  await self.clients.openWindow('/');
}
