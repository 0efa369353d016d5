/** Shared steps of route handlers: signature or MAC auth, membership, field validation. */
import type { ChannelId, MemberInfo, MemberKey } from '../../shared/relay-api.js';
import { RELAY_HEADERS } from '../../shared/relay-api.js';
import { authenticate, verifySigned } from '../auth.js';
import type { RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { hashToken, isCanonicalBase64Url, parseChannelId, parseToken } from '../ids.js';
import type { ChannelRecord, NonceUse } from '../store/types.js';

const POST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.headers[name];
  return Array.isArray(value) ? undefined : value;
}

function signedParts(ctx: RequestContext): Parameters<typeof authenticate>[0] {
  return {
    key: header(ctx, RELAY_HEADERS.key),
    nonce: header(ctx, RELAY_HEADERS.nonce),
    time: header(ctx, RELAY_HEADERS.time),
    signature: header(ctx, RELAY_HEADERS.signature),
    mac: header(ctx, RELAY_HEADERS.mac),
  };
}

/**
 * Verifies the request signature or MAC and nonce (auth.ts); returns the signer's key. `channelId`: the
 * channel the request is about, whose store shard keeps the nonce (so the request depends only on
 * that channel's Redis node).
 */
export function signer(ctx: RequestContext, channelId?: ChannelId): Promise<MemberKey> {
  return authenticate(signedParts(ctx), ctx.method, ctx.pathWithQuery, ctx.body, {
    store: ctx.deps.store,
    nowMs: ctx.nowMs,
    maxClockSkewMs: ctx.deps.limits.maxClockSkewMs,
    verifier: ctx.deps.verifier,
    macs: ctx.deps.macs,
    proofs: ctx.deps.metrics,
    ...(channelId === undefined ? {} : { channelId }),
  });
}

/**
 * Verifies the request signature or MAC and time, leaving its nonce for the caller to record in its own
 * store step (a post: one round trip to Redis instead of two). `maxAgeMs` widens the window into
 * the past for the one route that allows it (deferred posts).
 */
export function signerWithNonce(ctx: RequestContext, maxAgeMs?: number): Promise<{ readonly key: MemberKey; readonly nonce: NonceUse }> {
  return verifySigned(signedParts(ctx), ctx.method, ctx.pathWithQuery, ctx.body, {
    nowMs: ctx.nowMs,
    maxClockSkewMs: ctx.deps.limits.maxClockSkewMs,
    verifier: ctx.deps.verifier,
    macs: ctx.deps.macs,
    proofs: ctx.deps.metrics,
    ...(maxAgeMs === undefined ? {} : { maxAgeMs }),
  });
}

/** The optional `wake` flag of a post (PostPacketRequest.wake). */
export function wakeField(body: Record<string, unknown>): boolean {
  const wake = body['wake'];
  if (wake === undefined) return false;
  if (typeof wake !== 'boolean') throw new RelayError('bad-request', 'wake must be true or false');
  return wake;
}

export function capabilityHeader(ctx: RequestContext): string | undefined {
  return header(ctx, RELAY_HEADERS.capability);
}

export function channelParam(text: string): ChannelId {
  const id = parseChannelId(text);
  if (id === undefined) throw new RelayError('bad-request', 'malformed channel id');
  return id;
}

/**
 * Signature first, then membership: a missing channel and a non-member get the same 403 after
 * the same work (issue 5 §3).
 */
export async function member(ctx: RequestContext, channelId: ChannelId): Promise<{ key: MemberKey; info: MemberInfo }> {
  const key = await signer(ctx, channelId);
  const info = await ctx.deps.store.getMember(channelId, key);
  if (info === undefined) throw new RelayError('forbidden', 'not a member of this channel');
  return { key, info };
}

/**
 * Who reads: a signed member, or (without signature headers) the holder of a fetch token, which
 * reads as its member and only through the routes that call this (the events read). One answer,
 * 403 invalid-capability, for every failing token: unknown, expired, revoked, other channel, or
 * its member left.
 */
export async function reader(ctx: RequestContext, channelId: ChannelId): Promise<{ key: MemberKey; info: MemberInfo }> {
  const token = header(ctx, RELAY_HEADERS.fetchToken);
  if (token === undefined || header(ctx, RELAY_HEADERS.key) !== undefined) return member(ctx, channelId);
  const info = await ctx.deps.store.useFetchToken(hashToken(parseToken(token)), channelId, ctx.nowMs);
  if (info === undefined) throw new RelayError('invalid-capability', 'fetch token is unknown, expired, revoked or not for this channel');
  return { key: info.key, info };
}

/** The channel of a request already known to come from a member (so it exists). */
export async function channelOf(ctx: RequestContext, channelId: ChannelId): Promise<ChannelRecord> {
  const channel = await ctx.deps.store.getChannel(channelId);
  if (channel === undefined) throw new RelayError('forbidden', 'not a member of this channel');
  return channel;
}

/** An optional integer field: undefined when absent. */
export function optionalIntField(body: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  return body[name] === undefined ? undefined : intField(body, name, min, max);
}

export function intField(body: Record<string, unknown>, name: string, min: number, max: number): number {
  const value = body[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RelayError('bad-request', `${name} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

export function intQuery(ctx: RequestContext, name: string, fallback: number, min: number, max: number): number {
  const text = ctx.query.get(name);
  if (text === null) return fallback;
  if (!/^\d{1,16}$/.test(text)) throw new RelayError('bad-request', `${name} must be a non-negative integer`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RelayError('bad-request', `${name} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

/** An opaque packet: canonical base64url, non-empty, at most maxPacketBytes decoded. */
export function packetField(ctx: RequestContext, body: Record<string, unknown>): string {
  const packet = body['packet'];
  const maxChars = Math.ceil((ctx.deps.limits.maxPacketBytes * 4) / 3);
  if (typeof packet !== 'string' || packet.length === 0 || !BASE64URL_PATTERN.test(packet) || packet.length % 4 === 1) {
    throw new RelayError('bad-request', 'packet must be non-empty unpadded base64url');
  }
  if (packet.length > maxChars) throw new RelayError('body-too-large', `packet over ${ctx.deps.limits.maxPacketBytes} bytes`);
  if (!isCanonicalBase64Url(packet)) throw new RelayError('bad-request', 'packet must be canonical base64url');
  return packet;
}

export function postIdField(body: Record<string, unknown>): string | undefined {
  const postId = body['postId'];
  if (postId === undefined) return undefined;
  if (typeof postId !== 'string' || !POST_ID_PATTERN.test(postId)) {
    throw new RelayError('bad-request', 'postId must be 1..64 characters of [A-Za-z0-9_-]');
  }
  return postId;
}

export function noBody(ctx: RequestContext): void {
  if (ctx.body.length !== 0) throw new RelayError('bad-request', 'this request takes no body');
}
