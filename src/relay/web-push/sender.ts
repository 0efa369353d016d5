/**
 * Sends one Web Push (RFC 8030) with an RFC 8291 (aes128gcm) encrypted payload and a VAPID
 * (RFC 8292) signature. `web-push` builds the encrypted body and the headers; the request itself
 * is made here, so the relay decides where it may connect (endpoint.ts), bounds time and the
 * response it reads, and never follows redirects.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import webpush from 'web-push';
import type { PushSubscriptionRecord, VapidKeys } from '../store/types.js';
import { checkPushEndpoint, type PushEndpointPolicy } from './endpoint.js';

/** Response bytes read from a push service (its answers are short; the rest is dropped). */
const MAX_RESPONSE_BYTES = 4096;
/**
 * RFC 8030 §5.4 Topic: a push not yet delivered is replaced by a newer one with the same topic,
 * so a phone that was off gets one wake-up, not hundreds.
 */
const PUSH_TOPIC = 'covey-wake';

export interface PushSendOptions {
  readonly vapid: VapidKeys;
  /** VAPID `sub` claim: mailto: or https: contact of the relay operator. */
  readonly subject: string;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly policy: PushEndpointPolicy;
}

/**
 * - sent: the push service accepted it (2xx).
 * - gone: 404/410, the subscription expired or was unsubscribed: drop it (RFC 8030 §7.3).
 * - later: 429 or 503 with Retry-After: try again no sooner than `afterMs`.
 * - failed: anything else (refused endpoint, network error, timeout, other status).
 */
export type PushOutcome =
  | { readonly kind: 'sent'; readonly status: number }
  | { readonly kind: 'gone'; readonly status: number }
  | { readonly kind: 'later'; readonly status: number; readonly afterMs: number }
  | { readonly kind: 'failed'; readonly reason: string };

function retryAfterMs(response: IncomingMessage): number {
  const header = response.headers['retry-after'];
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

export function sendPush(subscription: PushSubscriptionRecord, payload: string, options: PushSendOptions): Promise<PushOutcome> {
  const url = checkPushEndpoint(subscription.endpoint, options.policy);
  if (typeof url === 'string') return Promise.resolve({ kind: 'failed', reason: url });
  let details: ReturnType<typeof webpush.generateRequestDetails>;
  try {
    details = webpush.generateRequestDetails({ endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } }, payload, {
      vapidDetails: { subject: options.subject, publicKey: options.vapid.publicKey, privateKey: options.vapid.privateKey },
      TTL: Math.ceil(options.ttlMs / 1000),
      contentEncoding: 'aes128gcm',
      urgency: 'normal',
      topic: PUSH_TOPIC,
    });
  } catch (error) {
    // Bad subscription keys (registration checks them, but a stored one could predate a check).
    return Promise.resolve({ kind: 'failed', reason: `cannot encrypt: ${error instanceof Error ? error.message : String(error)}` });
  }
  const body = details.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(details.headers)) headers[name] = String(value);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PushOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: PushOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = send(url, { method: 'POST', headers }, (response) => {
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BYTES) response.destroy();
      });
      response.on('error', () => undefined);
      const status = response.statusCode ?? 0;
      response.on('close', () => {
        if (status >= 200 && status < 300) settle({ kind: 'sent', status });
        else if (status === 404 || status === 410) settle({ kind: 'gone', status });
        else if (status === 429 || status === 503) settle({ kind: 'later', status, afterMs: retryAfterMs(response) });
        else settle({ kind: 'failed', reason: `push service answered ${status}` });
      });
    });
    // The whole exchange, not just socket inactivity, is bounded.
    const timer = setTimeout(() => {
      req.destroy();
      settle({ kind: 'failed', reason: 'push service timed out' });
    }, options.timeoutMs);
    req.on('error', (error) => settle({ kind: 'failed', reason: error.message }));
    req.end(body);
  });
}
