/** Channel routes: create, info, capabilities, join, remove/leave, post, read, cursor, deposit. */
import type {
  AckCursorResponse,
  CapabilityKind,
  ChannelInfoResponse,
  CreateCapabilityResponse,
  CreateChannelResponse,
  DepositResponse,
  JoinResponse,
  MemberJoinedEvent,
  MemberLeftEvent,
  PostPacketResponse,
  ReadEventsResponse,
  RemoveMemberResponse,
  RevokeCapabilityResponse,
} from '../../shared/relay-api.js';
import type { IncomingHttpHeaders } from 'node:http';
import { RELAY_HEADERS, relayPostPath } from '../../shared/relay-api.js';
import { parseJsonObject } from '../http/io.js';
import { retentionPolicy, type RelayDeps, type Reply, type RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { hashToken, newChannelId, newToken, parseMemberKey, parseToken } from '../ids.js';
import type { ChannelId, MemberKey, RelayEvent } from '../../shared/relay-api.js';
import {
  capabilityHeader,
  channelOf,
  channelParam,
  intField,
  intQuery,
  member,
  noBody,
  optionalIntField,
  packetField,
  postIdField,
  reader,
  signer,
  signerWithNonce,
  wakeField,
} from './common.js';
import type { NonceUse } from '../store/types.js';

export async function createChannel(ctx: RequestContext): Promise<Reply> {
  const creator = await signer(ctx);
  const body = parseJsonObject(ctx.body);
  const kind = body['kind'];
  if (kind !== 'group' && kind !== 'inbox') throw new RelayError('bad-request', 'kind must be "group" or "inbox"');
  ctx.deps.storage.requireRoom();
  ctx.deps.quotas.channel(ctx.client, creator, ctx.nowMs);
  const channelId = newChannelId();
  const event = await ctx.deps.store.createChannel(channelId, kind, creator, ctx.nowMs);
  const response: CreateChannelResponse = { channelId, kind, event: event as MemberJoinedEvent };
  return { status: 201, json: response };
}

export async function channelInfo(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  await member(ctx, channelId);
  noBody(ctx);
  const channel = await channelOf(ctx, channelId);
  const response: ChannelInfoResponse = {
    channelId,
    kind: channel.kind,
    owner: channel.owner,
    headSeq: channel.headSeq,
    firstSeq: channel.firstSeq,
    lastLeftSeq: channel.lastLeftSeq,
    members: await ctx.deps.store.listMembers(channelId),
  };
  return { status: 200, json: response };
}

export async function createCapability(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const channel = await channelOf(ctx, channelId);
  const { limits } = ctx.deps;
  // Invites open groups; deposit capabilities open inboxes, and only the owner hands them out.
  const kind: CapabilityKind = channel.kind === 'group' ? 'invite' : 'deposit';
  if (body['kind'] !== kind) throw new RelayError('bad-request', `a ${channel.kind} channel gives "${kind}" capabilities`);
  if (channel.kind === 'inbox' && key !== channel.owner) throw new RelayError('forbidden', 'only the owner gives out deposit capabilities');
  const ttlMs = intField(body, 'ttlMs', 1, limits.maxCapabilityTtlMs);
  const uses = intField(body, 'uses', 1, limits.maxCapabilityUses);
  const capability = newToken();
  const expiresAtMs = ctx.nowMs + ttlMs;
  // Bound to its maker's membership: it dies when the maker leaves or is removed (issue 13).
  const stored = await ctx.deps.store.putCapability({ hash: hashToken(capability), channelId, kind, expiresAtMs, usesLeft: uses, creator: key });
  if (!stored.ok) throw new RelayError('forbidden', 'not a member of this channel');
  const response: CreateCapabilityResponse = { capability, kind, expiresAtMs, uses };
  return { status: 201, json: response };
}

/** Revokes an invite (or deposit capability) of this channel: any member holding it may. */
export async function revokeCapability(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const capability = parseToken(body['capability']);
  if (capability === undefined) throw new RelayError('bad-request', 'capability must be a capability token (43 base64url characters)');
  const response: RevokeCapabilityResponse = { revoked: await ctx.deps.store.revokeCapability(hashToken(capability), channelId) };
  return { status: 200, json: response };
}

export async function join(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const key = await signer(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  // A malformed token hashes a dummy: the store does the same lookup either way (ids.ts).
  const capHash = hashToken(parseToken(body['capability']));
  const result = await ctx.deps.store.joinWithCapability(channelId, key, capHash, ctx.nowMs);
  if (!result.ok) throw new RelayError('invalid-capability', 'invite is unknown, expired or used up');
  if (result.value.event !== null) appended(ctx, channelId, result.value.event, true);
  const response: JoinResponse = {
    joinedSeq: result.value.member.joinedSeq,
    event: result.value.event as MemberJoinedEvent | null,
  };
  return { status: 200, json: response };
}

export async function removeMember(ctx: RequestContext, id: string, target: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key } = await member(ctx, channelId);
  noBody(ctx);
  const targetKey = parseMemberKey(target);
  if (targetKey === undefined) throw new RelayError('bad-request', 'malformed member key');
  const result = await ctx.deps.store.removeMember(channelId, key, targetKey, ctx.nowMs);
  if (!result.ok) {
    if (result.code === 'no-target') throw new RelayError('not-found', 'no such member in this channel');
    throw new RelayError('forbidden', 'not a member of this channel');
  }
  appended(ctx, channelId, result.value, true);
  // Ends the member's WebSocket subscriptions on this node now, whatever their cursor; other
  // nodes hear the member-left through the store.
  ctx.deps.memberRemoved(channelId, result.value as MemberLeftEvent);
  await trimAfterWrite(ctx, channelId);
  const response: RemoveMemberResponse = { event: result.value as MemberLeftEvent };
  return { status: 200, json: response };
}

export async function postPacket(ctx: RequestContext, id: string): Promise<Reply> {
  return postReply(await storePost(ctx, id));
}

/**
 * A post over the WebSocket (relay-api.ts PostFrame, src/relay/README.md "WebSocket"): the request
 * POST /v1/channels/:channel/events carried in a frame, its signature or MAC headers as frame fields,
 * answered by the route's own steps in the route's order (so the same refusals with the same
 * codes). Throws what the route throws.
 */
export async function postPacketFrame(deps: RelayDeps, client: string, frame: Readonly<Record<string, unknown>>, nowMs: number): Promise<PostPacketResponse> {
  const { channel, body } = frame;
  if (typeof channel !== 'string') throw new RelayError('bad-request', 'malformed channel id');
  if (typeof body !== 'string') throw new RelayError('bad-request', 'body must be the post request as JSON text');
  const bytes = Buffer.from(body, 'utf8');
  if (bytes.length > deps.limits.maxJsonBodyBytes) throw new RelayError('body-too-large', `body over ${deps.limits.maxJsonBodyBytes} bytes`);
  const headers: IncomingHttpHeaders = {};
  const signed = [
    [RELAY_HEADERS.key, frame['key']],
    [RELAY_HEADERS.nonce, frame['nonce']],
    [RELAY_HEADERS.time, typeof frame['timeMs'] === 'number' ? String(frame['timeMs']) : undefined],
    [RELAY_HEADERS.signature, frame['signature']],
    [RELAY_HEADERS.mac, frame['mac']],
  ] as const;
  // A field that is there but not text is a malformed header, not a missing one: a frame with a
  // signature and `"mac": 5` carries two proofs and is refused like the request would be.
  for (const [name, value] of signed) if (value !== undefined) headers[name] = typeof value === 'string' ? value : '';
  const ctx: RequestContext = { headers, method: 'POST', pathWithQuery: relayPostPath(channel), query: new URLSearchParams(), body: bytes, nowMs, deps, client };
  return storePost(ctx, channel);
}

/** The post route's steps: what POST /v1/channels/:id/events does, over HTTP or a WebSocket frame. */
async function storePost(ctx: RequestContext, id: string): Promise<PostPacketResponse> {
  const channelId = channelParam(id);
  // The signature is checked here; its nonce is recorded by the append itself (one store step).
  const { key, nonce } = await signerWithNonce(ctx);
  const body = parseJsonObject(ctx.body);
  const packet = packetField(ctx, body);
  const postId = postIdField(body);
  ctx.deps.storage.requireRoom();
  const ifNoLeaveAfter = optionalIntField(body, 'ifNoLeaveAfter', 0, Number.MAX_SAFE_INTEGER);
  return appendPost(ctx, channelId, { key, nonce, packet, wake: wakeField(body), postId, ifNoLeaveAfter });
}

/** 201 for a new event, 200 for a postId already stored. */
function postReply(response: PostPacketResponse): Reply {
  return { status: response.duplicate ? 200 : 201, json: response };
}

/**
 * A post signed up to maxDeferredPostAgeMs ago (README "Deferred posts"): what the service
 * worker sends for a message written offline while the app is closed. Only conditional and
 * idempotent posts: a replay is refused by its nonce (kept for the whole window), a retry by the
 * worker is its duplicate, and rule 7 still holds.
 */
export async function postDeferredPacket(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key, nonce } = await signerWithNonce(ctx, ctx.deps.limits.maxDeferredPostAgeMs);
  const body = parseJsonObject(ctx.body);
  const packet = packetField(ctx, body);
  const postId = postIdField(body);
  if (postId === undefined) throw new RelayError('bad-request', 'a deferred post needs a postId');
  ctx.deps.storage.requireRoom();
  const ifNoLeaveAfter = intField(body, 'ifNoLeaveAfter', 0, Number.MAX_SAFE_INTEGER);
  return postReply(await appendPost(ctx, channelId, { key, nonce, packet, wake: wakeField(body), postId, ifNoLeaveAfter }));
}

