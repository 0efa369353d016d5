/**
 * The receiving side of Web Push for tests: an HTTP server on loopback that plays the push
 * service (RFC 8030 §5: accepts a POST to a subscription's endpoint) and the browser (decrypts the
 * RFC 8291 aes128gcm payload with the subscription's private key and auth secret, written here
 * with node:crypto, independent of the relay's `web-push`), and checks the VAPID JWT (RFC 8292:
 * ES256, aud = the endpoint's origin, exp within 24 h, sub).
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** RFC 8188 §2.1: salt (16) | record size (4) | key id length (1) | key id. */
const SALT_BYTES = 16;
const TAG_BYTES = 16;
/** RFC 8292 §2: a JWT valid for more than 24 hours must be refused. */
const MAX_JWT_LIFETIME_S = 24 * 60 * 60;

/** A browser's PushSubscription: endpoint plus the keys only the browser holds privately. */
export interface TestSubscription {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
  /** The private half (ECDH P-256) and auth secret, to decrypt. */
  readonly privateKey: Buffer;
}

export interface ReceivedPush {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface VapidClaims {
  readonly aud: string;
  readonly exp: number;
  readonly sub: string;
  /** The `k` public key (base64url, 65-byte point) the JWT verified under. */
  readonly publicKey: string;
}

export class PushReceiver {
  readonly received: ReceivedPush[] = [];
  /** Status to answer per path (default 201 Created, RFC 8030 §5). */
  readonly statusFor = new Map<string, number>();
  /** While set, requests are held (not answered) until `release()`. */
  private held: Array<() => void> | undefined;
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<PushReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const receiver = new PushReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => receiver.accept(req, Buffer.concat(chunks), res));
    });
    return receiver;
  }

  private accept(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const path = req.url ?? '/';
    this.received.push({ path, headers: req.headers, body });
    const answer = (): void => {
      res.writeHead(this.statusFor.get(path) ?? 201);
      res.end();
    };
    if (this.held !== undefined) this.held.push(answer);
    else answer();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** A fresh browser subscription whose endpoint is on this receiver. */
  subscription(): TestSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    return {
      endpoint: `${this.url}/push/${randomBytes(12).toString('base64url')}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
      privateKey: ecdh.getPrivateKey(),
    };
  }

  /** Pushes received for a subscription. */
  pushesFor(subscription: TestSubscription): ReceivedPush[] {
    const path = new URL(subscription.endpoint).pathname;
    return this.received.filter((push) => push.path === path);
  }

  /** Waits until `count` pushes for the subscription arrived (or fails after `timeoutMs`). */
  async waitFor(subscription: TestSubscription, count: number, timeoutMs = 5_000): Promise<ReceivedPush[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.pushesFor(subscription).length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} pushes, got ${this.pushesFor(subscription).length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.pushesFor(subscription);
  }

  /** Hold every request from now on until `release()`. */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const answer of held) answer();
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** RFC 8291 §3.4 and RFC 8188 §2: the plaintext of an aes128gcm Web Push body. */
export function decryptPush(subscription: TestSubscription, push: ReceivedPush): Buffer {
  if (push.headers['content-encoding'] !== 'aes128gcm') throw new Error(`content-encoding ${push.headers['content-encoding']}`);
  const body = push.body;
  const salt = body.subarray(0, SALT_BYTES);
  const recordSize = body.readUInt32BE(SALT_BYTES);
  const keyIdLength = body[SALT_BYTES + 4] ?? 0;
  const asPublic = body.subarray(SALT_BYTES + 5, SALT_BYTES + 5 + keyIdLength);
  const record = body.subarray(SALT_BYTES + 5 + keyIdLength);
  if (record.length > recordSize) throw new Error('more than one record: a push is one record');
  const uaPublic = Buffer.from(subscription.keys.p256dh, 'base64url');
  const authSecret = Buffer.from(subscription.keys.auth, 'base64url');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(subscription.privateKey);
  const ecdhSecret = ecdh.computeSecret(asPublic);
  // RFC 8291 §3.4: IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32).
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  // RFC 8188 §2.2, §2.3: content encryption key and nonce (one record: sequence number 0).
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0', 'latin1'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0', 'latin1'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - TAG_BYTES)), decipher.final()]);
  // RFC 8188 §2: the last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('missing last-record delimiter');
  return padded.subarray(0, end);
}

/** Verifies the VAPID Authorization header (RFC 8292 §3: `vapid t=<JWT>, k=<key>`) and returns its claims. */
export function checkVapid(push: ReceivedPush, endpoint: string, nowMs: number): VapidClaims {
  const header = String(push.headers.authorization ?? '');
  const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header);
  if (match === null) throw new Error(`not a VAPID authorization header: ${header}`);
  const [, jwt = '', publicKey = ''] = match;
  const [headerPart = '', payloadPart = '', signaturePart = ''] = jwt.split('.');
  const jose = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as { alg?: string; typ?: string };
  if (jose.alg !== 'ES256') throw new Error(`JWT alg ${jose.alg}`);
  const point = Buffer.from(publicKey, 'base64url');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const signed = Buffer.from(`${headerPart}.${payloadPart}`, 'utf8');
  if (!verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signaturePart, 'base64url'))) {
    throw new Error('VAPID JWT signature does not verify');
  }
  const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as { aud?: string; exp?: number; sub?: string };
  if (claims.aud !== new URL(endpoint).origin) throw new Error(`JWT aud ${claims.aud}, expected ${new URL(endpoint).origin}`);
  const nowS = Math.floor(nowMs / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= nowS || claims.exp > nowS + MAX_JWT_LIFETIME_S) throw new Error(`JWT exp ${claims.exp}`);
  if (typeof claims.sub !== 'string') throw new Error('JWT without sub');
  return { aud: claims.aud, exp: claims.exp, sub: claims.sub, publicKey };
}
