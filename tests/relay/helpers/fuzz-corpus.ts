/**
 * The fuzz corpus (issue 5 "Tests", issue 13 "Broken" 1): a relay fixture (a group with history,
 * an inbox, a blob, an open upload, used requests and frames to replay) and `makeInput`, which
 * turns an index into one bad HTTP request of every shape. Shared by the fuzz test and the
 * process-level test that sends every shape as a WebSocket Upgrade too (hostile.test.ts).
 */
import { createHash } from 'node:crypto';
import { WebSocket } from 'ws';
import type { ChannelId, FinalizeUploadResponse, RelayErrorCode, UploadStatusResponse } from '../../../src/shared/relay-api.js';
import { DEFAULT_RELAY_LIMITS } from '../../../src/relay/limits.js';
import type { SeededRandom } from '../../helpers/seeded-random.js';
import { generateKeyPairSync } from 'node:crypto';
import {
  fetchRelayAuthKey,
  newMember,
  newNonce,
  rawRequest,
  setupGroup,
  signedHeaders,
  signedJson,
  subscribeFrame,
  type Proof,
  type SignOptions,
  type TestMember,
} from './signed-http.js';

/** Time a replay may spend in flight on a loaded machine before the relay reads its clock. */
const REPLAY_IN_FLIGHT_MARGIN_MS = 30_000;

/** Shrunk limits so "oversized" inputs are cheap to send many times. */
export const FUZZ_LIMITS = {
  maxPacketBytes: 2048,
  maxJsonBodyBytes: 4096,
  maxBlobChunkBytes: 8192,
  maxWsFrameBytes: 2048,
  maxWsBadFrames: 20,
  rateRequestsPerSecond: 1e9,
  rateBurst: 1e9,
  maxConnectionsPerClient: 10_000,
};

export interface Fixture {
  owner: TestMember;
  other: TestMember;
  outsider: TestMember;
  channel: ChannelId;
  inbox: ChannelId;
  /** The relay's auth key: MAC'd requests and frames (src/shared/relay-mac.ts). */
  authKey: string;
  /** An X25519 key that is not the relay's: MACs made for another relay. */
  otherAuthKey: string;
  uploadToken: string;
  blobHash: string;
  blobCapability: string;
  /** Valid GETs (signed or MAC'd, alternately) already used once: replaying them must fail. */
  usedRequests: Array<{ path: string; headers: Record<string, string> }>;
  /** Valid subscribe frames (signed or MAC'd) already used once. */
  usedFrames: string[];
  /** Valid posts (signed or MAC'd) already stored over HTTP: as post frames they must fail (replayed nonce). */
  usedPosts: Array<{ body: string; headers: Record<string, string> }>;
}

