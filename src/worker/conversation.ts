/**
 * One conversation's runtime (issue 10 §1, §2, §7): its mpENC `Session`, the serial queue its
 * calls run on, its timer, and the step that makes it crash-safe:
 *
 *   call the session → fold its effects into records → ONE transaction (snapshot, processed seq,
 *   delivered messages, notices, outbox packets) → hand the packets to the outbox → relay actions
 *   (remove a member, leave) → timer → views.
 *
 * Nothing leaves before the state that produced it is stored (a restart can never sign a second,
 * different "next" message), and a packet stored in the outbox leaves exactly once (postId).
 * What a step must do next (send the roster, seal queued messages, include a joiner) is read from
 * the stored record by `followUps`, so a crash between two steps only delays it.
 */
import { base64UrlDecode, base64UrlEncode, utf8Encode } from '../protocol/bytes.js';
import type { ChannelEvent } from '../protocol/channel.js';
import { decodePacket } from '../protocol/codec/packet.js';
import { isProtocolError } from '../protocol/errors.js';
import { createMembership } from '../protocol/greeting/index.js';
import type { MemberId } from '../protocol/ids.js';
import {
  DEFAULT_SESSION_CONFIG,
  GreetingMembership,
  Session,
  type DeliveredMessage,
  type SessionEffect,
  type SessionNotice,
  type SessionWarning,
  type WaitingOperation,
} from '../protocol/session/index.js';
import type { FetchTokenRecord, OutboxRecord } from '../shared/client-db.js';
import type { ChannelId, MemberKey, RelayEvent } from '../shared/relay-api.js';
import { WorkerError, type Delivery, type MessageRef, type NoticeAction, type NoticeTone, type OperationId } from '../shared/worker-api.js';
import type { Batch, ClientStore } from '../store/client-store.js';
import { verifyBinding, type Binding } from './cards.js';
import type { ClientDeps } from './deps.js';
import { decodePayload, encodePayload, JOIN_CLAIM_PREFIX, openJoinClaim, type GroupPayload } from './group-messages.js';
import type { ConversationRecord, GroupInvite, OperationRecord, SessionRecord, TimelineRecord } from './records.js';
import type { RelaySigner, SignedPost } from './relay-client.js';
import { memberSigner } from './relay-signer.js';
import { MAX_AUTOMATIC_ATTEMPTS } from '../protocol/limits.js';
import { SnapshotChunks } from './snapshot-chunks.js';
import { failureWords, membershipWarningWords, operationWords, rejectionWords } from './words.js';

const capitalised = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** async-groups rule 10: a member who is not the inviter includes a joiner only after this. */
export const INCLUDE_BACKOFF_MS = 20_000;
/** A join claim older than this is not "online now" (rule 10): wait for the joiner's next claim. */
export const CLAIM_FRESH_MS = 10 * 60_000;
/** Settled deliveries a conversation remembers for its views (older ones are recomputed). */
const SETTLED_CACHE = 10_000;
/** Timeline records of a conversation kept in memory for its open view. */
export const TIMELINE_CACHE = 5_000;
/**
 * Relay events processed in one step at most: bounds one transaction and the time the
 * conversation's queue is held (a send waits behind at most one page).
 */
export const RECEIVE_PAGE = 200;
/**
 * A backlog (more than RECEIVE_PAGE waiting: the night's messages from the inbox store or the
 * relay) goes in pages of up to this many. Each page stores the session snapshot once, and its
 * unchunked part grows with every message not yet acknowledged by everyone (~0.7 KB each: the
 * packet kept for resends and its ack record), so 10,000 messages in pages of 200 sealed and
 * wrote ~180 MB, over half the catch-up time (bench:catchup profile). During a catch-up nothing
 * is sent anyway (async-groups rule 6); otherwise a send waits behind one such page.
 */
export const BACKLOG_PAGE = 1_000;
/**
 * The packet text of a relay event (base64url of its UTF-8): strict, as the engine's utf8Decode
 * (WHATWG's fatal decoder refuses exactly the ill-formed sequences it refuses: overlong forms,
 * surrogates, code points past U+10FFFF, truncated or stray bytes; a BOM is kept as text), but
 * native: every event of a catch-up passes here, and utf8Decode's scan and String.fromCharCode
 * cost ~3 µs per packet (bench:catchup profile) where this costs a tenth of that.
 * tests/worker/packet-text.test.ts holds both to the same answers.
 */
export const PACKET_TEXT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Join claims and invitations a group keeps (bounded state; older ones drop). */
const MAX_CLAIMS = 64;
const MAX_INVITES = 256;

function isDataPacket(text: string): boolean {
  try {
    return decodePacket(text).kind === 'data';
  } catch {
    return false;
  }
}

/** "Is anyone waiting to be added still here?": carries nothing; any member may post it. */
export const PING_TEXT = '?covey-ping';

export class CrashError extends Error {
  constructor(point: string) {
    super(`injected crash at ${point}`);
    this.name = 'CrashError';
  }
}

/** What a conversation needs from the engine around it. */
export interface ConversationHost {
  readonly deps: ClientDeps;
  readonly store: ClientStore;
  /** Our identity key (base64url) and display name, for bindings. */
  identityKey(): string;
  nameOf(member: MemberKey, conversation: ConversationRuntime): string;
  /** Committed outbox records to post; `signed`: their posts signed ahead, by postId (see Outbox.enqueue). */
  enqueueOutbox(records: OutboxRecord[], signed?: ReadonlyMap<string, Promise<SignedPost>>): void;
  /** Whether exactly this packet (base64url) already waits in the outbox for `channel`. */
  outboxHolds(channel: ChannelId, packet: string): boolean;
  /** Our own packet came back from the relay: the postId of its outbox record whose request is out, if any (Outbox.echoed). */
  outboxEchoed(channel: ChannelId, packet: string): string | undefined;
  /** This step deletes those outbox records with its commit (Outbox.deletedBy); returns the postIds it took over. */
  outboxDeletedBy(echoes: readonly (readonly [string, number])[], committed: Promise<void>): string[];
  /**
   * The queue time of the next outbox record: strictly increasing, so records of one channel
   * keep their sealing order wherever they are read back in `queuedAtMs` order (the outbox after
   * a restart, the service worker).
   */
  nextQueueTime(): number;
  /** The record with its deferred post signed (data packets only), for the keyless service worker. */
  presign(record: OutboxRecord, signer: RelaySigner): Promise<OutboxRecord>;
  /** The record's live post, signed now to be sent once the record is stored (RelayClient.signPost). */
  signPost(record: OutboxRecord, signer: RelaySigner): Promise<SignedPost>;
  relayAction(conversation: ConversationRuntime, action: ConversationRecord['pendingRelay'][number]): Promise<void>;
  /** Resolves once the outbox holds nothing of `channel` (see Outbox.settled). */
  outboxSettled(channel: ChannelId): Promise<void>;
  changed(conversation: ConversationRuntime): void;
  /** Resolves once the conversation views of the update scheduled now are pushed (ViewSink.viewsPushed). */
  viewsPushed(): Promise<void>;
  /** Storage or engine-replaced failure: the engine stops or reloads this conversation. */
  failed(conversation: ConversationRuntime, error: unknown): void;
  /** Posts a plain channel packet that is not mpENC (join claims, pings) through the outbox. */
  postRaw(conversation: ConversationRuntime, text: string): void;
  /** Posts a fresh join claim (rule 10: the joiner is online now); runs after the current step. */
  claimAgain(conversation: ConversationRuntime): void;
  /** Sending is held: a member's key changed and the user has not accepted it (issue 10 §5). */
  sendHeld(conversation: ConversationRuntime): boolean;
}

/** getRandomValues refuses more than this many bytes per call (WebCrypto). */
const MAX_RANDOM_BYTES_PER_CALL = 65_536;

/** crypto.getRandomValues, in chunks: the only random source the worker gives the engine. */
export function systemRandom(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += MAX_RANDOM_BYTES_PER_CALL) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + MAX_RANDOM_BYTES_PER_CALL)));
  return out;
}

const randomId = (deps: ClientDeps, bytes = 16) => base64UrlEncode(deps.crypto.randomBytes(bytes));

