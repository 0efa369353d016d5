/**
 * The engine (issue 10): everything one browser profile does below the pixels. It owns the store,
 * the relay links, the outbox, one ConversationRuntime per conversation, the contacts and the
 * inbox, and implements the commands of src/shared/worker-api.ts. It runs only while this tab
 * holds the engine lock (engine-host.ts); every write checks that it still does (store epoch).
 *
 * Start: open the store → claim the epoch → unlock the data key (device key, or the passphrase) →
 * restore every conversation from its stored snapshot → process what the service worker fetched
 * into the inbox store → subscribe to every channel from its processed seq → flush the outbox.
 */
import { base64UrlDecode, base64UrlEncode } from '../protocol/bytes.js';
import { inboxEvents, type FetchTokenRecord, type OutboxRecord } from '../shared/client-db.js';
import type { ChannelId, CreateFetchTokenResponse, MemberKey, RelayEvent } from '../shared/relay-api.js';
import {
  MAX_DISPLAY_NAME_CHARS,
  MAX_GROUP_NAME_CHARS,
  WorkerError,
  type AppPhase,
  type ContactId,
  type ConversationId,
  type ConversationKind,
  type InvitationId,
  type MyCard,
  type NoticeView,
  type OperationId,
  type PersistenceState,
  type PushSubscriptionJson,
} from '../shared/worker-api.js';
import { ClientStore, EngineReplacedError, type Batch } from '../store/client-store.js';
import { createKeys, PBKDF2_ITERATIONS, rewrapKeys, unlockKeys, WrongPassphraseError } from '../store/vault.js';
import { cleanName, linkFor, makeBinding, makeCard, CARD_FRAGMENT, type Binding, type Card } from './cards.js';
import { ConversationRuntime, CrashError, type ConversationHost } from './conversation.js';
import { sealJoinClaim } from './group-messages.js';
import type { ClientDeps } from './deps.js';
import { CLAIM_REPOST_MS, DEPOSIT_TTL_MS, DEPOSIT_USES, FETCH_TOKEN_RENEW_MS, FETCH_TOKEN_TTL_MS, INVITE_TTL_MS } from './limits.js';
import { Outbox, postOptions } from './outbox.js';
import { People } from './people.js';
import { makeQr } from './qr.js';
import { PROFILE_KEY, type ConversationRecord, type ProfileRecord, type SessionRecord, type TimelineRecord } from './records.js';
import { openBackup, sealBackup, type BackupContent } from './backup.js';
import { RelayClientError, type RelaySigner, type SignedPost } from './relay-client.js';
import { memberSigner } from './relay-signer.js';
import { RelayLink } from './relays.js';
import { fingerprint, isFingerprint } from './safety-number.js';

/** Alerts kept for the app view. */
/** Smallest step between two outbox queue times (nextQueueTime). */
const QUEUE_TIME_STEP_MS = 0.001;
const MAX_ALERTS = 50;
/**
 * Inbox records read first when the app opens, the rest after them in one read
 * (processStoredInbox): two pages of the service worker (up to 2 × INBOX_PAGE_EVENTS events).
 */
export const INBOX_FIRST_READ = 2;

/** Where the engine reports view changes (the host's ViewHub). */
export interface ViewSink {
  invalidate(scope: 'app' | 'contacts' | 'conversations' | { conversation: ConversationId }): void;
  /**
   * Resolves once the conversation views of the update scheduled now (if any) have been rebuilt
   * and pushed (EngineHost.scheduleFlush); at once when none is scheduled.
   */
  viewsPushed?(): Promise<void>;
}

const randomToken = (deps: ClientDeps, bytes = 16) => base64UrlEncode(deps.crypto.randomBytes(bytes));

export class CoveyEngine implements ConversationHost {
  phase: AppPhase = 'starting';
  profile: ProfileRecord | null = null;
  identitySeed: Uint8Array | null = null;
  persistence: PersistenceState = 'unknown';
  readonly conversations = new Map<ConversationId, ConversationRuntime>();
  private readonly byChannel = new Map<string, ConversationRuntime>();
  readonly relays = new Map<string, RelayLink>();
  readonly outbox: Outbox;
  readonly people: People;
  readonly alerts: NoticeView[] = [];
  private hasPassphrase: boolean | undefined;
  /** Drafts by conversation (plaintext under the data key, async-groups rule 7). */
  readonly drafts = new Map<ConversationId, string>();
  private inboxChain: Promise<unknown> = Promise.resolve();
  private lastQueueTimeMs = 0;
  /** The inbox's fetch token for the service worker. */
  inboxToken: FetchTokenRecord | null = null;
  private stopped = false;
  /** goLive() has started. */
  private live = false;
  /**
   * While the sessions are being restored at open (phase 'ready' already): the conversation
   * records as read, from which the host shows the stored chat list (views.ts listedView);
   * commands wait until this is null again (EngineHost.call). Null otherwise.
   */
  listed: readonly ConversationRecord[] | null = null;
  /** Called once when the engine must stop (replaced by another tab, or a crash was injected). */
  onFatal: (error: unknown) => void = () => undefined;

  private constructor(
    readonly deps: ClientDeps,
    readonly store: ClientStore,
    readonly sink: ViewSink,
  ) {
    this.outbox = new Outbox(store, deps, {
      client: (relay) => this.relay(relay).client,
      signer: (channel) => this.byChannel.get(channel)?.signer,
      posted: (record, _seq, shown) => {
        // Deleted and shown by the step of its event (Outbox.deletedBy): nothing changed since.
        if (shown !== true) this.posted(record);
      },
      refused: (record, code, message) => void this.refusedPost(record, code, message),
      mayPost: (record) => record.sealedUnder === undefined || (this.byChannel.get(record.channel)?.mayPost(record.sealedUnder) ?? true),
      stale: (record) => void this.byChannel.get(record.channel)?.resealAfterRefusal(record.postId).catch(() => undefined),
      networkTrouble: (relay, message, unreachable) => {
        if (unreachable) this.relay(relay).reportUnreachable(message);
        else this.relay(relay).reportFailure(message);
        this.sink.invalidate('app');
      },
      fatal: (error) => this.fatal(error),
    });
    this.people = new People(this);
  }