interface PostParts {
  readonly key: MemberKey;
  readonly nonce: NonceUse;
  readonly packet: string;
  readonly wake: boolean;
  readonly postId: string | undefined;
  readonly ifNoLeaveAfter: number | undefined;
}

async function appendPost(ctx: RequestContext, channelId: ChannelId, post: PostParts): Promise<PostPacketResponse> {
  const { key, nonce, packet, postId, ifNoLeaveAfter } = post;
  // The nonce, membership, the rule 7 condition, the append and retention are ONE store step
  // (store/types.ts): a removed member never posts after its member-left event, even on another
  // relay node, and a post costs one round trip to Redis.
  const event = { type: 'packet' as const, author: key, packet, ...(post.wake ? { wake: true as const } : {}) };
  const result = await ctx.deps.store.appendEvent(channelId, event, ctx.nowMs, {
    nonce,
    asMember: key,
    retention: retentionPolicy(ctx.deps.limits),
    ...(postId === undefined ? {} : { postId }),
    ...(ifNoLeaveAfter === undefined ? {} : { ifNoLeaveAfter }),
  });
  if (!result.ok) {
    if (result.code === 'replayed-nonce') throw new RelayError('replayed-nonce', 'this nonce was already used');
    if (result.code === 'membership-changed') {
      throw new RelayError('membership-changed', `a member left after seq ${ifNoLeaveAfter}: catch up, then seal and post again`);
    }
    throw new RelayError('forbidden', 'not a member of this channel');
  }
  const stored = result.value.event;
  if (!result.value.duplicate) appended(ctx, channelId, stored, result.value.hasPushSubscriptions);
  return { seq: stored.seq, timeMs: stored.timeMs, duplicate: result.value.duplicate };
}

