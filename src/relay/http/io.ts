/** Reading bounded request bodies and writing JSON / byte responses with CORS headers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError } from './errors.js';

/**
 * CORS: the app may talk to a relay on another origin (a contact's relay URL). No cookies are
 * involved, every request carries its own signature, so any origin may call. These two go on
 * every answer (Fetch standard "CORS check" and exposed headers); the methods, request headers
 * and max-age are read only from a preflight's answer, so only OPTIONS carries them (fewer bytes
 * and header lines on every post and every push of a busy relay).
 */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'retry-after',
};

/** The answer to a CORS preflight (OPTIONS): what a cross-origin app may send, for 10 minutes. */
export const CORS_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  ...CORS_HEADERS,
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'content-type, covey-key, covey-nonce, covey-time, covey-signature, covey-mac, covey-capability, covey-fetch-token',
  'access-control-max-age': '600',
};

/**
 * On every API answer: never rendered as a page, never sniffed into one (a blob is ciphertext,
 * but a browser must not be talked into running it as HTML).
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
};

const EMPTY = new Uint8Array(0);

/** Reads the whole body, refusing (413) as soon as it exceeds `limitBytes`. */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) {
    return Promise.reject(new RelayError('body-too-large', `body over ${limitBytes} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      total += chunk.length;
      if (total > limitBytes) {
        done = true;
        chunks.length = 0;
        reject(new RelayError('body-too-large', `body over ${limitBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(total === 0 ? EMPTY : new Uint8Array(Buffer.concat(chunks, total)));
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      reject(new RelayError('bad-request', `body could not be read: ${error.message}`));
    });
    // A client that goes away mid-body: without this the handler would wait forever.
    req.on('close', () => {
      if (done) return;
      done = true;
      reject(new RelayError('bad-request', 'request aborted before its body ended'));
    });
  });
}

/** Parses a JSON object body (400 on anything else). */
export function parseJsonObject(body: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new RelayError('bad-request', 'body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RelayError('bad-request', 'body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...CORS_HEADERS,
    ...API_SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendBytes(res: ServerResponse, status: number, bytes: Uint8Array, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...CORS_HEADERS,
    ...API_SECURITY_HEADERS,
    'content-type': 'application/octet-stream',
    'content-length': String(bytes.byteLength),
    ...headers,
  });
  res.end(bytes);
}

/** A complete HTTP/1.1 JSON error response as text, for raw sockets (upgrades, client errors). */
export function rawErrorResponse(status: number, code: string, error: string): string {
  const body = JSON.stringify({ error, code });
  return (
    `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}
