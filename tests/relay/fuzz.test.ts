// Fuzz (issue 5 "Tests"): a flood of malformed, oversized, mis-signed, replayed, stale and
// out-of-order HTTP requests and WebSocket frames against an in-process relay on loopback.
// Every request must get a 4xx JSON error `{"error","code"}` whose code matches its status (and,
// where the cause is known, the right code); every bad frame an error frame or a clean close
// (1008/1009); no 5xx ever; the relay keeps answering; heap growth stays bounded; and the data
// stored before the flood reads back exactly the same afterwards.
//
// Size: FUZZ_REQUESTS inputs (HTTP requests + WebSocket frames + raw TCP garbage); seed FUZZ_SEED
// (printed). The default is the 100,000 that issue 5 asks for (~1-2 minutes on the 2-core CI
// machine); `FUZZ_REQUESTS=20000` gives a quicker local run.
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELAY_TEST_ENTRY, startRelayProcess, type RelayProcess } from './helpers/process.js';
import { RELAY_ERROR_STATUS, type ChannelInfoResponse, type RelayErrorCode, type RelayEvent } from '../../src/shared/relay-api.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';
import { drainEvents, keepAliveAgent, postFrame, rawRequest, signedJson, subscribeFrame } from './helpers/signed-http.js';
import { FUZZ_LIMITS, makeFixture, makeInput, randomChannel, type Fixture, type FuzzInput } from './helpers/fuzz-corpus.js';

/** Total fuzz inputs: issue 5 asks for at least 100,000. */
const TOTAL = Number(process.env.FUZZ_REQUESTS ?? 100_000);
/**
 * Test time limit: a bound, not a performance claim. Generous per input (a 2-core machine shared
 * with other suites managed as few as ~250 inputs/s), never below 5 minutes.
 */
const TEST_TIMEOUT_MS = Math.max(300_000, TOTAL * 10);
/** Shares of the total: WebSocket frames and raw (non-HTTP) TCP connections; the rest is HTTP. */
const WS_SHARE = 0.2;
const RAW_TCP_SHARE = 0.002;
/** HTTP requests in flight at once (the agent keeps at most 32 sockets). */
const HTTP_CONCURRENCY = 32;
/** WebSocket connections fuzzed at once. */
const WS_CONCURRENCY = 16;
/** Heap growth allowed across the whole flood, after GC. */
const MAX_HEAP_GROWTH_BYTES = 64 * 1024 * 1024;
/** How long one WebSocket reply may take before the fuzz counts it as missing. */
const WS_REPLY_TIMEOUT_MS = 5_000;

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

interface Memory {
  heapUsed: number;
  rss: number;
}
interface Stats {
  channels: number;
  events: number;
  bytes: number;
}

/** Total milliseconds spent per input kind (mean latency in the report). */
const LATENCY_MS = new Map<string, number>();
interface Tally {
  total: number;
  byKind: Map<string, number>;
  failures: string[];
}

function fail(tally: Tally, message: string): void {
  // Bounded: keep the first few failures for the report.
  if (tally.failures.length < 20) tally.failures.push(message);
}

/** Checks one HTTP answer: a 4xx with exactly {error, code}, the code's status, an expected code. */
function checkAnswer(tally: Tally, input: FuzzInput, status: number, body: Buffer): void {
  tally.total += 1;
  tally.byKind.set(input.kind, (tally.byKind.get(input.kind) ?? 0) + 1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    fail(tally, `${input.kind} ${input.method} ${input.path.slice(0, 80)}: HTTP ${status} non-JSON body ${body.toString('utf8').slice(0, 80)}`);
    return;
  }
  const error = parsed as { error?: unknown; code?: unknown };
  const keys = typeof parsed === 'object' && parsed !== null ? Object.keys(parsed).sort().join(',') : '';
  const code = error.code as RelayErrorCode;
  if (status < 400 || status > 499 || keys !== 'code,error' || typeof error.error !== 'string' || RELAY_ERROR_STATUS[code] !== status) {
    fail(tally, `${input.kind} ${input.method} ${input.path.slice(0, 80)}: HTTP ${status} ${body.toString('utf8').slice(0, 120)}`);
    return;
  }
  if (input.codes.length > 0 && !input.codes.includes(code)) {
    fail(tally, `${input.kind} ${input.method} ${input.path.slice(0, 80)}: code ${code}, expected ${input.codes.join('|')}`);
  }
}

