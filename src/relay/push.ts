/**
 * WebSocket push (issue 5 §6): one connection subscribes to many channels, each from its own seq;
 * every new event goes to every subscribed member at once. The store's event listener (on every
 * node, via Redis pub/sub for the Redis store) drives delivery; a subscription that is behind,
 * or sees a gap, catches up with readEvents ("pumping"), so each channel's events arrive in seq
 * order with no gaps or repeats other than those retention made.
 *
 * Hostile clients (issue 13): frames draw on the client address's one rate-limit bucket, shared
 * with its HTTP requests; catch-up waits while the socket's queue is over half of
 * maxWsBufferedBytes (a client that does not read holds at most that, then is dropped after
 * responseDrainTimeoutMs); a live event that would overfill the queue drops the connection (1013).
 * A removal ends the member's subscriptions at once, whatever their cursor.
 *
 * A `post` frame is the HTTP post route carried over the socket (routes/channels.ts
 * postPacketFrame): the same checks and store step, answered with the frame's id. Posts run side by
 * side, outside the frame queue (a post does not wait for a subscription's catch-up), and count as
 * requests in flight of the client address, with its HTTP requests.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  RELAY_ERROR_STATUS,
  RELAY_SUBSCRIBE_METHOD,
  relaySubscribePath,
  type ChannelId,
  type MemberKey,
  type MemberLeftEvent,
  type RelayErrorCode,
  type RelayEvent,
  type ServerFrame,
} from '../shared/relay-api.js';
import { authenticate } from './auth.js';
import type { RelayDeps } from './http/context.js';
import { RelayError, isRelayError } from './http/errors.js';
import { rawErrorResponse } from './http/io.js';
import { parseChannelId } from './ids.js';
import type { Logger } from './log.js';
import type { RateLimiter } from './rate-limit.js';
import { splitStored } from './push-catchup.js';
import { makeTickWriter, textFrame } from './push-wire.js';
import { postPacketFrame } from './routes/channels.js';
import { StoreUnavailableError } from './store/types.js';

/** Events read per catch-up step (also capped by maxReadBytes): bounds memory per subscription. */
const PUMP_BATCH_EVENTS = 200;
/** Channels whose head is read at once when the store asks for a resync. */
const RESYNC_CONCURRENCY = 64;
/** How often a catch-up that waits for a slow reader looks at its queue again. */
const DRAIN_POLL_MS = 25;
/** WebSocket close codes (RFC 6455 §7.4.1). */
const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY = 1008;
const CLOSE_TRY_LATER = 1013;

const EMPTY = new Uint8Array(0);
/** RFC 6455 §4.1: the key is 16 random bytes in base64. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

interface Subscription {
  readonly channelId: ChannelId;
  readonly key: MemberKey;
  readonly conn: Connection;
  /** Highest seq sent (or the resume point). */
  lastSent: number;
  /** True while a catch-up read loop runs; live events then only raise `wantHead`. */
  pumping: boolean;
  wantHead: number;
  ended: boolean;
  /** The subscribe asked for `batch`: a catch-up's stored events go several to an `events` frame. */
  readonly batch: boolean;
}

interface Connection {
  readonly socket: WebSocket;
  /** The upgraded socket under `socket`: the hub writes its frames here itself (push-wire.ts). */
  readonly raw: Duplex;
  readonly client: string;
  readonly subscriptions: Map<ChannelId, Subscription>;
  badFrames: number;
  alive: boolean;
  /**
   * Frames other than posts are handled one at a time, in arrival order (their answers keep the
   * order of the frames).
   */
  queue: Promise<void>;
  /** Frames received and not yet handled (posts included). */
  queued: number;
  /** Post frames being stored: shutdown answers them before it closes the socket. */
  readonly posting: Set<Promise<void>>;
}

/**
 * A request being served, HTTP or a post frame (server.ts): `over` when the client address already
 * has maxRequestsInFlightPerClient; `done` ends it either way.
 */
export type StartRequest = (client: string) => { readonly over: boolean; done(): void };

export interface PushHub {
  /** Handles an HTTP upgrade on /v1/ws (limits checked first; refusals are JSON HTTP errors). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, client: string): void;
  connectionCount(): number;
  /** A member was removed from (or left) the channel: end its subscriptions here now. */
  memberRemoved(channelId: ChannelId, event: MemberLeftEvent): void;
  /** Closes every connection with 1001 and stops the ping timer. */
  close(): Promise<void>;
}

