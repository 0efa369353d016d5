/**
 * One subsession as the message half holds it (mpENC §4.2: "two components for the current and
 * previous subsession; each contains a message encryptor/decryptor, a transcript, and liveness
 * components"). Its lifecycle (mpENC §3.1, §3.5):
 *
 *   active ──(we send FIN: leaving, or a newer subsession took over)──▶ parting
 *   parting ──(every message fully acked, or the FIN timeout)──▶ closed
 *
 * A closed subsession accepts no new messages but still answers duplicates with re-acks, so that
 * members who missed our last acks get them (mpENC §3.5).
 */
import type { CryptoProvider } from '../crypto/provider.js';
import type { MemberId } from '../ids.js';
import { bindKeys, type BoundKeys } from '../packets/data.js';
import type { MessageBody } from '../packets/body.js';
import { AckMonitor } from '../reliability/ack-monitor.js';
import { PresenceTracker } from '../presence/presence-tracker.js';
import type { MessageKey } from '../transcript/ids.js';
import { PendingMessages } from '../transcript/pending.js';
import { Transcript } from '../transcript/transcript.js';
import { needsAck } from './effects.js';
import type { SubsessionSetup } from './membership.js';
import type { SessionConfig } from './config.js';

/** Packets per resend: a reader far behind catches up over several resends rather than one burst. */
export const MAX_RESEND_BATCH = 64;

export type SubsessionPhase =
  | { readonly kind: 'active' }
  /** We sent our FIN (`finId`); we close when everything is fully acked or at `deadlineMs`. */
  | { readonly kind: 'parting'; readonly finId: MessageKey; readonly deadlineMs: number }
  | { readonly kind: 'closed'; readonly consistent: boolean };

export class Subsession {
  readonly transcript: Transcript<MessageBody>;
  readonly pending: PendingMessages<MessageBody, string>;
  acks: AckMonitor<MessageBody>;
  presence: PresenceTracker;
  /** Packet texts kept for resends: messages not yet fully acked, and our latest message. */
  readonly packets = new Map<MessageKey, string>();
  phase: SubsessionPhase = { kind: 'active' };
  /** Members who left the channel: never expected to ack again (mpENC §3.3). */
  readonly departed = new Set<MemberId>();
  /** The keys with SHA-256(sid ‖ gk) computed once, on first use (issue 8 hot path). */
  private bound: BoundKeys | undefined;

  constructor(
    readonly index: number,
    readonly setup: SubsessionSetup,
    readonly hint: number,
    readonly self: MemberId,
    config: SessionConfig,
    nowMs: number,
  ) {
    this.transcript = new Transcript<MessageBody>(setup.members);
    this.pending = new PendingMessages<MessageBody, string>(config.maxPendingMessages, config.pendingExpiryMs);
    this.acks = new AckMonitor(self, this.transcript, needsAck, config.reliability);
    this.presence = new PresenceTracker(self, setup.members, nowMs, config.presence);
  }

  get members(): readonly MemberId[] {
    return this.setup.members;
  }

  async keys(crypto: CryptoProvider): Promise<BoundKeys> {
    this.bound ??= await bindKeys(crypto, this.setup.keys);
    return this.bound;
  }

  /** Drops a packet that no longer needs resending, unless it is our latest message. */
  release(id: MessageKey): void {
    if (this.transcript.lastBy(this.self) !== id) this.packets.delete(id);
  }

  /**
   * The packets to resend for `id` to readers `to`: the message and every ancestor some of them
   * has not acked (so they cannot hold it), oldest first, as far as we kept the packets. A lost
   * explicit ack would otherwise block all its descendants forever (AckMonitor rule 5).
   */
  resendPackets(id: MessageKey, to: readonly MemberId[]): string[] {
    const found: MessageKey[] = [];
    const seen = new Set<MessageKey>();
    const stack = [id];
    while (stack.length > 0 && found.length < MAX_RESEND_BATCH) {
      const next = stack.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      if (to.every((r) => this.transcript.ackedBy(next, r))) continue;
      found.push(next);
      stack.push(...this.transcript.parents(next));
    }
    found.sort((a, b) => this.transcript.entry(a).index - this.transcript.entry(b).index);
    return found.map((k) => this.packets.get(k)).filter((t): t is string => t !== undefined);
  }

  nextDeadlineMs(): number | undefined {
    const candidates = [this.acks.nextDeadlineMs(), this.pending.nextExpiryMs()];
    if (this.phase.kind === 'active') candidates.push(this.presence.nextDeadlineMs());
    if (this.phase.kind === 'parting') candidates.push(this.phase.deadlineMs);
    let next: number | undefined;
    for (const c of candidates) if (c !== undefined && (next === undefined || c < next)) next = c;
    return next;
  }
}
