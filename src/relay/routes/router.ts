/** The API route table: method + path pattern → handler, and per-route body limits. */
import type { Reply, RequestContext } from '../http/context.js';
import type { RelayLimits } from '../limits.js';
import { createUpload, finalizeUpload, putChunk, readBlob, uploadStatus } from './blobs.js';
import {
  ackCursor,
  channelInfo,
  createCapability,
  createChannel,
  deposit,
  join,
  postDeferredPacket,
  postPacket,
  readEvents,
  removeMember,
  revokeCapability,
} from './channels.js';
import { createFetchToken, revokeFetchTokens } from './fetch-tokens.js';
import { RELAY_AUTH_KEY_PATH } from '../../shared/relay-mac.js';
import { authKey } from './auth-key.js';
import { registerPush, unregisterPush, vapidKey } from './push.js';

type Handler = (ctx: RequestContext, ...params: string[]) => Promise<Reply>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  /** Path template for logs and metrics (never the token or id). */
  readonly name: string;
  readonly handler: Handler;
  /** Which body limit applies. */
  readonly body: 'json' | 'chunk' | 'none';
}

const SEGMENT = '([^/]+)';
const route = (method: string, path: string, handler: Handler, body: Route['body'] = 'json'): Route => ({
  method,
  name: path,
  pattern: new RegExp(`^${path.replace(/:[a-z]+/g, SEGMENT)}$`),
  handler,
  body,
});

/**
 * Tried in order, so the post, a busy relay's most frequent request, comes first (no two patterns
 * match the same path with the same method, so the order changes nothing else).
 */
export const ROUTES: readonly Route[] = [
  route('POST', '/v1/channels/:id/events', postPacket),
  route('POST', '/v1/channels', createChannel),
  route('GET', '/v1/channels/:id', channelInfo, 'none'),
  route('POST', '/v1/channels/:id/capabilities', createCapability),
  route('POST', '/v1/channels/:id/capabilities/revoke', revokeCapability),
  route('POST', '/v1/channels/:id/join', join),
  route('DELETE', '/v1/channels/:id/members/:key', removeMember, 'none'),
  route('GET', '/v1/channels/:id/events', readEvents, 'none'),
  route('POST', '/v1/channels/:id/deferred-events', postDeferredPacket),
  route('PUT', '/v1/channels/:id/cursor', ackCursor),
  route('POST', '/v1/channels/:id/deposit', deposit),
  route('POST', '/v1/channels/:id/uploads', createUpload),
  route('GET', '/v1/uploads/:upload', uploadStatus, 'none'),
  route('PUT', '/v1/uploads/:upload', putChunk, 'chunk'),
  route('POST', '/v1/uploads/:upload/finalize', finalizeUpload, 'none'),
  route('GET', '/v1/blobs/:hash', readBlob, 'none'),
  route('POST', '/v1/channels/:id/fetch-tokens', createFetchToken),
  route('POST', '/v1/channels/:id/fetch-tokens/revoke', revokeFetchTokens),
  route('GET', '/v1/push/key', vapidKey, 'none'),
  route('GET', RELAY_AUTH_KEY_PATH, authKey, 'none'),
  route('PUT', '/v1/channels/:id/push', registerPush),
  route('DELETE', '/v1/channels/:id/push', unregisterPush, 'none'),
];

export type RouteMatch =
  | { readonly kind: 'route'; readonly route: Route; readonly params: string[] }
  | { readonly kind: 'wrong-method'; readonly name: string }
  | { readonly kind: 'none' };

export function matchRoute(method: string, path: string): RouteMatch {
  let wrongMethod: string | undefined;
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (match === null) continue;
    if (candidate.method === method) return { kind: 'route', route: candidate, params: match.slice(1) };
    wrongMethod = candidate.name;
  }
  return wrongMethod === undefined ? { kind: 'none' } : { kind: 'wrong-method', name: wrongMethod };
}

/** Body limit of a route: small JSON for most, one chunk for blob PUTs; 'none' still allows tiny junk to be refused. */
export function bodyLimit(routeBody: Route['body'], limits: RelayLimits): number {
  if (routeBody === 'chunk') return limits.maxBlobChunkBytes;
  if (routeBody === 'json') return limits.maxJsonBodyBytes;
  return 1024;
}
