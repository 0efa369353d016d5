/**
 * End-to-end acks of one subsession (mpENC §3.5; §4.3 ConsistencyMonitor and FlowControl), for
 * members whose phones sleep (shared/spec/async-groups.md rule 14).
 *
 * The rules, precisely:
 *  1. Parents are implicit acks: reader r has acked message m once r has written any message that
 *     has m as an ancestor (Transcript.ackedBy). Acks are therefore transitive. A member's last
 *     word in a subsession it has left behind (`lastWord`: the FIN_PM of its confirmation of the
 *     next one, async-groups rule 7) acks the same way.
 *  2. A message *needs acks* unless it is itself flow control: explicit acks and heartbeats do not
 *     (the caller's `needsAck` decides by body type). This is what stops acks-of-acks: an ack never
 *     creates an obligation, so it never triggers another ack, yet it still acks its ancestors.
 *  3. Pending is not late (rule 14): a reader who has said nothing since m is "pending" (a phone
 *     that sleeps), never a warning, however long. A reader owes an ack for m once it writes a
 *     message with an ancestor ordered after m (`order`: the relay seq that carried it): m must
 *     then be an ancestor too, or it is an inconsistency at once, with no timer. The ack timer
 *     applies only to a reader who shows it is online: a message of it that we accept
 *     `ackTimeoutMs` or more after m, still without acking m, makes it late too (a phone that
 *     fell asleep says nothing, so it never trips this). Times are the relay's: a message of
 *     ours the relay has not handed back yet is after every relayed message we read before its
 *     echo, so it is never overdue for their authors (written offline, it is not late for
 *     what they wrote meanwhile). Each message warns once, naming the
 *     readers at fault.
 *  4. Automatic acks: when we accept another member's message that needs acks and we have not
 *     acked it, an explicit ack is due `autoAckDelayMs` later, batched for everything that arrives
 *     meanwhile and cancelled by any message we write (it acks everything we have).
 *  5. Resends: a message that needs acks and is not fully acked is resent every
 *     `resendIntervalMs`, at most `maxResends` times, whoever wrote it, to the missing readers who
 *     are online (the relay keeps it for the others). The session resends with it the ancestors
 *     those readers have not acked either, so a lost ack never blocks its descendants, and only
 *     in the subsession it seals under (rule 12: nobody outside it is shown its packets again).
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
 * All inputs carry `nowMs`; the outputs are actions for the session to turn into effects. Every
 * deadline sits in a heap (issue 8: no scan of the tracked messages per call).
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
  /** Rule 3: `missing` have been active since `id` (or are online) and did not ack it. */
  | { readonly kind: 'not-fully-acked'; readonly id: MessageKey; readonly missing: readonly MemberId[] }
  /** `needed`: the message needed acks (else it is flow control whose packet may now be dropped). */
  | { readonly kind: 'fully-acked'; readonly id: MessageKey; readonly late: boolean; readonly needed: boolean };

/**
 * 'none': a message that needs no acks (explicit ack, heartbeat), or one we do not hold.
 * 'waiting': some reader still missing is online; 'pending': every reader still missing has
 * been silent since (asleep); 'late': a reader active since did not ack it (warned).
 */
export type AckStatus = 'none' | 'waiting' | 'pending' | 'late' | 'fully-acked';

/** Who has a message (the UI: "delivered to 3 of 5, 2 not yet online"). */
export interface Delivery {
  readonly readers: readonly MemberId[];
  readonly acked: readonly MemberId[];
  /** Missing, and online: their ack should come soon. */
  readonly waiting: readonly MemberId[];
  /** Missing, and silent since: "not yet online". */
  readonly pending: readonly MemberId[];
  /** Missing although active since (rule 3: warned). */
  readonly late: readonly MemberId[];
  /** No longer awaited (left the channel, excluded, or moved on) without acking it. */
  readonly gone: readonly MemberId[];
}

