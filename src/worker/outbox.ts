/**
 * The outbox (issue 10 §2): packets leave only from here, after the session state that made them
 * is stored. Records are written by the step that sealed them (same transaction) and deleted once
 * the relay has them; a retry carries the same `postId`, so the relay stores each packet once.
 *
 * Posts of one channel leave strictly in order, one at a time (mpENC needs the relay order to be
 * the sealing order of one author); channels proceed independently. Network failures retry with
 * backoff; a refusal the relay will repeat is final and reported to the owner of the packet.
 */
import { base64UrlDecode } from '../protocol/bytes.js';
import type { OutboxRecord } from '../shared/client-db.js';
import type { ChannelId } from '../shared/relay-api.js';
import type { ClientStore } from '../store/client-store.js';
import type { ClientDeps } from './deps.js';
import { RelayClientError, type PostOptions, type RelayClient, type RelaySigner, type SignedPost } from './relay-client.js';

/** Retry delays after a failed post: first, cap (doubling, jittered). */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/**
 * A post signed ahead (`enqueue`'s `signed`) is used only this soon after its signature: well
 * inside the relay's clock-skew window (5 minutes), so a post that waited behind others or a
 * slow network is signed afresh instead of refused as stale.
 */
export const SIGNED_AHEAD_MAX_AGE_MS = 60_000;

export interface OutboxOwner {
  client(relay: string): RelayClient;
  /** The channel's member signer, or undefined when the channel is gone (the record is dropped). */
  signer(channel: ChannelId): RelaySigner | undefined;
  /** `shown`: the step of its event deleted the record and updated the views already (`deletedBy`). */
  posted(record: OutboxRecord, seq: number, shown?: boolean): void;
  /**
   * Rule 7: whether a packet may still leave (its subsession was not replaced since it was
   * sealed). When not, the record is dropped and `stale` reports it (its message is sealed again).
   */
  mayPost?(record: OutboxRecord): boolean;
  stale?(record: OutboxRecord): void;
  /** The relay refused for good (e.g. 'forbidden' after removal, 'membership-changed'). */
  refused(record: OutboxRecord, code: string, message: string): void;
  /** `unreachable`: the request did not reach the relay at all (not a busy relay's answer). */
  networkTrouble(relay: string, message: string, unreachable: boolean): void;
  fatal(error: unknown): void;
}

/** What a record's post carries besides the packet (the same for a post signed ahead). */
export function postOptions(record: OutboxRecord): PostOptions {
  return {
    postId: record.postId,
    ...(record.ifNoLeaveAfter === null ? {} : { ifNoLeaveAfter: record.ifNoLeaveAfter }),
    ...(record.wake === true ? { wake: true } : {}),
  };
}

export class Outbox {
  private readonly queues = new Map<ChannelId, OutboxRecord[]>();
  private readonly busy = new Set<ChannelId>();
  private readonly retryTimers = new Map<ChannelId, unknown>();
  private readonly attempts = new Map<ChannelId, number>();
  private readonly settledWaiters = new Map<ChannelId, (() => void)[]>();
  /** Posts signed while their records were being committed, by postId: each used once, first attempt only. */
  private readonly signedAhead = new Map<string, Promise<SignedPost>>();
  /** postIds whose request is out, not yet answered. */
  private readonly inFlight = new Set<string>();
  /**
   * Records that a conversation step deletes in its own transaction, because the relay's event of
   * their packet came back while their request was out (`deletedBy`): postId → the event's seq
   * once that step has committed, null if it did not.
   */
  private readonly deletedByStep = new Map<string, Promise<number | null>>();
  private stopped = false;

  constructor(
    private readonly store: ClientStore,
    private readonly deps: ClientDeps,
    private readonly owner: OutboxOwner,
  ) {}

  /** Loads what a previous run left (start of the engine). */
  async load(): Promise<void> {
    const records = await this.store.transit('outbox');
    records.sort((a, b) => a.queuedAtMs - b.queuedAtMs || a.postId.localeCompare(b.postId));
    this.enqueue(records);
  }

  /**
   * postIds still waiting (a message with one of these shows 'waiting to send'). Not those whose
   * event came back (`deletedBy`): the relay has them, whatever their answer still does.
   */
  pending(): Set<string> {
    const out = new Set<string>();
    for (const queue of this.queues.values()) for (const r of queue) if (!this.deletedByStep.has(r.postId)) out.add(r.postId);
    return out;
  }