async function fuzzHttp(url: string, count: number, fx: Fixture, random: SeededRandom, tally: Tally): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    // Bounded: each iteration takes one index below `count`.
    while (next < count) {
      const i = next++;
      const input = makeInput(i, fx, random);
      const t0 = performance.now();
      try {
        const response = await rawRequest(url + input.path, input.method, input.headers, input.body);
        checkAnswer(tally, input, response.status, response.body);
        LATENCY_MS.set(input.kind, (LATENCY_MS.get(input.kind) ?? 0) + performance.now() - t0);
      } catch (error) {
        // A refused oversized body may reset the socket before our body is sent: that is a clean
        // refusal only if the relay already answered 413, which rawRequest cannot see; retry once.
        if (input.kind !== 'oversized') {
          tally.total += 1;
          fail(tally, `${input.kind} ${input.method} ${input.path.slice(0, 80)}: transport error ${String(error)}`);
          continue;
        }
        try {
          const response = await rawRequest(url + input.path, input.method, { ...input.headers, connection: 'close' }, input.body);
          checkAnswer(tally, input, response.status, response.body);
        } catch (again) {
          tally.total += 1;
          fail(tally, `oversized: transport error twice ${String(again)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, () => worker()));
}

/** Raw bytes that are not HTTP: the relay must answer 400 JSON and close. */
async function fuzzRawTcp(port: number, count: number, random: SeededRandom, tally: Tally): Promise<void> {
  const garbage = (): Buffer =>
    random.int(2) === 0
      ? Buffer.from(random.bytes(1 + random.int(300)))
      : Buffer.from(random.pick(['GET / HTTP/9.9\r\n\r\n', 'HELLO\r\n\r\n', 'GET /v1/x HTTP/1.1\r\nbad header\r\n\r\n', `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n\r\n`]));
  for (let i = 0; i < count; i++) {
    const answer = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      let text = '';
      socket.setTimeout(5_000, () => socket.destroy());
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', () => undefined);
      socket.on('connect', () => socket.end(garbage()));
    });
    tally.total += 1;
    tally.byKind.set('raw-tcp', (tally.byKind.get('raw-tcp') ?? 0) + 1);
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    // A socket the relay closed without a word is acceptable only when the bytes never formed a
    // request line Node could parse; every answer it does give must be a 4xx JSON error.
    if (answer === '') continue;
    checkAnswer(tally, { method: 'RAW', path: '(tcp)', headers: {}, codes: [], kind: 'raw-tcp' }, status, Buffer.from(body, 'latin1'));
    tally.total -= 1; // counted above already
  }
}

/** One WebSocket connection: sends bad frames one by one, each must get an error frame or a clean close. */
async function fuzzOneSocket(url: string, frames: number, fx: Fixture, random: SeededRandom, tally: Tally): Promise<number> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  const replies: Array<{ type: string; code?: string; error?: string; id?: number }> = [];
  let closeCode: number | undefined;
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    replies.push(JSON.parse(data.toString('utf8')) as { type: string });
    wake?.();
  });
  ws.on('close', (code: number) => {
    closeCode = code;
    wake?.();
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let sent = 0;
  try {
    while (sent < frames && closeCode === undefined) {
      const before = replies.length;
      const variant = random.int(19);
      let expectClose: number | undefined;
      /** A post frame's refusal carries its id (when it had a usable one). */
      let postId: number | undefined;
      if (variant === 0) ws.send('{not json');
      else if (variant === 1) ws.send(random.pick(['[1,2]', '5', 'null', '"x"', '{}']));
      else if (variant === 2) ws.send(JSON.stringify({ type: random.pick(['dance', 'SUBSCRIBE', '', 7]) }));
      else if (variant === 3) ws.send(Buffer.from(random.bytes(1 + random.int(100))), { binary: true });
      else if (variant === 4) {
        const macd = subscribeFrame(fx.owner, fx.channel, 0, { proof: { relayAuthKey: fx.authKey } });
        const signed = subscribeFrame(fx.owner, fx.channel, 0, { nonce: macd.nonce, timeMs: macd.timeMs });
        ws.send(
          JSON.stringify(
            random.pick([
              { ...signed, signature: 'A'.repeat(86) },
              { ...macd, mac: 'A'.repeat(43) },
              { ...macd, signature: signed.signature },
              subscribeFrame(fx.owner, fx.channel, 0, { proof: { relayAuthKey: fx.otherAuthKey } }),
            ]),
          ),
        );
      }
      else if (variant === 5) ws.send(JSON.stringify(subscribeFrame(fx.owner, fx.channel, 0, { timeMs: Date.now() - 3_600_000 })));
      else if (variant === 6) ws.send(random.pick(fx.usedFrames));
      else if (variant === 7) ws.send(JSON.stringify(subscribeFrame(fx.outsider, fx.channel, 0)));
      else if (variant === 8) ws.send(JSON.stringify({ ...subscribeFrame(fx.owner, fx.channel, 0), afterSeq: random.pick([-1, 'x', 1.5, null]) }));
      else if (variant === 9) ws.send(JSON.stringify({ type: 'unsubscribe', channel: random.pick(['', 'x', 5, null]) }));
      else if (variant === 10) ws.send(JSON.stringify({ ...subscribeFrame(fx.owner, fx.channel, 0), channel: randomChannel(random) }));
      else if (variant <= 17) {
        // Post frames (the HTTP post in a frame), each refused: nothing stored.
        postId = sent;
        const body = JSON.stringify({ packet: Buffer.from(random.bytes(1 + random.int(64))).toString('base64url') });
        const good = postFrame(fx.owner, fx.channel, body, postId);
        const macd = postFrame(fx.owner, fx.channel, body, postId, { nonce: good.nonce, timeMs: good.timeMs, proof: { relayAuthKey: fx.authKey } });
        const used = random.pick(fx.usedPosts);
        const usedProof = used.headers['covey-mac'] === undefined ? { signature: used.headers['covey-signature'] } : { mac: used.headers['covey-mac'] };
        const frames = [
          { ...good, signature: 'A'.repeat(86) },
          { ...macd, mac: Buffer.alloc(32).toString('base64url') },
          { ...macd, signature: good.signature },
          { ...good, mac: random.pick([5, null, '']) },
          postFrame(fx.owner, fx.channel, body, postId, { proof: { relayAuthKey: fx.otherAuthKey } }),
          { ...good, body: body.replace('{', '{ ') },
          postFrame(fx.owner, fx.channel, random.pick(['', '{', '[]', '{"packet":5}', '{"packet":"a=b"}', `{"packet":"AA","postId":"${'x'.repeat(65)}"}`]), postId),
          postFrame(fx.outsider, fx.channel, body, postId),
          postFrame(fx.owner, fx.channel, body, postId, { timeMs: Date.now() - 3_600_000 }),
          { type: 'post', id: postId, channel: fx.channel, body: used.body, key: fx.owner.key, nonce: used.headers['covey-nonce'], timeMs: Number(used.headers['covey-time']), ...usedProof },
          { ...good, channel: random.pick([randomChannel(random), 'x', 5, null]) },
          { ...good, body: random.pick([5, null, {}]) },
        ];
        const frame = random.pick(frames);
        ws.send(JSON.stringify(frame));
      } else if (variant === 18) {
        ws.send(JSON.stringify({ ...postFrame(fx.owner, fx.channel, '{"packet":"AAAA"}', 0), id: random.pick([undefined, -1, 1.5, 'x', null, 2 ** 60]) }));
      } else {
        ws.send('x'.repeat(FUZZ_LIMITS.maxWsFrameBytes + 1 + random.int(1_000)));
        expectClose = 1009;
      }
      sent += 1;
      // Wait for this frame's answer: one error frame, or the close.
      const deadline = Date.now() + WS_REPLY_TIMEOUT_MS;
      while (replies.length === before && closeCode === undefined && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      tally.total += 1;
      tally.byKind.set('ws-frame', (tally.byKind.get('ws-frame') ?? 0) + 1);
      const reply = replies[before];
      if (expectClose !== undefined) {
        // 1009 for the oversized frame, or 1008 when the frame before it was the last bad one allowed
        // and the relay's close crossed our send: both are clean closes.
        if (closeCode !== expectClose && closeCode !== 1008) {
          fail(tally, `ws oversized frame: close ${closeCode}, replies ${JSON.stringify(replies.slice(before))}`);
        }
      } else if (reply !== undefined) {
        if (reply.type !== 'error' || typeof reply.error !== 'string' || !(String(reply.code) in RELAY_ERROR_STATUS) || (RELAY_ERROR_STATUS[reply.code as RelayErrorCode] ?? 0) >= 500) {
          fail(tally, `ws variant ${variant}: reply ${JSON.stringify(reply)}`);
        } else if (reply.id !== postId) {
          fail(tally, `ws variant ${variant}: reply id ${String(reply.id)}, expected ${String(postId)}`);
        }
      } else if (closeCode !== 1008) {
        fail(tally, `ws variant ${variant}: no reply, close ${closeCode}`);
      }
    }
  } finally {
    ws.terminate();
  }
  return sent;
}

async function fuzzWebSocket(url: string, count: number, fx: Fixture, random: SeededRandom, tally: Tally): Promise<void> {
  let remaining = count;
  const worker = async (): Promise<void> => {
    // Bounded: every connection sends at least one frame of the remaining budget.
    while (remaining > 0) {
      const budget = Math.min(remaining, 40);
      remaining -= budget;
      const sent = await fuzzOneSocket(url, budget, fx, random, tally);
      remaining += budget - sent; // a socket closed early: the rest goes to the next one
    }
  };
  await Promise.all(Array.from({ length: WS_CONCURRENCY }, () => worker()));
}

describe('relay fuzz', () => {
  let fx: Fixture & { relay: RelayProcess };
  let crashed = false;

  beforeAll(async () => {
    // The relay runs in its own process: its own core (the fuzz client is busy too) and its own
    // heap to measure; an in-memory SQLite store, because fsync cost is not what this test is about.
    const relay = await startRelayProcess({
      entry: RELAY_TEST_ENTRY,
      ipc: true,
      env: { RELAY_TEST_STORE: 'memory', RELAY_TEST_LIMITS: JSON.stringify(FUZZ_LIMITS) },
    });
    void relay.exited.then(() => {
      crashed = true;
    });
    fx = { ...(await makeFixture(relay.url)), relay };
  });

  afterAll(async () => {
    keepAliveAgent.destroy();
    await fx?.relay.stop();
  });

  it(`answers ${TOTAL} bad requests and frames with 4xx JSON or a clean close, and keeps earlier data`, async () => {
    const { relay } = fx;
    const eventsBefore = await drainEvents(relay.url, fx.owner, fx.channel);
    const infoBefore = await signedJson<ChannelInfoResponse>(relay.url, fx.owner, 'GET', `/v1/channels/${fx.channel}`);
    const statsBefore = await relay.request<Stats>('stats');
    const { heapUsed: heapBefore, rss: rssBefore } = await relay.request<Memory>('memory');

    const random = seededRandom(seed);
    const tally: Tally = { total: 0, byKind: new Map(), failures: [] };
    const wsCount = Math.round(TOTAL * WS_SHARE);
    const rawCount = Math.round(TOTAL * RAW_TCP_SHARE);
    const httpCount = TOTAL - wsCount - rawCount;
    const started = Date.now();
    const timed = async (name: string, run: Promise<void>): Promise<string> => {
      await run;
      return `${name} ${((Date.now() - started) / 1000).toFixed(1)} s`;
    };
    const partTimes = await Promise.all([
      timed('http', fuzzHttp(relay.url, httpCount, fx, random, tally)),
      timed('ws', fuzzWebSocket(relay.url, wsCount, fx, random, tally)),
      timed('raw', fuzzRawTcp(Number(new URL(relay.url).port), rawCount, random, tally)),
    ]);
    const elapsedMs = Date.now() - started;

    const { heapUsed: heapAfter, rss: rssAfter } = await relay.request<Memory>('memory');
    console.log(
      `fuzz seed=${seed}: ${tally.total} inputs in ${(elapsedMs / 1000).toFixed(1)} s ` +
        `(${Math.round(tally.total / (elapsedMs / 1000))}/s); ${[...tally.byKind].map(([k, n]) => `${k}=${n}`).join(' ')}; ` +
        `heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB, rss ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB; ` +
        `failures ${tally.failures.length}; done: ${partTimes.join(', ')}`,
    );
    console.log(`fuzz mean HTTP latency: ${[...LATENCY_MS].map(([k, v]) => `${k}=${(v / (tally.byKind.get(k) ?? 1)).toFixed(1)}ms`).join(' ')}`);
    expect(tally.failures).toEqual([]);
    expect(tally.total).toBeGreaterThanOrEqual(TOTAL);
    expect(heapAfter - heapBefore).toBeLessThan(MAX_HEAP_GROWTH_BYTES);

    // Still alive, and nothing stored before the flood changed.
    expect((await rawRequest(`${relay.url}/healthz`, 'GET', {})).status).toBe(200);
    const eventsAfter: RelayEvent[] = await drainEvents(relay.url, fx.owner, fx.channel);
    expect(eventsAfter).toEqual(eventsBefore);
    const infoAfter = await signedJson<ChannelInfoResponse>(relay.url, fx.owner, 'GET', `/v1/channels/${fx.channel}`);
    expect(infoAfter).toEqual(infoBefore);
    expect(await relay.request<Stats>('stats')).toEqual(statsBefore);
    expect(crashed).toBe(false);
    const blob = await rawRequest(`${relay.url}/v1/blobs/${fx.blobHash}`, 'GET', { 'covey-capability': fx.blobCapability });
    expect(blob.status).toBe(200);
    expect(blob.body.toString('utf8')).toBe('an encrypted attachment');
  }, TEST_TIMEOUT_MS);
});