interface Tracked {
  readonly needed: boolean;
  readonly acceptedAtMs: number;
  /** Relay time of the message (rule 3's timer compares relay times, not when we processed them). */
  atMs: number;
  readonly remaining: Set<MemberId>;
  /**
   * Readers at fault (rule 3): active since, or online past the timeout, without acking.
   * Made on the first one (issue 8: most tracked messages never have one, and a catch-up tracks
   * every message it reads until our ack).
   */
  owing?: Set<MemberId>;
  /** Readers no longer awaited who never acked it (forget). Made on the first one, as `owing`. */
  gone?: Set<MemberId>;
  warned: boolean;
  resends: number;
  nextResendMs: number;
}

/** Per (reader, author): the author's messages still waiting for that reader, in line order. */
interface AwaitQueue {
  readonly ids: MessageKey[];
  head: number;
  /**
   * checkLate's scan resumes here: every id before it (from `head`) is already found late for
   * this reader or needs no ack, and both stay so. Without it, each message of a reader who is
   * active without acking (a catch-up of authors who did not see each other) rescanned all it
   * had skipped so far: O(n²) over a catch-up (bench:catchup profile, 0.8 s of 10,000).
   * Snapshots keep it (`scanned`): where the scan resumes decides what it finds (see `restore`).
   */
  checked: number;
}

/**
 * Per (reader, author) queue whose rule 3 scan has passed entries still awaited: how many
 * (`checked - head`). Sorted by reader, then author.
 */
export type ScannedSnapshot = readonly (readonly [reader: MemberId, author: MemberId, passed: number])[];

/** A tracked message in a snapshot (frozen: AckMonitor hands out the same entry while the message is unchanged). */
export interface TrackedSnapshot {
  readonly id: MessageKey;
  readonly needed: boolean;
  readonly acceptedAtMs: number;
  readonly atMs: number;
  /**
   * The readers still to ack it, sorted, without us (`AckMonitorSnapshot.selfImplicit`; listed
   * in snapshots of older builds).
   */
  readonly remaining: readonly MemberId[];
  readonly owing: readonly MemberId[];
  readonly gone: readonly MemberId[];
  readonly warned: boolean;
  readonly resends: number;
  readonly nextResendMs: number;
}

export interface AckMonitorSnapshot {
  readonly tracked: readonly TrackedSnapshot[];
  readonly fullyAcked: readonly MessageKey[];
  readonly ackDueAtMs: number | null;
  readonly reacks: readonly (readonly [MessageKey, number])[];
  readonly activeResends: readonly (readonly [MemberId, number])[];
  /** Relay order of the messages whose order we know. */
  readonly orders: readonly (readonly [MessageKey, number])[];
  /** Members no longer awaited (left the channel, excluded, or gave their last word). */
  readonly departed: readonly MemberId[];
  readonly goneFrom: readonly (readonly [MessageKey, readonly MemberId[]])[];
  /** Whether a member moved on without acking everything (rule 1's last word fell short). */
  readonly incomplete: boolean;
  readonly lateReaders: readonly MemberId[];
  /**
   * true: `tracked[].remaining` leaves us out, and `restore` derives whether we are still to ack
   * each message (see `restore`). Absent in snapshots of older builds, whose lists name us.
   */
  readonly selfImplicit?: true;
  /**
   * Where rule 3's scan resumes (`AwaitQueue.checked`), for the queues where it passed entries
   * still awaited (see `restore`). Absent: none did (and in snapshots of older builds, whose
   * restores scan every queue from its start).
   */
  readonly scanned?: ScannedSnapshot;
  /**
   * Rule 5: no resend deadline still armed is at or before it (see `restore`). Absent before the
   * first tick (and in snapshots of older builds, whose restores re-arm every message with
   * resends left).
   */
  readonly resendFloorMs?: number;
}

/** Always online: the behaviour of mpENC, where every member is in the chat room. */
const ALWAYS_ONLINE = (): boolean => true;