type SessionCall = (session: Session, nowMs: number) => Promise<SessionEffect[]>;
interface StepOptions {
  readonly ownRef?: MessageRef;
  /** Writes that go first into the step's batch, once the session call has succeeded. */
  readonly first?: (batch: Batch) => void;
  readonly prepare?: (batch: Batch) => void | Promise<void>;
  /** Outbox records (postId, seq of their event) that `prepare` deleted in the batch: our own packets the relay sent back. */
  readonly echoes?: readonly (readonly [string, number])[];
}
/** A step's Session call done: its effects, at the time it ran. */
interface Called {
  readonly effects: SessionEffect[];
  readonly nowMs: number;
}
/** A step's effects folded into the runtime and a batch, not yet committed. */
interface Folded {
  readonly what: string;
  readonly batch: Batch;
  readonly outbox: OutboxRecord[];
  /** The outbox records' posts, signed while the step commits (by postId). */
  readonly signed: Map<string, Promise<SignedPost>>;
  readonly timerAt: number | undefined;
  /** Outbox records this step deletes (StepOptions.echoes). */
  readonly echoes: readonly (readonly [string, number])[];
}

export class ConversationRuntime {
  private chain: Promise<unknown> = Promise.resolve();
  private timer: unknown = null;
  private timerAtMs: number | null = null;
  private backoffTimer: unknown = null;
  /** Recent timeline records by position (the open view's window), newest last. */
  readonly window = new Map<number, TimelineRecord>();
  windowLoaded = 0;
  private lastPingAtMs = 0;
  /** The engine's waiting operation before the current step (its wait limit tells an expiry). */
  private waitingBefore: WaitingOperation | null = null;
  /**
   * A step's records are folded in (timeline window, unread counts) but not yet committed: views
   * wait (EngineHost.build), so that a message shown is a message stored.
   */
  unstored = false;
  /** We asked the engine to go on without the missing: the abort it orders first is expected. */
  private retryAbortPending = false;
  /** Relay events waiting for the conversation's queue (processed as one page); `inboxRecord`: the key seq of the inbox record it is the last event of, deleted with the page. */
  private readonly incoming: { readonly event: RelayEvent; readonly inboxRecord: number | null }[] = [];
  /** Automatic include proposals per joiner this run (rule 10: no retry loop). */
  private readonly includeAttempts = new Map<string, number>();
  /** The session part of the `sessions` record as last written or loaded (save() rewrites it with the conversation record). */
  private storedSession: SessionRecord;
  /** The batch of a step whose session record is still to be made (putSessionLater). */
  private sessionToMake: Batch | null = null;
  /** Deliveries that can no longer change (fully acked by every reader), by mpENC key (views.ts). */
  readonly settledDelivery = new Map<string, Delivery>();
  /** Per mpENC message key: whether it is a chat message (views.ts; kinds never change). */
  readonly chatCache = new Map<string, boolean>();
  /** Chat parents of accepted messages (views.ts chatParents): fixed once accepted, asked at every view build. */
  readonly chatParentsCache = new Map<string, readonly string[]>();
  stopped = false;
  /** Our read-only fetch token for the service worker (kept current with every step). */
  fetchToken: FetchTokenRecord | null = null;
  readonly signer: RelaySigner;

  private constructor(
    private readonly host: ConversationHost,
    public record: ConversationRecord,
    public session: Session,
    public meta: { lastSeq: number; lastSeen: Record<string, number> },
    private readonly chunks: SnapshotChunks = new SnapshotChunks(record.id),
  ) {
    this.storedSession = { snapshot: null, lastSeq: meta.lastSeq, lastSeen: meta.lastSeen };
    const seed = base64UrlDecode(record.memberSeed);
    this.signer = memberSigner(host.deps.crypto, seed, record.memberKey);
  }

  get id() {
    return this.record.id;
  }
  get channel(): ChannelId {
    return this.record.channel;
  }
  get self(): MemberKey {
    return this.record.memberKey;
  }

  // ── creation and restore ─────────────────────────────────────────────────────────────────

  private static membershipDeps(deps: ClientDeps) {
    return {
      crypto: deps.crypto,
      // Issue 9 §2: the engine's randomness is the platform's CSPRNG and nothing else (not an
      // injectable provider's), so no test double or replayed generator reaches a real group.
      random: systemRandom,
      // One id space (DESIGN.md §3): a member id is its channel key, so its static key is itself.
      keys: {
        staticKey(member: MemberId): Uint8Array | undefined {
          try {
            const key = base64UrlDecode(member);
            return key.length === 32 ? key : undefined;
          } catch {
            return undefined;
          }
        },
      },
    };
  }

  static create(host: ConversationHost, record: ConversationRecord): ConversationRuntime {
    const deps = ConversationRuntime.membershipDeps(host.deps);
    const membership = new GreetingMembership(createMembership({ self: record.memberKey as string as MemberId, staticSeed: base64UrlDecode(record.memberSeed) }), deps);
    const session = new Session(record.memberKey as string as MemberId, deps, membership, host.deps.sessionConfig ?? DEFAULT_SESSION_CONFIG);
    return new ConversationRuntime(host, record, session, { lastSeq: 0, lastSeen: {} });
  }

  static async restore(host: ConversationHost, record: ConversationRecord, stored: SessionRecord): Promise<ConversationRuntime> {
    if (stored.snapshot === null) {
      const fresh = ConversationRuntime.create(host, record);
      fresh.meta = { lastSeq: stored.lastSeq, lastSeen: { ...stored.lastSeen } };
      fresh.storedSession = { snapshot: null, lastSeq: stored.lastSeq, lastSeen: stored.lastSeen };
      return fresh;
    }
    const chunks = new SnapshotChunks(record.id);
    const snapshot = await chunks.join(host.store, stored.snapshot);
    const deps = ConversationRuntime.membershipDeps(host.deps);
    const membership = GreetingMembership.restore(snapshot.membership, deps);
    const session = Session.restore(snapshot, deps, membership, host.deps.sessionConfig ?? DEFAULT_SESSION_CONFIG);
    const runtime = new ConversationRuntime(host, record, session, { lastSeq: stored.lastSeq, lastSeen: { ...stored.lastSeen } }, chunks);
    runtime.storedSession = { snapshot: stored.snapshot, lastSeq: stored.lastSeq, lastSeen: stored.lastSeen };
    return runtime;
  }

  /**
   * The session record to store now (new snapshot chunks go into `batch`), carrying the
   * conversation record (records.ts SessionRecord.conversation): put it in the batch at once
   * (a put serialises its value when called).
   */
  sessionRecord(batch: Batch): SessionRecord {
    this.storedSession = { snapshot: this.chunks.split(this.session.snapshot(), batch), lastSeq: this.meta.lastSeq, lastSeen: this.meta.lastSeen };
    return { ...this.storedSession, conversation: this.record };
  }

  /**
   * A step's `sessions` record, made when its batch is sealed (`Batch.putLater`) rather than when
   * the step is folded: the session snapshot, its split into chunks and its JSON (~20 KB in a
   * chat of three, measured by bench:client) no longer stand between a received message and its
   * view (persist's showWhenQueued seals after the view is pushed). The rest of the record is taken
   * now. The session cannot change in between: the next Session call of this conversation runs on
   * its queue after this step's commit, and a commit seals its batch before it waits for anything
   * else; `save` (which rewrites the last session record) makes it first.
   */
  private putSessionLater(batch: Batch): void {
    const lastSeq = this.meta.lastSeq;
    const lastSeen = JSON.stringify(this.meta.lastSeen);
    const conversation = JSON.stringify(this.record);
    this.sessionToMake = batch;
    batch.putLater('sessions', this.id, () => {
      if (this.sessionToMake === batch) this.sessionToMake = null;
      const snapshot = this.chunks.split(this.session.snapshot(), batch);
      this.storedSession = { snapshot, lastSeq, lastSeen: this.meta.lastSeen };
      return `{"snapshot":${JSON.stringify(snapshot)},"lastSeq":${lastSeq},"lastSeen":${lastSeen},"conversation":${conversation}}`;
    });
  }

  /** After a restore: the timer the session needs, and any follow-up work that was owed. */
  resume(): void {
    this.schedule(this.session.nextDeadlineMs());
    void this.run('resume', () => this.followUps());
  }

  settle(key: string, delivery: Delivery): void {
    if (this.settledDelivery.size >= SETTLED_CACHE) this.settledDelivery.delete(this.settledDelivery.keys().next().value!);
    this.settledDelivery.set(key, delivery);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.host.deps.timers.clearTimeout(this.timer);
    if (this.backoffTimer !== null) this.host.deps.timers.clearTimeout(this.backoffTimer);
    this.timer = null;
    this.backoffTimer = null;
  }