  /** Diagnostics: per channel, how many wait, whether one is being posted, retry attempts. */
  describe(): { channel: string; waiting: number; posting: boolean; retrying: boolean; attempts: number }[] {
    return [...this.queues].map(([channel, queue]) => ({
      channel,
      waiting: queue.length,
      posting: this.busy.has(channel),
      retrying: this.retryTimers.has(channel),
      attempts: this.attempts.get(channel) ?? 0,
    }));
  }

  /** Whether exactly this packet waits (or is being posted) on `channel`. */
  holds(channel: ChannelId, packet: string): boolean {
    return this.queues.get(channel)?.some((r) => r.packet === packet) ?? false;
  }

  /** Packets waiting (for `relay`, or all); `onlyWritten`: only messages a person wrote (`wake`). */
  count(relay?: string, onlyWritten = false): number {
    let n = 0;
    for (const queue of this.queues.values()) for (const r of queue) if ((relay === undefined || r.relay === relay) && (!onlyWritten || r.wake === true) && !this.deletedByStep.has(r.postId)) n++;
    return n;
  }

  /**
   * The relay sent `packet` of `channel` back to us (our own event, from the socket or the inbox):
   * the postId of the record whose request for it is out right now, if any. The step that
   * processes the event deletes that record in its own transaction (`deletedBy`), instead of a
   * transaction of its own after the answer: the event proves the relay stored the packet.
   */
  echoed(channel: ChannelId, packet: string): string | undefined {
    const record = this.queues.get(channel)?.[0];
    if (record === undefined || record.packet !== packet || !this.inFlight.has(record.postId) || this.deletedByStep.has(record.postId)) return undefined;
    return record.postId;
  }

  /**
   * A step deletes these records (postId, the seq of their event) with its commit `committed`.
   * Returns the postIds it takes over: those whose request is still out (a record whose answer
   * came meanwhile is deleted by the outbox itself, and the step's delete finds nothing). For
   * those, the outbox deletes nothing after the answer once the step has committed; if the step
   * fails, it deletes the record itself as before.
   */
  deletedBy(echoes: readonly (readonly [string, number])[], committed: Promise<void>): string[] {
    const taken: string[] = [];
    for (const [postId, seq] of echoes) {
      if (!this.inFlight.has(postId) || this.deletedByStep.has(postId)) continue;
      taken.push(postId);
      this.deletedByStep.set(
        postId,
        committed.then(
          () => seq,
          () => null,
        ),
      );
    }
    return taken;
  }

  /**
   * Records just committed: post them (in order, after what waits already). `signed`: their posts
   * signed while they were being committed (by postId), so that the first attempt leaves without
   * a signature's round trip to WebCrypto after the commit (bench:client); a signature is no
   * effect (nothing leaves), and these arrive only once their records are stored.
   */
  enqueue(records: readonly OutboxRecord[], signed?: ReadonlyMap<string, Promise<SignedPost>>): void {
    for (const r of records) {
      const queue = this.queues.get(r.channel) ?? [];
      if (!queue.some((q) => q.postId === r.postId)) {
        queue.push(r);
        const ahead = signed?.get(r.postId);
        if (ahead !== undefined) this.signedAhead.set(r.postId, ahead);
      }
      this.queues.set(r.channel, queue);
    }
    for (const channel of new Set(records.map((r) => r.channel))) void this.drain(channel);
  }

  /** Retry everything now (the network came back). */
  retryAll(): void {
    for (const [channel, timer] of this.retryTimers) {
      this.deps.timers.clearTimeout(timer);
      this.retryTimers.delete(channel);
      this.attempts.set(channel, 0);
      void this.drain(channel);
    }
  }

  /**
   * Resolves once nothing of `channel` waits here (posted, refused, or the queue dropped): what
   * we sealed must reach the relay before we leave its channel, or the relay refuses it (a leaver's
   * key publication, issue 9 §3, is posted right before the leave). Waits through retries.
   */
  settled(channel: ChannelId): Promise<void> {
    if (!this.queues.has(channel) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.set(channel, [...(this.settledWaiters.get(channel) ?? []), resolve]));
  }