export async function deposit(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const capHash = hashToken(parseToken(capabilityHeader(ctx)));
  const { store } = ctx.deps;
  // Cheap things first (issue 13): a lookup, before the body is parsed; the use is taken by the
  // append itself, atomically, so a malformed body never uses up a deposit.
  if (!(await store.checkCapability(capHash, channelId, 'deposit', ctx.nowMs))) {
    throw new RelayError('invalid-capability', 'deposit capability is unknown, expired or used up');
  }
  const body = parseJsonObject(ctx.body);
  const packet = packetField(ctx, body);
  ctx.deps.storage.requireRoom();
  const result = await store.appendEvent(channelId, { type: 'packet', author: null, packet }, ctx.nowMs, {
    capability: { hash: capHash, kind: 'deposit' },
    retention: retentionPolicy(ctx.deps.limits),
  });
  if (!result.ok) throw new RelayError('invalid-capability', 'deposit capability is unknown, expired or used up');
  appended(ctx, channelId, result.value.event, result.value.hasPushSubscriptions);
  const response: DepositResponse = { seq: result.value.event.seq, timeMs: result.value.event.timeMs };
  return { status: 201, json: response };
}

export async function readEvents(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  // A member, or its service worker with a fetch token (reads only this route).
  const { info } = await reader(ctx, channelId);
  noBody(ctx);
  const { limits, store } = ctx.deps;
  const after = intQuery(ctx, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = intQuery(ctx, 'limit', limits.maxReadEvents, 1, limits.maxReadEvents);
  // A member sees the log from its own join on: earlier ciphertext is none of its business.
  const from = Math.max(after, info.joinedSeq - 1);
  const events = await store.readEvents(channelId, from, limit, limits.maxReadBytes);
  const channel = await channelOf(ctx, channelId);
  const last = events.at(-1);
  const response: ReadEventsResponse = {
    events,
    headSeq: channel.headSeq,
    firstSeq: Math.max(channel.firstSeq, info.joinedSeq),
    // Fewer than `limit` events can also mean the byte cap ended the page.
    more: last !== undefined && last.seq < channel.headSeq,
  };
  return { status: 200, json: response };
}

export async function ackCursor(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const seq = intField(body, 'seq', 0, Number.MAX_SAFE_INTEGER);
  const cursor = await ctx.deps.store.ackCursor(channelId, key, seq);
  if (cursor === undefined) throw new RelayError('forbidden', 'not a member of this channel');
  await trimAfterWrite(ctx, channelId);
  const response: AckCursorResponse = { cursor };
  return { status: 200, json: response };
}

/**
 * An event was appended through this node: metrics, and Web Push for members who are away
 * (looked up only when the store says the channel has push subscriptions).
 */
function appended(ctx: RequestContext, channelId: ChannelId, event: RelayEvent, hasPushSubscriptions: boolean): void {
  if (event.type === 'packet') {
    ctx.deps.metrics.eventsAppended += 1;
    ctx.deps.metrics.eventBytes += event.packet.length;
  }
  if (hasPushSubscriptions) ctx.deps.webPush?.appended(channelId, event);
}

/** Retention right after a write (DESIGN.md §3): read-by-all, max age and max bytes. */
async function trimAfterWrite(ctx: RequestContext, channelId: ChannelId): Promise<void> {
  await ctx.deps.store.trim(channelId, retentionPolicy(ctx.deps.limits), ctx.nowMs);
}