  /** Runs `fn` after everything queued before it (Session calls must not overlap). */
  run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (this.stopped) throw new WorkerError('invalid-state', 'this conversation is being reloaded; try again');
      try {
        return await fn();
      } catch (error) {
        if (error instanceof WorkerError) throw error;
        this.host.failed(this, error);
        throw error instanceof CrashError ? error : new WorkerError('internal', `${what} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  // ── the step ─────────────────────────────────────────────────────────────────────────────

  /**
   * One Session call and everything it caused, persisted in one transaction before any packet
   * leaves. `prepare` adds the caller's own writes to the same batch.
   */
  private async step(what: string, call: SessionCall | null, options: StepOptions = {}): Promise<SessionEffect[]> {
    const called = await this.callSession(what, call);
    await this.persist(await this.fold(what, called, options));
    return called.effects;
  }

  /** The Session call of a step (its effects are folded into records by `fold`). */
  private async callSession(what: string, call: SessionCall | null): Promise<Called> {
    const nowMs = this.host.deps.now();
    this.waitingBefore = this.session.waiting();
    const effects = call === null ? [] : await call(this.session, nowMs);
    this.host.deps.fault?.('after-session-call', what);
    return { effects, nowMs };
  }

  /**
   * A step's effects folded into the runtime and into one batch (sealing starts now); the
   * runtime counts as unstored until `persist` has committed it (views wait: EngineHost.build).
   */
  private async fold(what: string, { effects, nowMs }: Called, options: StepOptions): Promise<Folded> {
    const deps = this.host.deps;
    const batch = this.host.store.batch();
    options.first?.(batch);
    const outbox: OutboxRecord[] = [];
    const signed = new Map<string, Promise<SignedPost>>();
    const presigned = new Map<string, OutboxRecord | Promise<OutboxRecord>>();
    const postIds: string[] = [];
    let timerAt: number | undefined;
    let delivered: DeliveredMessage | undefined;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send': {
          const data = effect.sealed !== undefined || isDataPacket(effect.text);
          // Rule 7: nothing sealed under a key that someone who left still holds (resends and
          // acks included) leaves while their exclusion is under way.
          if (data && this.departedInKey()) break;
          const packet = base64UrlEncode(utf8Encode(effect.text));
          // A resend (AckMonitor rule 5) is the same sealed packet again: while a copy still
          // waits (the relay is out of reach), another adds nothing. Without this, every tick
          // of a long outage queued each unacked message once more, and a person's next
          // message waited behind hundreds of copies when the relay came back.
          if (this.host.outboxHolds(this.channel, packet) || outbox.some((r) => r.packet === packet)) break;
          const record: OutboxRecord = {
            postId: randomId(deps),
            relay: this.record.relay,
            channel: this.channel,
            packet,
            // async-groups rule 7: data packets are conditional on nobody having left the channel
            // after the membership we sealed them under (the engine's membershipSeq; a leave we
            // have not processed yet makes the relay refuse with 409); membership packets must
            // reach the order regardless.
            ifNoLeaveAfter: data ? (effect.sealed?.membershipSeq ?? this.meta.lastSeq) : null,
            ...(effect.sealed === undefined ? {} : { sealedUnder: effect.sealed.subsession }),
            queuedAtMs: this.host.nextQueueTime(),
            // The step that seals a message the person wrote: its packet wakes those away.
            ...(data && options.ownRef !== undefined ? { wake: true } : {}),
            presigned: null,
            attempts: 0,
          };
          // The live post is signed now, beside the deferred one and the commit, and sent once
          // the record is stored (persist before send: a signature is not an effect). A failure
          // here only means that the outbox signs at post time, as it does for retries.
          const live = this.host.signPost(record, this.signer);
          live.catch(() => undefined);
          signed.set(record.postId, live);
          // The stored copy carries the deferred post for the service worker (data packets), signed
          // while the step's records are sealed (the batch waits for it); the outbox in memory
          // posts the live one.
          const stored = data ? this.host.presign(record, this.signer) : record;
          if (stored instanceof Promise) stored.catch(() => undefined);
          presigned.set(record.postId, stored);
          outbox.push(record);
          postIds.push(record.postId);
          break;
        }
        case 'deliver':
          if ((effect.message.author as string) === this.self && options.ownRef !== undefined && delivered === undefined) delivered = effect.message;
          // The relay time of the packet that carried it (each message of a page its own).
          else await this.deliver(effect.message, effect.message.atMs, batch);
          break;
        case 'notice':
          this.onNotice(effect.notice, nowMs, batch);
          break;
        case 'warn':
          this.onWarning(effect.warning, nowMs, batch);
          break;
        case 'kick':
          for (const m of effect.members) this.record.pendingRelay.push({ kind: 'remove', member: m as string as MemberKey });
          break;
        case 'leave':
          this.record.pendingRelay.push({ kind: 'leave' });
          break;
        case 'setTimer':
          timerAt = effect.atMs;
          break;
        case 'status':
          break;
      }
    }
    if (options.ownRef !== undefined) this.sealedOwn(options.ownRef, delivered, postIds, batch);
    await options.prepare?.(batch);
    for (const r of outbox) batch.putTransit('outbox', presigned.get(r.postId)!);
    this.putSessionLater(batch);
    if (this.fetchToken !== null && this.fetchToken.afterSeq !== this.meta.lastSeq) {
      this.fetchToken = { ...this.fetchToken, afterSeq: this.meta.lastSeq };
      batch.putTransit('fetchTokens', this.fetchToken);
    }
    this.unstored = true;
    return { what, batch, outbox, signed, timerAt, echoes: options.echoes ?? [] };
  }

  /**
   * Commits a folded step, then lets its packets go and its relay actions run.
   *
   * Views normally update after the commit: a message shown is a message stored. With
   * `showWhenQueued` (a received page that asks the relay for no action, and that either sends
   * packets or has nothing after it waiting), they update at once: the view is rebuilt in a
   * microtask while the commit seals the records, so neither the seals, the transaction's requests nor the IndexedDB
   * commit are between the packet's arrival and the message on screen (bench:client; every later
   * write of this conversation waits for this commit on its queue). Nothing is lost or duplicated
   * if the commit then never happens (a crash, a closed tab, an aborted transaction): the same transaction holds the channel position (the
   * session record's `lastSeq`, the fetch token), so the restarted or rebuilt conversation
   * subscribes from before the event, the relay sends it again, and the stored snapshot, which
   * never saw it, delivers it once; the timeline is rebuilt from the store. What the person may
   * see is the message gone again until the relay is reachable (a reload offline within the few
   * milliseconds of the commit). Sending never moves earlier: packets, acks and relay actions wait
   * for the commit (issue 10 §2), and so does every later step of this conversation (its queue).
   * A page's packets are in its own transaction (the outbox records) and go to the outbox only
   * once it has committed: shown and never committed, the page is received again and sends them
   * then, once. What they change in the views (the app's queued count) is pushed when they are
   * queued (enqueueOutbox); a received page's packets (acks, key agreement, resends) are no
   * timeline message's `postIds`, the only posts a conversation view reads (views.ts `delivery`).
   */
  private async persist({ what, batch, outbox, signed, timerAt, echoes }: Folded, options: { readonly showWhenQueued?: boolean } = {}): Promise<void> {
    const shown = options.showWhenQueued === true && this.record.pendingRelay.length === 0;
    if (shown) {
      // The views are rebuilt in a microtask, and the records sealed once the open conversation's
      // view has been pushed: the seals (encoding, WebCrypto calls) and the transaction's requests
      // no longer run ahead of the view in this thread. The commit takes its place in the store's
      // order now (ClientStore.commit), so a read asked once the message is shown still sees it.
      this.unstored = false;
      this.host.changed(this);
    }
    // Nothing of the step is stored yet (a received message may be on screen; a post signed).
    this.host.deps.fault?.('before-commit', what);
    let deleted: string[] = [];
    try {
      const committed = this.host.store.commit(batch, shown ? () => this.host.deps.fault?.('after-queue', what) : undefined, shown ? this.host.viewsPushed() : undefined);
      // Our own packets came back: their outbox records go with this commit (see takePage).
      if (echoes.length > 0) deleted = this.host.outboxDeletedBy(echoes, committed);
      await committed;
    } finally {
      this.unstored = false;
    }
    for (const postId of deleted) this.host.deps.fault?.('after-outbox-delete', postId);
    this.host.deps.fault?.('after-persist', what);
    if (outbox.length > 0) this.host.enqueueOutbox(outbox, signed);
    await this.performRelayActions();
    if (timerAt !== undefined) this.schedule(timerAt);
    // Views after the commit (unless shown when queued): a message shown is a message stored.
    if (!shown) this.host.changed(this);
  }

  /** Writes records with no session call (the same transaction rules). */
  async save(prepare?: (batch: Batch) => void | Promise<void>): Promise<void> {
    const batch = this.host.store.batch();
    await prepare?.(batch);
    // The last step's session record first, so that this one is not older (putSessionLater).
    this.sessionToMake?.prepare();
    // The conversation record goes where it is read first (SessionRecord.conversation): with the
    // session as last stored, unless `prepare` wrote the session record itself (a new or reset
    // session carries no copy: the `conversations` store's is then the current one).
    if (batch.has('sessions', this.id)) batch.put('conversations', this.id, this.record);
    else batch.put('sessions', this.id, { ...this.storedSession, conversation: this.record });
    await this.host.store.commit(batch);
    this.host.changed(this);
  }

  private schedule(atMs: number | undefined): void {
    if (atMs === undefined || this.stopped) return;
    if (this.timerAtMs !== null && this.timerAtMs <= atMs && this.timer !== null) return;
    if (this.timer !== null) this.host.deps.timers.clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = this.host.deps.timers.setTimeout(
      () => {
        this.timer = null;
        this.timerAtMs = null;
        void this.run('tick', async () => {
          await this.step('tick', (s, now) => s.tick(now));
          this.schedule(this.session.nextDeadlineMs());
          await this.followUps();
        }).catch(() => undefined);
      },
      Math.max(0, atMs - this.host.deps.now()),
    );
  }

  private async performRelayActions(): Promise<void> {
    while (this.record.pendingRelay.length > 0 && !this.stopped) {
      const action = this.record.pendingRelay[0]!;
      // What we sealed goes before we leave (the relay refuses a non-member's post): our last
      // messages and the key publication of a leave acked by all (mpENC §6.1.1).
      if (action.kind === 'leave') await this.host.outboxSettled(this.channel);
      await this.host.relayAction(this, action);
      this.record.pendingRelay.shift();
      await this.save();
    }
  }

  // ── timeline ─────────────────────────────────────────────────────────────────────────────

  /**
   * Appends a timeline record (in `batch`) and returns its position. Received messages and notices
   * are never rewritten: records appended side by side in one step are packed (Batch.appendTimeline:
   * a catch-up page of 1,000 is 16 sealed records, not 1,000). `single`: a record that will be
   * rewritten in place (a message of ours, queued until it is sealed).
   */
  append(item: TimelineRecord, batch: Batch, single = false): number {
    const position = this.record.nextPosition++;
    if (single) this.putTimeline(position, item, batch);
    else {
      batch.appendTimeline(this.id, position, item);
      this.remember(position, item);
    }
    return position;
  }

  /** A message's timeline position, from the window (the open view) — undefined when not in it. */
  positionOf(ref: string): number | undefined {
    for (const [position, item] of this.window) if (item.t === 'm' && (item.ref === ref || item.mpenc === ref)) return position;
    return undefined;
  }

  putTimeline(position: number, item: TimelineRecord, batch: Batch): void {
    batch.put('timeline', [this.id, position], item);
    this.remember(position, item);
  }

  /** The record at `position` as the open view's window and the activity time see it. */
  private remember(position: number, item: TimelineRecord): void {
    this.window.set(position, item);
    if (this.window.size > TIMELINE_CACHE) this.window.delete(this.window.keys().next().value!);
    this.record.lastActivityMs = Math.max(this.record.lastActivityMs, item.atMs);
  }

  notice(tone: NoticeTone, text: string, whatToDo: string | null, action: NoticeAction | null, atMs: number, batch: Batch): void {
    this.append({ t: 'n', tone, text, whatToDo, action, atMs }, batch);
    if (tone === 'danger') this.record.attention = true;
  }

  private async deliver(message: DeliveredMessage, atMs: number, batch: Batch): Promise<void> {
    const author = message.author as string as MemberKey;
    const payload = decodePayload(message.text);
    const mine = author === this.self;
    switch (payload.t) {
      case 'm': {
        const ref = message.id as MessageRef;
        this.append(
          { t: 'm', ref, mpenc: message.id, author, text: payload.x, atMs, parents: [], hiddenParents: message.hiddenParents, state: 'sealed', failure: null, postIds: [] },
          batch,
        );
        this.record.last = { author, text: payload.x, atMs, position: this.record.nextPosition - 1 };
        if (!mine) this.record.unread++;
        return;
      }
      case 'r':
        await this.onRoster(author, payload, atMs, batch);
        return;
      case 'n':
        if (this.record.name !== payload.name) {
          this.record.name = payload.name;
          this.notice('info', `${mine ? 'You' : this.host.nameOf(author, this)} renamed the group to “${payload.name}”`, null, null, atMs, batch);
        }
        return;
      case 'i':
        this.learnInvite({ id: payload.id, jk: payload.jk, ik: payload.ik, name: payload.name, by: author, expiresAtMs: payload.exp, operationId: null, usedBy: null }, atMs);
        return;
      case 'x':
        this.record.invites = this.record.invites.filter((i) => i.id !== payload.id);
        this.record.operations = this.record.operations.filter((o) => o.inviteId !== payload.id);
        return;
    }
  }

  private async onRoster(author: MemberKey, payload: Extract<GroupPayload, { t: 'r' }>, atMs: number, batch: Batch): Promise<void> {
    const members = new Set<string>(this.session.members());
    let bad = 0;
    for (const raw of payload.b) {
      try {
        const binding = await verifyBinding(this.host.deps.crypto, raw, { ch: this.channel });
        if (!members.has(binding.mk)) continue; // not (or no longer) a member: nothing to name
        const known = this.record.bindings[binding.mk];
        if (known !== undefined && known.ik !== binding.ik) {
          bad++;
          continue;
        }
        this.record.bindings[binding.mk] = binding;
      } catch {
        bad++;
      }
    }
    if (payload.name !== this.record.name) this.record.name = payload.name;
    this.record.kind = payload.kind;
    if (bad > 0) {
      this.notice(
        'danger',
        `${this.host.nameOf(author, this)} sent a member list with ${bad} entr${bad === 1 ? 'y' : 'ies'} that failed the signature check; they were ignored`,
        'Compare safety numbers with the members of this group. If it happens again, someone may be tampering with the group.',
        null,
        atMs,
        batch,
      );
    }
  }

  /** Our own message got its mpENC id (or failed): update its timeline record. */
  private sealedOwn(ref: MessageRef, message: DeliveredMessage | undefined, postIds: string[], batch: Batch): void {
    const queued = this.record.queued.find((q) => q.ref === ref);
    const position = queued?.position;
    if (position === undefined) return;
    this.record.queued = this.record.queued.filter((q) => q.ref !== ref);
    const text = queued?.text ?? (this.window.get(position) as { text?: string } | undefined)?.text ?? '';
    const atMs = queued?.atMs ?? this.host.deps.now();
    this.putTimeline(
      position,
      message === undefined
        ? { t: 'm', ref, mpenc: null, author: this.self, text, atMs, parents: [], hiddenParents: false, state: 'failed', failure: 'It could not be sealed.', postIds: [] }
        : { t: 'm', ref, mpenc: message.id, author: this.self, text, atMs, parents: [], hiddenParents: message.hiddenParents, state: 'sealed', failure: null, postIds },
      batch,
    );
  }

  // ── notices and warnings from the session, in plain words ─────────────────────────────────

  private onNotice(notice: SessionNotice, atMs: number, batch: Batch): void {
    switch (notice.kind) {
      case 'subsession-started':
        this.onMembers(notice.members as readonly string[] as MemberKey[], atMs, batch);
        return;
      case 'subsession-closed':
        // A key we moved on from is done. Members who slept through it (`unconfirmed`) are not
        // at fault (issue 8 §4); a real inconsistency comes as the shutdown-inconsistent warning.
        return;
      case 'member-parting':
        // A subsession's members part from it at every membership change (mpENC §3.5 shutdown):
        // not news for people. Real departures show as "… left the group" / "… is no longer in the group".
        return;
      case 'presence':
        // Shown on the members themselves (MemberView.presence from Session.presenceOf).
        return;
      case 'unreadable-dropped':
        // Traffic of a key we are not in (sent before we joined, or after we left): expected.
        return;
      case 'caught-up':
        // Rule 6: we reached the relay's head; what waited for it runs in followUps.
        return;
      case 'late-message':
        this.notice('info', `${this.host.nameOf(notice.author as string as MemberKey, this)} sent a message before seeing the latest change to the group (${this.changeWords(notice.subsession, notice.replacedBy)})`, null, null, atMs, batch);
        return;
      case 'start-over':
        this.onStartOver(notice.reason, notice.text, atMs, batch);
        return;
      case 'membership':
        this.onMembershipText(notice.text, atMs, batch);
        return;
      case 'left': {
        const voluntary = this.record.state === 'left' || this.record.leaving;
        this.record.state = voluntary ? 'left' : 'removed';
        this.record.operations = [];
        this.notice(voluntary ? 'info' : 'warning', voluntary ? 'You left the group' : 'You were removed from the group', voluntary ? null : 'You can read what was said before, but no longer send or receive.', null, atMs, batch);
        return;
      }
      default:
        // A notice kind this worker does not know yet: nothing raw reaches the person.
        return;
    }
  }

  /** "Carol joined", "Dave left", "a new key": what changed between two subsessions. */
  private changeWords(from: number, to: number): string {
    const info = this.session.subsessionInfo();
    const a = info.find((i) => i.index === from)?.members ?? [];
    const b = info.find((i) => i.index === to)?.members ?? [];
    const added = b.filter((m) => !a.includes(m)).map((m) => this.host.nameOf(m as string as MemberKey, this));
    const removed = a.filter((m) => !b.includes(m)).map((m) => this.host.nameOf(m as string as MemberKey, this));
    const parts = [...(added.length > 0 ? [`${added.join(', ')} joined`] : []), ...(removed.length > 0 ? [`${removed.join(', ')} left`] : [])];
    return parts.length > 0 ? parts.join('; ') : 'the group key was renewed';
  }

  /**
   * Rule 11: the engine dropped this group's keys (away longer than the relay keeps messages,
   * or keys that could not be trusted) and went solo; the others must include us again. Nothing
   * shown is lost; what we write meanwhile waits. (The others' workers include only claimants
   * with an invitation: re-including a member that started over needs a structured "rejoin"
   * signal from the engine; see the worker README, "Gaps".)
   */
  private onStartOver(reason: string, text: string, atMs: number, batch: Batch): void {
    const why =
      reason === 'retention'
        ? 'You were away longer than the relay keeps messages, so some of the group’s messages are gone.'
        : reason === 'superseded'
          ? 'The group moved on to a key your device does not have.'
          : 'Your device could not trust the group’s current key.';
    this.record.proposing = null;
    this.notice('warning', `${why} You rejoin the group when a member is online; nothing you already have is lost.`, text.length > 0 && !/[A-Za-z0-9_-]{40,}/.test(text) ? text : null, null, atMs, batch);
  }

  private onMembers(members: MemberKey[], atMs: number, batch: Batch): void {
    const before = new Set(this.record.lastMembers);
    const after = new Set(members);
    const added = members.filter((m) => !before.has(m) && m !== this.self);
    const removed = [...before].filter((m) => !after.has(m) && m !== this.self);
    const wasIn = before.has(this.self);
    this.record.lastMembers = [...members];
    if (this.record.state === 'waiting') this.record.state = 'active';
    if (!wasIn) {
      this.notice('info', this.record.createdByMe ? 'The group is ready: messages are end-to-end encrypted' : 'You joined the group', null, null, atMs, batch);
      this.record.operations = this.record.operations.filter((o) => o.kind !== 'join');
    }
    for (const m of added) {
      if (!wasIn && !this.record.createdByMe) continue; // joining: the others were there before us
      this.notice('info', `${this.host.nameOf(m, this)} joined`, null, null, atMs, batch);
    }
    for (const m of removed) {
      // The relay says who left on their own (member-left by themselves); an exclusion alone
      // does not say whether someone was removed or their device was dropped, so it says "gone".
      const own = this.record.leftThemselves?.includes(m) === true;
      this.notice('info', `${this.host.nameOf(m, this)} ${own ? 'left the group' : 'is no longer in the group'}`, null, null, atMs, batch);
    }
    if (this.record.leftThemselves !== undefined) this.record.leftThemselves = this.record.leftThemselves.filter((m) => !removed.includes(m));
    // Operations that this change completed drop out (their notices stay in the timeline).
    this.record.operations = this.record.operations.filter((op) => {
      if (op.kind === 'add') return !op.targets.every((t) => t.member !== null && after.has(t.member));
      if (op.kind === 'remove') return !op.targets.every((t) => t.member !== null && !after.has(t.member));
      return true;
    });
    // Invitations those joiners used are spent (one person each); their claims are done.
    for (const claim of this.record.claims) {
      if (after.has(claim.member)) this.record.invites = this.record.invites.map((i) => (i.id === claim.inviteId ? { ...i, usedBy: claim.member } : i));
    }
    this.record.claims = this.record.claims.filter((c) => !after.has(c.member));
    if (this.record.proposing !== null) {
      const p = this.record.proposing;
      const done = p.kind === 'include' ? p.members.every((m) => after.has(m)) : p.members.every((m) => !after.has(m));
      if (done) {
        this.record.proposing = null;
        // issue 10 §6: whoever completed an include (or the start) tells everyone who is who.
        if (p.kind === 'include') this.record.owesRoster = true;
      }
    }
  }

  private onMembershipText(text: string, atMs: number, batch: Batch): void {
    // The greeting layer reports outcomes as text (GreetingMembership.translate); the engine has
    // no structured outcome effect yet (see the worker README): read the three failure shapes.
    const failed = /^operation failed: (\w+) ([\w-]+)(?: by (\S+))?$/.exec(text);
    const refused = /^our (\w+) was not accepted: (.*)$/.exec(text) ?? /^cannot (\w+): (.*)$/.exec(text);
    if (failed === null && refused === null) return;
    if (failed !== null && failed[2] === 'aborted' && failed[3] === (this.self as string) && this.retryAbortPending) {
      this.retryAbortPending = false; // the engine proposes again without the missing members
      return;
    }
    const p = this.record.proposing;
    const waited = this.waitingBefore;
    const operation = failed?.[1] ?? refused?.[1] ?? '';
    // Ours (or the one we took part in) ended: expired after the wait limit (rule 9), cancelled,
    // or refused by the order (someone else's change came first: rule 10 says no retry loop).
    const expired = failed !== null && failed[2] === 'aborted' && waited !== null && atMs >= waited.limitAtMs;
    const by = failed?.[3] === undefined ? null : failed[3] === (this.self as string) ? 'you' : this.host.nameOf(failed[3] as MemberKey, this);
    if (p === null) {
      if (failed !== null && operation !== 'refresh' && !(failed[2] === 'aborted' && by === 'you')) {
        this.notice('info', `${capitalised(operationWords(operation))} did not go through: ${expired ? 'it waited too long for someone to open Covey' : failureWords(failed[2]!, by)}`, null, null, atMs, batch);
      }
      return;
    }
    this.record.proposing = null;
    const names = p.members.map((m) => this.host.nameOf(m, this)).join(', ');
    const why = expired
      ? `${names} did not open Covey in time`
      : failed !== null
        ? failureWords(failed[2]!, by)
        : 'another change to the group came first';
    const ops = this.record.operations.filter((o) => o.state === 'running');
    for (const op of ops) {
      // Refused by the order (a concurrent change won): the add waits again for a fresh claim,
      // at most MAX_AUTOMATIC_ATTEMPTS times (no retry loop, mpENC §6.1.1).
      const retry = refused !== null && op.kind === 'add' && this.record.claims.some((c) => op.targets.some((t) => t.member === c.member));
      this.updateOperation(op.id, { state: retry ? 'waiting' : 'failed', failure: retry ? null : why });
    }
    if (p.kind === 'exclude') {
      this.notice('warning', `Removing ${names} did not go through: ${why}`, 'Try again; if it keeps failing, a member may be offline in the middle of a change.', null, atMs, batch);
    } else if (failed !== null && !(failed[2] === 'aborted' && by === 'you')) {
      this.notice('info', `Adding ${names} did not go through: ${why}`, expired ? 'Invite them again when they use Covey.' : null, null, atMs, batch);
    }
  }

  private onWarning(warning: SessionWarning, atMs: number, batch: Batch): void {
    const name = (m: MemberId) => this.host.nameOf(m as string as MemberKey, this);
    switch (warning.kind) {
      case 'not-fully-acked':
        return; // shown on the message itself (delivery 'not-acked': active since, no ack)
      case 'rejected':
        this.notice(
          'danger',
          `A message from ${name(warning.sender)} was not shown: ${rejectionWords(warning.code)}`,
          'If this repeats, someone may be tampering with the relay. Compare safety numbers with this person.',
          null,
          atMs,
          batch,
        );
        return;
      case 'missing-parents-expired':
        this.notice('warning', `A message from ${name(warning.author)} was never shown: messages it replies to never arrived`, 'Ask them to send it again.', null, atMs, batch);
        return;
      case 'fork':
        this.notice(
          'danger',
          `A message in ${name(warning.sender)}'s name fits no version of this group you hold`,
          'The relay may be showing members different histories. Compare safety numbers with this person.',
          null,
          atMs,
          batch,
        );
        return;
      case 'sealed-after-moving-on':
        this.notice(
          'danger',
          `${name(warning.author)} sent a message under a key they had already moved on from`,
          'Their app may be broken, or the relay replayed an old message. If it repeats, compare safety numbers.',
          null,
          atMs,
          batch,
        );
        return;
      case 'unconfirmed-author':
        this.notice(
          'warning',
          `Messages from ${name(warning.author)} were not shown: their device never confirmed the group's new key`,
          'If they wrote something, ask them to open Covey and send it again.',
          null,
          atMs,
          batch,
        );
        return;
      case 'dropped':
        this.notice('warning', `Some messages from ${name(warning.sender)} were dropped: too many waited for their device to confirm the group's new key`, 'Ask them to send them again.', null, atMs, batch);
        return;
      case 'shutdown-inconsistent':
        this.notice(
          'warning',
          `Before the group changed, ${warning.missing.map(name).join(', ')} did not confirm every message`,
          'They may have missed some messages; ask them if anything is missing.',
          null,
          atMs,
          batch,
        );
        return;
      case 'membership': {
        const words = membershipWarningWords(warning.text);
        this.notice('danger', words.text, words.whatToDo, null, atMs, batch);
        return;
      }
      default:
        this.notice('warning', 'The group reported a problem this version of Covey cannot describe', 'If it repeats, update Covey.', null, atMs, batch);
        return;
    }
  }

  updateOperation(id: OperationId, change: Partial<OperationRecord>): void {
    this.record.operations = this.record.operations.map((o) => (o.id === id ? { ...o, ...change } : o));
  }

  // ── inputs ───────────────────────────────────────────────────────────────────────────────

  /**
   * A relay event of this channel (from the socket or the inbox store), in seq order. Events that
   * arrive while the conversation is busy (a catch-up backlog, a burst) wait here and are
   * processed together as one page: one `Session.receiveAll` call (signature checks started
   * ahead), one transaction, one snapshot (issue 8 "catch-up"; issue 10 §2 holds per page: nothing
   * of the page leaves before the page's state is stored).
   */
  receive(event: RelayEvent, inboxRecord: number | null = null): Promise<void> {
    this.incoming.push({ event, inboxRecord });
    return this.run('receive', () => this.receivePage());
  }

  /**
   * Drains the queue page by page. A page's Session call (its signature checks) runs while the
   * page before it is being committed (sealing, IndexedDB): a catch-up spent about half its time
   * waiting on the store (bench:catchup profile). Persist before send holds: a page that sends
   * anything, or asks the relay for anything, is committed before the next page starts; the next
   * page's records are folded in only after the page before is stored, so the transactions keep
   * their order and a crash leaves a stored prefix of the pages.
   */
  private async receivePage(): Promise<void> {
    let storing: Promise<void> | null = null;
    const queued = this.incoming.length > 0;
    try {
      for (let page = this.takePage(); page !== null; page = this.takePage()) {
        const { events, prepare, echoes } = page;
        if (events.length === 0) {
          await storing;
          storing = null;
          await this.step('skip', null, { prepare, echoes });
          continue;
        }
        const single = events.length === 1;
        const called = await this.callSession('receive', (s, now) => (single ? s.receive(events[0]!, now) : s.receiveAll(events, now)));
        await storing;
        storing = null;
        const folded = await this.fold('receive', called, { prepare, echoes });
        const sends = folded.outbox.length > 0 || this.record.pendingRelay.length > 0;
        // A page that sends, and the last page: shown once its transaction is queued, their
        // packets posted after the commit (see persist). The last page of a catch-up sends our
        // ack (rule 6): its views waited for its commit (bench:catchup).
        if (sends || this.incoming.length === 0) await this.persist(folded, { showWhenQueued: true });
        else {
          storing = this.persist(folded);
          // Awaited before the next fold or below; a failure is seen there, not reported twice.
          storing.catch(() => undefined);
        }
      }
    } finally {
      await storing;
    }
    // Every queued event has a `receive` call, but the first drains the queue: the others find it
    // empty, and the call that drained it runs the follow-ups once after its pages (a catch-up of
    // 10,000 ran them 10,000 times, bench:catchup profile).
    if (queued) await this.followUps();
  }

  /** The next page of queued events as the Session takes them; null when none is queued or nothing changed. */
  private takePage(): { events: ChannelEvent[]; prepare: (batch: Batch) => Promise<void>; echoes: [string, number][] } | null {
    const size = this.host.deps.receivePage ?? (this.incoming.length > RECEIVE_PAGE ? BACKLOG_PAGE : RECEIVE_PAGE);
    const page = this.incoming.splice(0, size);
    if (page.length === 0) return null; // an earlier call's page took it
    // The inbox records whose last event is in the page (what the service worker fetched), deleted
    // with it. They are handed over in key order and each after the records before it, and the
    // service worker adds only keys after every record of the channel: the keys between the first
    // and the last of them are theirs, so one range (one request, not one per record).
    let inboxFirst = Infinity;
    let inboxLast = -Infinity;
    const events: ChannelEvent[] = [];
    const claims: { author: MemberKey; text: string; atMs: number }[] = [];
    // Our own packets the relay sent back: proof that it stored them.
    const own: { packet: string; seq: number }[] = [];
    let current = [...this.session.channelMembers()] as string[] as MemberKey[];
    const seqBefore = this.meta.lastSeq;
    for (const { event, inboxRecord } of page) {
      if (inboxRecord !== null) {
        inboxFirst = Math.min(inboxFirst, inboxRecord);
        inboxLast = Math.max(inboxLast, inboxRecord);
      }
      // Already processed (fetched twice: socket and service worker): only drop the copy.
      if (event.seq <= this.meta.lastSeq) continue;
      if (event.type === 'packet' && event.author !== null) {
        this.meta.lastSeen[event.author] = Math.max(this.meta.lastSeen[event.author] ?? 0, event.timeMs);
        if (event.author === this.self) own.push({ packet: event.packet, seq: event.seq });
      }
      this.meta.lastSeq = event.seq;
      if (event.type === 'member-left' && event.by === event.member && event.member !== this.self) {
        this.record.leftThemselves = [...(this.record.leftThemselves ?? []).filter((m) => m !== event.member), event.member];
      }
      const channelEvent = this.toChannelEvent(event, current);
      if (channelEvent === null) continue;
      if (channelEvent.kind !== 'packet') current = channelEvent.members as readonly string[] as MemberKey[];
      else if (channelEvent.text.startsWith(JOIN_CLAIM_PREFIX) && channelEvent.sender !== (this.self as string)) claims.push({ author: channelEvent.sender as string as MemberKey, text: channelEvent.text, atMs: event.timeMs });
      if (this.stillJoining() && event.type === 'packet' && event.author !== this.self && this.host.deps.now() - (this.record.claimedAtMs ?? 0) > CLAIM_FRESH_MS / 2) {
        // A member is online now and our claim is getting old: say again that we are here.
        this.host.claimAgain(this);
      }
      events.push(channelEvent);
    }
    const fromInbox = inboxLast < inboxFirst ? null : { first: inboxFirst, last: inboxLast };
    const echoes: [string, number][] = [];
    const prepare = async (batch: Batch) => {
      for (const c of claims) await this.onClaim(c.author, c.text, c.atMs, batch);
      if (fromInbox !== null) batch.deleteRange('inbox', [this.channel, fromInbox.first], [this.channel, fromInbox.last]);
      // The outbox record of an own packet whose request is still out is deleted with this page
      // (one transaction fewer per message sent than deleting it after the relay's answer); the
      // outbox then deletes nothing when the answer comes (Outbox.deletedBy).
      for (const { packet, seq } of own) {
        const postId = this.host.outboxEchoed(this.channel, packet);
        if (postId === undefined) continue;
        batch.delete('outbox', postId);
        echoes.push([postId, seq]);
      }
    };
    // Only copies of events already processed, and nothing to write: take the next page.
    if (events.length === 0 && fromInbox === null && this.meta.lastSeq === seqBefore) return this.takePage();
    return { events, prepare, echoes };
  }

  /**
   * We (re)subscribed: the relay's head is `headSeq` and it holds events from `firstSeq` on.
   * The session stays silent until it has processed the head (async-groups rule 6), and starts
   * over in this group if events it never saw are gone (rule 11). Queued before the backlog.
   */
  catchUp(headSeq: number, firstSeq: number): Promise<void> {
    return this.run('catch-up', async () => {
      if (this.record.state === 'left' || this.record.state === 'removed') return;
      if (firstSeq > this.meta.lastSeq + 1) await this.step('retention', (s, now) => s.retention(firstSeq, now));
      await this.step('catch-up', (s, now) => s.catchUp(headSeq, now));
      await this.followUps();
    });
  }

  /** `current`: the channel's members before this event (the page's events change it in turn). */
  private toChannelEvent(event: RelayEvent, current: readonly MemberKey[]): ChannelEvent | null {
    switch (event.type) {
      case 'member-joined': {
        const joined = event.member;
        let members: MemberKey[];
        if (joined === this.self) {
          members = [...new Set([...(this.record.joinMembers ?? []), this.self])];
          this.record.joinMembers = null;
        } else members = current.includes(joined) ? [...current] : [...current, joined];
        return { kind: 'joined', seq: event.seq, atMs: event.timeMs, joined: [joined as string as MemberId], members: members as string[] as MemberId[] };
      }
      case 'member-left':
        return { kind: 'left', seq: event.seq, atMs: event.timeMs, left: [event.member as string as MemberId], members: current.filter((m) => m !== event.member) as string[] as MemberId[] };
      case 'packet': {
        if (event.author === null) return null; // deposits exist only in inboxes
        let text: string;
        try {
          text = PACKET_TEXT.decode(base64UrlDecode(event.packet));
        } catch {
          text = '?covey-undecodable';
        }
        // Relay time (atMs): acks' lateness and presence are judged by it (async-groups rules 14, 15).
        return { kind: 'packet', seq: event.seq, atMs: event.timeMs, sender: event.author as string as MemberId, text };
      }
    }
  }

  /** We joined the channel and wait to be included (rule 10). */
  stillJoining(): boolean {
    return this.record.state === 'waiting' && !this.record.createdByMe && this.record.pendingJoin === null && this.session.currentSubsession() === undefined;
  }

  /** Sends (or queues, when no key agreement is up yet) a chat message. */
  send(text: string): Promise<MessageRef> {
    return this.run('send', async () => {
      if (this.record.state === 'left' || this.record.state === 'removed') throw new WorkerError('invalid-state', 'You are no longer in this group.');
      const nowMs = this.host.deps.now();
      const ref = `q${randomId(this.host.deps, 12)}` as MessageRef;
      // async-groups rule 7: written now, sealed when it can go (plaintext stays under the data key).
      const position = this.record.nextPosition;
      const write = (batch: Batch) => {
        this.append({ t: 'm', ref, mpenc: null, author: this.self, text, atMs: nowMs, parents: [], hiddenParents: false, state: 'queued', failure: null, postIds: [] }, batch, true);
        this.record.queued.push({ ref, position, text, atMs: nowMs });
        this.record.last = { author: this.self, text, atMs: nowMs, position };
        this.record.readUpTo = Math.max(this.record.readUpTo, position);
      };
      // Nothing waits before it and the session can seal now: the message is stored and sealed
      // in ONE step (one transaction holds the message and the session state that sealed it, so
      // persist-before-send holds), instead of a transaction to queue it and another to seal it:
      // one commit and one sealed session record less before the packet leaves (bench:client).
      // As before, the message is stored when `send` resolves; a protocol refusal falls back to
      // the queue below (sealQueued tries again when it can).
      if (this.record.queued.length === 0 && this.canSeal() && !this.host.sendHeld(this)) {
        try {
          await this.step('send', (s, now) => s.send(encodePayload({ t: 'm', x: text }), now), { ownRef: ref, first: write });
          return ref;
        } catch (error) {
          if (!isProtocolError(error)) throw error;
        }
      }
      await this.save(write);
      // Sealed in its own step, queued behind this one: the command returns once the message is
      // stored, even when the conversation is busy catching up.
      void this.run('seal', () => this.sealQueued()).catch(() => undefined);
      return ref;
    });
  }

  /** Seals waiting messages while the session can send (each its own step). */
  private async sealQueued(): Promise<void> {
    while (this.canSeal() && this.record.queued.length > 0 && !this.host.sendHeld(this)) {
      const q = this.record.queued[0]!;
      try {
        await this.step('send', (s, now) => s.send(encodePayload({ t: 'm', x: q.text }), now), { ownRef: q.ref });
      } catch (error) {
        if (!isProtocolError(error)) throw error;
        return; // e.g. no active subsession after all: stays queued
      }
    }
  }

  /**
   * Whether a message may be sealed now. Never while a member of the current key has left the
   * channel (its exclusion is under way): the leaver could read it (async-groups rule 7).
   */
  canSeal(): boolean {
    if (this.session.state() !== 'active' || this.session.currentSubsession() === undefined || this.record.state !== 'active') return false;
    // Rule 6: nothing is sealed into a past we have not seen the end of (the session refuses).
    if (this.session.catchingUp()) return false;
    return !this.departedInKey();
  }

  /**
   * Rule 7, at post time: a data packet sealed under subsession `sealedUnder` may leave only if
   * no operation we processed since replaced it (`Session.canPost`). While we are leaving, our
   * shutdown's last packets are sealed under the subsession we part from: they go.
   */
  mayPost(sealedUnder: number): boolean {
    if (this.session.state() !== 'active') return true;
    return this.session.canPost({ subsession: sealedUnder, membershipSeq: null });
  }

  private departedInKey(): boolean {
    if (this.session.currentSubsession() === undefined) return false;
    const channel = new Set<string>(this.session.channelMembers());
    return !this.session.members().every((m) => channel.has(m));
  }

  /**
   * The relay refused a data packet because someone left after we sealed it (rule 7): the
   * message goes back to the queue and is sealed again under the key without them.
   */
  resealAfterRefusal(postId: string): Promise<void> {
    return this.run('reseal', async () => {
      await this.save((batch) => {
        for (const [position, item] of this.window) {
          if (item.t !== 'm' || !item.postIds.includes(postId) || item.author !== this.self) continue;
          this.putTimeline(position, { ...item, mpenc: null, state: 'queued', postIds: [] }, batch);
          if (!this.record.queued.some((q) => q.ref === item.ref)) this.record.queued.push({ ref: item.ref, position, text: item.text, atMs: item.atMs });
        }
      });
      await this.followUps();
    });
  }

  /** Sends a group control payload (roster, rename, invitation notice). */
  async sendControl(payload: GroupPayload): Promise<void> {
    await this.step(`control-${payload.t}`, (s, now) => s.send(encodePayload(payload), now));
  }

  /**
   * Work owed after any step, read from the stored record: the roster, queued messages, invite
   * notices, and includes of claimed joiners (rule 10).
   */
  async followUps(): Promise<void> {
    if (this.stopped || this.record.state === 'left' || this.record.state === 'removed') return;
    // Rule 6, and issue 9 §2 (after a restore the session authors nothing until it caught up):
    // what is owed waits for the head; the step that reaches it runs these follow-ups again.
    if (this.session.catchingUp()) return;
    if (this.canSeal() && this.record.owesRoster) {
      this.record.owesRoster = false;
      const bindings = this.session.members().map((m) => this.record.bindings[m]).filter((b): b is Binding => b !== undefined);
      await this.sendControl({ t: 'r', name: this.record.name, kind: this.record.kind, b: bindings });
    }
    if (this.canSeal()) {
      for (const invite of this.record.invites) {
        if (invite.by !== this.self || invite.usedBy !== null || this.record.announced.includes(invite.id)) continue;
        this.record.announced.push(invite.id);
        await this.sendControl({ t: 'i', id: invite.id, jk: invite.jk, ik: invite.ik, name: invite.name, exp: invite.expiresAtMs });
      }
    }
    await this.sealQueued();
    await this.includeClaims(false);
  }

  /**
   * Rule 10: include the fresh claimants, together; the inviter at once, any other member after
   * a backoff by rank (INCLUDE_BACKOFF_MS × (1 + rank), so that two members who are online do not
   * both propose: de-duplication), never while an operation is under way or waits, and at most
   * MAX_AUTOMATIC_ATTEMPTS proposals per joiner (no retry loop, mpENC §6.1.1 footnote).
   */
  private async includeClaims(afterBackoff: boolean): Promise<void> {
    // Rule 6: no proposal from a view we have not caught up with (ServerOrder would refuse it).
    if (this.record.proposing !== null || this.session.state() !== 'active' || this.session.catchingUp() || this.session.waiting() !== null) return;
    const nowMs = this.host.deps.now();
    const members = new Set<string>(this.session.members());
    const channel = new Set<string>(this.session.channelMembers());
    const tried = (m: MemberKey) => (this.includeAttempts.get(m) ?? 0) >= MAX_AUTOMATIC_ATTEMPTS;
    const waiting = this.record.claims.filter((c) => !members.has(c.member) && channel.has(c.member) && !tried(c.member));
    const fresh = waiting.filter((c) => nowMs - c.atMs < CLAIM_FRESH_MS).map((c) => c.member);
    if (fresh.length === 0) {
      // Joiners who claimed while nobody was online: ask whether they still are (they answer
      // with a fresh claim when they see anyone's packet). At most once per half freshness.
      if (waiting.length > 0 && nowMs - this.lastPingAtMs > CLAIM_FRESH_MS / 2) {
        this.lastPingAtMs = nowMs;
        this.host.postRaw(this, PING_TEXT);
      }
      return;
    }
    const mine = fresh.filter((m) => {
      const claim = this.record.claims.find((c) => c.member === m);
      return claim !== undefined && this.record.invites.find((i) => i.id === claim.inviteId)?.by === this.self;
    });
    const chosen = afterBackoff ? fresh : mine;
    if (chosen.length === 0) {
      if (this.backoffTimer === null) {
        const ranked = [...members].sort();
        const rank = Math.max(0, ranked.indexOf(this.self));
        this.backoffTimer = this.host.deps.timers.setTimeout(() => {
          this.backoffTimer = null;
          void this.run('include-backoff', () => this.includeClaims(true)).catch(() => undefined);
        }, INCLUDE_BACKOFF_MS * (1 + rank));
      }
      return;
    }
    const targets = chosen;
    for (const m of targets) this.includeAttempts.set(m, (this.includeAttempts.get(m) ?? 0) + 1);
    this.record.proposing = { kind: 'include', members: targets };
    for (const op of this.record.operations) {
      if (op.kind === 'add' && op.targets.some((t) => t.member !== null && targets.includes(t.member))) this.updateOperation(op.id, { state: 'running' });
    }
    await this.step('include', (s, now) => s.include(targets as string[] as MemberId[], now));
  }

  /** A join claim packet: verify it against the invitations we know and remember the joiner. */
  private async onClaim(sender: MemberKey, text: string, atMs: number, batch: Batch): Promise<void> {
    for (const invite of this.record.invites) {
      if (invite.usedBy !== null && invite.usedBy !== sender) continue;
      const opened = await openJoinClaim(invite.jk, this.channel, text);
      if (opened === undefined || opened.id !== invite.id) continue;
      let binding: Binding;
      try {
        binding = await verifyBinding(this.host.deps.crypto, opened.binding, { ch: this.channel, mk: sender });
      } catch (error) {
        this.notice('danger', `Someone tried to join with a forged identity: ${error instanceof Error ? error.message : String(error)}`, 'Nothing changed. If it repeats, tell the group.', null, atMs, batch);
        return;
      }
      if (invite.ik !== null && binding.ik !== invite.ik) {
        this.notice('danger', `Someone used ${invite.name ?? 'an'} invitation with another identity key; they were not added`, 'Nothing changed. Invite the person again if you still want them here.', null, atMs, batch);
        return;
      }
      if (invite.expiresAtMs < atMs) return;
      this.record.bindings[sender] = binding;
      // Fresh means posted lately by the relay's clock (rule 10: online now), not read lately.
      this.record.claims = [...this.record.claims.filter((c) => c.member !== sender), { member: sender, binding, inviteId: invite.id, atMs }].slice(-MAX_CLAIMS);
      for (const op of this.record.operations) {
        if (op.inviteId === invite.id) this.updateOperation(op.id, { targets: op.targets.map((t) => ({ ...t, member: sender })) });
      }
      return;
    }
  }

  learnInvite(invite: GroupInvite, atMs: number): void {
    if (this.record.invites.some((i) => i.id === invite.id)) return;
    // Announced after its invitee was already included (we joined later): spent already.
    const members = new Set<string>(this.session.members());
    const joined = invite.ik === null ? undefined : Object.values(this.record.bindings).find((b) => b.ik === invite.ik && members.has(b.mk));
    const known = joined === undefined ? invite : { ...invite, usedBy: joined.mk };
    this.record.invites = [...this.record.invites, known].slice(-MAX_INVITES);
    if (known.usedBy === null && invite.operationId === null && invite.expiresAtMs > atMs) {
      const name = invite.name ?? 'someone with an invite link';
      this.record.operations.push({
        id: `op-${invite.id}` as OperationId,
        kind: 'add',
        state: 'waiting',
        targets: [{ ik: invite.ik, member: null, name }],
        startedAtMs: atMs,
        expiresAtMs: invite.expiresAtMs,
        failure: null,
        inviteId: invite.id,
      });
    }
  }

  // ── membership actions ───────────────────────────────────────────────────────────────────

  exclude(member: MemberKey, operationId: OperationId): Promise<void> {
    return this.run('exclude', async () => {
      if (!this.canSeal()) throw new WorkerError('invalid-state', 'The group is not ready for changes yet.');
      if (this.record.proposing !== null) throw new WorkerError('invalid-state', 'Another change to this group is still under way; try again when it is done.');
      if (!this.session.members().includes(member as string as MemberId)) throw new WorkerError('not-found', 'That person is not a member.');
      const name = this.host.nameOf(member, this);
      this.record.proposing = { kind: 'exclude', members: [member] };
      this.record.operations.push({
        id: operationId,
        kind: 'remove',
        state: 'running',
        targets: [{ ik: this.record.bindings[member]?.ik ?? null, member, name }],
        startedAtMs: this.host.deps.now(),
        expiresAtMs: null,
        failure: null,
        inviteId: null,
      });
      await this.step('exclude', (s, now) => s.exclude([member as string as MemberId], now));
    });
  }

  /**
   * Rule 9: cancel our running add/remove while the engine's operation waits for someone who is
   * not online (a signed abort). Call inside `run`. False when there is nothing we may abort.
   */
  async abortWaiting(op: OperationRecord): Promise<boolean> {
    const waiting = this.session.waiting();
    if (waiting === null || !waiting.canAbort) return false;
    const p = this.record.proposing;
    this.record.proposing = null;
    this.record.operations = this.record.operations.filter((o) => o.id !== op.id);
    const names = op.targets.map((t) => (t.member !== null ? this.host.nameOf(t.member, this) : t.name)).join(', ');
    // The joiners' claims are spent: a new add needs them to claim (open Covey) again.
    if (p !== null && p.kind === 'include') this.record.claims = this.record.claims.filter((c) => !p.members.includes(c.member));
    await this.step('abort', (s, now) => s.abort(now), {
      prepare: (batch) => this.notice('info', `You cancelled ${op.kind === 'add' ? 'adding' : 'removing'} ${names}`, null, null, this.host.deps.now(), batch),
    });
    await this.followUps();
    return true;
  }

  /**
   * Who "go on without the missing" would leave out, and whom it would include again, as the
   * engine decides (greeting retryWithoutMissing): the awaited who are not shown online, or every
   * awaited member when each is. Null when our include does not wait or we may not abort it.
   */
  withoutMissing(): { readonly missing: ReadonlySet<string>; readonly rest: readonly MemberKey[] } | null {
    const waiting = this.session.waiting();
    const p = this.record.proposing;
    if (waiting === null || !waiting.canAbort || p === null || p.kind !== 'include') return null;
    const offline = waiting.awaiting.filter((m) => this.session.presenceOf(m).kind !== 'online');
    const missing = new Set<string>(offline.length > 0 ? offline : waiting.awaiting);
    return { missing, rest: p.members.filter((m) => !missing.has(m)) };
  }

  /**
   * Rule 9: the waiting include goes on without the members who never came (the engine aborts it
   * and proposes it again without them); their adds wait again for a fresh claim. Call inside `run`.
   */
  async retryWithoutMissing(): Promise<boolean> {
    const plan = this.withoutMissing();
    if (plan === null || plan.rest.length === 0) return false;
    const { missing, rest } = plan;
    this.record.proposing = { kind: 'include', members: [...rest] };
    this.record.claims = this.record.claims.filter((c) => !missing.has(c.member));
    for (const o of this.record.operations) {
      if (o.kind === 'add' && o.targets.some((t) => t.member !== null && missing.has(t.member))) this.updateOperation(o.id, { state: 'waiting' });
    }
    // Our abort comes back through the order before the new proposal: not a failure to report.
    this.retryAbortPending = true;
    await this.step('retry-without-missing', (s, now) => s.retryWithoutMissing(now));
    return true;
  }

  leave(): Promise<void> {
    return this.run('leave', async () => {
      if (this.record.state === 'left' || this.record.state === 'removed') return;
      this.record.leaving = true;
      if (this.session.state() !== 'active') {
        this.record.pendingRelay.push({ kind: 'leave' });
        await this.save();
        await this.performRelayActions();
        return;
      }
      await this.step('leave', (s, now) => s.leave(now));
    });
  }

  /** Our own leave or removal reached the relay (member-left for us). */
  markGone(): void {
    if (this.record.state === 'left' || this.record.state === 'removed') return;
    this.record.state = this.record.leaving ? 'left' : 'removed';
  }
}
