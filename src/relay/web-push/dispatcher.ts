/**
 * Web Push dispatch (issue 12 §5): when an event is appended through this node, every member of
 * the channel with a push subscription and no live WebSocket subscription (on any node: the
 * store keeps presence) gets a content-free wake-up, so its service worker fetches the new
 * events with its fetch token. Never to the member who caused the event.
 *
 * Coalescing and rate: per endpoint (one browser's PushSubscription, possibly registered in many
 * channels), at most one push per `pushMinIntervalMs`; events meanwhile collect their channels
 * and go out together when the interval ends. At most `pushMaxConcurrent` requests in flight.
 * A 404/410 drops the subscription (RFC 8030 §7.3). Per node: with N relay nodes an endpoint
 * can get up to N pushes per interval.
 */
import { createPublicKey } from 'node:crypto';
import webpush from 'web-push';
import type { ChannelId, MemberKey, PushWakePayload, RelayEvent } from '../../shared/relay-api.js';
import { decodeBase64UrlExact } from '../ids.js';
import type { RelayLimits } from '../limits.js';
import type { Logger } from '../log.js';
import type { PushSubscriptionRecord, RelayStore, VapidKeys } from '../store/types.js';
import { checkPushEndpoint, type PushEndpointPolicy } from './endpoint.js';
import { sendPush, type PushOutcome } from './sender.js';

/** Channels named in one push payload (the rest follow in the next one): keeps it far below 4 KiB. */
export const PUSH_MAX_CHANNELS_PER_MESSAGE = 40;
/** P-256 uncompressed point and auth secret sizes (RFC 8291 §2, §3.2). */
const P256_POINT_BYTES = 65;
const AUTH_SECRET_BYTES = 16;

export interface WebPushSettings {
  /** VAPID `sub` (mailto: or https:), RELAY_VAPID_SUBJECT. */
  readonly subject: string;
  readonly allowedHosts: readonly string[];
  /** Tests only: allow http(s) endpoints on loopback. */
  readonly allowLoopback: boolean;
}

export interface WebPushService {
  /** The VAPID public key (applicationServerKey), base64url. */
  readonly publicKey: string;
  /** A registration's subscription if valid, else a human reason. */
  checkSubscription(endpoint: unknown, p256dh: unknown, auth: unknown): PushSubscriptionRecord | string;
  /** An event was appended through this node. */
  appended(channelId: ChannelId, event: RelayEvent): void;
  /** Pushes sent, by outcome kind (metrics). */
  readonly counts: Readonly<Record<PushOutcome['kind'] | 'dropped', number>>;
  /** Resolves once no push-target look-up is under way (tests: what was appended is enqueued). */
  lookUpsDone(): Promise<void>;
  /** Stops timers; in-flight pushes finish or time out on their own. */
  close(): void;
}

interface EndpointState {
  subscription: PushSubscriptionRecord;
  /** Channels with news for this endpoint, with the member whose registration named it. */
  readonly channels: Map<ChannelId, MemberKey>;
  sending: boolean;
  /** Waiting for the end of the interval (or for a free request slot). */
  timer: ReturnType<typeof setTimeout> | undefined;
  queued: boolean;
  /** performance.now() before which no push may go to this endpoint. */
  notBeforeMs: number;
}

/** Who caused an event: they are not woken for it. */
function actorsOf(event: RelayEvent): MemberKey[] {
  if (event.type === 'packet') return event.author === null ? [] : [event.author];
  if (event.type === 'member-joined') return [event.member];
  return [event.member, event.by];
}

function isP256Point(bytes: Buffer): boolean {
  if (bytes[0] !== 0x04) return false;
  try {
    createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: bytes.subarray(1, 33).toString('base64url'), y: bytes.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    return true;
  } catch {
    return false;
  }
}

/** Fresh VAPID keys in the stored form. */
export function newVapidKeys(): VapidKeys {
  return webpush.generateVAPIDKeys();
}

