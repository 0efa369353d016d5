/**
 * End-to-end acks of one subsession (mpENC §3.5; §4.3 ConsistencyMonitor and FlowControl).
 *
 * The rules, precisely:
 *  1. Parents are implicit acks: reader r has acked message m once r has written any message that
 *     has m as an ancestor (Transcript.ackedBy). Acks are therefore transitive.
 *  2. A message *needs acks* unless it is itself flow control: explicit acks and heartbeats do not
 *     (the caller's `needsAck` decides by body type). This is what stops acks-of-acks: an ack is
 *     never tracked, so it never triggers another ack, yet it still acks all its ancestors. Payload
 *     and consistency (FIN) messages need acks, so the last content message of a session or of a
 *     busy period is fully acked, which is the "final state" of mpENC §3.5.
 *  3. Every message that needs acks, ours and others', must be acked by all its readers within
 *     `ackTimeoutMs` of our accepting it, else one warning names who did not ack.
 *  4. Automatic acks: when we accept another member's message that needs acks and we have not
 *     acked it, an explicit ack is due `autoAckDelayMs` later, batched for everything that arrives
 *     meanwhile and cancelled by any message we write (it acks everything we have).
 *  5. Resends: a message not fully acked is resent every `resendIntervalMs`, at most `maxResends`
 *     times, whoever wrote it, unless the only reader missing is ourselves.
 *  6. A duplicate of a message we already acked means its sender has not seen our ack (mpENC §3.5:
 *     resends are implicit conditions, there are no resend requests), so we resend our latest
 *     message, at most once per `resendIntervalMs`.
 *  7. Fully acked is final: the message leaves the monitor and needs nothing more.
 *
 * All inputs carry `nowMs`; the outputs are actions for the session to turn into effects.
 */
import { assert } from '../errors.js';
import type { MemberId, MessageKey } from '../transcript/ids.js';
import type { Transcript } from '../transcript/transcript.js';
import { DEFAULT_RELIABILITY, type ReliabilityConfig } from './config.js';

export type AckAction =
  | { readonly kind: 'send-ack' }
  | { readonly kind: 'resend'; readonly id: MessageKey }
  | { readonly kind: 'not-fully-acked'; readonly id: MessageKey; readonly missing: readonly MemberId[] }
  | { readonly kind: 'fully-acked'; readonly id: MessageKey; readonly late: boolean };

/** 'none': a message that needs no acks (explicit ack, heartbeat), or one we do not hold. */
export type AckStatus = 'none' | 'waiting' | 'late' | 'fully-acked';

interface Tracked {
  readonly acceptedAtMs: number;
  readonly remaining: Set<MemberId>;
  warned: boolean;
  resends: number;
  nextResendMs: number;
}

/** Per (reader, author): the author's messages still waiting for that reader, in line order. */
interface AwaitQueue {
  readonly ids: MessageKey[];
  head: number;
}

export interface AckMonitorSnapshot {
  readonly tracked: readonly {
    readonly id: MessageKey;
    readonly acceptedAtMs: number;
    readonly remaining: readonly MemberId[];
    readonly warned: boolean;
    readonly resends: number;
    readonly nextResendMs: number;
  }[];
  readonly fullyAcked: readonly MessageKey[];
  readonly ackDueAtMs: number | null;
  readonly reacks: readonly (readonly [MessageKey, number])[];
}

export class AckMonitor<Body> {
  private readonly tracked = new Map<MessageKey, Tracked>();
  private readonly fullyAcked = new Set<MessageKey>();
  private readonly awaiting = new Map<MemberId, Map<MemberId, AwaitQueue>>();
  private readonly awaitingCount = new Map<MemberId, number>();
  private ackDueAtMs: number | undefined;
  private readonly lastReackMs = new Map<MessageKey, number>();

  constructor(
    private readonly self: MemberId,
    private readonly transcript: Transcript<Body>,
    private readonly needsAck: (body: Body) => boolean,
    private readonly config: ReliabilityConfig = DEFAULT_RELIABILITY,
  ) {}

  /** Call after every message accepted into the transcript (ours and others'), in order. */
  accepted(id: MessageKey, nowMs: number): AckAction[] {
    const actions: AckAction[] = [];
    const message = this.transcript.get(id);
    this.applyAcksBy(message.author, actions);
    if (this.needsAck(message.body)) {
      const readers = this.transcript.readers(id);
      if (readers.length === 0) {
        this.fullyAcked.add(id);
      } else {
        this.tracked.set(id, {
          acceptedAtMs: nowMs,
          remaining: new Set(readers),
          warned: false,
          resends: 0,
          nextResendMs: nowMs + this.config.resendIntervalMs,
        });
        for (const reader of readers) this.enqueue(reader, message.author, id);
      }
    }
    if ((this.awaitingCount.get(this.self) ?? 0) === 0) this.ackDueAtMs = undefined;
    else if (this.ackDueAtMs === undefined) this.ackDueAtMs = nowMs + this.config.autoAckDelayMs;
    return actions;
  }

  /** Rule 6: someone resent a message we already hold. */
  duplicate(id: MessageKey, nowMs: number): AckAction[] {
    if (!this.transcript.has(id)) return [];
    const message = this.transcript.get(id);
    if (message.author === this.self || !this.transcript.ackedBy(id, this.self)) return [];
    const ours = this.transcript.lastBy(this.self);
    assert(ours !== undefined, 'acked by us implies we wrote a message');
    const last = this.lastReackMs.get(ours);
    if (last !== undefined && nowMs - last < this.config.resendIntervalMs) return [];
    this.lastReackMs.set(ours, nowMs);
    return [{ kind: 'resend', id: ours }];
  }