/** The member whose request made the event (the one waiting for its HTTP answer); null for a deposit. */
function makerOf(event: RelayEvent): MemberKey | null {
  switch (event.type) {
    case 'packet':
      return event.author;
    case 'member-left':
      return event.by;
    case 'member-joined':
      return event.member;
  }
}

/**
 * A channel's subscriptions in fan-out order: every other member's first, the maker's own
 * connections last. The maker already has what it posted (its client shows a message before the
 * relay has it, and its HTTP answer says the post is stored); the others are waiting for it. On a
 * device that runs several clients, or a relay with many subscribers, the copy back to the maker
 * would otherwise be sent, and handled, ahead of theirs. Each connection still gets every event
 * in seq order: only the order across connections changes.
 */
function makerLast(set: ReadonlySet<Subscription>, maker: MemberKey | null): Subscription[] {
  const others: Subscription[] = [];
  const own: Subscription[] = [];
  for (const sub of set) (sub.key === maker ? own : others).push(sub);
  if (own.length > 0) others.push(...own);
  return others;
}

/** A post frame's request id: a safe integer ≥ 0; undefined when the frame has none or a malformed one. */
function requestId(frame: Readonly<Record<string, unknown>>): number | undefined {
  const id = frame['id'];
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

export function makePushHub(deps: RelayDeps, rateLimiter: RateLimiter, logger: Logger, startRequest: StartRequest): PushHub {
  const { limits, metrics, store } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxWsFrameBytes, perMessageDeflate: false });
  const connections = new Set<Connection>();
  const perClient = new Map<string, number>();
  const byChannel = new Map<ChannelId, Set<Subscription>>();
  let closing = false;

  const wire = makeTickWriter();

  /**
   * Sends a frame: `framed` when it was already framed for several subscribers (an event: JSON,
   * UTF-8 and WebSocket framing once per event, not once per subscriber). Every frame of the hub
   * goes through the tick writer (push-wire.ts), so a connection's frames keep their order.
   */
  const send = (conn: Connection, frame: ServerFrame, framed?: Buffer): void => {
    if (conn.socket.readyState !== conn.socket.OPEN) return;
    const bytes = framed ?? textFrame(JSON.stringify(frame));
    // A reader that cannot keep up is dropped rather than buffered without bound; it resumes
    // from its last seq when it reconnects. (bufferedAmount counts this tick's corked frames too.)
    if (conn.socket.bufferedAmount + bytes.length > limits.maxWsBufferedBytes) {
      conn.socket.terminate();
      return;
    }
    wire.write(conn.raw, bytes);
  };

  const sendError = (conn: Connection, code: RelayErrorCode, error: string, channel?: ChannelId): void => {
    send(conn, channel === undefined ? { type: 'error', code, error } : { type: 'error', code, error, channel });
  };

  /** Refuses a frame as malformed (or over the budget); `id`: the post frame it answers. */
  const bad = (conn: Connection, code: RelayErrorCode, error: string, id?: number): void => {
    conn.badFrames += 1;
    send(conn, id === undefined ? { type: 'error', code, error } : { type: 'error', code, error, id });
    if (conn.badFrames >= limits.maxWsBadFrames) conn.socket.close(CLOSE_POLICY, 'too many bad frames');
  };

  /** Presence for Web Push: a member with a live subscription here is not woken by push. */
  const setOnline = (sub: Subscription, delta: 1 | -1): void => {
    store.setOnline(sub.channelId, sub.key, delta).catch((error: unknown) => logger.warn('presence update failed', { error: String(error) }));
  };

  const endSubscription = (sub: Subscription): void => {
    if (sub.ended) return;
    sub.ended = true;
    setOnline(sub, -1);
    metrics.subscriptions -= 1;
    if (sub.conn.subscriptions.get(sub.channelId) === sub) sub.conn.subscriptions.delete(sub.channelId);
    const set = byChannel.get(sub.channelId);
    set?.delete(sub);
    if (set?.size === 0) byChannel.delete(sub.channelId);
  };

  /** Ends a subscription because its member is no longer in the channel. */
  const endRemoved = (sub: Subscription): void => {
    if (sub.ended) return;
    send(sub.conn, { type: 'unsubscribed', channel: sub.channelId, reason: 'removed' });
    endSubscription(sub);
  };

  /** Waits until the connection's queue is below half the cap; false if it closed or timed out. */
  const drained = async (conn: Connection): Promise<boolean> => {
    const deadline = performance.now() + limits.responseDrainTimeoutMs;
    // Bounded by the deadline.
    while (conn.socket.readyState === conn.socket.OPEN && conn.socket.bufferedAmount > limits.maxWsBufferedBytes / 2) {
      if (performance.now() > deadline) {
        conn.socket.terminate();
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return conn.socket.readyState === conn.socket.OPEN;
  };

  /** Sends one event in order; ends the subscription after the member's own member-left. */
  const deliver = (sub: Subscription, event: RelayEvent, framed?: Buffer): void => {
    send(sub.conn, { type: 'event', channel: sub.channelId, event }, framed);
    metrics.eventsPushed += 1;
    sub.lastSent = event.seq;
    if (event.type === 'member-left' && event.member === sub.key) {
      send(sub.conn, { type: 'unsubscribed', channel: sub.channelId, reason: 'removed' });
      endSubscription(sub);
    }
  };

  /** Sends a read of stored events past the cursor: batched as the subscriber asked (push-catchup.ts). */
  const deliverStored = (sub: Subscription, events: readonly RelayEvent[]): void => {
    const { batch, single } = splitStored(events, sub.lastSent, sub.key, sub.batch);
    if (batch.length > 0) {
      send(sub.conn, { type: 'events', channel: sub.channelId, events: batch });
      metrics.eventsPushed += batch.length;
      sub.lastSent = batch.at(-1)!.seq;
    }
    for (const event of single) {
      if (sub.ended) return;
      deliver(sub, event);
    }
  };

  const pump = async (sub: Subscription): Promise<void> => {
    sub.pumping = true;
    /** An empty read already re-read once for a live event that came meanwhile (see below). */
    let reread = false;
    try {
      for (;;) {
        if (!(await drained(sub.conn)) || sub.ended) return;
        const events = await store.readEvents(sub.channelId, sub.lastSent, PUMP_BATCH_EVENTS, limits.maxReadBytes);
        if (sub.ended) return;
        deliverStored(sub, events);
        if (sub.ended) return;
        if (events.length === 0) {
          // Nothing stored past the cursor when the store read. A live event that came while the
          // read was out (wantHead) may have been stored after it ran: a store that reads and
          // appends on different connections (Redis) answers in either order. Read once more;
          // if that finds nothing either, the wanted events were trimmed: nothing more to read.
          if (sub.wantHead > sub.lastSent && !reread) {
            reread = true;
            continue;
          }
          return;
        }
        reread = false;
        const channel = events.length < PUMP_BATCH_EVENTS ? await store.getChannel(sub.channelId) : undefined;
        // Caught up when nothing is newer than what was sent (a byte-capped batch is short too).
        if (events.length < PUMP_BATCH_EVENTS && sub.wantHead <= sub.lastSent && (channel?.headSeq ?? 0) <= sub.lastSent) return;
      }
    } catch (error) {
      logger.error('push catch-up failed', { error: String(error) });
      sub.conn.socket.close(CLOSE_TRY_LATER, 'relay error');
    } finally {
      sub.pumping = false;
    }
  };

  const onEvent = (channelId: ChannelId, event: RelayEvent, frame?: string): void => {
    const set = byChannel.get(channelId);
    if (set === undefined) return;
    // One serialization, UTF-8 encoding and WebSocket framing per event, however many subscribers
    // this node has for the channel (no serialization when the store hands over the frame's JSON
    // ready to send: the Redis store publishes it whole).
    let framed: Buffer | undefined;
    for (const sub of makerLast(set, makerOf(event))) {
      if (sub.ended) continue;
      // A removal ends the subscription whatever its cursor: in order, the member-left event is
      // delivered first (below); otherwise the subscription ends now, with no events after it.
      if (event.type === 'member-left' && event.member === sub.key && (sub.pumping || event.seq !== sub.lastSent + 1)) {
        endRemoved(sub);
        continue;
      }
      if (sub.pumping) sub.wantHead = Math.max(sub.wantHead, event.seq);
      else if (event.seq === sub.lastSent + 1) {
        framed ??= textFrame(frame ?? JSON.stringify({ type: 'event', channel: channelId, event } satisfies ServerFrame));
        deliver(sub, event, framed);
      } else if (event.seq > sub.lastSent + 1) {
        sub.wantHead = event.seq;
        void pump(sub);
      }
    }
  };
  /**
   * The store may have missed events (its pub/sub connection came back): every subscription that
   * is behind its channel's head catches up from the log. One head read per channel, a bounded
   * number at a time.
   */
  const resync = async (): Promise<void> => {
    const channels = [...byChannel.keys()];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < channels.length; i = next++) {
        const channelId = channels[i];
        if (channelId === undefined) continue;
        const head = (await store.getChannel(channelId))?.headSeq ?? 0;
        for (const sub of [...(byChannel.get(channelId) ?? [])]) {
          if (sub.ended || sub.lastSent >= head) continue;
          sub.wantHead = Math.max(sub.wantHead, head);
          if (!sub.pumping) void pump(sub);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RESYNC_CONCURRENCY, channels.length) }, worker));
  };
  const unsubscribeStore = store.subscribe(onEvent, () => {
    resync().catch((error: unknown) => logger.warn('push resync failed', { error: String(error) }));
  });

  const subscribe = async (conn: Connection, frame: Record<string, unknown>): Promise<void> => {
    const channelId = parseChannelId(frame['channel']);
    if (channelId === undefined) {
      sendError(conn, 'bad-request', 'malformed channel id');
      return;
    }
    const afterSeq = frame['afterSeq'];
    if (typeof afterSeq !== 'number' || !Number.isSafeInteger(afterSeq) || afterSeq < 0) {
      sendError(conn, 'bad-request', 'afterSeq must be a non-negative integer', channelId);
      return;
    }
    let key: MemberKey;
    try {
      key = await authenticate(
        { key: frame['key'], nonce: frame['nonce'], time: frame['timeMs'], signature: frame['signature'], mac: frame['mac'] },
        RELAY_SUBSCRIBE_METHOD,
        relaySubscribePath(channelId),
        EMPTY,
        { store, nowMs: deps.now(), maxClockSkewMs: limits.maxClockSkewMs, channelId, verifier: deps.verifier, macs: deps.macs, proofs: deps.metrics },
      );
    } catch (error) {
      if (!isRelayError(error)) throw error;
      sendError(conn, error.code, error.message, channelId);
      return;
    }
    const member = await store.getMember(channelId, key);
    const channel = member === undefined ? undefined : await store.getChannel(channelId);
    if (member === undefined || channel === undefined) {
      sendError(conn, 'forbidden', 'not a member of this channel', channelId);
      return;
    }
    // A resume point past the head would skip events, the member's own removal among them.
    if (afterSeq > channel.headSeq) {
      sendError(conn, 'bad-request', `afterSeq ${afterSeq} is beyond the channel's head ${channel.headSeq}`, channelId);
      return;
    }
    const previous = conn.subscriptions.get(channelId);
    if (previous !== undefined) endSubscription(previous);
    if (conn.subscriptions.size >= limits.maxSubscriptionsPerConnection) {
      sendError(conn, 'too-many-subscriptions', `at most ${limits.maxSubscriptionsPerConnection} channels per connection`, channelId);
      return;
    }
    if (conn.socket.readyState !== conn.socket.OPEN) return;
    // Registered (and pumping) before any await, so no live event slips between backlog and live.
    const sub: Subscription = {
      channelId,
      key,
      conn,
      lastSent: Math.max(afterSeq, member.joinedSeq - 1),
      pumping: true,
      wantHead: 0,
      ended: false,
      batch: frame['batch'] === true,
    };
    conn.subscriptions.set(channelId, sub);
    let set = byChannel.get(channelId);
    if (set === undefined) byChannel.set(channelId, (set = new Set()));
    set.add(sub);
    metrics.subscriptions += 1;
    setOnline(sub, 1);
    send(conn, {
      type: 'subscribed',
      channel: channelId,
      headSeq: channel.headSeq,
      firstSeq: Math.max(channel.firstSeq, member.joinedSeq),
    });
    await pump(sub);
  };

  /**
   * A frame as it arrives: costs one token of the client address's budget, then must be a JSON
   * object (else refused, undefined). A refused post frame's answer carries its id.
   */
  const readFrame = (conn: Connection, data: RawData, isBinary: boolean): Record<string, unknown> | undefined => {
    // One budget per client address, shared with its HTTP requests (issue 13 "Weak").
    const wait = rateLimiter.take(conn.client, deps.now());
    if (isBinary) {
      bad(conn, wait > 0 ? 'rate-limited' : 'bad-request', wait > 0 ? `rate limited; retry in ${wait} s` : 'frames are JSON text');
      return undefined;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    } catch {
      frame = undefined;
    }
    const fields = typeof frame === 'object' && frame !== null && !Array.isArray(frame) ? (frame as Record<string, unknown>) : undefined;
    if (wait > 0) {
      // Parsed all the same (at most maxWsBadFrames times before the close), so that the client
      // knows which of its posts to send again.
      bad(conn, 'rate-limited', `rate limited; retry in ${wait} s`, fields?.['type'] === 'post' ? requestId(fields) : undefined);
      return undefined;
    }
    if (fields === undefined) bad(conn, 'bad-request', frame === undefined ? 'frame is not valid JSON' : 'frame must be a JSON object');
    return fields;
  };

  /** A post frame: the HTTP post route's steps (routes/channels.ts), answered with the frame's id. */
  const post = async (conn: Connection, frame: Readonly<Record<string, unknown>>): Promise<void> => {
    const id = requestId(frame);
    if (id === undefined) {
      bad(conn, 'bad-request', 'a post frame needs an id: an integer >= 0');
      return;
    }
    const started = process.hrtime.bigint();
    const request = startRequest(conn.client);
    let code: RelayErrorCode | 'ok' = 'ok';
    try {
      if (request.over) throw new RelayError('rate-limited', 'too many requests in flight from this client');
      if (closing) throw new RelayError('shutting-down', 'relay is shutting down');
      const answer = await postPacketFrame(deps, conn.client, frame, deps.now());
      send(conn, { type: 'posted', id, seq: answer.seq, timeMs: answer.timeMs, duplicate: answer.duplicate });
    } catch (error) {
      let message: string;
      if (isRelayError(error)) [code, message] = [error.code, error.message];
      else if (error instanceof StoreUnavailableError) {
        logger.warn('websocket post: store unavailable', { error: error.message });
        [code, message] = ['store-unavailable', 'the storage for this request is unavailable; retry later'];
      } else {
        logger.error('websocket post failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        [code, message] = ['internal', 'internal error'];
      }
      send(conn, { type: 'error', code, error: message, id });
    } finally {
      // Counted with the HTTP requests: a post is a request whichever way it came (/metrics).
      metrics.observeRequest(code, Number(process.hrtime.bigint() - started) / 1e9);
      request.done();
    }
  };

  const onFrame = async (conn: Connection, fields: Record<string, unknown>): Promise<void> => {
    switch (fields['type']) {
      case 'subscribe':
        await subscribe(conn, fields);
        return;
      case 'unsubscribe': {
        const channelId = parseChannelId(fields['channel']);
        const sub = channelId === undefined ? undefined : conn.subscriptions.get(channelId);
        if (channelId === undefined) bad(conn, 'bad-request', 'malformed channel id');
        else {
          if (sub !== undefined) endSubscription(sub);
          send(conn, { type: 'unsubscribed', channel: channelId, reason: 'requested' });
        }
        return;
      }
      case 'ping':
        send(conn, { type: 'pong' });
        return;
      default:
        bad(conn, 'bad-request', 'unknown frame type');
    }
  };

  const refuseUpgrade = (socket: Duplex, code: RelayErrorCode, error: string): void => {
    socket.end(rawErrorResponse(RELAY_ERROR_STATUS[code], code, error));
  };

  const pingTimer = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }, limits.wsPingIntervalMs);
  pingTimer.unref();

  return {
    upgrade(req, socket, head, client) {
      if (closing) return refuseUpgrade(socket, 'shutting-down', 'relay is shutting down');
      // Checked here so a malformed handshake gets the relay's JSON error, not the ws library's page.
      if (
        req.method !== 'GET' ||
        req.headers.upgrade?.toLowerCase() !== 'websocket' ||
        !WEBSOCKET_KEY.test(req.headers['sec-websocket-key'] ?? '') ||
        req.headers['sec-websocket-version'] !== '13'
      ) {
        return refuseUpgrade(socket, 'bad-request', 'malformed WebSocket handshake');
      }
      if (connections.size >= limits.maxConnections) return refuseUpgrade(socket, 'too-many-connections', 'relay is full');
      if ((perClient.get(client) ?? 0) >= limits.maxConnectionsPerClient) {
        return refuseUpgrade(socket, 'too-many-connections', 'too many connections from this client');
      }
      // Opening a connection costs the client address one request, as each of its frames will.
      if (rateLimiter.take(client, deps.now()) > 0) return refuseUpgrade(socket, 'rate-limited', 'too many requests');
      perClient.set(client, (perClient.get(client) ?? 0) + 1);
      let counted = true;
      const release = (): void => {
        if (!counted) return;
        counted = false;
        const n = (perClient.get(client) ?? 1) - 1;
        if (n <= 0) perClient.delete(client);
        else perClient.set(client, n);
      };
      socket.once('close', release);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: Connection = {
          socket: ws,
          raw: socket,
          client,
          subscriptions: new Map(),
          badFrames: 0,
          alive: true,
          queue: Promise.resolve(),
          queued: 0,
          posting: new Set(),
        };
        connections.add(conn);
        metrics.connections += 1;
        ws.on('pong', () => {
          conn.alive = true;
        });
        ws.on('message', (data, isBinary) => {
          conn.alive = true;
          // One frame at a time per connection, so answers come in frame order; a client that
          // queues more than it may have subscriptions (plus slack) is closed rather than buffered.
          if (conn.queued >= limits.maxSubscriptionsPerConnection + limits.maxWsBadFrames) {
            ws.close(CLOSE_POLICY, 'too many frames in flight');
            return;
          }
          const frame = readFrame(conn, data, isBinary);
          if (frame === undefined) return;
          conn.queued += 1;
          if (frame['type'] === 'post') {
            // Answers every outcome itself, with the frame's id.
            const posting: Promise<void> = post(conn, frame).finally(() => {
              conn.queued -= 1;
              conn.posting.delete(posting);
            });
            conn.posting.add(posting);
            return;
          }
          conn.queue = conn.queue
            .then(() => onFrame(conn, frame))
            .catch((error: unknown) => {
              if (error instanceof StoreUnavailableError) {
                logger.warn('websocket frame: store unavailable', { error: error.message });
                sendError(conn, 'store-unavailable', 'storage is unavailable for this channel now; subscribe again later');
                return;
              }
              logger.error('websocket frame failed', { error: String(error) });
              sendError(conn, 'internal', 'internal error');
            })
            .finally(() => {
              conn.queued -= 1;
            });
        });
        ws.on('error', () => {
          // 'close' follows; oversized frames (1009) and protocol errors end up there.
        });
        ws.on('close', () => {
          connections.delete(conn);
          metrics.connections -= 1;
          for (const sub of [...conn.subscriptions.values()]) endSubscription(sub);
          release();
        });
      });
    },
    connectionCount: () => connections.size,
    memberRemoved(channelId, event) {
      for (const sub of [...(byChannel.get(channelId) ?? [])]) {
        if (sub.key !== event.member || sub.ended) continue;
        // In order: the member sees its own member-left, then the end (as from the store's event).
        if (!sub.pumping && event.seq === sub.lastSent + 1) deliver(sub, event);
        else endRemoved(sub);
      }
    },
    async close() {
      closing = true;
      clearInterval(pingTimer);
      unsubscribeStore();
      const closed = [...connections].map(async (conn) => {
        // A post being stored is answered first: closing before its answer would leave the
        // client to retry a post that is stored (deduplicated by postId, but a wasted round).
        // New post frames are refused ('shutting-down') from here on. Bounded by the grace.
        if (conn.posting.size > 0) {
          const grace = new Promise((resolve) => setTimeout(resolve, limits.shutdownGraceMs).unref());
          await Promise.race([Promise.allSettled([...conn.posting]), grace]);
        }
        await new Promise<void>((resolve) => {
          if (conn.socket.readyState === conn.socket.CLOSED) return resolve();
          conn.socket.once('close', () => resolve());
          conn.socket.close(CLOSE_GOING_AWAY, 'relay shutting down');
          setTimeout(() => {
            conn.socket.terminate();
            resolve();
          }, limits.shutdownGraceMs).unref();
        });
      });
      await Promise.all(closed);
      wss.close();
    },
  };
}