export function makeWebPush(
  store: RelayStore,
  vapid: VapidKeys,
  limits: RelayLimits,
  settings: WebPushSettings,
  logger: Logger,
): WebPushService {
  const policy: PushEndpointPolicy = {
    allowedHosts: settings.allowedHosts,
    allowLoopback: settings.allowLoopback,
    maxChars: limits.maxPushEndpointChars,
  };
  const counts = { sent: 0, gone: 0, later: 0, failed: 0, dropped: 0 };
  const endpoints = new Map<string, EndpointState>();
  /** Endpoints ready to send, waiting for a free request slot. */
  const ready: EndpointState[] = [];
  let inFlight = 0;
  let closed = false;
  /** Per channel: events since the last lookup, and how many of them each actor caused. */
  const batches = new Map<ChannelId, { events: number; byActor: Map<MemberKey, number> }>();
  const lookingUp = new Set<ChannelId>();
  /** The look-ups under way (lookUpsDone). */
  const lookUps = new Set<Promise<void>>();

  const finishIdle = (state: EndpointState): void => {
    if (!state.sending && state.channels.size === 0 && state.timer === undefined && !state.queued) {
      endpoints.delete(state.subscription.endpoint);
    }
  };

  const schedule = (state: EndpointState): void => {
    if (closed || state.sending || state.timer !== undefined || state.queued) return;
    if (state.channels.size === 0) return finishIdle(state);
    const waitMs = state.notBeforeMs - performance.now();
    if (waitMs > 0) {
      state.timer = setTimeout(() => {
        state.timer = undefined;
        schedule(state);
      }, waitMs);
      state.timer.unref();
      return;
    }
    state.queued = true;
    ready.push(state);
    pumpReady();
  };

  const pumpReady = (): void => {
    // Bounded: each turn removes one entry from `ready`.
    while (inFlight < limits.pushMaxConcurrent && ready.length > 0) {
      const state = ready.shift();
      if (state === undefined) break;
      state.queued = false;
      fire(state);
    }
  };

  const fire = (state: EndpointState): void => {
    const taken = [...state.channels].slice(0, PUSH_MAX_CHANNELS_PER_MESSAGE);
    for (const [channel] of taken) state.channels.delete(channel);
    const payload: PushWakePayload = { type: 'covey-wake', channels: taken.map(([channel]) => channel) };
    const subscription = state.subscription;
    state.sending = true;
    state.notBeforeMs = performance.now() + limits.pushMinIntervalMs;
    inFlight += 1;
    void sendPush(subscription, JSON.stringify(payload), {
      vapid,
      subject: settings.subject,
      ttlMs: limits.pushTtlMs,
      timeoutMs: limits.pushTimeoutMs,
      policy,
    }).then((outcome) => {
      inFlight -= 1;
      state.sending = false;
      counts[outcome.kind] += 1;
      if (outcome.kind === 'gone') {
        // Every registration of this endpoint we know of is dead; others are dropped when tried.
        const dead = [...taken, ...state.channels];
        state.channels.clear();
        for (const [channel, member] of dead) {
          store.deletePushSubscription(channel, member, subscription.endpoint).catch((error: unknown) => {
            logger.warn('could not drop an expired push subscription', { error: String(error) });
          });
        }
      } else if (outcome.kind === 'later') {
        state.notBeforeMs = performance.now() + Math.max(outcome.afterMs, limits.pushMinIntervalMs);
        for (const [channel, member] of taken) if (!state.channels.has(channel)) state.channels.set(channel, member);
      } else if (outcome.kind === 'failed') {
        // The host only: endpoint paths are capabilities of the push service.
        logger.warn('push failed', { host: new URL(subscription.endpoint).host, reason: outcome.reason });
      }
      if (state.channels.size > 0) schedule(state);
      else if (!closed) {
        // Keep the state, and with it the rate limit, until the interval has passed.
        state.timer = setTimeout(() => {
          state.timer = undefined;
          schedule(state);
        }, Math.max(0, state.notBeforeMs - performance.now()));
        state.timer.unref();
      }
      pumpReady();
    });
  };

  const enqueue = (subscription: PushSubscriptionRecord, channelId: ChannelId, member: MemberKey): void => {
    let state = endpoints.get(subscription.endpoint);
    if (state === undefined) {
      if (endpoints.size >= limits.pushMaxTrackedEndpoints) {
        counts.dropped += 1;
        return;
      }
      state = { subscription, channels: new Map(), sending: false, timer: undefined, queued: false, notBeforeMs: 0 };
      endpoints.set(subscription.endpoint, state);
    }
    state.subscription = subscription;
    state.channels.set(channelId, member);
    schedule(state);
  };

  const lookUp = async (channelId: ChannelId): Promise<void> => {
    lookingUp.add(channelId);
    try {
      // Bounded: each round consumes the batch that was there when it started.
      for (let batch = batches.get(channelId); batch !== undefined && !closed; batch = batches.get(channelId)) {
        batches.delete(channelId);
        const targets = await store.pushTargets(channelId);
        for (const target of targets) {
          if (target.online) continue;
          if (batch.events - (batch.byActor.get(target.member) ?? 0) <= 0) continue;
          enqueue(target.subscription, channelId, target.member);
        }
      }
    } catch (error) {
      logger.error('push target lookup failed', { error: String(error) });
    } finally {
      lookingUp.delete(channelId);
    }
  };

  return {
    publicKey: vapid.publicKey,
    counts,
    checkSubscription(endpoint, p256dh, auth) {
      const url = checkPushEndpoint(endpoint, policy);
      if (typeof url === 'string') return url;
      const point = decodeBase64UrlExact(p256dh, P256_POINT_BYTES);
      if (point === undefined || !isP256Point(point)) return 'keys.p256dh must be an uncompressed P-256 point (65 bytes, base64url)';
      if (decodeBase64UrlExact(auth, AUTH_SECRET_BYTES) === undefined) return 'keys.auth must be 16 bytes, base64url';
      return { endpoint: endpoint as string, p256dh: p256dh as string, auth: auth as string };
    },
    appended(channelId, event) {
      // Only what a person wrote wakes anyone (PacketEvent.wake; inbox deposits are contact
      // requests and invitations): acks, heartbeats, joins and leaves would wake every closed
      // phone of a group each minute.
      if (closed || event.type !== 'packet' || (event.wake !== true && event.author !== null)) return;
      let batch = batches.get(channelId);
      if (batch === undefined) {
        if (batches.size >= limits.pushMaxTrackedEndpoints) {
          counts.dropped += 1;
          return;
        }
        batch = { events: 0, byActor: new Map() };
        batches.set(channelId, batch);
      }
      batch.events += 1;
      for (const actor of new Set(actorsOf(event))) batch.byActor.set(actor, (batch.byActor.get(actor) ?? 0) + 1);
      if (!lookingUp.has(channelId)) {
        const running = lookUp(channelId);
        lookUps.add(running);
        void running.finally(() => lookUps.delete(running));
      }
    },
    async lookUpsDone() {
      // Bounded: a look-up drains its channel's batches and no new one starts without an append.
      while (lookUps.size > 0) await Promise.all(lookUps);
    },
    close() {
      closed = true;
      for (const state of endpoints.values()) if (state.timer !== undefined) clearTimeout(state.timer);
      endpoints.clear();
      ready.length = 0;
      batches.clear();
    },
  };
}