  /** Drops a channel's queue (conversation deleted); the caller deletes the records. */
  forget(channel: ChannelId): void {
    for (const r of this.queues.get(channel) ?? []) {
      this.signedAhead.delete(r.postId);
      this.deletedByStep.delete(r.postId);
    }
    this.queues.delete(channel);
    this.wakeSettled(channel);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.retryTimers.values()) this.deps.timers.clearTimeout(timer);
    this.retryTimers.clear();
    this.signedAhead.clear();
    for (const channel of [...this.settledWaiters.keys()]) this.wakeSettled(channel);
  }

  private wakeSettled(channel: ChannelId): void {
    const waiters = this.settledWaiters.get(channel);
    this.settledWaiters.delete(channel);
    for (const resolve of waiters ?? []) resolve();
  }

  private async drain(channel: ChannelId): Promise<void> {
    if (this.busy.has(channel) || this.retryTimers.has(channel) || this.stopped) return;
    this.busy.add(channel);
    try {
      for (;;) {
        const queue = this.queues.get(channel);
        const record = queue?.[0];
        if (queue === undefined || record === undefined || this.stopped) return;
        const outcome = await this.post(record);
        if (this.stopped) return;
        if (outcome === 'retry') {
          this.scheduleRetry(channel);
          return;
        }
        queue.shift();
        this.deletedByStep.delete(record.postId);
        if (queue.length === 0) {
          this.queues.delete(channel);
          this.wakeSettled(channel);
        }
      }
    } catch (error) {
      this.owner.fatal(error);
    } finally {
      this.busy.delete(channel);
    }
  }

  private scheduleRetry(channel: ChannelId): void {
    const attempt = (this.attempts.get(channel) ?? 0) + 1;
    this.attempts.set(channel, attempt);
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1)) * (0.5 + (this.deps.crypto.randomBytes(1)[0]! / 255));
    this.retryTimers.set(
      channel,
      this.deps.timers.setTimeout(() => {
        this.retryTimers.delete(channel);
        void this.drain(channel);
      }, delay),
    );
  }

  private async post(record: OutboxRecord): Promise<'done' | 'retry'> {
    // Taken whatever happens next: a retry signs afresh (a new nonce and time).
    const ahead = this.signedAhead.get(record.postId);
    this.signedAhead.delete(record.postId);
    // A retry of a post whose event came back meanwhile (the relay has it), its record deleted
    // with that event's step: nothing to post or delete.
    const echoedSeq = await this.deletedByStep.get(record.postId);
    if (echoedSeq !== undefined && echoedSeq !== null) {
      this.attempts.set(record.channel, 0);
      this.owner.posted(record, echoedSeq, true);
      return 'done';
    }
    const signer = this.owner.signer(record.channel);
    if (signer === undefined) {
      await this.remove(record);
      return 'done';
    }
    if (this.owner.mayPost !== undefined && !this.owner.mayPost(record)) {
      await this.remove(record);
      this.owner.stale?.(record);
      return 'done';
    }
    try {
      const options = postOptions(record);
      const client = this.owner.client(record.relay);
      const signed = ahead === undefined ? undefined : await ahead.catch(() => undefined);
      const fresh = signed !== undefined && this.deps.now() - signed.signedAtMs <= SIGNED_AHEAD_MAX_AGE_MS;
      this.inFlight.add(record.postId);
      let result;
      try {
        result = fresh ? await client.postSigned(signed) : await client.post(record.channel, base64UrlDecode(record.packet), options, signer);
      } finally {
        this.inFlight.delete(record.postId);
      }
      this.deps.fault?.('after-post', record.postId);
      // Deleted by the step of its event (the relay's echo came first), or here.
      const byStep = this.deletedByStep.get(record.postId);
      const shown = byStep !== undefined && (await byStep) !== null;
      if (!shown) await this.remove(record);
      this.attempts.set(record.channel, 0);
      this.owner.posted(record, result.seq, shown);
      return 'done';
    } catch (error) {
      if (error instanceof RelayClientError) {
        if (error.status === 429 || error.status >= 500 || error.code === 'stale-timestamp' || error.code === 'replayed-nonce') {
          this.owner.networkTrouble(record.relay, `The relay is busy (${error.code}); retrying`, false);
          return 'retry';
        }
        await this.remove(record);
        this.owner.refused(record, error.code, error.message);
        return 'done';
      }
      if (error instanceof TypeError || (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))) {
        // fetch rejects with TypeError on network failure, and with TimeoutError when the relay
        // did not answer in time (relays.ts): the post may or may not have landed; the retry
        // carries the same postId, so it lands once either way.
        this.owner.networkTrouble(record.relay, `Cannot reach ${record.relay}; messages wait and go when it is back`, true);
        return 'retry';
      }
      throw error;
    }
  }

  private async remove(record: OutboxRecord): Promise<void> {
    const batch = this.store.batch().delete('outbox', record.postId);
    await this.store.commit(batch);
    this.deps.fault?.('after-outbox-delete', record.postId);
  }
}
