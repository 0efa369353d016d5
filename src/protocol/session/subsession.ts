/**
 * One subsession as the message half holds it (mpENC §4.2: "two components for the current and
 * previous subsession; each contains a message encryptor/decryptor, a transcript, and liveness
 * components"), with the state each pipeline stage owns for it: its keys (verify/decrypt), the
 * confirmation gate (async-groups rule 5), its transcript and waiting messages, its acks.
 *
 * Its lifecycle (mpENC §3.1, §3.5; async-groups rules 7, 14):
 *
 *   active ──(an operation replaced it: we never seal here again)──▶ parting
 *   active ──(we leave: our FIN is out)──▶ parting
 *   parting ──(every member who confirmed it gave its last word, or left; or our FIN is
 *              acked by those online / timed out)──▶ closed
 *
 * A sleeping member never blocks the new subsession: the old one just waits in `parting` (bounded
 * by MAX_LIVE_SUBSESSIONS). A closed subsession still reads late messages while its keys are kept
 * (rule 12), and answers duplicates with re-acks (mpENC §3.5).
 */
import type { CryptoProvider } from '../crypto/provider.js';
import { assert } from '../errors.js';
import type { MemberId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import { bindKeys, type BoundKeys } from '../packets/data.js';
import { SenderChains } from '../packets/ratchet.js';
import { AckMonitor } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import type { TranscriptMessage } from '../transcript/message.js';
import { PendingMessages } from '../transcript/pending.js';
import { Transcript } from '../transcript/transcript.js';
import type { SessionConfig } from './config.js';
import { needsAck } from './effects.js';
import type { SubsessionSetup } from './membership.js';

/** Packets per resend: a reader far behind catches up over several resends rather than one burst. */
export const MAX_RESEND_BATCH = 64;

/**
 * Rule 5: messages of members whose confirmation has not arrived yet (it precedes their data in
 * the relay's order, so this holds only what a reordering transport delivers early). Bounded: a
 * forger cannot fill it beyond this, and what still waits at the pending expiry is dropped with
 * a warning.
 */
export const MAX_HELD_FOR_CONFIRMATION = 256;

export type SubsessionPhase =
  | { readonly kind: 'active' }
  /**
   * Not ours to seal in any more. `finId`/`deadlineMs`: we are leaving, our FIN is out.
   * Otherwise an operation replaced it (`replacedBy`): it waits for the last words.
   */
  | { readonly kind: 'parting'; readonly finId: MessageKey | null; readonly deadlineMs: number | null; readonly replacedBy: number | null }
  /**
   * `missedEvents`: closed because we missed events (rule 11, withheld events): the relay's
   * order of what we see in it later says nothing about what its authors had read, so no ack
   * lateness is judged there any more.
   */
  | { readonly kind: 'closed'; readonly consistent: boolean; readonly missedEvents?: boolean };

/** What waits in the transcript stage with a message: its packet (for resends) and its relay order. */
export interface Carried {
  readonly text: string;
  readonly seq: number | undefined;
  /** Who posted the packet (its author, or a member resending it). */
  readonly sender: MemberId;
  /** Relay time of the event that carried it (our clock for our own, until the relay hands it back). */
  readonly atMs: number;
}

/** A verified message whose author has not confirmed this subsession yet (rule 5). */
export interface HeldMessage {
  readonly message: TranscriptMessage<MessageBody>;
  readonly carried: Carried;
  readonly sender: MemberId;
  readonly receivedAtMs: number;
}

export class Subsession {
  readonly transcript: Transcript<MessageBody>;
  readonly pending: PendingMessages<MessageBody, Carried>;
  acks: AckMonitor<MessageBody>;
  /** Packet texts kept for resends: messages not yet fully acked, and our latest message. */
  readonly packets = new Map<MessageKey, string>();
  phase: SubsessionPhase = { kind: 'active' };
  /** Rule 5: members whose confirmation we have (contributors at once, others later). */
  readonly confirmed: Set<MemberId>;
  /**
   * Members whose confirmation PACKET we processed: they had processed the operation that made
   * this subsession, so they seal under nothing older afterwards (rule 12's alarm).
   */
  readonly confirmedByPacket = new Set<MemberId>();
  /** Members who gave their last word here (FIN_PM of a later confirmation), or left. */
  readonly done = new Set<MemberId>();
  /**
   * Deniability (mpENC §6.1.1, issue 9 §3): members whose ephemeral signing key of this
   * subsession was published. Anyone can sign as them now, so their packets that arrive after
   * the publication are refused (what came before stays: the relay's order is everyone's).
   */
  readonly published = new Set<MemberId>();
  /** Rule 5: messages waiting for their author's confirmation. */
  held: HeldMessage[] = [];
  /** The keys with SHA-256(sid ‖ gk) computed once, on first use (issue 8 hot path). */
  private bound: BoundKeys | undefined;
  /**
   * Issue 9 §3 (mpENC §6.2.1): one hash chain per sender, derived from the group key at install
   * (`ratchet`), after which the group key is no longer held (`setup.keys.groupKey` is empty).
   * Undefined for a v1 subsession (mpenc_js), whose packets are under the group key.
   */
  chains: SenderChains | undefined;
  /**
   * Messages opened under a chain key that wait (for parents, or for their author's
   * confirmation): author and CHAIN_INDEX, so the key goes when they are accepted. In memory
   * only (after a restart such a key stays until MAX_SKIPPED_MESSAGE_KEYS pushes it out).
   */
  readonly openKeys = new Map<MessageKey, readonly [MemberId, number]>();

  constructor(
    readonly index: number,
    public setup: SubsessionSetup,
    readonly hint: number,
    readonly self: MemberId,
    config: SessionConfig,
    /** Relay seq of the event that installed it (rule 12: nothing ordered before is under it). */
    readonly installedAtSeq: number | null,
    isOnline: (member: MemberId) => boolean,
  ) {
    this.transcript = new Transcript<MessageBody>(setup.members);
    this.pending = new PendingMessages<MessageBody, Carried>(config.maxPendingMessages, config.pendingExpiryMs);
    this.acks = new AckMonitor(self, this.transcript, needsAck, config.reliability, isOnline);
    this.confirmed = new Set(setup.confirmed ?? setup.members);
  }

  get members(): readonly MemberId[] {
    return this.setup.members;
  }

  /** The bound keys once `keys` has bound them (a catch-up's messages skip an await). */
  get boundKeys(): BoundKeys | undefined {
    return this.bound;
  }

  async keys(crypto: CryptoProvider): Promise<BoundKeys> {
    this.bound ??= await bindKeys(crypto, this.setup.keys);
    return this.bound;
  }

  /** Whether this subsession's data packets are v2, each under its own message key (issue 9 §3). */
  get ratchet(): boolean {
    return this.setup.version !== 1;
  }

  /**
   * A v2 subsession just made: SHA-256(sid ‖ gk) for the data signatures and the sender chains,
   * then the group key is dropped (forward secrecy inside the subsession: a state taken later
   * opens no packet already read). The membership's own copy is left out of its snapshot.
   */
  async startRatchet(crypto: CryptoProvider): Promise<void> {
    if (!this.ratchet || this.chains !== undefined) return;
    const bound = await this.keys(crypto);
    this.chains = await SenderChains.derive(crypto, this.setup.keys.groupKey, this.setup.keys.sessionId, this.members);
    crypto.forgetKeys([this.setup.keys.groupKey]);
    this.dropGroupKey(bound.sidkeyHash);
  }

  /** SHA-256(sid ‖ gk), once the keys are bound (after startRatchet). */
  boundHash(): Uint8Array {
    assert(this.bound !== undefined, 'keys bound before the ratchet started');
    return this.bound.sidkeyHash;
  }

  /** The group key leaves this subsession; SHA-256(sid ‖ gk) stays for the data signatures. */
  dropGroupKey(sidkeyHash: Uint8Array): void {
    const keys = { sessionId: this.setup.keys.sessionId, groupKey: new Uint8Array(0) };
    this.setup = { ...this.setup, keys };
    this.bound = { ...keys, sidkeyHash };
  }

  /** Drops a packet that no longer needs resending, unless it is our latest message. */
  release(id: MessageKey): void {
    if (this.transcript.lastBy(this.self) !== id) this.packets.delete(id);
  }

  /**
   * Whether it may close: an operation replaced it, and everyone who confirmed it has given
   * its last word or left (async-groups rule 14: the shutdown waits only for members who
   * confirmed it).
   */
  lastWordsIn(): boolean {
    if (this.phase.kind !== 'parting' || this.phase.replacedBy === null) return false;
    return [...this.confirmed].every((m) => m === this.self || this.done.has(m) || this.acks.hasDeparted(m));
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

  /** `heldExpiryMs`: how long a message waits for its author's confirmation (the pending expiry). */
  nextDeadlineMs(heldExpiryMs: number): number | undefined {
    const firstHeld = this.held[0];
    const candidates = [this.acks.nextDeadlineMs(), this.pending.nextExpiryMs(), firstHeld === undefined ? undefined : firstHeld.receivedAtMs + heldExpiryMs];
    if (this.phase.kind === 'parting' && this.phase.deadlineMs !== null) candidates.push(this.phase.deadlineMs);
    let next: number | undefined;
    for (const c of candidates) if (c !== undefined && (next === undefined || c < next)) next = c;
    return next;
  }
}
