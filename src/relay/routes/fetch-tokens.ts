/**
 * Read-only fetch tokens (issue 12 §4): a member makes one for itself in one channel and hands it
 * to its service worker, which holds no keys. The token only reads that channel's events as that
 * member (routes/common.ts `reader`); it dies when it expires, when the member revokes it, and
 * when the member leaves or is removed (the store deletes it and checks the membership it was
 * bound to on every use). Stored as SHA-256 only.
 */
import type { CreateFetchTokenResponse, RevokeFetchTokensResponse } from '../../shared/relay-api.js';
import type { Reply, RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { parseJsonObject } from '../http/io.js';
import { hashToken, newToken, parseToken } from '../ids.js';
import { channelParam, intField, member } from './common.js';

export async function createFetchToken(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const { limits, store } = ctx.deps;
  const ttlMs = intField(body, 'ttlMs', 1, limits.maxFetchTokenTtlMs);
  const token = newToken();
  const expiresAtMs = ctx.nowMs + ttlMs;
  const result = await store.putFetchToken(
    { hash: hashToken(token), channelId, member: key, expiresAtMs },
    limits.maxFetchTokensPerMember,
    ctx.nowMs,
  );
  // The member left between the check above and the write.
  if (!result.ok) throw new RelayError('forbidden', 'not a member of this channel');
  const response: CreateFetchTokenResponse = { token, expiresAtMs };
  return { status: 201, json: response };
}

export async function revokeFetchTokens(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  let hash;
  if (body['token'] !== undefined) {
    const token = parseToken(body['token']);
    if (token === undefined) throw new RelayError('bad-request', 'token must be a fetch token (43 base64url characters)');
    hash = hashToken(token);
  }
  const response: RevokeFetchTokensResponse = { revoked: await ctx.deps.store.revokeFetchTokens(channelId, key, hash) };
  return { status: 200, json: response };
}
