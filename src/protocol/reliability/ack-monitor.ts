/**
 * End-to-end acks of one subsession (mpENC §3.5; §4.3 ConsistencyMonitor and FlowControl).
 *
 * The rules, precisely:
 *  1. Parents are implicit acks: reader r has acked message m once r has written any message that
 *     has m as an ancestor (Transcript.ackedBy). Acks are therefore transitive.
 *  2. A message *needs acks* unless it is itself flow control: explicit acks and heartbeats do not
 *     (the caller's `needsAck` decides by body type). This is what stops acks-of-acks: an ack never
 *     creates an obligation, so it never triggers another ack, yet it still acks its ancestors.
 *     Payload and consistency (FIN) messages need acks, so the last content message of a session
 *     or of a busy period ends fully acked: the "final state" of mpENC §3.5.
 *  3. Every message that needs acks, ours and others', must be acked by all its readers within
 *     `ackTimeoutMs` of our accepting it, else one warning names who did not ack.
 *  4. Automatic acks: when we accept another member's message that needs acks and we have not
 *     acked it, an explicit ack is due `autoAckDelayMs` later, batched for everything that arrives
 *     meanwhile and cancelled by any message we write (it acks everything we have).
 *  5. Resends: a message that needs acks and is not fully acked is resent every
 *     `resendIntervalMs`, at most `maxResends` times, whoever wrote it, to the readers missing
 *     (unless the only one missing is ourselves). The session resends with it the ancestors those
 *     readers have not acked either, so a lost ack never blocks its descendants.
 *  6. A duplicate of a message we already acked means its sender has not seen our ack (mpENC §3.5:
 *     resends are implicit conditions, there are no resend requests), so unless the sender has
 *     acked our latest message, we resend it to them, at most once per `resendIntervalMs`.
 *  8. A reader who writes while still not acking one of our messages, `resendIntervalMs` or more
 *     after we wrote it, evidently lost it: we resend our latest message they lack (with the
 *     ancestors they lack) to them, bounded like rule 5. This is what recovers lost flow-control
 *     messages (acks, heartbeats), which rule 5 never resends, without any ack-of-ack traffic
 *     when nothing is lost.
 *  7. Fully acked is final. Every message, flow control included, is watched until fully acked
 *     only so that the session knows when nobody can need its packet again.
 *
 * All inputs carry `nowMs`; the outputs are actions for the session to turn into effects.
 */
import { DeadlineHeap } from '../deadlines.js';
import { assert } from '../errors.js';
import type { MemberId, MessageKey } from '../transcript/ids.js';
import type { Transcript } from '../transcript/transcript.js';
import { DEFAULT_RELIABILITY, type ReliabilityConfig } from './config.js';

export type AckAction =
  | { readonly kind: 'send-ack' }
  /** Resend `id` (and its ancestors they lack) for readers `to`. */
  | { readonly kind: 'resend'; readonly id: MessageKey; readonly to: readonly MemberId[] }
  | { readonly kind: 'not-fully-acked'; readonly id: MessageKey; readonly missing: readonly MemberId[] }
  /** `needed`: the message needed acks (else it is flow control whose packet may now be dropped). */
  | { readonly kind: 'fully-acked'; readonly id: MessageKey; readonly late: boolean; readonly needed: boolean };

/** 'none': a message that needs no acks (explicit ack, heartbeat), or one we do not hold. */
export type AckStatus = 'none' | 'waiting' | 'late' | 'fully-acked';

interface Tracked {
  readonly needed: boolean;
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
    readonly needed: boolean;
    readonly acceptedAtMs: number;
    readonly remaining: readonly MemberId[];
    readonly warned: boolean;
    readonly resends: number;
    readonly nextResendMs: number;
  }[];
  readonly fullyAcked: readonly MessageKey[];
  readonly ackDueAtMs: number | null;
  readonly reacks: readonly (readonly [MessageKey, number])[];
  readonly activeResends: readonly (readonly [MemberId, number])[];
}

