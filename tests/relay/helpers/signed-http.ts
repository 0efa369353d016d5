/**
 * A minimal signed relay client for the crash, multi-node and fuzz tests and the benchmark: ed25519
 * channel keys from node:crypto (fast, OpenSSL), requests signed as src/relay/README.md
 * "Authentication" says, sent over a keep-alive agent. Deliberately independent of the worker's
 * relay client, so these tests check the wire format, not one client's reading of it.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { Agent, request } from 'node:http';
import {
  RELAY_HEADERS,
  RELAY_SUBSCRIBE_METHOD,
  relayPostPath,
  relaySigningText,
  relaySubscribePath,
  type ChannelId,
  type MemberKey,
  type PostFrame,
  type ReadEventsResponse,
  type RelayEvent,
  type SubscribeFrame,
} from '../../../src/shared/relay-api.js';

export interface TestMember {
  readonly key: MemberKey;
  readonly privateKey: KeyObject;
}

export function newMember(): TestMember {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { key: raw.toString('base64url') as MemberKey, privateKey };
}

export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

export function sha256Base64Url(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('base64url');
}

export interface SignOptions {
  readonly timeMs?: number;
  readonly nonce?: string;
}

/** The four auth headers of a request. */
export function signedHeaders(
  member: TestMember,
  method: string,
  pathWithQuery: string,
  body: Uint8Array | string,
  options: SignOptions = {},
): Record<string, string> {
  const timeMs = options.timeMs ?? Date.now();
  const nonce = options.nonce ?? newNonce();
  const text = relaySigningText(method, pathWithQuery, sha256Base64Url(body), nonce, timeMs);
  const signature = sign(null, Buffer.from(text, 'utf8'), member.privateKey).toString('base64url');
  return {
    [RELAY_HEADERS.key]: member.key,
    [RELAY_HEADERS.nonce]: nonce,
    [RELAY_HEADERS.time]: String(timeMs),
    [RELAY_HEADERS.signature]: signature,
  };
}

/** A signed WebSocket subscribe frame. */
export function subscribeFrame(member: TestMember, channel: ChannelId, afterSeq: number, options: SignOptions = {}): SubscribeFrame {
  const timeMs = options.timeMs ?? Date.now();
  const nonce = options.nonce ?? newNonce();
  const text = relaySigningText(RELAY_SUBSCRIBE_METHOD, relaySubscribePath(channel), sha256Base64Url(''), nonce, timeMs);
  const signature = sign(null, Buffer.from(text, 'utf8'), member.privateKey).toString('base64url');
  return { type: 'subscribe', channel, afterSeq, key: member.key, nonce, timeMs, signature };
}

/** A signed WebSocket post frame: `body` (the post request's JSON text) to `channel`, as POST relayPostPath(channel). */
export function postFrame(member: TestMember, channel: ChannelId, body: string, id: number, options: SignOptions = {}): PostFrame {
  const headers = signedHeaders(member, 'POST', relayPostPath(channel), body, options);
  return {
    type: 'post',
    id,
    channel,
    body,
    key: member.key,
    nonce: headers[RELAY_HEADERS.nonce] ?? '',
    timeMs: Number(headers[RELAY_HEADERS.time]),
    signature: headers[RELAY_HEADERS.signature] ?? '',
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** Sockets per relay origin: enough concurrency for the fuzz, bounded. */
const AGENT_MAX_SOCKETS = 32;
/** A request that takes longer than this is a hung relay: fail rather than wait forever. */
const REQUEST_TIMEOUT_MS = 15_000;

export const keepAliveAgent = new Agent({ keepAlive: true, maxSockets: AGENT_MAX_SOCKETS });

/** One HTTP request; rejects only on transport errors (refused, reset, timeout). */
export function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Uint8Array | string,
  agent: Agent = keepAliveAgent,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request timed out: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface JsonResponse<T> {
  readonly status: number;
  readonly json: T;
}

/** A signed JSON request as `member` (or unsigned when member is undefined). */
export async function signedJson<T = Record<string, unknown>>(
  baseUrl: string,
  member: TestMember | undefined,
  method: string,
  pathWithQuery: string,
  jsonBody?: unknown,
  extraHeaders: Record<string, string> = {},
  agent: Agent = keepAliveAgent,
): Promise<JsonResponse<T>> {
  const body = jsonBody === undefined ? '' : JSON.stringify(jsonBody);
  const headers: Record<string, string> = { ...extraHeaders };
  if (jsonBody !== undefined) headers['content-type'] = 'application/json';
  if (member !== undefined) Object.assign(headers, signedHeaders(member, method, pathWithQuery, body));
  const response = await rawRequest(baseUrl + pathWithQuery, method, headers, jsonBody === undefined ? undefined : body, agent);
  const text = response.body.toString('utf8');
  return { status: response.status, json: (text === '' ? {} : JSON.parse(text)) as T };
}

/** Creates a group channel as `members[0]` and joins the others with one invite. */
export async function setupGroup(baseUrl: string, members: readonly TestMember[], agent: Agent = keepAliveAgent): Promise<ChannelId> {
  const [owner, ...others] = members;
  if (owner === undefined) throw new RangeError('setupGroup needs at least one member');
  const created = await signedJson<{ channelId: ChannelId }>(baseUrl, owner, 'POST', '/v1/channels', { kind: 'group' }, {}, agent);
  if (created.status !== 201) throw new Error(`create channel: HTTP ${created.status} ${JSON.stringify(created.json)}`);
  const channelId = created.json.channelId;
  if (others.length === 0) return channelId;
  const invite = await signedJson<{ capability: string }>(
    baseUrl,
    owner,
    'POST',
    `/v1/channels/${channelId}/capabilities`,
    { kind: 'invite', ttlMs: 600_000, uses: others.length },
    {},
    agent,
  );
  if (invite.status !== 201) throw new Error(`invite: HTTP ${invite.status} ${JSON.stringify(invite.json)}`);
  for (const member of others) {
    const joined = await signedJson(baseUrl, member, 'POST', `/v1/channels/${channelId}/join`, { capability: invite.json.capability }, {}, agent);
    if (joined.status !== 200) throw new Error(`join: HTTP ${joined.status} ${JSON.stringify(joined.json)}`);
  }
  return channelId;
}

/** Every event of a channel as `member` sees it, read page by page over HTTP. */
export async function drainEvents(baseUrl: string, member: TestMember, channelId: ChannelId, pageSize = 500): Promise<RelayEvent[]> {
  const events: RelayEvent[] = [];
  let after = 0;
  // Bounded: each page advances `after` or ends the loop.
  for (;;) {
    const page = await signedJson<ReadEventsResponse>(baseUrl, member, 'GET', `/v1/channels/${channelId}/events?after=${after}&limit=${pageSize}`);
    if (page.status !== 200) throw new Error(`read events: HTTP ${page.status} ${JSON.stringify(page.json)}`);
    events.push(...page.json.events);
    const last = page.json.events.at(-1);
    if (!page.json.more || last === undefined) return events;
    after = last.seq;
  }
}