export class AckMonitor<Body> {
  private readonly tracked = new Map<MessageKey, Tracked>();
  /** The snapshot entry last made for each tracked message (trackedEntry). */
  private readonly snapshotEntries = new Map<MessageKey, TrackedSnapshot>();
  /** Messages that needed acks and got all of them. */
  private readonly fullyAcked = new Set<MessageKey>();
  private readonly awaiting = new Map<MemberId, Map<MemberId, AwaitQueue>>();
  /** Per reader: how many messages that *need* acks wait for them. */
  private readonly owed = new Map<MemberId, number>();
  private neededCount = 0;
  private ackDueAtMs: number | undefined;
  private readonly lastReackMs = new Map<MessageKey, number>();
  private readonly lastActiveResendMs = new Map<MemberId, number>();
  /**
   * Rule 5 deadlines of messages that need acks (ordered: no scan per call). Equal deadlines by
   * message id: `tick` resends in an order that does not depend on how the heap was filled, so a
   * restored monitor resends in the live one's order.
   */
  private readonly resendAt = new DeadlineHeap<MessageKey>((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  /** Relay order of each message (undefined for ours until the relay hands it back). */
  private readonly orders = new Map<MessageKey, number>();
  /**
   * Per message: the latest relay order among its ancestors that its author RECEIVED (rule 3's
   * "an ancestor ordered after m"). The author's own messages do not count: the relay orders
   * them after whatever it had not shown the author yet.
   */
  private readonly reaches = new Map<MessageKey, number>();
  private readonly departed = new Set<MemberId>();
  /** Fully tracked-out messages that some reader left without acking. */
  private readonly goneFrom = new Map<MessageKey, MemberId[]>();
  /** A member gave its last word without acking everything it was shown (see `lastWord`). */
  private incomplete = false;
  /** Every reader ever found at fault here (rule 3), sticky. */
  private readonly lateReaders = new Set<MemberId>();
  /**
   * Rule 5: every deadline in `resendAt` is after it; a message that needs acks, has resends
   * left and is not in `resendAt` has `nextResendMs` at or before it (tick dropped it, see
   * `restore`). The latest `tick`'s time, lowered only by a clock that went back. Undefined:
   * no tick yet, or restored from an older build's snapshot (no deadline dropped that we know of).
   */
  private resendFloorMs: number | undefined;

  constructor(
    private readonly self: MemberId,
    private readonly transcript: Transcript<Body>,
    private readonly needsAck: (body: Body) => boolean,
    private readonly config: ReliabilityConfig = DEFAULT_RELIABILITY,
    /** Rule 15 presence: whether a member is shown online now. */
    private readonly isOnline: (member: MemberId) => boolean = ALWAYS_ONLINE,
  ) {
    // The resend floor needs every new deadline after the time that arms it (see `restore`).
    assert(config.resendIntervalMs > 0, 'resendIntervalMs is positive');
  }

  /**
   * Call after every message accepted into the transcript (ours and others'), in order. `order`
   * is the relay seq of the event that carried it (undefined for ours, until `ordered`), `atMs`
   * its relay time (default now: for ours, when we sealed it).
   */
  accepted(id: MessageKey, nowMs: number, order?: number, atMs: number = nowMs): AckAction[] {
    const actions: AckAction[] = [];
    const message = this.transcript.get(id);
    if (order !== undefined) this.orders.set(id, order);
    const reach = this.reachOf(message.author, message.parents);
    this.reaches.set(id, reach);
    this.applyAcksBy(message.author, actions);
    if (message.author !== this.self) {
      this.checkLate(message.author, reach, atMs, actions, order !== undefined);
      this.resendToActiveReader(message.author, nowMs, actions);
    }
    const needed = this.needsAck(message.body);
    // The readers still to ack it, in member order (straight into the set: one array less per message).
    const remaining = new Set<MemberId>();
    for (const r of this.transcript.readers(id)) if (!this.departed.has(r) && !this.transcript.ackedBy(id, r)) remaining.add(r);
    if (remaining.size === 0) {
      if (needed) this.fullyAcked.add(id);
    } else {
      const nextResendMs = nowMs + this.config.resendIntervalMs;
      // Only a clock that went back by an interval or more since the last tick arms a deadline
      // at or before the floor: lower it below this one, so a restore arms it too (a restore may
      // then re-arm messages tick dropped, which resend once a reader wakes: never a lost one).
      if (needed && this.resendFloorMs !== undefined && nextResendMs <= this.resendFloorMs) this.resendFloorMs = nowMs;
      this.track(id, message.author, { needed, acceptedAtMs: nowMs, atMs, remaining, warned: false, resends: 0, nextResendMs });
    }
    if (!this.owesAck()) this.ackDueAtMs = undefined;
    else if (this.ackDueAtMs === undefined) this.ackDueAtMs = nowMs + this.config.autoAckDelayMs;
    return actions;
  }

  /** The relay handed back our own message `id` at seq `order`, at relay time `atMs`. */
  ordered(id: MessageKey, order: number, atMs?: number): void {
    if (!this.transcript.has(id) || this.orders.has(id)) return;
    this.orders.set(id, order);
    const t = this.tracked.get(id);
    if (t !== undefined && atMs !== undefined) t.atMs = atMs;
  }

  /**
   * A member's last word here (rule 1: its FIN_PM, the latest messages it had when it moved to a
   * later subsession). It acks their ancestors; messages ordered before them that it does not
   * ack are late (rule 3); then the member is no longer awaited (what came after its last word
   * it will never ack, and that is no fault).
   */
  lastWord(member: MemberId, latest: readonly MessageKey[]): AckAction[] {
    const actions: AckAction[] = [];
    const known = latest.filter((id) => this.transcript.has(id));
    // It names messages we never got (a lossy transport; the relay orders them before the last
    // word): we cannot call this subsession consistent.
    if (known.length < latest.length) this.incomplete = true;
    const byAuthor = this.awaiting.get(member);
    if (byAuthor !== undefined && known.length > 0) {
      const reach = this.reachOf(member, known);
      for (const queue of byAuthor.values()) {
        // Pop what the last word acks: an author's messages form a line, so what it acks of a
        // queue (in line order) is a prefix.
        while (queue.head < queue.ids.length && known.some((f) => this.transcript.isAncestorOrSelf(queue.ids[queue.head]!, f))) {
          this.ackedOne(queue.ids[queue.head]!, member, actions);
          queue.head += 1;
        }
      }
      this.checkLate(member, reach, Number.NEGATIVE_INFINITY, actions);
    }
    // What it has not acked now it never will: not a fault (it moved on before seeing it, or a
    // lossy transport lost it), but the subsession did not end with everything acked by all.
    if (this.awaiting.get(member) !== undefined && [...this.awaiting.get(member)!.values()].some((q) => q.head < q.ids.length)) this.incomplete = true;
    actions.push(...this.forget(member));
    return actions;
  }

  /**
   * A member left the channel or this subsession (mpENC §3.3; or gave its last word): they will
   * never ack, and that is not a fault, so stop expecting it. Returns the messages this completes.
   */
  forget(member: MemberId): AckAction[] {
    const actions: AckAction[] = [];
    this.departed.add(member);
    const byAuthor = this.awaiting.get(member);
    if (byAuthor === undefined) return actions;
    this.awaiting.delete(member);
    this.owed.delete(member);
    for (const queue of byAuthor.values()) {
      for (let i = queue.head; i < queue.ids.length; i++) this.ackedOne(queue.ids[i]!, member, actions, true);
    }
    if (member === this.self) this.ackDueAtMs = undefined;
    return actions;
  }

  /**
   * Issue 9 §2: `member` left the channel (or was removed). It will never ack, which is no fault
   * (forget), but what it was shown and did not ack still counts for consistency: the subsession
   * does not end consistent (endedConsistent), and delivery() lists it under `gone` (its ack will
   * never come). The relay orders the leave after everything it was shown, so what it still owes
   * now is exactly that.
   */
  left(member: MemberId): AckAction[] {
    if ((this.owed.get(member) ?? 0) > 0) this.incomplete = true;
    return this.forget(member);
  }

  hasDeparted(member: MemberId): boolean {
    return this.departed.has(member);
  }

  /**
   * mpENC §3.5 consistency of a subsession that is over: nobody was late (rule 3), and nobody
   * moved on without acking what it was shown.
   */
  endedConsistent(): boolean {
    return !this.incomplete && this.lateReaders.size === 0;
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
    // Every deadline left in the heap after this tick is after both (a clock that went back finds
    // none due, since all are after the floor already).
    this.resendFloorMs = Math.max(this.resendFloorMs ?? nowMs, nowMs);
    if (this.ackDueAtMs !== undefined && nowMs >= this.ackDueAtMs) {
      this.ackDueAtMs = undefined;
      if (this.owesAck()) actions.push({ kind: 'send-ack' });
    }
    // The heap holds only messages that need acks and are still tracked.
    for (const id of this.resendAt.takeDue(nowMs)) {
      const t = this.tracked.get(id)!;
      // Rule 5: to the readers who are online; the relay keeps it for the others.
      const to = [...t.remaining].filter((r) => r !== this.self && this.isOnline(r)).sort();
      if (to.length === 0) continue; // pending readers only: rule 8 resends when one writes
      t.resends += 1;
      t.nextResendMs = nowMs + this.config.resendIntervalMs;
      if (t.resends < this.config.maxResends) this.resendAt.set(id, t.nextResendMs);
      actions.push({ kind: 'resend', id, to });
    }
    return actions;
  }

  /** When `tick` next has something to do, for the session's timer. O(1) amortised. */
  nextDeadlineMs(): number | undefined {
    const resend = this.resendAt.next();
    const next = this.ackDueAtMs;
    return resend !== undefined && (next === undefined || resend < next) ? resend : next;
  }

  status(id: MessageKey): AckStatus {
    if (this.fullyAcked.has(id)) return 'fully-acked';
    const t = this.tracked.get(id);
    if (t === undefined || !t.needed) return 'none';
    if (t.warned) return 'late';
    return [...t.remaining].some((r) => r !== this.self && this.isOnline(r)) ? 'waiting' : 'pending';
  }

  delivery(id: MessageKey): Delivery {
    const readers = this.transcript.has(id) ? this.transcript.readers(id) : [];
    const t = this.tracked.get(id);
    const missing = t === undefined ? new Set<MemberId>() : t.remaining;
    const gone = new Set(t === undefined ? (this.goneFrom.get(id) ?? []) : (t.gone ?? []));
    const late = [...(t?.owing ?? [])].filter((r) => missing.has(r)).sort();
    const rest = [...missing].filter((r) => !late.includes(r)).sort();
    return {
      readers,
      acked: readers.filter((r) => !missing.has(r) && !gone.has(r)),
      waiting: rest.filter((r) => this.isOnline(r)),
      pending: rest.filter((r) => !this.isOnline(r)),
      late,
      gone: [...gone].sort(),
    };
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

  /** Readers found at fault (rule 3) on a message still tracked. */
  everOwing(): MemberId[] {
    const out = new Set<MemberId>();
    for (const t of this.tracked.values()) for (const r of t.owing ?? []) if (t.remaining.has(r)) out.add(r);
    return [...out].sort();
  }

  snapshot(): AckMonitorSnapshot {
    return {
      tracked: [...this.tracked].map(([id, t]) => this.trackedEntry(id, t)),
      fullyAcked: [...this.fullyAcked],
      ackDueAtMs: this.ackDueAtMs ?? null,
      reacks: [...this.lastReackMs],
      activeResends: [...this.lastActiveResendMs],
      orders: [...this.orders],
      departed: [...this.departed].sort(),
      goneFrom: [...this.goneFrom],
      incomplete: this.incomplete,
      lateReaders: [...this.lateReaders].sort(),
      selfImplicit: true,
      ...this.scannedSnapshot(),
      ...(this.resendFloorMs !== undefined && { resendFloorMs: this.resendFloorMs }),
    };
  }

  /** `scanned` of the snapshot, left out when empty (most of the time: no reader is late). */
  private scannedSnapshot(): { scanned?: ScannedSnapshot } {
    const scanned: [MemberId, MemberId, number][] = [];
    for (const [reader, byAuthor] of this.awaiting) {
      for (const [author, queue] of byAuthor) if (queue.checked > queue.head) scanned.push([reader, author, queue.checked - queue.head]);
    }
    if (scanned.length === 0) return {};
    return { scanned: scanned.sort(([r1, a1], [r2, a2]) => (r1 !== r2 ? (r1 < r2 ? -1 : 1) : a1 < a2 ? -1 : a1 > a2 ? 1 : 0)) };
  }

  /**
   * A tracked message as its snapshot entry: the one made for an earlier snapshot while the
   * message is unchanged, so a snapshot after each page of a catch-up does not rebuild (and sort)
   * an entry for every message still waiting for a reader, and the worker tells unchanged
   * entries by identity (src/worker/snapshot-chunks.ts). Unchanged is decided by the fields that
   * can change: `remaining` only shrinks and `owing` and `gone` only grow, so equal sizes mean
   * equal sets; the rest are numbers and flags.
   *
   * `remaining` leaves us out (restore derives it): our own ack is the one step that changes
   * every tracked message at once. After a catch-up of authors who did not see each other, or
   * of anyone while a member sleeps, every message still waits for someone besides us; with us
   * listed, our ack alone rewrote every entry and so every stored chunk of them (issue 12,
   * bench:catchup: ~150 chunks re-encoded and sealed in one transaction). Without us, it leaves
   * those entries as they were.
   */
  private trackedEntry(id: MessageKey, t: Tracked): TrackedSnapshot {
    const made = this.snapshotEntries.get(id);
    if (
      made !== undefined &&
      made.atMs === t.atMs &&
      made.remaining.length === t.remaining.size - (t.remaining.has(this.self) ? 1 : 0) &&
      made.owing.length === (t.owing?.size ?? 0) &&
      made.gone.length === (t.gone?.size ?? 0) &&
      made.warned === t.warned &&
      made.resends === t.resends &&
      made.nextResendMs === t.nextResendMs
    ) {
      return made;
    }
    const entry: TrackedSnapshot = {
      id,
      needed: t.needed,
      acceptedAtMs: t.acceptedAtMs,
      atMs: t.atMs,
      remaining: [...t.remaining].filter((r) => r !== this.self).sort(),
      owing: [...(t.owing ?? [])].sort(),
      gone: [...(t.gone ?? [])].sort(),
      warned: t.warned,
      resends: t.resends,
      nextResendMs: t.nextResendMs,
    };
    // Frozen: the next snapshots hand out this same object.
    Object.freeze(entry);
    this.snapshotEntries.set(id, entry);
    return entry;
  }

  /** Rebuilds the monitor over a transcript restored to the same messages. */
  static restore<Body>(
    snapshot: AckMonitorSnapshot,
    self: MemberId,
    transcript: Transcript<Body>,
    needsAck: (body: Body) => boolean,
    config: ReliabilityConfig = DEFAULT_RELIABILITY,
    isOnline: (member: MemberId) => boolean = ALWAYS_ONLINE,
  ): AckMonitor<Body> {
    const monitor = new AckMonitor(self, transcript, needsAck, config, isOnline);
    for (const [id, order] of snapshot.orders) monitor.orders.set(id, order);
    // Reaches are derived: replay them in acceptance order.
    for (const id of transcript.ids()) {
      const m = transcript.get(id);
      monitor.reaches.set(id, monitor.reachOf(m.author, m.parents));
    }
    for (const m of snapshot.departed) monitor.departed.add(m);
    for (const [id, gone] of snapshot.goneFrom) monitor.goneFrom.set(id, [...gone]);
    monitor.incomplete = snapshot.incomplete;
    for (const m of snapshot.lateReaders) monitor.lateReaders.add(m);
    // We are still to ack a tracked message exactly when we are one of its readers, have not
    // departed, and the transcript does not show our ack (Transcript.ackedBy):
    //  - `accepted` puts in `remaining` exactly the readers not departed who have not acked it;
    //  - we leave it in two ways only. Each message of ours, once accepted, acks per author a
    //    prefix of that author's messages (an author's messages form a line, mpENC §3.4), and
    //    applyAcksBy pops that whole prefix: so afterwards we remain exactly where we have not
    //    acked. And `lastWord`, `left` and `forget` of us end with us departed and in no
    //    `remaining` (lastWord may first drop us from messages its last word names without
    //    our ack: departed covers them too);
    //  - our acks change only with a message of ours (the session calls `accepted` for each
    //    message it adds, before it snapshots), and departed only grows.
    // tests/protocol/ack-monitor-restore.test.ts checks this on random traces.
    // Snapshots name us only when `selfImplicit` is absent: written by an older build, whose
    // lists name us where it held us. Those are read as written rather than derived too (they
    // would give the same, by the above, for a build whose monitor kept these rules; read as
    // written, a stored record needs no such argument). The worker stores the record and every
    // changed chunk of entries in one transaction, and an entry differs between the forms
    // exactly when it names us (src/worker/snapshot-chunks.ts compares them as JSON), so a
    // subsession's stored entries are never of both forms.
    const derived = snapshot.selfImplicit === true && transcript.members.includes(self) && !monitor.departed.has(self);
    // Rule 5 (mpENC §3.5: a message not fully acked is resent): the live monitor has a message
    // armed exactly when it needs acks, has resends left and `tick` did not drop it (every
    // missing reader but us asleep, async-groups rule 14: the relay keeps it for them, rule 8
    // resends when one of them writes). A dropped message's `nextResendMs` is at or before the
    // floor, an armed one's after it (the floor is the latest tick's time: tick takes every
    // deadline up to it and arms the next ones an interval after it, and a message tracked
    // since is armed an interval after its acceptance; a clock gone back lowers the floor under
    // it, see `accepted`). So `track` arms exactly those after the floor. Without a floor (older
    // builds; no tick yet) it arms every one, as those builds did: a message their tick dropped
    // resends once a reader wakes.
    monitor.resendFloorMs = snapshot.resendFloorMs;
    for (const t of snapshot.tracked) {
      const author = transcript.get(t.id).author;
      const remaining = new Set(t.remaining);
      if (derived && author !== self && !transcript.ackedBy(t.id, self)) remaining.add(self);
      monitor.track(t.id, author, {
        needed: t.needed,
        acceptedAtMs: t.acceptedAtMs,
        atMs: t.atMs,
        remaining,
        ...(t.owing.length > 0 && { owing: new Set(t.owing) }),
        ...(t.gone.length > 0 && { gone: new Set(t.gone) }),
        warned: t.warned,
        resends: t.resends,
        nextResendMs: t.nextResendMs,
      });
    }
    // Rule 3 (async-groups rule 14, mpENC §4.3): where each queue's scan resumes. Entries leave
    // a live queue only as a prefix (applyAcksBy and lastWord pop from `head`; compaction keeps
    // `checked - head`) or all at once (forget drops the reader's queues), so its entries from
    // `head` are exactly the author's messages still tracked with that reader remaining, in
    // acceptance order: the entries `track` just gave the rebuilt queue, in the same order (the
    // snapshot lists tracked messages in acceptance order). So the scan resumes after the same
    // ones. Starting from the queue's start instead, the scan can stop at a message it had
    // passed that is now neither skipped nor overdue (our message whose relay time `ordered`
    // moved later, a reader's message with an earlier relay time than its last) and miss the
    // late reader the live monitor warns about. Older builds' snapshots have none: from the start.
    // A position that does not fit its queue (stored pieces that disagree: never written so, but
    // read from the user's disk) is dropped, not trusted and not fatal: that queue's scan starts
    // from its start, as an older build's would, and the conversation still loads.
    for (const [reader, author, passed] of snapshot.scanned ?? []) {
      const queue = monitor.awaiting.get(reader)?.get(author);
      if (queue !== undefined && Number.isSafeInteger(passed) && passed >= 0 && passed <= queue.ids.length) queue.checked = passed;
    }
    for (const id of snapshot.fullyAcked) monitor.fullyAcked.add(id);
    monitor.ackDueAtMs = snapshot.ackDueAtMs ?? undefined;
    for (const [id, ms] of snapshot.reacks) monitor.lastReackMs.set(id, ms);
    for (const [m, ms] of snapshot.activeResends) monitor.lastActiveResendMs.set(m, ms);
    return monitor;
  }

  /**
   * The latest relay order among the messages `author` received that `parents` lead to: a
   * parent by someone else was received, and everything its author saw was ordered before it;
   * a parent of the author's own passes on what it reached.
   */
  private reachOf(author: MemberId, parents: readonly MessageKey[]): number {
    let reach = -1;
    for (const p of parents) {
      const own = this.transcript.get(p).author === author;
      reach = Math.max(reach, own ? (this.reaches.get(p) ?? -1) : (this.orders.get(p) ?? this.reaches.get(p) ?? -1));
    }
    return reach;
  }

  /** Callers add messages in acceptance order, which keeps every queue in line order. */
  private track(id: MessageKey, author: MemberId, t: Tracked): void {
    this.tracked.set(id, t);
    if (t.needed) {
      this.neededCount += 1;
      // After the floor: all of them but the ones a restore finds dropped (see there).
      if (t.resends < this.config.maxResends && (this.resendFloorMs === undefined || t.nextResendMs > this.resendFloorMs)) this.resendAt.set(id, t.nextResendMs);
    }
    for (const reader of t.remaining) {
      let byAuthor = this.awaiting.get(reader);
      if (byAuthor === undefined) this.awaiting.set(reader, (byAuthor = new Map()));
      let queue = byAuthor.get(author);
      if (queue === undefined) byAuthor.set(author, (queue = { ids: [], head: 0, checked: 0 }));
      queue.ids.push(id);
      if (t.needed) this.owed.set(reader, (this.owed.get(reader) ?? 0) + 1);
    }
  }

  /**
   * Rule 3: `reader` wrote a message (ordered at relay time `atMs`) whose ancestors reach relay
   * order `reach`. Every message it has not acked that was ordered before that, it has skipped;
   * every one ordered `ackTimeoutMs` or more before its message, it has had time to ack (and its
   * message shows it was online). Relay times: a backlog processed late changes nothing.
   * Queues are in acceptance (and relay) order, so the scan stops at the first message that is
   * neither; only those already found late are passed over again.
   */
  private checkLate(reader: MemberId, reach: number, atMs: number, actions: AckAction[], relayOrdered = false): void {
    const byAuthor = this.awaiting.get(reader);
    if (byAuthor === undefined) return;
    const flagged: MessageKey[] = [];
    for (const queue of byAuthor.values()) {
      let i = Math.max(queue.head, queue.checked);
      for (; i < queue.ids.length; i++) {
        const id = queue.ids[i]!;
        const t = this.tracked.get(id)!;
        const order = this.orders.get(id);
        const skipped = order !== undefined && order < reach;
        // `relayOrdered`: the reader's message came with its relay order. A message without one
        // then is ours, not handed back yet (`ordered`): the client reads the relay in order, so
        // the relay put it after the reader's message, and its `atMs` is only when we sealed it
        // (perhaps offline, long before it reached the relay). Nobody owes an ack for a message
        // the relay has not shown them: never overdue (else: write offline while others chat,
        // reconnect, and each of them looked late). Without relay orders (mpENC's chat room)
        // our send time is the time.
        const overdue = !(relayOrdered && order === undefined) && atMs >= t.atMs + this.config.ackTimeoutMs;
        if (!skipped && !overdue) break;
        if (t.owing?.has(reader) === true || !t.needed) continue;
        (t.owing ??= new Set()).add(reader);
        this.lateReaders.add(reader);
        flagged.push(id);
      }
      queue.checked = i;
    }
    for (const id of flagged) {
      const t = this.tracked.get(id)!;
      if (t.warned) continue;
      t.warned = true;
      actions.push({ kind: 'not-fully-acked', id, missing: [...(t.owing ?? [])].sort() });
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
        queue.checked = Math.max(0, queue.checked - queue.head);
        queue.head = 0;
      }
    }
  }

  private ackedOne(id: MessageKey, reader: MemberId, actions: AckAction[], gone = false): void {
    const t = this.tracked.get(id);
    assert(t !== undefined, 'awaited message is tracked');
    if (!t.remaining.delete(reader)) return;
    if (gone) (t.gone ??= new Set()).add(reader);
    if (t.needed) {
      const owed = this.owed.get(reader);
      if (owed !== undefined) this.owed.set(reader, owed - 1);
    }
    if (t.remaining.size > 0) return;
    this.tracked.delete(id);
    this.snapshotEntries.delete(id);
    this.resendAt.delete(id);
    if (t.needed) {
      this.neededCount -= 1;
      this.fullyAcked.add(id);
    }
    if (t.gone !== undefined && t.gone.size > 0) this.goneFrom.set(id, [...t.gone].sort());
    actions.push({ kind: 'fully-acked', id, late: t.warned, needed: t.needed });
  }
}
