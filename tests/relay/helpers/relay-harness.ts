/**
 * Helpers for relay tests: members with ed25519 keys (node:crypto), a RelayClient over Node's
 * fetch and the `ws` WebSocket, raw signed requests that can be tampered with, and a WebSocket
 * frame collector. Every relay and socket a test opens is closed by `cleanup()`.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import WebSocket from 'ws';
import { startRelay, type RelayOptions, type RunningRelay } from '../../../src/relay/server.js';
import type { RelayStore } from '../../../src/relay/store/types.js';
import { relaySigningText, type ChannelId, type MemberKey, type RelayErrorBody, type RelayEvent, type ServerFrame } from '../../../src/shared/relay-api.js';
import { RelayClient, type FetchLike, type RelaySigner, type WebSocketConstructor } from '../../../src/worker/relay-client.js';

/** How long a test waits for an expected WebSocket frame before failing. */
const FRAME_TIMEOUT_MS = 5_000;

/** A store backend the contract suite runs on: open() gives a store on the same data each time. */
export interface StoreHarness {
  open(): Promise<RelayStore>;
  /** Deletes the backing data (temp dir, Redis keys). */
  destroy(): Promise<void>;
  /** Everything stored, as text (database files, or every Redis key and value): secrets must not be in it. */
  dump(): Promise<string>;
}
export type MakeStoreHarness = () => Promise<StoreHarness>;

export interface Member extends RelaySigner {
  /** Signs synchronously (for raw requests). */
  signNow(message: Uint8Array): Uint8Array;
}

export function makeMember(): Member {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const signNow = (message: Uint8Array): Uint8Array => new Uint8Array(sign(null, message, privateKey));
  return {
    publicKey: raw.toString('base64url') as MemberKey,
    signNow,
    sign: async (message) => signNow(message),
  };
}

export const nodeFetch = fetch as unknown as FetchLike;
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

export interface RawRequest {
  method: string;
  path: string;
  /** JSON value, or raw bytes / text sent as-is. */
  body?: unknown;
  rawBody?: Uint8Array | string;
  signer?: Member;
  /** Tampering: replace any signed header. */
  headers?: Record<string, string>;
  nonce?: string;
  timeMs?: number;
  /** Sign this path instead of the one sent. */
  signedPath?: string;
  /** Sign these body bytes instead of the ones sent. */
  signedBody?: Uint8Array | string;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  json: unknown;
  text: string;
}

export class RelayTestEnv {
  private readonly relays: RunningRelay[] = [];
  private readonly sockets: WebSocket[] = [];
  /** Fake relay + client clock, shared; tests move it forward. */
  clockMs = Date.now();
  readonly now = (): number => this.clockMs;

  constructor(readonly harness: StoreHarness) {}

  async relay(options: Partial<Omit<RelayOptions, 'store'>> = {}): Promise<RunningRelay> {
    const store = await this.harness.open();
    const relay = await startRelay({ store, port: 0, logLevel: 'silent', now: this.now, ...options });
    this.relays.push(relay);
    return relay;
  }

  client(relay: RunningRelay, signer?: Member): RelayClient {
    return new RelayClient({
      baseUrl: relay.url,
      fetch: nodeFetch,
      WebSocket: NodeWebSocket,
      now: this.now,
      ...(signer === undefined ? {} : { signer }),
    });
  }

  async raw(relay: RunningRelay, request: RawRequest): Promise<RawResponse> {
    const bytes =
      request.rawBody !== undefined
        ? Buffer.from(request.rawBody)
        : request.body !== undefined
          ? Buffer.from(JSON.stringify(request.body))
          : Buffer.alloc(0);
    const headers: Record<string, string> = {};
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (request.signer !== undefined) {
      const nonce = request.nonce ?? randomBytes(16).toString('base64url');
      const timeMs = request.timeMs ?? this.clockMs;
      const signedBody = request.signedBody !== undefined ? Buffer.from(request.signedBody) : bytes;
      const text = relaySigningText(
        request.method,
        request.signedPath ?? request.path,
        createHash('sha256').update(signedBody).digest('base64url'),
        nonce,
        timeMs,
      );
      headers['covey-key'] = request.signer.publicKey;
      headers['covey-nonce'] = nonce;
      headers['covey-time'] = String(timeMs);
      headers['covey-signature'] = Buffer.from(request.signer.signNow(Buffer.from(text, 'utf8'))).toString('base64url');
    }
    Object.assign(headers, request.headers);
    const response = await fetch(relay.url + request.path, {
      method: request.method,
      headers,
      ...(bytes.length > 0 || request.rawBody !== undefined ? { body: bytes } : {}),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, json, text };
  }

  /** Opens a raw WebSocket to the relay and collects its frames. */
  async socket(relay: RunningRelay): Promise<FrameCollector> {
    const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/ws`);
    this.sockets.push(ws);
    const collector = new FrameCollector(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return collector;
  }

  async cleanup(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await Promise.all(this.relays.map((relay) => relay.close()));
    this.relays.length = 0;
    this.sockets.length = 0;
  }
}

/** Asserts the relay's error shape: exactly {error: string, code} with the code's status. */
export function errorBody(response: RawResponse): RelayErrorBody {
  const body = response.json as RelayErrorBody;
  if (typeof body !== 'object' || body === null || typeof body.error !== 'string' || typeof body.code !== 'string') {
    throw new Error(`not a relay error body: ${response.status} ${response.text}`);
  }
  if (Object.keys(body).sort().join(',') !== 'code,error') throw new Error(`extra fields in error body: ${response.text}`);
  return body;
}

/** The events among a socket's frames (of `channel` when given), sent alone (`event`) or batched (`events`), in order. */
export function framedEvents(frames: readonly ServerFrame[], channel?: ChannelId): RelayEvent[] {
  return frames.flatMap((f) => {
    if (channel !== undefined && (f.type === 'event' || f.type === 'events') && f.channel !== channel) return [];
    return f.type === 'event' ? [f.event] : f.type === 'events' ? f.events : [];
  });
}

export class FrameCollector {
  readonly frames: ServerFrame[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as ServerFrame);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits until `predicate` holds over the frames so far (or the socket closed). */
  async until(predicate: (frames: ServerFrame[]) => boolean, what: string): Promise<ServerFrame[]> {
    const deadline = Date.now() + FRAME_TIMEOUT_MS;
    while (!predicate(this.frames)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.frames;
  }

  async closed(): Promise<number> {
    await this.until(() => this.closeCode !== undefined, 'close');
    return this.closeCode ?? 0;
  }
}

/** Base64url of UTF-8 text: handy opaque packets. */
export function packetOf(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}
