/**
 * GET /v1/auth-key (RELAY_AUTH_KEY_PATH): the relay auth key, the X25519 public key members'
 * request MACs are made with (src/shared/relay-mac.ts, ../mac-keys.ts). Unauthenticated: a
 * client needs it before its first MAC'd request.
 */
import type { RelayAuthKeyResponse } from '../../shared/relay-mac.js';
import type { Reply, RequestContext } from '../http/context.js';
import { noBody } from './common.js';

/**
 * How long a client or cache may keep the answer. The key changes only when the relay's stored
 * secret does (a new store), and a client whose MACs are then refused fetches it again; an hour
 * bounds how long a shared cache could serve the old one after that.
 */
const AUTH_KEY_MAX_AGE_S = 3600;

export async function authKey(ctx: RequestContext): Promise<Reply> {
  noBody(ctx);
  const response: RelayAuthKeyResponse = { key: ctx.deps.macs.publicKey };
  return { status: 200, json: response, headers: { 'cache-control': `public, max-age=${AUTH_KEY_MAX_AGE_S}` } };
}