export interface FuzzInput {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Codes this input may be refused with; empty = any 4xx code. */
  codes: readonly RelayErrorCode[];
  kind: string;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
const randomToken = (random: SeededRandom): string => Buffer.from(random.bytes(32)).toString('base64url');
export const randomChannel = (random: SeededRandom): string => Buffer.from(random.bytes(16)).toString('base64url');

/** Alternately a signature and a MAC: every tenth input of a case and the next ten take turns. */
export function proofOf(i: number, fx: Fixture): Proof {
  return Math.floor(i / 10) % 2 === 0 ? 'signature' : { relayAuthKey: fx.authKey };
}

/** Turns index i into one bad HTTP request. Cheap: signing is the only real work. */
export function makeInput(i: number, fx: Fixture, random: SeededRandom): FuzzInput {
  const events = `/v1/channels/${fx.channel}/events`;
  const json = { 'content-type': 'application/json' };
  const proof = proofOf(i, fx);
  /** Auth headers with this input's proof. */
  const sign = (member: TestMember, method: string, path: string, body: string, options: SignOptions = {}): Record<string, string> =>
    signedHeaders(member, method, path, body, { proof, ...options });
  const signedPost = (path: string, body: string, member: TestMember = fx.owner): FuzzInput => ({
    method: 'POST',
    path,
    headers: { ...json, ...sign(member, 'POST', path, body) },
    body,
    codes: [],
    kind: '',
  });
  switch (i % 10) {
    case 0: {
      // Malformed JSON bodies on a correctly signed post: the parser and field checks.
      const bodies = [
        '',
        '{',
        'null',
        '[]',
        '"packet"',
        '{"packet":5}',
        '{"packet":""}',
        '{"packet":"!!!!"}',
        '{"packet":"AAA="}',
        '{"packet":"A"}',
        '{"packet":"AAAA","postId":"not ok!"}',
        '{"packet":"AAAA","postId":""}',
        '[' .repeat(1_000),
        Buffer.from(random.bytes(1 + random.int(200))).toString('latin1'),
        `{"packet":"${'A'.repeat(3_000)}"}`,
      ];
      const body = bodies[random.int(bodies.length)] as string;
      return { ...signedPost(events, body), codes: ['bad-request', 'body-too-large'], kind: 'malformed' };
    }
    case 1: {
      // Mis-proven: wrong key, wrong path, wrong body, flipped bit, malformed or missing headers,
      // with a signature or a MAC; MACs also for another relay, and both proofs at once.
      const body = JSON.stringify({ packet: b64(`m${i}`) });
      const mac = proof !== 'signature';
      const field = mac ? 'covey-mac' : 'covey-signature';
      const headers = sign(fx.owner, 'POST', events, body);
      const variant = random.int(mac ? 9 : 6);
      if (variant === 0) headers[field] = sign(fx.other, 'POST', events, body)[field] as string;
      if (variant === 1) Object.assign(headers, sign(fx.owner, 'POST', `/v1/channels/${fx.inbox}/events`, body), { 'covey-key': fx.owner.key });
      if (variant === 2) Object.assign(headers, sign(fx.owner, 'POST', events, body + ' '));
      if (variant === 3) {
        const proofBytes = Buffer.from(headers[field] as string, 'base64url');
        const at = random.int(proofBytes.length);
        proofBytes[at] = (proofBytes[at] ?? 0) ^ (1 << random.int(8));
        headers[field] = proofBytes.toString('base64url');
      }
      if (variant === 4) headers['covey-key'] = random.pick(['', 'x', 'A'.repeat(43), fx.other.key + 'A', '=='.repeat(20)]);
      if (variant === 5) delete headers[random.pick(['covey-key', 'covey-nonce', 'covey-time', field])];
      if (variant === 6) headers['covey-mac'] = signedHeaders(fx.owner, 'POST', events, body, { proof: { relayAuthKey: fx.otherAuthKey } })['covey-mac'] as string;
      if (variant === 7) {
        const timeMs = Number(headers['covey-time']);
        headers['covey-signature'] = signedHeaders(fx.owner, 'POST', events, body, { nonce: headers['covey-nonce'], timeMs })['covey-signature'] as string;
      }
      if (variant === 8) headers['covey-mac'] = random.pick(['', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}B`, 'A'.repeat(86)]);
      return { method: 'POST', path: events, headers: { ...json, ...headers }, body, codes: ['bad-signature'], kind: 'mis-signed' };
    }
    case 2: {
      // Replays of requests that already succeeded once. Once they are older than the clock-skew
      // window (a run that takes minutes on a loaded machine), the relay refuses them as stale
      // before it looks at the nonce: refused either way, which is what matters.
      const used = fx.usedRequests[random.int(fx.usedRequests.length)] as Fixture['usedRequests'][number];
      const ageMs = Date.now() - Number(used.headers['covey-time']);
      const fresh = ageMs < DEFAULT_RELAY_LIMITS.maxClockSkewMs - REPLAY_IN_FLIGHT_MARGIN_MS;
      return { method: 'GET', path: used.path, headers: used.headers, codes: fresh ? ['replayed-nonce'] : ['replayed-nonce', 'stale-timestamp'], kind: 'replayed' };
    }
    case 3: {
      // Stale or future timestamps, correctly signed.
      const skewMs = (6 + random.int(10_000)) * 60_000 * (random.int(2) === 0 ? -1 : 1);
      const path = `${events}?after=0&limit=10`;
      return {
        method: 'GET',
        path,
        headers: sign(fx.owner, 'GET', path, '', { timeMs: Math.max(0, Date.now() + skewMs) }),
        codes: ['stale-timestamp'],
        kind: 'stale',
      };
    }
    case 4: {
      // Out-of-order and out-of-range: bad read windows, wrong upload offsets, early finalize.
      const variant = random.int(5);
      if (variant === 0) {
        const query = random.pick(['after=-1', 'after=abc', 'limit=0', 'limit=100000', 'after=1e3', 'after=99999999999999999', 'limit=-5']);
        const path = `${events}?${query}`;
        return { method: 'GET', path, headers: sign(fx.owner, 'GET', path, ''), codes: ['bad-request'], kind: 'out-of-range' };
      }
      if (variant === 1) {
        const offset = 1 + random.int(50);
        const body = Buffer.from(random.bytes(1 + random.int(64)));
        return { method: 'PUT', path: `/v1/uploads/${fx.uploadToken}?offset=${offset}`, headers: { 'content-type': 'application/octet-stream' }, body, codes: ['offset-mismatch'], kind: 'out-of-order' };
      }
      if (variant === 2) {
        return { method: 'POST', path: `/v1/uploads/${fx.uploadToken}/finalize`, headers: {}, codes: ['bad-request'], kind: 'out-of-order' };
      }
      if (variant === 3) {
        const body = JSON.stringify({ seq: random.pick([-1, 'x', 1.5, null, 1e300]) });
        const path = `/v1/channels/${fx.channel}/cursor`;
        return { method: 'PUT', path, headers: { ...json, ...sign(fx.owner, 'PUT', path, body) }, body, codes: ['bad-request'], kind: 'out-of-range' };
      }
      const path = `/v1/uploads/${fx.uploadToken}?offset=${random.pick(['x', '-1', ''])}`;
      return { method: 'PUT', path, headers: {}, body: 'zz', codes: ['bad-request'], kind: 'out-of-range' };
    }
    case 5: {
      // Not a member, forged capabilities, unknown channels.
      const variant = random.int(5);
      if (variant === 0) return { ...signedPost(events, JSON.stringify({ packet: 'AAAA' }), fx.outsider), codes: ['forbidden'], kind: 'forbidden' };
      if (variant === 1) {
        const body = JSON.stringify({ capability: randomToken(random) });
        return { ...signedPost(`/v1/channels/${fx.channel}/join`, body, fx.outsider), codes: ['invalid-capability'], kind: 'forged-capability' };
      }
      if (variant === 2) {
        const body = JSON.stringify({ packet: 'AAAA' });
        return { method: 'POST', path: `/v1/channels/${fx.inbox}/deposit`, headers: { ...json, 'covey-capability': randomToken(random) }, body, codes: ['invalid-capability'], kind: 'forged-capability' };
      }
      if (variant === 3) {
        return { method: 'GET', path: `/v1/blobs/${fx.blobHash}`, headers: { 'covey-capability': randomToken(random) }, codes: ['invalid-capability'], kind: 'forged-capability' };
      }
      const path = `/v1/channels/${randomChannel(random)}/events?after=0`;
      return { method: 'GET', path, headers: sign(fx.owner, 'GET', path, ''), codes: ['forbidden'], kind: 'forbidden' };
    }
    case 6: {
      // Routing garbage: unknown paths, wrong methods, malformed ids.
      const paths = [
        '/v1/nope',
        '/v2/channels',
        `/v1/channels/${'x'.repeat(random.int(300))}`,
        '/v1/channels/%ff%fe',
        '/v1/../../etc/passwd',
        `/v1/uploads/${randomToken(random)}`,
        `/v1/blobs/${'g'.repeat(64)}`,
        `/v1/channels/${fx.channel}/members/not-a-key`,
      ];
      const methods = ['GET', 'POST', 'PATCH', 'DELETE', 'PUT'];
      return { method: random.pick(methods), path: random.pick(paths), headers: {}, codes: [], kind: 'routing' };
    }
    case 7: {
      // Oversized bodies, with and without a truthful content-length.
      if (random.int(3) === 0) {
        const body = Buffer.alloc(FUZZ_LIMITS.maxBlobChunkBytes + 1 + random.int(1_000), 1);
        return { method: 'PUT', path: `/v1/uploads/${fx.uploadToken}?offset=0`, headers: {}, body, codes: ['body-too-large'], kind: 'oversized' };
      }
      const body = `{"packet":"${'A'.repeat(FUZZ_LIMITS.maxJsonBodyBytes + random.int(4_000))}"}`;
      return { ...signedPost(events, body), codes: ['body-too-large'], kind: 'oversized' };
    }
    case 8: {
      // Bodies where none belong, and tiny junk on GET routes.
      const path = `/v1/channels/${fx.channel}`;
      const body = 'x'.repeat(1 + random.int(50));
      return { method: 'GET', path, headers: sign(fx.owner, 'GET', path, body), body, codes: ['bad-request'], kind: 'unexpected-body' };
    }
    default: {
      // Semantically wrong but well-formed requests.
      const variant = random.int(4);
      if (variant === 0) return { ...signedPost('/v1/channels', JSON.stringify({ kind: random.pick(['dm', '', 5, null]) })), codes: ['bad-request'], kind: 'semantic' };
      if (variant === 1) {
        const body = JSON.stringify({ kind: random.pick(['deposit', 'x']), ttlMs: 1_000, uses: 1 });
        return { ...signedPost(`/v1/channels/${fx.channel}/capabilities`, body), codes: ['bad-request'], kind: 'semantic' };
      }
      if (variant === 2) {
        const body = JSON.stringify({ kind: 'invite', ttlMs: random.pick([0, -1, 1e15, 'x']), uses: 1 });
        return { ...signedPost(`/v1/channels/${fx.channel}/capabilities`, body), codes: ['bad-request'], kind: 'semantic' };
      }
      const path = `/v1/channels/${fx.channel}/members/${newMember().key}`;
      return { method: 'DELETE', path, headers: sign(fx.owner, 'DELETE', path, ''), codes: ['not-found'], kind: 'semantic' };
    }
  }
}

/** Builds the fixture the corpus refers to, on a fresh relay. */
export async function makeFixture(url: string): Promise<Fixture> {
  const [owner, other, outsider] = [newMember(), newMember(), newMember()];
  const channel = await setupGroup(url, [owner, other]);
  const authKey = await fetchRelayAuthKey(url);
  const otherAuthKey = String(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x);
  const proofFor = (n: number): Proof => (n % 2 === 0 ? 'signature' : { relayAuthKey: authKey });
  for (let n = 0; n < 40; n++) {
    const posted = await signedJson(url, n % 2 === 0 ? owner : other, 'POST', `/v1/channels/${channel}/events`, { packet: b64(`before ${n}`) });
    if (posted.status !== 201) throw new Error(`fixture post: HTTP ${posted.status}`);
  }
  const usedPosts: Fixture['usedPosts'] = [];
  for (let n = 0; n < 10; n++) {
    const path = `/v1/channels/${channel}/events`;
    const body = JSON.stringify({ packet: b64(`used ${n}`), postId: `used-${n}` });
    const headers = signedHeaders(owner, 'POST', path, body, { proof: proofFor(n) });
    const used = await rawRequest(url + path, 'POST', { 'content-type': 'application/json', ...headers }, body);
    if (used.status !== 201) throw new Error(`fixture post: HTTP ${used.status}`);
    usedPosts.push({ body, headers });
  }
  const inbox = (await signedJson<{ channelId: ChannelId }>(url, owner, 'POST', '/v1/channels', { kind: 'inbox' })).json.channelId;
  const blob = Buffer.from('an encrypted attachment');
  const blobHash = createHash('sha256').update(blob).digest('hex');
  const blobUpload = await signedJson<UploadStatusResponse>(url, owner, 'POST', `/v1/channels/${channel}/uploads`, { sha256: blobHash, size: blob.length });
  await rawRequest(`${url}/v1/uploads/${blobUpload.json.upload}?offset=0`, 'PUT', { 'content-type': 'application/octet-stream' }, blob);
  const finalized = await rawRequest(`${url}/v1/uploads/${blobUpload.json.upload}/finalize`, 'POST', {});
  const blobCapability = (JSON.parse(finalized.body.toString('utf8')) as FinalizeUploadResponse).readCapability;
  // An upload left open at offset 0 for out-of-order chunks.
  const open = await signedJson<UploadStatusResponse>(url, owner, 'POST', `/v1/channels/${channel}/uploads`, { sha256: 'a'.repeat(64), size: 100 });
  const usedRequests: Fixture['usedRequests'] = [];
  for (let n = 0; n < 50; n++) {
    const path = `/v1/channels/${channel}/events?after=${n}&limit=1`;
    const headers = signedHeaders(owner, 'GET', path, '', { nonce: newNonce(), proof: proofFor(n) });
    const used = await rawRequest(url + path, 'GET', headers);
    if (used.status !== 200) throw new Error(`fixture read: HTTP ${used.status}`);
    usedRequests.push({ path, headers });
  }
  const usedFrames: string[] = [];
  for (let n = 0; n < 10; n++) {
    const frame = JSON.stringify(subscribeFrame(owner, channel, 0, { proof: proofFor(n) }));
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send(frame));
      ws.on('message', (data: Buffer) => {
        if ((JSON.parse(data.toString('utf8')) as { type: string }).type === 'subscribed') resolve();
      });
      ws.on('error', reject);
    });
    ws.terminate();
    usedFrames.push(frame);
  }
  return { owner, other, outsider, channel, inbox, authKey, otherAuthKey, uploadToken: open.json.upload, blobHash, blobCapability, usedRequests, usedFrames, usedPosts };
}