  /**
   * Opens the store and becomes the profile's engine; phase is then no-identity, locked or ready.
   * `onListed`: called with the engine once the stored records are read and before the sessions
   * are restored (phase 'ready', `listed` set), so the stored chat list can be shown meanwhile.
   */
  static async open(deps: ClientDeps, sink: ViewSink, onListed?: (engine: CoveyEngine) => void): Promise<CoveyEngine> {
    const store = await ClientStore.open(deps.indexedDB, deps.dbName);
    const engine = new CoveyEngine(deps, store, sink);
    // The keys are read beside the epoch claim (the read runs after the claim's transaction).
    const [, keys] = await Promise.all([store.claimEpoch(deps.now()), store.keys()]);
    // Known from here: the first app view (the stored chat list waits for it) reads no store.
    engine.hasPassphrase = keys === undefined ? undefined : keys.passphrase !== null;
    if (keys === undefined) engine.phase = 'no-identity';
    else if (keys.passphrase !== null) engine.phase = 'locked';
    else {
      store.setDataKey(await unlockKeys(keys));
      // Only the stored state: the stored inbox and the relays follow in goLive(), which the
      // host starts once the stored chat list is on screen.
      await engine.restore(onListed);
    }
    if (deps.persisted !== undefined) {
      try {
        if (await deps.persisted()) engine.persistence = 'granted';
      } catch {
        // not available here
      }
    }
    sink.invalidate('app');
    return engine;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.outbox.stop();
    for (const c of this.conversations.values()) c.stop();
    for (const r of this.relays.values()) r.close();
    this.store.close();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private fatal(error: unknown): void {
    if (this.stopped) return;
    this.deps.log?.('error', `engine stops: ${error instanceof Error ? error.message : String(error)}`);
    this.stop();
    this.onFatal(error);
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────

  /** With the data key set: every record into memory, sessions restored, relays connected. */
  private async load(): Promise<void> {
    await this.restore();
    await this.goLive();
  }

  /**
   * With the data key set: every record into memory and every session restored from its stored
   * snapshot (phase 'ready': the stored chat list can be shown). Nothing is received or sent
   * until goLive().
   */
  private async restore(onListed?: (engine: CoveyEngine) => void): Promise<void> {
    // The reads go out together: each is a round trip to the browser's IndexedDB thread, and one
    // after another they left the engine idle for most of a cold start (bench:catchup trace).
    const profileRead = this.store.get<ProfileRecord>('profile', PROFILE_KEY);
    const reads = Promise.all([this.store.all<string>('drafts'), this.store.all<SessionRecord>('sessions'), this.store.all<ConversationRecord>('conversations'), this.store.transit('fetchTokens')]);
    reads.catch(() => undefined);
    const profile = await profileRead;
    if (profile === undefined) {
      this.phase = 'no-identity';
      return;
    }
    this.profile = profile;
    this.identitySeed = base64UrlDecode(profile.identitySeed);
    if (profile.persistence !== 'unknown') this.persistence = profile.persistence;
    // The app view's fingerprint, which the first app view (and so the stored chat list) waits
    // for: stored with the profile, else computed while those reads are out and stored.
    const fingerprinted = this.storeFingerprint().catch(() => undefined);
    const [[drafts, sessionRecords, conversationRecords, fetchTokens]] = await Promise.all([reads, this.people.load(), fingerprinted]);
    for (const [id, text] of drafts) this.drafts.set(id as ConversationId, text);
    const sessions = new Map(sessionRecords);
    const stored = conversationRecords.map(([id, record]) => {
      const session = sessions.get(id) ?? { snapshot: null, lastSeq: 0, lastSeen: {} };
      // A step stores the conversation record with the session (records.ts SessionRecord.conversation).
      return { record: session.conversation ?? record, session };
    });
    // The stored chat list needs only these records: it is shown from them while the sessions
    // restore (snapshot chunks unsealed, transcripts replayed: most of a cold start with a long
    // history, bench:catchup), and commands wait for the restore (EngineHost.call).
    if (onListed !== undefined) {
      this.listed = stored.map((c) => c.record);
      this.phase = 'ready';
      onListed(this);
    }
    try {
      // Restored side by side (their snapshot chunks are read together), added in the stored order.
      const runtimes = await Promise.all(stored.map((c) => ConversationRuntime.restore(this, c.record, c.session)));
      for (const runtime of runtimes) this.addRuntime(runtime);
      await this.outbox.load();
      const tokens = new Map(fetchTokens.map((t) => [t.channel as string, t]));
      for (const runtime of this.conversations.values()) runtime.fetchToken = tokens.get(runtime.channel) ?? null;
      this.inboxToken = tokens.get(profile.inbox.channel) ?? null;
      this.phase = 'ready';
    } finally {
      this.listed = null;
    }
  }

  /**
   * Our fingerprint (the app view, our card): the one stored with the profile, else computed
   * (5,200 hashes; safety-number.ts caches it).
   */
  async ownFingerprint(): Promise<string> {
    const p = this.profile!;
    return isFingerprint(p.fingerprint) ? p.fingerprint : fingerprint(this.deps.crypto, p.identityKey);
  }

  /** A profile stored without its fingerprint (by an older build): computed and stored, once. */
  private async storeFingerprint(): Promise<void> {
    if (isFingerprint(this.profile!.fingerprint)) return;
    const text = await fingerprint(this.deps.crypto, this.profile!.identityKey);
    // (Nothing else writes the profile before the restore is done.)
    this.profile = { ...this.profile!, fingerprint: text };
    await this.store.commit(this.store.batch().put('profile', PROFILE_KEY, this.profile));
  }

  /**
   * After restore(): the inbox store first (what the service worker fetched while we were
   * closed), then live: every channel subscribed from its processed seq, deposits flushed. Runs
   * once; the host starts it after showing the restored state, so a night's backlog is processed
   * behind the stored chat list instead of behind "Opening Covey…". Commands may come meanwhile:
   * each conversation's queue orders them after the stored events handed to it, and nothing is
   * sealed before a conversation has caught up with its relay (async-groups rule 6).
   */
  async goLive(): Promise<void> {
    if (this.phase !== 'ready' || this.live || this.stopped) return;
    this.live = true;
    await this.processStoredInbox();
    // Stopped meanwhile (handed over to another tab, lock lost): no relay link may be opened.
    if (this.stopped) return;
    this.people.watchInbox();
    for (const runtime of this.conversations.values()) this.startRuntime(runtime);
    void this.people.flushDeposits();
    void this.people.renewCardIfDue();
  }

  private addRuntime(runtime: ConversationRuntime): void {
    this.conversations.set(runtime.id, runtime);
    this.byChannel.set(runtime.channel, runtime);
  }

  private startRuntime(runtime: ConversationRuntime): void {
    const r = runtime.record;
    if (r.pendingJoin !== null) {
      void this.completeJoin(runtime).catch((error: unknown) => this.deps.log?.('warn', `join not finished: ${String(error)}`));
      return;
    }
    if (r.state !== 'left' && r.state !== 'removed') this.watchChannel(runtime);
    runtime.resume();
    if (runtime.stillJoining() && r.claimedAtMs !== null && this.deps.now() - r.claimedAtMs > CLAIM_REPOST_MS) void this.repostClaim(runtime);
  }

  /**
   * Makes (or renews) our read-only fetch token for a channel and stores it where the service
   * worker reads it (src/shared/client-db.ts), so it can fetch while the app is closed. Best
   * effort: offline, the old token (if any) keeps working until it expires.
   */
  async renewFetchToken(
    relay: string,
    channel: ChannelId,
    signer: RelaySigner,
    current: FetchTokenRecord | null,
    afterSeq: number,
    set: (token: FetchTokenRecord) => void,
  ): Promise<void> {
    if (current !== null && current.expiresAtMs - this.deps.now() > FETCH_TOKEN_RENEW_MS) return;
    try {
      const client = this.relay(relay).client;
      const made = await client.createFetchToken(channel, FETCH_TOKEN_TTL_MS, signer);
      const token = fetchTokenRecord(relay, channel, made, afterSeq, signer);
      await this.store.commit(this.store.batch().putTransit('fetchTokens', token));
      set(token);
      if (current !== null) await client.revokeFetchTokens(channel, current.token, signer).catch(() => undefined);
    } catch (error) {
      if (error instanceof EngineReplacedError) this.fatal(error);
    }
  }

  /** Reads the channel live, and keeps a fetch token for the service worker. */
  private watchChannel(runtime: ConversationRuntime): void {
    const r = runtime.record;
    this.relay(r.relay).watch(r.channel, runtime.meta.lastSeq, runtime.signer);
    void this.renewFetchToken(r.relay, r.channel, runtime.signer, runtime.fetchToken, runtime.meta.lastSeq, (t) => (runtime.fetchToken = t));
  }

  private async processStoredInbox(): Promise<void> {
    // Read in key order ([channel, seq]: by channel, then seq): a first page, handed over while
    // the rest is read in one go. One read of a whole night (10,000 records) kept the engine idle
    // for all of it before the first message (~0.36 s traced, bench:catchup). The rest is not read
    // page by page either: a conversation busy with a page does not yield to the read's answer
    // until it waits on its store, so it found its queue empty at the end of each page and stored
    // every page before starting the next, instead of checking the next page's signatures while
    // the page before is stored (ConversationRuntime.receivePage).
    // A record is a page of events the service worker read (or, written by older builds, one
    // event): it is deleted with the step that processes its last event, so a crash before that
    // leaves it to be processed again, its processed events dropping by seq.
    const firstPage = this.deps.inboxFirstRead ?? INBOX_FIRST_READ;
    let page = await this.store.inboxPage(undefined, firstPage);
    let rest = page.length === firstPage;
    // A conversation's records are handed over all at once (not one awaited after another): they
    // wait in its queue and go through in pages of RECEIVE_PAGE (one receiveAll, one transaction
    // each). Awaiting each made every record a page of one: 10,000 transactions and snapshots
    // for a night of messages (bench:catchup).
    const received: Promise<void>[] = [];
    while (page.length > 0) {
      const last = page[page.length - 1]!;
      const next = rest ? this.store.inboxPage([last.channel, last.seq]) : Promise.resolve([]);
      rest = false;
      next.catch(() => undefined); // seen when awaited below
      for (const record of page) {
        const runtime = this.byChannel.get(record.channel);
        const events = inboxEvents(record);
        const drop = (batch: Batch) => void batch.delete('inbox', [record.channel, record.seq]);
        // The conversation deletes the record with the page that processes its last event.
        if (runtime !== undefined) events.forEach((event, i) => received.push(runtime.receive(event, i === events.length - 1 ? record.seq : null).catch(() => undefined)));
        else if (record.channel === this.profile?.inbox.channel) for (const [i, event] of events.entries()) await this.people.receiveInbox(event, i === events.length - 1 ? drop : undefined);
        else await this.store.commit(this.store.batch().delete('inbox', [record.channel, record.seq]));
      }
      page = await next;
    }
    await Promise.all(received);
  }

  /**
   * The browser says the network is back (`online`): every relay link tries now instead of
   * after its backoff; once connected, the outbox and pending deposits flush (onState).
   */
  networkMayBeBack(): void {
    for (const link of this.relays.values()) link.reconnectNow();
  }

  /** The browser says the network is gone (`offline`): no socket is trusted until one reopens. */
  networkLost(): void {
    for (const link of this.relays.values()) link.reportUnreachable('This device is offline; messages wait and go when it is back');
  }

  relay(url: string): RelayLink {
    let link = this.relays.get(url);
    if (link === undefined) {
      link = new RelayLink(url, this.deps, {
        onEvent: (_relay, channel, event) => this.onRelayEvent(channel, event),
        onRemoved: (_relay, channel) => this.onRemovedFromChannel(channel),
        onState: () => {
          this.sink.invalidate('app');
          // Presence in a conversation's view depends on reaching its relay (views.ts presenceOf).
          for (const runtime of this.conversations.values()) if (runtime.record.relay === url) this.sink.invalidate({ conversation: runtime.id });
          if (link!.state === 'connected') {
            this.outbox.retryAll();
            void this.people.flushDeposits();
          }
        },
        onRefused: (_relay, frame) => {
          if (frame.channel !== undefined && frame.code === 'forbidden') this.onRemovedFromChannel(frame.channel);
        },
        onSubscribed: (_relay, channel, headSeq, firstSeq) => {
          void this.byChannel.get(channel)?.catchUp(headSeq, firstSeq).catch(() => undefined);
        },
      });
      this.relays.set(url, link);
    }
    return link;
  }

  private onRelayEvent(channel: ChannelId, event: RelayEvent): void {
    const runtime = this.byChannel.get(channel);
    if (runtime !== undefined) {
      void runtime.receive(event).catch(() => undefined);
      return;
    }
    if (channel === this.profile?.inbox.channel) void this.people.receiveInbox(event);
  }

  private onRemovedFromChannel(channel: ChannelId): void {
    const runtime = this.byChannel.get(channel);
    if (runtime === undefined) return;
    void runtime.run('removed', async () => {
      runtime.markGone();
      await runtime.save();
    }).catch(() => undefined);
  }

  /** Serialises inbox work (one message at a time, like a conversation's queue). */
  inboxRun<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.inboxChain.then(fn);
    this.inboxChain = next.catch(() => undefined);
    return next;
  }

  requireReady(): void {
    if (this.phase === 'ready') return;
    const messages: Record<string, string> = {
      'no-identity': 'Create your profile first.',
      locked: 'Covey is locked: enter your passphrase.',
      starting: 'Covey is still starting.',
      failed: 'Covey could not open its storage.',
    };
    const code = this.phase === 'failed' ? 'storage' : this.phase;
    throw new WorkerError(code, messages[this.phase] ?? 'Not available now.');
  }

  alert(tone: NoticeView['tone'], text: string, whatToDo: string | null): void {
    this.alerts.unshift({ type: 'notice', id: randomToken(this.deps, 9), timeMs: this.deps.now(), tone, text, whatToDo, action: null });
    if (this.alerts.length > MAX_ALERTS) this.alerts.length = MAX_ALERTS;
    this.sink.invalidate('app');
  }

  // ── ConversationHost ─────────────────────────────────────────────────────────────────────

  identityKey(): string {
    return this.profile!.identityKey;
  }

  nameOf(member: MemberKey, conversation: Pick<ConversationRuntime, 'self' | 'record'>): string {
    if (member === conversation.self) return 'You';
    const binding = conversation.record.bindings[member];
    if (binding === undefined) return `Someone (${member.slice(0, 6)})`;
    const contact = this.people.contactByIk(binding.ik);
    return contact === undefined ? binding.name : this.people.displayName(contact);
  }

  enqueueOutbox(records: OutboxRecord[], signed?: ReadonlyMap<string, Promise<SignedPost>>): void {
    this.outbox.enqueue(records, signed);
    this.sink.invalidate('app');
  }

  outboxHolds(channel: ChannelId, packet: string): boolean {
    return this.outbox.holds(channel, packet);
  }

  outboxEchoed(channel: ChannelId, packet: string): string | undefined {
    return this.outbox.echoed(channel, packet);
  }

  outboxDeletedBy(echoes: readonly (readonly [string, number])[], committed: Promise<void>): string[] {
    return this.outbox.deletedBy(echoes, committed);
  }

  nextQueueTime(): number {
    // Sub-millisecond steps keep the order within one millisecond; still a time for display.
    this.lastQueueTimeMs = Math.max(this.deps.now(), this.lastQueueTimeMs + QUEUE_TIME_STEP_MS);
    return this.lastQueueTimeMs;
  }

  async presign(record: OutboxRecord, signer: RelaySigner): Promise<OutboxRecord> {
    if (record.ifNoLeaveAfter === null) return record;
    const presigned = await this.relay(record.relay).client.presignDeferredPost(
      record.channel,
      base64UrlDecode(record.packet),
      { postId: record.postId, ifNoLeaveAfter: record.ifNoLeaveAfter, wake: record.wake === true },
      signer,
    );
    return { ...record, presigned };
  }

  signPost(record: OutboxRecord, signer: RelaySigner): Promise<SignedPost> {
    return this.relay(record.relay).client.signPost(record.channel, base64UrlDecode(record.packet), postOptions(record), signer);
  }

  async relayAction(conversation: ConversationRuntime, action: ConversationRecord['pendingRelay'][number]): Promise<void> {
    const client = this.relay(conversation.record.relay).client;
    try {
      if (action.kind === 'remove') await client.removeMember(conversation.channel, action.member, conversation.signer);
      else await client.leave(conversation.channel, conversation.signer);
    } catch (error) {
      // Already gone (404) or we are no longer a member (403): the action's purpose holds.
      if (error instanceof RelayClientError && (error.status === 404 || error.status === 403)) return;
      throw error;
    }
  }

  outboxSettled(channel: ChannelId): Promise<void> {
    return this.outbox.settled(channel);
  }

  viewsPushed(): Promise<void> {
    return this.sink.viewsPushed?.() ?? Promise.resolve();
  }

  changed(conversation: ConversationRuntime): void {
    this.sink.invalidate({ conversation: conversation.id });
    this.sink.invalidate('conversations');
    this.sink.invalidate('app');
  }

  failed(conversation: ConversationRuntime, error: unknown): void {
    // Stopped (handed over to another tab, locked, closed) while the step ran: it failed on the
    // closed store, which is no fault, and there is nothing to rebuild. Nothing of it was stored
    // or sent; the next engine starts from what was.
    if (this.stopped) return;
    if (error instanceof EngineReplacedError || error instanceof CrashError) {
      this.fatal(error);
      return;
    }
    this.deps.log?.('error', `conversation step failed: ${error instanceof Error ? error.message : String(error)}`);
    // mpenc_js: after a failure halfway, the object is broken; rebuild it from the store.
    conversation.stop();
    void this.reload(conversation.id).catch((e: unknown) => this.fatal(e));
  }

  sendHeld(conversation: ConversationRuntime): boolean {
    return this.heldBy(conversation).length > 0;
  }

  /** Contacts whose changed key holds sending in this conversation. */
  heldBy(conversation: ConversationRuntime): ContactId[] {
    return this.heldAmong(conversation, conversation.session.members());
  }

  /** heldBy among these members (the stored chat list before the sessions are restored: the record's). */
  heldAmong(conversation: Pick<ConversationRuntime, 'self' | 'record'>, members: readonly string[]): ContactId[] {
    const out: ContactId[] = [];
    for (const m of members) {
      const b = conversation.record.bindings[m];
      if (b === undefined || m === (conversation.self as string)) continue;
      const contact = this.people.contactByIk(b.ik);
      if (contact?.verification === 'key-changed') out.push(contact.id);
    }
    return out;
  }

  private async reload(id: ConversationId): Promise<void> {
    const old = this.conversations.get(id);
    if (old === undefined) return;
    const record = await this.store.get<ConversationRecord>('conversations', id);
    if (record === undefined) return;
    const stored = (await this.store.get<SessionRecord>('sessions', id)) ?? { snapshot: null, lastSeq: 0, lastSeen: {} };
    const runtime = await ConversationRuntime.restore(this, stored.conversation ?? record, stored);
    this.addRuntime(runtime);
    this.startRuntime(runtime);
    this.changed(runtime);
  }

  // ── outbox results ───────────────────────────────────────────────────────────────────────

  private posted(record: OutboxRecord): void {
    const runtime = this.byChannel.get(record.channel);
    if (runtime !== undefined) this.sink.invalidate({ conversation: runtime.id });
    this.sink.invalidate('app');
  }

  private async refusedPost(record: OutboxRecord, code: string, message: string): Promise<void> {
    const runtime = this.byChannel.get(record.channel);
    this.deps.log?.('warn', `post refused: ${code} ${message}`);
    if (runtime === undefined) return;
    if (code === 'membership-changed') {
      await runtime.resealAfterRefusal(record.postId).catch(() => undefined);
      return;
    }
    await runtime
      .run('refused', async () => {
        await runtime.save((batch) => {
          for (const [position, item] of runtime.window) {
            if (item.t === 'm' && item.postIds.includes(record.postId)) {
              const why =
                code === 'membership-changed'
                  ? 'Someone left the group before it went out, so it was not sent (they could have read it). Send it again.'
                  : code === 'forbidden'
                    ? 'You are no longer in this group.'
                    : `The relay refused it (${code}).`;
              runtime.putTimeline(position, { ...item, state: 'failed', failure: why }, batch);
            }
          }
        });
      })
      .catch(() => undefined);
  }

  // ── profile ──────────────────────────────────────────────────────────────────────────────

  async createIdentity(displayNameInput: string, relayInput: string | undefined): Promise<MyCard> {
    if (this.phase !== 'no-identity') throw new WorkerError('invalid-state', 'You already have a profile on this device.');
    const displayName = cleanName(displayNameInput, MAX_DISPLAY_NAME_CHARS, 'Your name', (m) => new WorkerError('bad-request', m));
    const homeRelay = relayInput ?? this.deps.defaultRelay;
    const keys = await this.store.keys();
    if (keys === undefined) {
      const created = await createKeys();
      await this.store.putKeys(created.record);
      this.store.setDataKey(created.dataKey);
    } else this.store.setDataKey(await unlockKeys(keys));
    const crypto = this.deps.crypto;
    const identitySeed = crypto.randomBytes(32);
    const ownerSeed = crypto.randomBytes(32);
    const hpkeSeed = crypto.randomBytes(32);
    const owner = memberSigner(crypto, ownerSeed, base64UrlEncode(await crypto.ed25519PublicKey(ownerSeed)) as MemberKey);
    const client = this.relay(homeRelay).client;
    let inbox: ChannelId;
    let deposit: { capability: string; expiresAtMs: number };
    try {
      inbox = (await client.createChannel('inbox', owner)).channelId;
      deposit = await client.createCapability(inbox, { kind: 'deposit', ttlMs: DEPOSIT_TTL_MS, uses: DEPOSIT_USES }, owner);
    } catch (error) {
      throw this.networkError(error, homeRelay);
    }
    const hk = await this.people.inboxPublicKey(hpkeSeed);
    const card = await makeCard(crypto, identitySeed, { name: displayName, hk, relay: homeRelay, inbox, deposit: deposit.capability as Card['deposit'], exp: deposit.expiresAtMs });
    const profile: ProfileRecord = {
      identitySeed: base64UrlEncode(identitySeed),
      identityKey: card.ik,
      displayName,
      homeRelay,
      inbox: {
        channel: inbox,
        ownerSeed: base64UrlEncode(ownerSeed),
        hpkeSeed: base64UrlEncode(hpkeSeed),
        deposit: deposit.capability as Card['deposit'],
        depositExpiresAtMs: deposit.expiresAtMs,
        lastSeq: 0,
      },
      card,
      persistence: this.persistence,
      createdAtMs: this.deps.now(),
      fingerprint: await fingerprint(this.deps.crypto, card.ik),
    };
    await this.store.commit(this.store.batch().put('profile', PROFILE_KEY, profile));
    await this.load();
    this.sink.invalidate('app');
    this.sink.invalidate('contacts');
    return this.myCard();
  }

  networkError(error: unknown, relay: string): WorkerError {
    if (error instanceof WorkerError) return error;
    if (error instanceof RelayClientError) return new WorkerError('refused', `The relay refused: ${error.message}`);
    // The person is told the relay was out of reach; the log keeps why, which fetch hides in
    // `cause` ("fetch failed" ← "connect ECONNREFUSED …"): otherwise a refused connection, a
    // reset and a DNS failure all read the same in a bug report.
    this.deps.log?.('warn', `relay ${relay} not reached: ${causeChain(error)}`);
    return new WorkerError('offline', `Covey could not reach the relay at ${relay}. Check your connection and try again.`);
  }

  async saveProfile(change: Partial<ProfileRecord>): Promise<void> {
    const next = { ...this.profile!, ...change };
    await this.store.commit(this.store.batch().put('profile', PROFILE_KEY, next));
    this.profile = next;
    this.sink.invalidate('app');
  }

  async setDisplayName(input: string): Promise<void> {
    this.requireReady();
    const displayName = cleanName(input, MAX_DISPLAY_NAME_CHARS, 'Your name', (m) => new WorkerError('bad-request', m));
    const p = this.profile!;
    const card = await makeCard(this.deps.crypto, this.identitySeed!, { name: displayName, hk: p.card.hk, relay: p.card.relay, inbox: p.card.inbox, deposit: p.card.deposit, exp: p.card.exp });
    await this.saveProfile({ displayName, card });
  }

  async myCard(): Promise<MyCard> {
    this.requireReady();
    await this.people.renewCardIfDue();
    const card = this.profile!.card;
    const link = linkFor(this.deps.appOrigin, CARD_FRAGMENT, card);
    return { link, qr: makeQr(link), name: card.name, fingerprint: await this.ownFingerprint(), expiresAtMs: card.exp };
  }

  async reportPersistence(granted: boolean | 'unsupported'): Promise<void> {
    this.persistence = granted === 'unsupported' ? 'unsupported' : granted ? 'granted' : 'refused';
    if (this.phase === 'ready' && this.profile !== null) await this.saveProfile({ persistence: this.persistence });
    this.sink.invalidate('app');
  }

  // ── push ─────────────────────────────────────────────────────────────────────────────────

  async pushServerKey(): Promise<{ publicKey: string | null; relay: string }> {
    const relay = this.profile!.homeRelay;
    try {
      return { publicKey: (await this.relay(relay).client.vapidKey()).publicKey, relay };
    } catch (error) {
      if (error instanceof RelayClientError && error.status === 404) return { publicKey: null, relay };
      throw this.networkError(error, relay);
    }
  }

  /** Registers (or with null, removes) the push subscription in our channels on the home relay. */
  async setPush(subscription: PushSubscriptionJson | null): Promise<number> {
    const home = this.profile!.homeRelay;
    const targets: { channel: ChannelId; signer: RelaySigner }[] = [{ channel: this.profile!.inbox.channel, signer: await this.people.ownerSigner() }];
    for (const rt of this.conversations.values()) {
      if (rt.record.relay === home && rt.record.state !== 'left' && rt.record.state !== 'removed' && rt.record.pendingJoin === null) targets.push({ channel: rt.channel, signer: rt.signer });
    }
    const client = this.relay(home).client;
    try {
      for (const t of targets) {
        if (subscription === null) await client.unregisterPush(t.channel, t.signer);
        else await client.registerPush(t.channel, subscription, t.signer);
      }
    } catch (error) {
      throw this.networkError(error, home);
    }
    await this.saveProfile({ push: subscription });
    return targets.length;
  }

  /** A group we just created or joined gets the push subscription too (best effort). */
  private registerPushFor(runtime: ConversationRuntime): void {
    const push = this.profile?.push;
    if (push == null || runtime.record.relay !== this.profile!.homeRelay) return;
    void this.relay(runtime.record.relay).client.registerPush(runtime.channel, push, runtime.signer).catch(() => undefined);
  }

  // ── backup ───────────────────────────────────────────────────────────────────────────────

  async exportBackup(passphrase: string): Promise<{ fileName: string; text: string }> {
    const conversations = [];
    for (const rt of this.conversations.values()) {
      conversations.push({ record: rt.record, timeline: await this.store.range<TimelineRecord>('timeline', rt.id) });
    }
    const content: BackupContent = { version: 1, createdAtMs: this.deps.now(), profile: this.profile!, contacts: [...this.people.contacts.values()], conversations };
    const text = await sealBackup(content, passphrase, this.deps.pbkdf2Iterations ?? PBKDF2_ITERATIONS);
    const day = new Date(this.deps.now()).toISOString().slice(0, 10);
    return { fileName: `covey-backup-${day}.txt`, text };
  }

  /** First run only: identity, contacts and histories from a backup; groups read-only (backup.ts). */
  async importBackup(text: string, passphrase: string): Promise<void> {
    if (this.phase !== 'no-identity') throw new WorkerError('invalid-state', 'A backup can only be restored on a device without a profile.');
    const content = await openBackup(text, passphrase);
    if ((await this.store.keys()) === undefined) {
      const created = await createKeys();
      await this.store.putKeys(created.record);
      this.store.setDataKey(created.dataKey);
    } else this.store.setDataKey(await unlockKeys((await this.store.keys())!));
    const now = this.deps.now();
    // (The fingerprint is computed again from the identity key, not taken from a file.)
    const { fingerprint: _, ...profile } = content.profile;
    const batch = this.store.batch().put('profile', PROFILE_KEY, { ...profile, persistence: 'unknown', push: null });
    for (const contact of content.contacts) batch.put('contacts', contact.id, contact);
    for (const { record, timeline } of content.conversations) {
      const restored: ConversationRecord = {
        ...record,
        state: record.state === 'removed' ? 'removed' : 'left',
        pendingJoin: null,
        pendingRelay: [],
        queued: [],
        proposing: null,
        claims: [],
        invites: [],
        operations: [],
        owesRoster: false,
        nextPosition: record.nextPosition + 1,
        lastActivityMs: now,
      };
      for (const [position, item] of timeline) batch.put('timeline', [record.id, position], item);
      batch.put('timeline', [record.id, record.nextPosition], {
        t: 'n',
        tone: 'warning',
        text: 'Restored from a backup: this device no longer holds the group’s keys',
        whatToDo: 'To take part again, ask a member to invite you.',
        action: null,
        atMs: now,
      } satisfies TimelineRecord);
      batch.put('conversations', record.id, restored);
      batch.put('sessions', record.id, { snapshot: null, lastSeq: 0, lastSeen: {} } satisfies SessionRecord);
    }
    await this.store.commit(batch);
    await this.load();
    this.sink.invalidate('app');
    this.sink.invalidate('contacts');
    this.sink.invalidate('conversations');
  }

  // ── passphrase ───────────────────────────────────────────────────────────────────────────

  async unlock(passphrase: string): Promise<void> {
    if (this.phase !== 'locked') throw new WorkerError('invalid-state', 'Covey is not locked.');
    const keys = await this.store.keys();
    if (keys === undefined) throw new WorkerError('invalid-state', 'Nothing to unlock.');
    try {
      this.store.setDataKey(await unlockKeys(keys, passphrase));
    } catch (error) {
      if (error instanceof WrongPassphraseError) throw new WorkerError('wrong-passphrase', 'That passphrase is not right.');
      throw error;
    }
    await this.load();
    this.sink.invalidate('app');
    this.sink.invalidate('contacts');
    this.sink.invalidate('conversations');
  }

  async setPassphrase(passphrase: string, current: string | undefined): Promise<void> {
    this.requireReady();
    const keys = (await this.store.keys())!;
    try {
      await this.store.putKeys(await rewrapKeys(keys, current, passphrase, this.deps.pbkdf2Iterations ?? PBKDF2_ITERATIONS));
      this.hasPassphrase = true;
    } catch (error) {
      if (error instanceof WrongPassphraseError) throw new WorkerError('wrong-passphrase', 'Your current passphrase is not right.');
      throw error;
    }
    this.sink.invalidate('app');
  }

  async clearPassphrase(current: string): Promise<void> {
    this.requireReady();
    const keys = (await this.store.keys())!;
    if (keys.passphrase === null) return;
    try {
      await this.store.putKeys(await rewrapKeys(keys, current, null));
      this.hasPassphrase = false;
    } catch (error) {
      if (error instanceof WrongPassphraseError) throw new WorkerError('wrong-passphrase', 'That passphrase is not right.');
      throw error;
    }
    this.sink.invalidate('app');
  }

  /** Whether a passphrase locks the store (read once, then kept current by the commands). */
  async passphraseSet(): Promise<boolean> {
    this.hasPassphrase ??= (await this.store.keys())?.passphrase != null;
    return this.hasPassphrase;
  }

  // ── conversations ────────────────────────────────────────────────────────────────────────

  conversation(id: unknown): ConversationRuntime {
    this.requireReady();
    const runtime = typeof id === 'string' ? this.conversations.get(id as ConversationId) : undefined;
    if (runtime === undefined) throw new WorkerError('not-found', 'There is no such conversation.');
    return runtime;
  }

  async ownBinding(record: Pick<ConversationRecord, 'channel' | 'memberKey'>): Promise<Binding> {
    return makeBinding(this.deps.crypto, this.identitySeed!, { name: this.profile!.displayName, ch: record.channel, mk: record.memberKey });
  }

  private async newMemberKey(): Promise<{ seed: string; key: MemberKey; signer: RelaySigner }> {
    const seed = this.deps.crypto.randomBytes(32);
    const key = base64UrlEncode(await this.deps.crypto.ed25519PublicKey(seed)) as MemberKey;
    return { seed: base64UrlEncode(seed), key, signer: memberSigner(this.deps.crypto, seed, key) };
  }

  private newRecord(fields: { kind: ConversationKind; name: string; relay: string; channel: ChannelId; seed: string; key: MemberKey; createdByMe: boolean }): ConversationRecord {
    const now = this.deps.now();
    return {
      id: `c${randomToken(this.deps, 12)}` as ConversationId,
      kind: fields.kind,
      name: fields.name,
      relay: fields.relay,
      channel: fields.channel,
      memberSeed: fields.seed,
      memberKey: fields.key,
      state: 'waiting',
      createdAtMs: now,
      bindings: {},
      invites: [],
      claims: [],
      operations: [],
      joinMembers: null,
      owesRoster: false,
      proposing: null,
      pendingRelay: [],
      queued: [],
      nextPosition: 1,
      readUpTo: 0,
      unread: 0,
      last: null,
      lastActivityMs: now,
      attention: false,
      lastMembers: [],
      createdByMe: fields.createdByMe,
      leaving: false,
      announced: [],
      pendingJoin: null,
      claimedAtMs: null,
    };
  }

  /** A new group on our home relay (issue 10 §7: a channel lives on its creator's relay). */
  async createGroup(kind: ConversationKind, nameInput: string, contactIds: readonly ContactId[]): Promise<ConversationRuntime> {
    this.requireReady();
    const name = kind === 'direct' ? 'Chat' : cleanName(nameInput, MAX_GROUP_NAME_CHARS, 'The group name', (m) => new WorkerError('bad-request', m));
    const contacts = contactIds.map((id) => this.people.contact(id));
    const relay = this.profile!.homeRelay;
    const member = await this.newMemberKey();
    let channel: ChannelId;
    try {
      channel = (await this.relay(relay).client.createChannel('group', member.signer)).channelId;
    } catch (error) {
      throw this.networkError(error, relay);
    }
    const record = this.newRecord({ kind, name, relay, channel, seed: member.seed, key: member.key, createdByMe: true });
    record.joinMembers = [member.key];
    record.bindings[member.key] = await this.ownBinding(record);
    record.owesRoster = true; // the start's roster carries the name and our binding
    const runtime = ConversationRuntime.create(this, record);
    await runtime.save((batch) => void batch.put('sessions', record.id, { snapshot: null, lastSeq: 0, lastSeen: {} } satisfies SessionRecord));
    this.addRuntime(runtime);
    this.startRuntime(runtime);
    this.registerPushFor(runtime);
    for (const contact of contacts) await this.invite(runtime, contact.id);
    return runtime;
  }

  /** Sealed invitation to a contact's inbox (issue 10 §7), and the 'add' operation that waits for them. */
  async invite(runtime: ConversationRuntime, contactId: ContactId): Promise<OperationId> {
    const contact = this.people.contact(contactId);
    if (contact.verification === 'key-changed') throw new WorkerError('send-held', `${this.people.displayName(contact)}'s key changed: accept or verify it first.`);
    const r = runtime.record;
    if (r.state === 'left' || r.state === 'removed') throw new WorkerError('invalid-state', 'You are no longer in this group.');
    const members = new Set<string>(runtime.session.members());
    if ([...members].some((m) => r.bindings[m]?.ik === contact.card.ik)) throw new WorkerError('invalid-state', `${this.people.displayName(contact)} is already in this group.`);
    const { cap, jk, id, exp } = await this.makeInviteCapability(runtime);
    const bindings = [...new Set([...members, runtime.self])].map((m) => r.bindings[m]).filter((b): b is Binding => b !== undefined);
    const body = { kind: r.kind, relay: r.relay, ch: r.channel, cap, jk, id, name: r.name, exp, members: bindings };
    const operationId = `op-${id}` as OperationId;
    await runtime.run('invite', async () => {
      runtime.learnInvite({ id, jk, ik: contact.card.ik, name: this.people.displayName(contact), by: runtime.self, expiresAtMs: exp, operationId, usedBy: null }, this.deps.now());
      runtime.record.operations.push({
        id: operationId,
        kind: 'add',
        state: 'waiting',
        targets: [{ ik: contact.card.ik, member: null, name: this.people.displayName(contact) }],
        startedAtMs: this.deps.now(),
        expiresAtMs: exp,
        failure: null,
        inviteId: id,
      });
      await runtime.save();
      await runtime.followUps();
    });
    await this.people.sendToInbox(contact.card, 'invitation', body, `the invitation for ${this.people.displayName(contact)}`);
    return operationId;
  }

  async makeInviteCapability(runtime: ConversationRuntime): Promise<{ cap: Card['deposit']; jk: string; id: string; exp: number }> {
    const r = runtime.record;
    let capability;
    try {
      capability = await this.relay(r.relay).client.createCapability(r.channel, { kind: 'invite', ttlMs: INVITE_TTL_MS, uses: 1 }, runtime.signer);
    } catch (error) {
      throw this.networkError(error, r.relay);
    }
    return { cap: capability.capability, jk: base64UrlEncode(this.deps.crypto.randomBytes(32)), id: randomToken(this.deps), exp: capability.expiresAtMs };
  }

  /** Accepting an invitation: a fresh channel key, the relay join, then our join claim (rule 10). */
  async acceptInvitation(id: InvitationId): Promise<ConversationRuntime> {
    const invitation = this.people.invitation(id);
    const body = invitation.body;
    if (body.exp < this.deps.now()) throw new WorkerError('expired', 'This invitation has expired. Ask for a new one.');
    const existing = [...this.conversations.values()].find((c) => c.channel === body.ch && c.record.state !== 'left' && c.record.state !== 'removed');
    if (existing !== undefined) {
      await this.people.dropInvitation(id);
      return existing;
    }
    const member = await this.newMemberKey();
    const record = this.newRecord({ kind: body.kind, name: body.name, relay: body.relay, channel: body.ch, seed: member.seed, key: member.key, createdByMe: false });
    for (const b of body.members) record.bindings[b.mk] = b;
    record.bindings[member.key] = await this.ownBinding(record);
    record.pendingJoin = { cap: body.cap, jk: body.jk, inviteId: body.id };
    // Our own invitation, kept to post fresh join claims (rule 10); it is ours, never announced.
    record.invites.push({ id: body.id, jk: body.jk, ik: this.profile!.identityKey, name: this.profile!.displayName, by: member.key, expiresAtMs: body.exp, operationId: null, usedBy: member.key });
    record.operations.push({
      id: `op-join-${body.id}` as OperationId,
      kind: 'join',
      state: 'waiting',
      targets: [{ ik: invitation.inviter.ik, member: null, name: invitation.inviter.name }],
      startedAtMs: this.deps.now(),
      expiresAtMs: body.exp,
      failure: null,
      inviteId: body.id,
    });
    const runtime = ConversationRuntime.create(this, record);
    await runtime.save((batch) => {
      batch.put('sessions', record.id, { snapshot: null, lastSeq: 0, lastSeen: {} } satisfies SessionRecord);
      batch.delete('invitations', id);
    });
    this.people.forgetInvitation(id);
    this.addRuntime(runtime);
    try {
      await this.completeJoin(runtime);
    } catch (error) {
      if (error instanceof WorkerError && (error.code === 'expired' || error.code === 'refused')) await this.deleteConversation(runtime.id, false);
      throw error;
    }
    return runtime;
  }

  /** The relay join and the join claim; safe to repeat after a crash (join is idempotent). */
  async completeJoin(runtime: ConversationRuntime): Promise<void> {
    const r = runtime.record;
    const pending = r.pendingJoin;
    if (pending === null) return;
    const client = this.relay(r.relay).client;
    let joinedSeq: number;
    let joinMembers: MemberKey[];
    let made: CreateFetchTokenResponse | null;
    try {
      joinedSeq = (await client.join(r.channel, pending.cap, runtime.signer)).joinedSeq;
      // The service worker's fetch token is made beside the channel read and stored with the
      // join, not after it (watchChannel): an app closed just after joining left the service
      // worker no token for the group until the app opened again, so it fetched none of its
      // messages (bench:catchup set-up: Bob's sync stored 0 of 10,000). Best effort, as there.
      const [info, token] = await Promise.all([client.channelInfo(r.channel, runtime.signer), client.createFetchToken(r.channel, FETCH_TOKEN_TTL_MS, runtime.signer).catch(() => null)]);
      made = token;
      joinMembers = info.members.filter((m) => m.joinedSeq <= joinedSeq).map((m) => m.key);
    } catch (error) {
      if (error instanceof RelayClientError && error.code === 'invalid-capability') throw new WorkerError('expired', 'This invitation was already used or has expired. Ask for a new one.');
      throw this.networkError(error, r.relay);
    }
    const binding = r.bindings[r.memberKey]!;
    const claim = await sealJoinClaimText(this, pending.jk, r.channel, pending.inviteId, binding);
    await runtime.run('join', async () => {
      runtime.record.joinMembers = joinMembers;
      runtime.record.pendingJoin = null;
      runtime.record.claimedAtMs = this.deps.now();
      if (runtime.meta.lastSeq === 0) runtime.meta.lastSeq = joinedSeq - 1;
      const outbox = this.claimRecord(runtime, claim);
      const token = made === null ? null : fetchTokenRecord(r.relay, r.channel, made, runtime.meta.lastSeq, runtime.signer);
      await runtime.save((batch) => {
        batch.put('sessions', r.id, runtime.sessionRecord(batch));
        batch.putTransit('outbox', outbox);
        if (token !== null) batch.putTransit('fetchTokens', token);
      });
      if (token !== null) runtime.fetchToken = token;
      this.outbox.enqueue([outbox]);
    });
    this.watchChannel(runtime);
    runtime.resume();
    this.registerPushFor(runtime);
  }

  private claimRecord(runtime: ConversationRuntime, text: string): OutboxRecord {
    return {
      postId: randomToken(this.deps),
      relay: runtime.record.relay,
      channel: runtime.channel,
      packet: base64UrlEncode(new TextEncoder().encode(text)),
      ifNoLeaveAfter: null,
      queuedAtMs: this.nextQueueTime(),
      presigned: null,
      attempts: 0,
    };
  }

  /** Rule 10: a joiner still waiting says again that it is online now. */
  postRaw(runtime: ConversationRuntime, text: string): void {
    const outbox = this.claimRecord(runtime, text);
    void runtime
      .run('raw', async () => {
        await runtime.save((batch) => void batch.putTransit('outbox', outbox));
        this.outbox.enqueue([outbox]);
      })
      .catch(() => undefined);
  }

  claimAgain(runtime: ConversationRuntime): void {
    runtime.record.claimedAtMs = this.deps.now(); // at most one re-post in flight
    void this.repostClaim(runtime).catch(() => undefined);
  }

  private async repostClaim(runtime: ConversationRuntime): Promise<void> {
    const invite = runtime.record.invites.find((i) => i.by === runtime.self);
    const binding = runtime.record.bindings[runtime.self];
    if (invite === undefined || binding === undefined) return;
    const text = await sealJoinClaimText(this, invite.jk, runtime.channel, invite.id, binding);
    await runtime.run('claim', async () => {
      runtime.record.claimedAtMs = this.deps.now();
      const outbox = this.claimRecord(runtime, text);
      await runtime.save((batch) => void batch.putTransit('outbox', outbox));
      this.outbox.enqueue([outbox]);
    });
  }

  async saveDraft(id: ConversationId, text: string): Promise<void> {
    this.conversation(id);
    const batch = this.store.batch();
    if (text.length === 0) batch.delete('drafts', id);
    else batch.put('drafts', id, text);
    await this.store.commit(batch);
    if (text.length === 0) this.drafts.delete(id);
    else this.drafts.set(id, text);
    this.sink.invalidate('conversations');
  }

  async deleteConversation(id: ConversationId, leaveFirst = true): Promise<void> {
    const runtime = this.conversation(id);
    if (leaveFirst && runtime.record.state !== 'left' && runtime.record.state !== 'removed') {
      try {
        await this.relayAction(runtime, { kind: 'leave' });
      } catch (error) {
        throw this.networkError(error, runtime.record.relay);
      }
    }
    runtime.stop();
    this.relay(runtime.record.relay).unwatch(runtime.channel);
    this.outbox.forget(runtime.channel);
    const batch = this.store.batch().delete('conversations', id).delete('sessions', id).delete('drafts', id).delete('fetchTokens', runtime.channel);
    for (const r of await this.store.transit('outbox')) if (r.channel === runtime.channel) batch.delete('outbox', r.postId);
    await this.store.commit(batch);
    await this.store.deleteRange('timeline', id);
    await this.store.deleteRange('sessionChunks', `${id}/`);
    for (const contact of this.people.contacts.values()) {
      if (contact.directConversationId === id) await this.people.saveContact({ ...contact, directConversationId: null });
    }
    this.conversations.delete(id);
    this.byChannel.delete(runtime.channel);
    this.drafts.delete(id);
    this.sink.invalidate('conversations');
    this.sink.invalidate({ conversation: id });
  }
}

/**
 * The stored form of a fetch token the relay made (for the service worker: client-db.ts), with
 * the seq it may read after and our member key, so it counts only what others wrote.
 */
function fetchTokenRecord(relay: string, channel: ChannelId, made: CreateFetchTokenResponse, afterSeq: number, signer: RelaySigner): FetchTokenRecord {
  return { channel, relay, token: made.token, expiresAtMs: made.expiresAtMs, afterSeq, member: signer.publicKey };
}

function sealJoinClaimText(engine: CoveyEngine, jk: string, channel: ChannelId, inviteId: string, binding: Binding): Promise<string> {
  return sealJoinClaim(engine.deps.crypto, jk, channel, inviteId, binding);
}

/** Causes followed at most when an error is logged (a chain of causes may be a cycle). */
const CAUSE_DEPTH = 4;

/** An error's message and its causes' messages, for a log line. */
export function causeChain(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; i < CAUSE_DEPTH && e !== undefined && e !== null; i++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' ← ');
}