  tick(nowMs: number): AckAction[] {
    const actions: AckAction[] = [];
    if (this.ackDueAtMs !== undefined && nowMs >= this.ackDueAtMs) {
      this.ackDueAtMs = undefined;
      if ((this.awaitingCount.get(this.self) ?? 0) > 0) actions.push({ kind: 'send-ack' });
    }
    for (const [id, t] of this.tracked) {
      if (!t.warned && nowMs >= t.acceptedAtMs + this.config.ackTimeoutMs) {
        t.warned = true;
        actions.push({ kind: 'not-fully-acked', id, missing: [...t.remaining].sort() });
      }
      if (t.resends < this.config.maxResends && nowMs >= t.nextResendMs) {
        t.resends += 1;
        t.nextResendMs = nowMs + this.config.resendIntervalMs;
        const onlyUs = t.remaining.size === 1 && t.remaining.has(this.self);
        if (!onlyUs) actions.push({ kind: 'resend', id });
      }
    }
    return actions;
  }

  /** When `tick` next has something to do, for the session's timer. */
  nextDeadlineMs(): number | undefined {
    let next = this.ackDueAtMs;
    const consider = (at: number) => {
      if (next === undefined || at < next) next = at;
    };
    for (const t of this.tracked.values()) {
      if (!t.warned) consider(t.acceptedAtMs + this.config.ackTimeoutMs);
      if (t.resends < this.config.maxResends) consider(t.nextResendMs);
    }
    return next;
  }

  status(id: MessageKey): AckStatus {
    if (this.fullyAcked.has(id)) return 'fully-acked';
    const t = this.tracked.get(id);
    if (t === undefined) return 'none';
    return t.warned ? 'late' : 'waiting';
  }

  /** Messages still waiting for acks, in acceptance order. */
  outstanding(): MessageKey[] {
    return [...this.tracked.keys()];
  }

  /** mpENC §3.5: consistent when every message that needs acks is fully acked. */
  isConsistent(): boolean {
    return this.tracked.size === 0;
  }

  /** Whether an automatic ack is pending (we hold others' messages we have not acked). */
  owesAck(): boolean {
    return (this.awaitingCount.get(this.self) ?? 0) > 0;
  }

  snapshot(): AckMonitorSnapshot {
    return {
      tracked: [...this.tracked].map(([id, t]) => ({
        id,
        acceptedAtMs: t.acceptedAtMs,
        remaining: [...t.remaining].sort(),
        warned: t.warned,
        resends: t.resends,
        nextResendMs: t.nextResendMs,
      })),
      fullyAcked: [...this.fullyAcked],
      ackDueAtMs: this.ackDueAtMs ?? null,
      reacks: [...this.lastReackMs],
    };
  }

  /** Rebuilds the monitor over a transcript restored to the same messages. */
  static restore<Body>(
    snapshot: AckMonitorSnapshot,
    self: MemberId,
    transcript: Transcript<Body>,
    needsAck: (body: Body) => boolean,
    config: ReliabilityConfig = DEFAULT_RELIABILITY,
  ): AckMonitor<Body> {
    const monitor = new AckMonitor(self, transcript, needsAck, config);
    // Queues must be in line order per author: acceptance order is a topological order.
    const tracked = [...snapshot.tracked].sort((a, b) => transcript.entry(a.id).index - transcript.entry(b.id).index);
    for (const t of tracked) {
      monitor.tracked.set(t.id, {
        acceptedAtMs: t.acceptedAtMs,
        remaining: new Set(t.remaining),
        warned: t.warned,
        resends: t.resends,
        nextResendMs: t.nextResendMs,
      });
      for (const reader of t.remaining) monitor.enqueue(reader, transcript.get(t.id).author, t.id);
    }
    for (const id of snapshot.fullyAcked) monitor.fullyAcked.add(id);
    monitor.ackDueAtMs = snapshot.ackDueAtMs ?? undefined;
    for (const [id, ms] of snapshot.reacks) monitor.lastReackMs.set(id, ms);
    return monitor;
  }

  private enqueue(reader: MemberId, author: MemberId, id: MessageKey): void {
    let byAuthor = this.awaiting.get(reader);
    if (byAuthor === undefined) this.awaiting.set(reader, (byAuthor = new Map()));
    let queue = byAuthor.get(author);
    if (queue === undefined) byAuthor.set(author, (queue = { ids: [], head: 0 }));
    queue.ids.push(id);
    this.awaitingCount.set(reader, (this.awaitingCount.get(reader) ?? 0) + 1);
  }

  /** Rule 1 applied to a new message by `reader`: pop what it now acks, amortised O(1) each. */
  private applyAcksBy(reader: MemberId, actions: AckAction[]): void {
    const byAuthor = this.awaiting.get(reader);
    if (byAuthor === undefined) return;
    for (const queue of byAuthor.values()) {
      while (queue.head < queue.ids.length && this.transcript.ackedBy(queue.ids[queue.head]!, reader)) {
        const id = queue.ids[queue.head]!;
        queue.head += 1;
        this.awaitingCount.set(reader, this.awaitingCount.get(reader)! - 1);
        const t = this.tracked.get(id);
        assert(t !== undefined, 'awaited message is tracked');
        t.remaining.delete(reader);
        if (t.remaining.size === 0) {
          this.tracked.delete(id);
          this.fullyAcked.add(id);
          actions.push({ kind: 'fully-acked', id, late: t.warned });
        }
      }
      if (queue.head > 64 && queue.head * 2 > queue.ids.length) {
        queue.ids.splice(0, queue.head);
        queue.head = 0;
      }
    }
  }
}
