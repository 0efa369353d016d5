/**
 * A minimal signed relay client for the crash, multi-node and fuzz tests and the benchmark: ed25519
 * channel keys from node:crypto (fast, OpenSSL), requests signed, or MAC'd, as src/relay/README.md
 * "Authentication" says, sent over a keep-alive agent. Deliberately independent of the worker's
 * relay client, so these tests check the wire format, not one client's reading of it: the MAC key
 * is derived here from the description (X25519 of the seed's clamped SHA-512 half with the relay
 * auth key, HKDF, HMAC), not with src/shared/relay-mac.ts.
 */
import { createHash, createHmac, generateKeyPairSync, hkdfSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { Agent, request } from 'node:http';
import {
  RELAY_HEADERS,
  RELAY_SUBSCRIBE_METHOD,
  relayPostPath,
  relaySigningText,
  relaySubscribePath,
  type ChannelId,
  type FrameProof,
  type MemberKey,
  type PostFrame,
  type ReadEventsResponse,
  type RelayEvent,
  type SubscribeFrame,
} from '../../../src/shared/relay-api.js';
import { RELAY_AUTH_KEY_PATH, type RelayAuthKeyResponse } from '../../../src/shared/relay-mac.js';

export interface TestMember {
  readonly key: MemberKey;
  readonly privateKey: KeyObject;
}

/** How a request is proven: an Ed25519 signature (the default), or a MAC for the relay whose auth key is given. */
export type Proof = 'signature' | { readonly relayAuthKey: string };

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
  /** Default 'signature'. */
  readonly proof?: Proof;
}

/** The relay's auth key (GET /v1/auth-key), for MACs to that relay. */
export async function fetchRelayAuthKey(baseUrl: string, agent: Agent = keepAliveAgent): Promise<string> {
  const response = await rawRequest(baseUrl + RELAY_AUTH_KEY_PATH, 'GET', {}, undefined, agent);
  if (response.status !== 200) throw new Error(`auth key: HTTP ${response.status} ${response.body.toString('utf8')}`);
  return (JSON.parse(response.body.toString('utf8')) as RelayAuthKeyResponse).key;
}

/** Members' MAC keys by relay auth key and member key: one X25519 each, like a client would keep them. */
const macKeys = new Map<string, Buffer>();

/**
 * `member`'s MAC key at the relay whose auth key is `relayAuthKey`: X25519 of the member's
 * X25519 secret (its ed25519 seed's SHA-512, first half, clamped by X25519: RFC 8032 §5.1.5) with
 * the relay auth key, then HKDF-SHA256(salt "covey-relay-mac-v1", info "<memberKey>\n<authKey>").
 */
export function memberMacKey(member: TestMember, relayAuthKey: string): Buffer {
  const cacheKey = `${member.key}\n${relayAuthKey}`;
  const cached = macKeys.get(cacheKey);
  if (cached !== undefined) return cached;
  const seed = member.privateKey.export({ format: 'jwk' }).d;
  if (typeof seed !== 'string') throw new Error('ed25519 private key export gave no d');
  const scalar = createHash('sha512').update(Buffer.from(seed, 'base64url')).digest().subarray(0, 32);
  const shared = x25519.getSharedSecret(scalar, Buffer.from(relayAuthKey, 'base64url'));
  const key = Buffer.from(hkdfSync('sha256', shared, 'covey-relay-mac-v1', cacheKey, 32));
  macKeys.set(cacheKey, key);
  return key;
}

/** The proof header (name and value) of `text` signed or MAC'd by `member`. */
function prove(member: TestMember, text: string, proof: Proof): [typeof RELAY_HEADERS.signature | typeof RELAY_HEADERS.mac, string] {
  if (proof === 'signature') return [RELAY_HEADERS.signature, sign(null, Buffer.from(text, 'utf8'), member.privateKey).toString('base64url')];
  return [RELAY_HEADERS.mac, createHmac('sha256', memberMacKey(member, proof.relayAuthKey)).update(text, 'utf8').digest('base64url')];
}

/** The four auth headers of a request: key, nonce, time, and `covey-signature` or `covey-mac` (options.proof). */
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
  const [name, value] = prove(member, text, options.proof ?? 'signature');
  return {
    [RELAY_HEADERS.key]: member.key,
    [RELAY_HEADERS.nonce]: nonce,
    [RELAY_HEADERS.time]: String(timeMs),
    [name]: value,
  };
}

/** The auth headers of a request MAC'd for the relay whose auth key is `relayAuthKey`. */
export function macHeaders(
  member: TestMember,
  relayAuthKey: string,
  method: string,
  pathWithQuery: string,
  body: Uint8Array | string,
  options: Omit<SignOptions, 'proof'> = {},
): Record<string, string> {
  return signedHeaders(member, method, pathWithQuery, body, { ...options, proof: { relayAuthKey } });
}

/** The frame fields of a proof: `{ signature }` or `{ mac }`. */
function frameProof(member: TestMember, text: string, proof: Proof): FrameProof {
  const [name, value] = prove(member, text, proof);
  return name === RELAY_HEADERS.mac ? { mac: value } : { signature: value };
}

/** A signed (or, with options.proof, MAC'd) WebSocket subscribe frame. */
export function subscribeFrame(member: TestMember, channel: ChannelId, afterSeq: number, options: SignOptions = {}): SubscribeFrame {
  const timeMs = options.timeMs ?? Date.now();
  const nonce = options.nonce ?? newNonce();
  const text = relaySigningText(RELAY_SUBSCRIBE_METHOD, relaySubscribePath(channel), sha256Base64Url(''), nonce, timeMs);
  return { type: 'subscribe', channel, afterSeq, key: member.key, nonce, timeMs, ...frameProof(member, text, options.proof ?? 'signature') };
}

/** A signed (or MAC'd) WebSocket post frame: `body` (the post request's JSON text) to `channel`, as POST relayPostPath(channel). */
export function postFrame(member: TestMember, channel: ChannelId, body: string, id: number, options: SignOptions = {}): PostFrame {
  const timeMs = options.timeMs ?? Date.now();
  const nonce = options.nonce ?? newNonce();
  const text = relaySigningText('POST', relayPostPath(channel), sha256Base64Url(body), nonce, timeMs);
  return { type: 'post', id, channel, body, key: member.key, nonce, timeMs, ...frameProof(member, text, options.proof ?? 'signature') };
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