export class AckMonitor<Body> {
  private readonly tracked = new Map<MessageKey, Tracked>();
  /** Messages that needed acks and got all of them. */
  private readonly fullyAcked = new Set<MessageKey>();
  private readonly awaiting = new Map<MemberId, Map<MemberId, AwaitQueue>>();
  /** Per reader: how many messages that *need* acks wait for them. */
  private readonly owed = new Map<MemberId, number>();
  private neededCount = 0;
  private ackDueAtMs: number | undefined;
  private readonly lastReackMs = new Map<MessageKey, number>();
  private readonly lastActiveResendMs = new Map<MemberId, number>();
  /** Rule 3 and rule 5 deadlines of messages that need acks (ordered: no scan per call). */
  private readonly warnAt = new DeadlineHeap<MessageKey>();
  private readonly resendAt = new DeadlineHeap<MessageKey>();

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
    if (message.author !== this.self) this.resendToActiveReader(message.author, nowMs, actions);
    const needed = this.needsAck(message.body);
    const readers = this.transcript.readers(id).filter((r) => !this.transcript.ackedBy(id, r));
    if (readers.length === 0) {
      if (needed) this.fullyAcked.add(id);
    } else {
      this.track(id, message.author, {
        needed,
        acceptedAtMs: nowMs,
        remaining: new Set(readers),
        warned: false,
        resends: 0,
        nextResendMs: nowMs + this.config.resendIntervalMs,
      });
    }
    if (!this.owesAck()) this.ackDueAtMs = undefined;
    else if (this.ackDueAtMs === undefined) this.ackDueAtMs = nowMs + this.config.autoAckDelayMs;
    return actions;
  }

  /**
   * A member left the channel (mpENC §3.3: they are being excluded): they will never ack, and
   * that is not a fault, so stop expecting it. Returns the messages this completes.
   */
  forget(member: MemberId): AckAction[] {
    const actions: AckAction[] = [];
    const byAuthor = this.awaiting.get(member);
    if (byAuthor === undefined) return actions;
    this.awaiting.delete(member);
    this.owed.delete(member);
    for (const queue of byAuthor.values()) {
      for (let i = queue.head; i < queue.ids.length; i++) this.ackedOne(queue.ids[i]!, member, actions);
    }
    if (member === this.self) this.ackDueAtMs = undefined;
    return actions;
  }

  /** Readers still missing for a message (empty when fully acked or not tracked). */
  missing(id: MessageKey): MemberId[] {
    const t = this.tracked.get(id);
    return t === undefined ? [] : [...t.remaining].sort();
  }

  /** Rule 6: `sender` resent a message we already hold. */
  duplicate(id: MessageKey, sender: MemberId, nowMs: number): AckAction[] {
    if (!this.transcript.has(id) || sender === this.self) return [];
    const message = this.transcript.get(id);
    if (message.author === this.self || !this.transcript.ackedBy(id, this.self)) return [];
    const ours = this.transcript.lastBy(this.self);
    assert(ours !== undefined, 'acked by us implies we wrote a message');
    if (this.transcript.ackedBy(ours, sender)) return [];
    const last = this.lastReackMs.get(ours);
    if (last !== undefined && nowMs - last < this.config.resendIntervalMs) return [];
    // Only our latest message is ever re-sent this way: one entry is all the state rule 6 needs.
    this.lastReackMs.clear();
    this.lastReackMs.set(ours, nowMs);
    return [{ kind: 'resend', id: ours, to: [sender] }];
  }

  tick(nowMs: number): AckAction[] {
    const actions: AckAction[] = [];
    if (this.ackDueAtMs !== undefined && nowMs >= this.ackDueAtMs) {
      this.ackDueAtMs = undefined;
      if (this.owesAck()) actions.push({ kind: 'send-ack' });
    }
    // Both heaps hold only messages that need acks and are still tracked.
    for (const id of this.warnAt.takeDue(nowMs)) {
      const t = this.tracked.get(id)!;
      t.warned = true;
      actions.push({ kind: 'not-fully-acked', id, missing: [...t.remaining].sort() });
    }
    for (const id of this.resendAt.takeDue(nowMs)) {
      const t = this.tracked.get(id)!;
      t.resends += 1;
      t.nextResendMs = nowMs + this.config.resendIntervalMs;
      if (t.resends < this.config.maxResends) this.resendAt.set(id, t.nextResendMs);
      const to = [...t.remaining].filter((r) => r !== this.self).sort();
      if (to.length > 0) actions.push({ kind: 'resend', id, to });
    }
    return actions;
  }

  /** When `tick` next has something to do, for the session's timer. O(1) amortised. */
  nextDeadlineMs(): number | undefined {
    let next = this.ackDueAtMs;
    for (const at of [this.warnAt.next(), this.resendAt.next()]) {
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  status(id: MessageKey): AckStatus {
    if (this.fullyAcked.has(id)) return 'fully-acked';
    const t = this.tracked.get(id);
    if (t === undefined || !t.needed) return 'none';
    return t.warned ? 'late' : 'waiting';
  }

  /** Whether some reader may still lack this message (its packet is worth keeping). */
  isWatched(id: MessageKey): boolean {
    return this.tracked.has(id);
  }

  /** Messages that need acks and still wait for some, in acceptance order. */
  outstanding(): MessageKey[] {
    return [...this.tracked].filter(([, t]) => t.needed).map(([id]) => id);
  }

  /** mpENC §3.5: consistent when every message that needs acks is fully acked. */
  isConsistent(): boolean {
    return this.neededCount === 0;
  }

  /** Whether we hold others' messages that need acks and that we have not acked. */
  owesAck(): boolean {
    return (this.owed.get(this.self) ?? 0) > 0;
  }

  snapshot(): AckMonitorSnapshot {
    return {
      tracked: [...this.tracked].map(([id, t]) => ({
        id,
        needed: t.needed,
        acceptedAtMs: t.acceptedAtMs,
        remaining: [...t.remaining].sort(),
        warned: t.warned,
        resends: t.resends,
        nextResendMs: t.nextResendMs,
      })),
      fullyAcked: [...this.fullyAcked],
      ackDueAtMs: this.ackDueAtMs ?? null,
      reacks: [...this.lastReackMs],
      activeResends: [...this.lastActiveResendMs],
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
    for (const t of snapshot.tracked) {
      monitor.track(t.id, transcript.get(t.id).author, {
        needed: t.needed,
        acceptedAtMs: t.acceptedAtMs,
        remaining: new Set(t.remaining),
        warned: t.warned,
        resends: t.resends,
        nextResendMs: t.nextResendMs,
      });
    }
    for (const id of snapshot.fullyAcked) monitor.fullyAcked.add(id);
    monitor.ackDueAtMs = snapshot.ackDueAtMs ?? undefined;
    for (const [id, ms] of snapshot.reacks) monitor.lastReackMs.set(id, ms);
    for (const [m, ms] of snapshot.activeResends) monitor.lastActiveResendMs.set(m, ms);
    return monitor;
  }

  /** Callers add messages in acceptance order, which keeps every queue in line order. */
  private track(id: MessageKey, author: MemberId, t: Tracked): void {
    this.tracked.set(id, t);
    if (t.needed) {
      this.neededCount += 1;
      if (!t.warned) this.warnAt.set(id, t.acceptedAtMs + this.config.ackTimeoutMs);
      if (t.resends < this.config.maxResends) this.resendAt.set(id, t.nextResendMs);
    }
    for (const reader of t.remaining) {
      let byAuthor = this.awaiting.get(reader);
      if (byAuthor === undefined) this.awaiting.set(reader, (byAuthor = new Map()));
      let queue = byAuthor.get(author);
      if (queue === undefined) byAuthor.set(author, (queue = { ids: [], head: 0 }));
      queue.ids.push(id);
      if (t.needed) this.owed.set(reader, (this.owed.get(reader) ?? 0) + 1);
    }
  }

  /** Rule 8: `reader` just wrote, yet still lacks a message of ours older than the interval. */
  private resendToActiveReader(reader: MemberId, nowMs: number, actions: AckAction[]): void {
    const queue = this.awaiting.get(reader)?.get(this.self);
    if (queue === undefined || queue.head >= queue.ids.length) return;
    const oldest = this.tracked.get(queue.ids[queue.head]!)!;
    if (nowMs < oldest.acceptedAtMs + this.config.resendIntervalMs) return;
    const last = this.lastActiveResendMs.get(reader);
    if (last !== undefined && nowMs - last < this.config.resendIntervalMs) return;
    this.lastActiveResendMs.set(reader, nowMs);
    // Our latest message they lack: the resend carries every ancestor they lack, the oldest too.
    actions.push({ kind: 'resend', id: queue.ids[queue.ids.length - 1]!, to: [reader] });
  }

  /** Rule 1 applied to a new message by `reader`: pop what it now acks, amortised O(1) each. */
  private applyAcksBy(reader: MemberId, actions: AckAction[]): void {
    const byAuthor = this.awaiting.get(reader);
    if (byAuthor === undefined) return;
    for (const queue of byAuthor.values()) {
      while (queue.head < queue.ids.length && this.transcript.ackedBy(queue.ids[queue.head]!, reader)) {
        const id = queue.ids[queue.head]!;
        queue.head += 1;
        this.ackedOne(id, reader, actions);
      }
      if (queue.head > 64 && queue.head * 2 > queue.ids.length) {
        queue.ids.splice(0, queue.head);
        queue.head = 0;
      }
    }
  }

  private ackedOne(id: MessageKey, reader: MemberId, actions: AckAction[]): void {
    const t = this.tracked.get(id);
    assert(t !== undefined, 'awaited message is tracked');
    if (!t.remaining.delete(reader)) return;
    if (t.needed) {
      const owed = this.owed.get(reader);
      if (owed !== undefined) this.owed.set(reader, owed - 1);
    }
    if (t.remaining.size > 0) return;
    this.tracked.delete(id);
    this.warnAt.delete(id);
    this.resendAt.delete(id);
    if (t.needed) {
      this.neededCount -= 1;
      this.fullyAcked.add(id);
    }
    actions.push({ kind: 'fully-acked', id, late: t.warned, needed: t.needed });
  }
}
