/**
 * The session's inbound pipeline for data packets (issue 8 §7), one stage after another, each
 * owning its state:
 *
 *   decode (once; ahead of time in a receiveAll page) → duplicate? (message id, before any
 *   crypto) → subsession (SIDKEY_HINT, newest first) → verify + decrypt (BoundKeys; checks
 *   started ahead in a page) → confirmation gate (rule 5: held until the author confirmed) →
 *   transcript (parents, pending buffer) → acceptance: acks (AckMonitor per subsession), the
 *   MessageLog's display order, presence, late-message notices (rule 12).
 *
 * What it owns: the page being processed (`ahead`), the count of packets nobody could read.
 * The Session owns the subsessions, the log and presence, and gives them through `InboundHost`.
 */
import type { ChannelEvent, ChannelPacket } from '../channel.js';
import type { DataPacket } from '../codec/data.js';
import { decodePacket } from '../codec/packet.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { isProtocolError, ProtocolError } from '../errors.js';
import { idKey, type MemberId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import { decryptDataPacketWith, openCheckedDataPacket, openDataPacket, verifyDataPacket, type DataContent } from '../packets/data.js';
import { PROTOCOL_VERSION_2 } from '../codec/constants.js';
import { makeMessageId } from '../packets/ids.js';
import type { PresenceTracker } from '../presence/presence-tracker.js';
import type { AckAction } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import { ingest } from '../transcript/ingest.js';
import type { MessageLog } from '../transcript/message-log.js';
import type { TranscriptMessage } from '../transcript/message.js';
import type { SessionConfig } from './config.js';
import type { SessionEffect } from './effects.js';
import { MAX_HELD_FOR_CONFIRMATION, type Carried, type Subsession } from './subsession.js';

type Out = SessionEffect[];

/** What the pipeline needs from its Session. */
export interface InboundHost {
  readonly self: MemberId;
  readonly crypto: CryptoProvider;
  readonly config: SessionConfig;
  readonly log: MessageLog<MessageBody>;
  subsessions(): Iterable<Subsession>;
  current(): Subsession | undefined;
  presence(): PresenceTracker;
  /** Rule 6: catching up (nothing is sent). */
  quiet(): boolean;
  /** Not left the session. */
  active(): boolean;
  /** Seals and sends under `sub` (an ack here). */
  sendBody(sub: Subsession, body: MessageBody, nowMs: number, out: Out): Promise<MessageKey>;
  /** A replaced subsession may close now that something arrived. */
  checkParting(sub: Subsession, nowMs: number, out: Out): Promise<void>;
}

/** An event of a receiveAll page, decoded ahead, with its first signature check under way. */
interface Ahead {
  readonly packet: DataPacket | undefined;
  /** Its message id (hex), computed ahead. */
  readonly id?: Promise<MessageKey>;
  readonly sub?: Subsession;
  readonly author?: MemberId;
  /** The signing key it was checked with (a confirmation earlier in the page may renew it: issue 9 §3). */
  readonly pub?: Uint8Array;
  /** undefined: the check failed to run (it is done again in order). */
  readonly verdict?: Promise<boolean | undefined>;
}

export { VERIFY_AHEAD } from './config.js';

export class Inbound {
  /** Data packets we could not read, not addressed to us (before our time, or while solo). */
  unreadable = 0;
  /** receiveAll: events decoded, and signature checks started, ahead of processing. */
  private ahead: Map<ChannelEvent, Ahead> | null = null;
  /** Message ids checked ahead in this page (a repeat later in the page is not checked again). */
  private pageIds = new Set<MessageKey>();
  /** Events of the page before this index were already looked at ahead (each is looked at once). */
  private aheadUntil = 0;

  constructor(private readonly host: InboundHost) {}

  /** A receiveAll page starts: events[i + 1, i + 1 + config.verifyAhead) are decoded and checked ahead as it goes. */
  beginPage(): void {
    this.ahead = new Map();
    this.pageIds = new Set();
    this.aheadUntil = 0;
  }

  endPage(): void {
    this.ahead = null;
    this.pageIds = new Set();
    this.aheadUntil = 0;
  }

  /** Event `i` of the page is next: look ahead from it (only at events not looked at yet: O(1) per event). */
  next(events: readonly ChannelEvent[], i: number): void {
    if (this.ahead === null) return;
    const to = Math.min(i + 1 + this.host.config.verifyAhead, events.length);
    this.verifyAhead(events, Math.max(i + 1, this.aheadUntil), to);
    this.aheadUntil = Math.max(this.aheadUntil, to);
  }

  /** Event done: what was kept ahead for it goes. */
  done(event: ChannelEvent): void {
    this.ahead?.delete(event);
  }

  /** The data packet in `event` (decoded ahead in a page), or undefined for anything else. */
  decode(event: ChannelPacket): DataPacket | undefined {
    const ahead = this.ahead?.get(event);
    return ahead !== undefined ? ahead.packet : decodeData(event.text);
  }

  // ── stage: duplicates, subsession, verify/decrypt ──────────────────────────────────────────

  async receiveData(event: ChannelPacket, packet: DataPacket, nowMs: number, out: Out): Promise<void> {
    const crypto = this.host.crypto;
    const ahead = this.ahead?.get(event);
    const id = ahead?.id !== undefined ? await ahead.id : idKey(await makeMessageId(crypto, packet));
    // Duplicates (resends, relay duplicates, our own echo) are recognised before any crypto.
    for (const sub of this.host.subsessions()) {
      if (sub.transcript.has(id) || sub.pending.has(id) || sub.held.some((h) => h.message.id === id)) {
        // Our own packet, handed back by the relay: now we know its place in the order.
        if (event.sender === this.host.self) sub.acks.ordered(id, event.seq, event.atMs);
        await this.applyAcks(sub, sub.acks.duplicate(id, event.sender, nowMs), nowMs, out);
        return;
      }
    }
    // mpENC §5.3: SIDKEY_HINT picks the candidate subsessions; the newest first.
    const candidates = this.candidates(packet);
    // The channel sender is usually the author: tried first in every candidate (two subsessions
    // may share a hint), then the other members (resent packets come from someone else).
    // (Indices, not a new array: this runs for every message of a catch-up.)
    for (let pass = 0; pass < 2; pass++) {
      for (const sub of candidates) {
        const keys = sub.boundKeys ?? (await sub.keys(crypto));
        for (let k = pass === 0 ? -1 : 0; k < (pass === 0 ? 0 : sub.members.length); k++) {
          const author = k < 0 ? event.sender : sub.members[k]!;
          if ((k >= 0 && author === event.sender) || !sub.setup.signingKeys.has(author)) continue;
          let content;
          try {
            // (A check started ahead, receiveAll, for exactly this subsession and author.)
            // Only its `true` stands: a `false` there is the provider's first answer (checkAhead).
            const verdict = ahead !== undefined && ahead.sub === sub && ahead.author === author && ahead.pub === sub.setup.signingKeys.get(author) && (await ahead.verdict) === true ? true : undefined;
            if (sub.chains === undefined && !sub.ratchet) {
              content = verdict === undefined ? await openDataPacket(crypto, packet, keys, sub.setup.signingKeys.get(author)!) : await openCheckedDataPacket(crypto, packet, keys, verdict);
              refusePublished(sub, author);
            } else {
              const verified = verdict ?? (await verifyDataPacket(crypto, packet, keys, sub.setup.signingKeys.get(author)!));
              if (!verified) continue;
              refusePublished(sub, author);
              content = await this.openChained(sub, author, packet);
            }
          } catch (e) {
            if (!isProtocolError(e)) throw e;
            if (e.code === 'bad-signature') continue;
            // It verified, so its author sealed bad plaintext: a broken or malicious member.
            out.push({ kind: 'warn', warning: { kind: 'rejected', sender: event.sender, code: e.code, detail: e.message } });
            return;
          }
          const message = { id, author, parents: content.parents.map(idKey), body: content.body };
          const later = this.verified(sub, message, { text: event.text, seq: event.seq, sender: event.sender, atMs: event.atMs ?? nowMs }, event, nowMs, out);
          if (later !== undefined) await later;
          // Issue 9 §3: once the message is accepted, its key goes. One that waits (for parents, or
          // for its author's confirmation) keeps its key until accepted: if it is dropped while
          // waiting, a copy of the packet opens again. One we dropped at once keeps it too.
          if (sub.chains !== undefined && packet.chainIndex !== undefined) {
            if (sub.transcript.has(id)) this.useKey(sub, author, packet.chainIndex);
            else if (sub.pending.has(id) || sub.held.some((h) => h.message.id === id)) {
              sub.openKeys.set(id, [author, packet.chainIndex]);
              // Bounded by what may wait (entries of messages dropped while waiting go oldest first).
              if (sub.openKeys.size > MAX_HELD_FOR_CONFIRMATION + this.host.config.maxPendingMessages) sub.openKeys.delete(sub.openKeys.keys().next().value!);
            }
          }
          return;
        }
      }
    }
    this.unverifiable(event, out);
  }

  /**
   * Issue 9 §3: a verified v2 packet, under its author's message key for its CHAIN_INDEX. The
   * key stays in the chain state until the message is kept (`keptOrConsume`): a packet opened
   * and then dropped may come again. A v1 packet here, or an index whose key is gone (the author
   * signed two packets with one index, or it was dropped beyond MAX_SKIPPED_MESSAGE_KEYS), is
   * refused. A packet whose plaintext is bad uses its key up.
   */
  private async openChained(sub: Subsession, author: MemberId, packet: DataPacket): Promise<DataContent> {
    const crypto = this.host.crypto;
    if (sub.chains === undefined) await sub.startRatchet(crypto);
    if (packet.version !== PROTOCOL_VERSION_2 || packet.chainIndex === undefined) throw new ProtocolError('bad-record', 'a v1 data packet in a v2 subsession');
    const key = sub.chains!.keyNow(author, packet.chainIndex);
    if (key === undefined) throw new ProtocolError('replay', `message key ${packet.chainIndex} of ${author} is used or gone`);
    try {
      return await decryptDataPacketWith(crypto, packet, key, true);
    } catch (e) {
      this.useKey(sub, author, packet.chainIndex);
      throw e;
    }
  }

  /** The message key of a v2 packet whose message we now hold (or that was bad): deleted, wiped. */
  private useKey(sub: Subsession, author: MemberId, index: number): void {
    if (sub.chains === undefined) return;
    const key = sub.chains.consume(author, index);
    if (key === undefined) return;
    // (No forgetKeys: a message key is only ever used with aesCtr's `oneUse`, so the provider
    // kept nothing of it. That lookup cost a hex string and a map probe per kind per message.)
    key.fill(0);
  }

  private isDuplicate(id: MessageKey): boolean {
    for (const sub of this.host.subsessions()) if (sub.transcript.has(id) || sub.pending.has(id) || sub.held.some((h) => h.message.id === id)) return true;
    return false;
  }

  /**
   * mpENC §5.3: SIDKEY_HINT picks the candidate subsessions; the newest first. Not those we
   * started over from (rule 11: their secrets are dropped; what comes there we could not place
   * anyway, its history being what we missed).
   */
  private candidates(packet: DataPacket): Subsession[] {
    const out: Subsession[] = [];
    for (const s of this.host.subsessions()) if (s.hint === packet.sidkeyHint && !(s.phase.kind === 'closed' && s.phase.missedEvents === true)) out.push(s);
    return out.length > 1 ? out.sort((a, b) => b.index - a.index) : out;
  }

  /** receiveAll: decodes events[from, to) and starts the signature check the sequential path tries first. */
  private verifyAhead(events: readonly ChannelEvent[], from: number, to: number): void {
    const ahead = this.ahead!;
    const crypto = this.host.crypto;
    for (let j = from; j < Math.min(to, events.length); j++) {
      const event = events[j]!;
      if (event.kind !== 'packet' || ahead.has(event)) continue;
      const packet = decodeData(event.text);
      if (packet === undefined) {
        ahead.set(event, { packet });
        continue;
      }
      const id = makeMessageId(crypto, packet).then(idKey);
      const sub = this.candidates(packet)[0];
      const pub = sub?.setup.signingKeys.get(event.sender);
      if (sub === undefined || pub === undefined) {
        ahead.set(event, { packet, id });
        continue;
      }
      // No check for a duplicate (a resend of what we hold, or of a packet earlier in the page):
      // in order it is recognised before any crypto, and catch-up stays one check per message.
      // A check that throws (never for well-formed inputs) is simply done again in order.
      ahead.set(event, { packet, id, sub, author: event.sender, pub, verdict: this.checkAhead(id, packet, sub, pub) });
    }
  }

  /** verifyAhead's check of one packet (one async function: no chain of promises per message). */
  private async checkAhead(id: Promise<MessageKey>, packet: DataPacket, sub: Subsession, pub: Uint8Array): Promise<boolean | undefined> {
    const seen = this.pageIds;
    try {
      const key = await id;
      if (seen.has(key) || this.isDuplicate(key)) return undefined;
      seen.add(key);
      // The provider's first answer: a `false` is checked again in order (and is often moot: the
      // author's key renewed before the packet's turn), so the hybrid's noble re-check is not paid here.
      return await verifyDataPacket(this.host.crypto, packet, sub.boundKeys ?? (await sub.keys(this.host.crypto)), pub, true);
    } catch {
      return undefined;
    }
  }

  /**
   * Rule 12: a data packet that verifies under no subsession we hold. If its sender had confirmed
   * our current subsession (its confirmation packet reached us first, or it contributed to it
   * without initiating it), it has processed the operation that made it and posts nothing under
   * an older one (rule 7: it seals under none; it resends only in the subsession it seals under),
   * and any newer one would have been made by an operation ordered before this packet, which we
   * would have seen: a packet of it that we cannot verify is forged, altered, or sealed in a fork
   * of the order, and we say so. Anything else is traffic we are not part of (before our time, in
   * a subsession we were excluded from, or while we are solo): we cannot read it and need not.
   */
  private unverifiable(event: ChannelPacket, out: Out): void {
    const sender = event.sender;
    const cur = this.host.current();
    const settled =
      cur !== undefined &&
      (cur.confirmedByPacket.has(sender) || (cur.setup.initiator !== undefined && cur.setup.initiator !== sender && (cur.setup.confirmed?.includes(sender) ?? false)));
    if (settled) {
      out.push({ kind: 'warn', warning: { kind: 'fork', sender, seq: event.seq } });
      return;
    }
    this.unreadable += 1;
    out.push({ kind: 'notice', notice: { kind: 'unreadable-dropped', sender } });
  }

  // ── stage: confirmation gate (rule 5) ─────────────────────────────────────────────────────

  /**
   * The stages from here on return undefined when they finished synchronously (the usual case in
   * a catch-up: nothing to send), else the promise of the rest: one promise per message fewer at
   * each stage (issue 8). Either way their effects are complete, in order, when it settles.
   */
  verified(sub: Subsession, message: TranscriptMessage<MessageBody>, carried: Carried, event: ChannelPacket, nowMs: number, out: Out): Promise<void> | undefined {
    const author = message.author;
    if (author !== this.host.self && !sub.confirmed.has(author)) {
      // Rule 5: a member's data in a subsession is accepted only after its confirmation, which
      // precedes it in the relay's order; hold it meanwhile (bounded).
      if (sub.held.length >= MAX_HELD_FOR_CONFIRMATION) {
        out.push({ kind: 'warn', warning: { kind: 'dropped', sender: event.sender, reason: 'too many messages wait for their author\'s confirmation' } });
        return;
      }
      sub.held.push({ message, carried, sender: event.sender, receivedAtMs: nowMs });
      return undefined;
    }
    return this.offer(sub, message, carried, event.sender, event.atMs ?? nowMs, nowMs, out);
  }

  async releaseHeld(sub: Subsession, member: MemberId, nowMs: number, out: Out): Promise<void> {
    const mine = sub.held.filter((h) => h.message.author === member);
    if (mine.length === 0) return;
    sub.held = sub.held.filter((h) => h.message.author !== member);
    for (const h of mine) await this.offer(sub, h.message, h.carried, h.sender, nowMs, nowMs, out);
  }

  expireHeld(sub: Subsession, nowMs: number, out: Out): void {
    const expired = sub.held.filter((h) => nowMs - h.receivedAtMs >= this.host.config.pendingExpiryMs);
    if (expired.length === 0) return;
    sub.held = sub.held.filter((h) => nowMs - h.receivedAtMs < this.host.config.pendingExpiryMs);
    for (const h of expired) out.push({ kind: 'warn', warning: { kind: 'unconfirmed-author', author: h.message.author, subsession: sub.index } });
  }

  // ── stage: transcript ──────────────────────────────────────────────────────────────────────

  offer(sub: Subsession, message: TranscriptMessage<MessageBody>, carried: Carried, sender: MemberId, atMs: number, nowMs: number, out: Out): Promise<void> | undefined {
    if (sub.phase.kind === 'closed' && !sub.transcript.has(message.id) && message.parents.some((p) => !sub.transcript.has(p))) {
      // A closed subsession still shows a late message (rule 12), but nothing waits there any
      // more: its parents, which the relay orders first, never came to us.
      this.unreadable += 1;
      out.push({ kind: 'notice', notice: { kind: 'unreadable-dropped', sender } });
      return undefined;
    }
    const result = ingest(sub.transcript, sub.pending, { message, extra: carried, receivedAtMs: nowMs });
    if (result.duplicate) return this.applyAcks(sub, sub.acks.duplicate(message.id, sender, nowMs), nowMs, out);
    for (const { item, error } of result.rejected) {
      out.push({ kind: 'warn', warning: { kind: 'rejected', sender: item.message.author, code: error.code, detail: error.message } });
    }
    const accepted = result.accepted;
    for (let i = 0; i < accepted.length; i++) {
      const later = this.onAccepted(sub, accepted[i]!.message, accepted[i]!.extra, atMs, nowMs, out);
      // The rest waits for this one's asynchronous part, as it would have with an await each.
      if (later !== undefined) return this.acceptRest(later, sub, accepted, i + 1, atMs, nowMs, out);
    }
    return undefined;
  }

  private async acceptRest(
    pending: Promise<void>,
    sub: Subsession,
    accepted: readonly { readonly message: TranscriptMessage<MessageBody>; readonly extra: Carried }[],
    from: number,
    atMs: number,
    nowMs: number,
    out: Out,
  ): Promise<void> {
    await pending;
    for (let i = from; i < accepted.length; i++) await this.onAccepted(sub, accepted[i]!.message, accepted[i]!.extra, atMs, nowMs, out);
  }

  // ── stage: acks, presence, log ─────────────────────────────────────────────────────────────

  private onAccepted(sub: Subsession, message: TranscriptMessage<MessageBody>, carried: Carried, atMs: number, nowMs: number, out: Out): Promise<void> | undefined {
    const { id, author, body } = message;
    const waited = sub.openKeys.get(id);
    if (waited !== undefined) {
      sub.openKeys.delete(id);
      this.useKey(sub, waited[0], waited[1]);
    }
    const position = this.host.log.accepted(sub.index, id);
    const actions = sub.acks.accepted(id, nowMs, carried.seq, carried.atMs);
    // Keep the packet texts someone may need again: those some reader lacks (resends, rule 5 of
    // AckMonitor), and our latest message (re-acks, rule 6).
    if (author === this.host.self) {
      const line = sub.transcript.byAuthor(this.host.self);
      const previousOwn = line[line.length - 2];
      if (previousOwn !== undefined && !sub.acks.isWatched(previousOwn)) sub.packets.delete(previousOwn);
    } else this.host.presence().seen(author, atMs);
    if (author === this.host.self || sub.acks.isWatched(id)) sub.packets.set(id, carried.text);
    if (body.type === 'payload' && position !== undefined) {
      out.push({
        kind: 'deliver',
        message: { id, author, text: body.text, subsession: sub.index, position, hiddenParents: this.host.log.hasHiddenParents(id, position), atMs: carried.atMs },
      });
      out.push({ kind: 'status', id, status: sub.acks.status(id) });
    }
    if (author !== this.host.self && sub.phase.kind !== 'active' && (sub.phase.kind === 'closed' || sub.phase.replacedBy !== null)) {
      this.lateMessage(sub, message, carried.sender === author, out);
    }
    if (body.type === 'consistency' && body.close && author !== this.host.self) {
      out.push({ kind: 'notice', notice: { kind: 'member-parting', subsession: sub.index, member: author } });
    }
    // (Asynchronous only when there is something to do: this runs for every message of a catch-up.)
    if (actions.length > 0) return this.acksThenParting(sub, actions, nowMs, out);
    if (sub.phase.kind === 'parting') return this.host.checkParting(sub, nowMs, out);
    return undefined;
  }

  private async acksThenParting(sub: Subsession, actions: readonly AckAction[], nowMs: number, out: Out): Promise<void> {
    await this.applyAcks(sub, actions, nowMs, out);
    if (sub.phase.kind === 'parting') await this.host.checkParting(sub, nowMs, out);
  }

  /**
   * Rule 12: a message under a subsession that an operation replaced, from its author's view
   * before it saw the change. If the author had already confirmed a later subsession, it sealed
   * after moving on (rule 7 broken, or a replay): an alarm.
   */
  private lateMessage(sub: Subsession, message: TranscriptMessage<MessageBody>, fromAuthor: boolean, out: Out): void {
    const later = [...this.host.subsessions()].filter((s) => s.index > sub.index);
    // (A packet resent by another member proves nothing about its author's view.)
    if (fromAuthor && later.some((s) => s.confirmedByPacket.has(message.author))) {
      out.push({ kind: 'warn', warning: { kind: 'sealed-after-moving-on', author: message.author, subsession: sub.index } });
      return;
    }
    const replacedBy = sub.phase.kind === 'parting' && sub.phase.replacedBy !== null ? sub.phase.replacedBy : (later[0]?.index ?? sub.index);
    out.push({ kind: 'notice', notice: { kind: 'late-message', id: message.id, author: message.author, subsession: sub.index, replacedBy } });
  }

  async applyAcks(sub: Subsession, actions: readonly AckAction[], nowMs: number, out: Out): Promise<void> {
    for (const action of actions) {
      switch (action.kind) {
        case 'send-ack':
          // Acks go only into the subsession we seal under (rule 7), never while catching up (rule 6).
          if (sub.phase.kind === 'active' && this.host.active() && !this.host.quiet()) {
            await this.host.sendBody(sub, { type: 'explicit-ack', manual: false }, nowMs, out);
          }
          break;
        case 'resend':
          // A packet sealed before, posted again: no new plaintext reaches anyone new. Only in
          // the subsession we seal under: nobody outside it is shown its packets (rule 12).
          if (!this.host.quiet() && sub.phase.kind === 'active') for (const text of sub.resendPackets(action.id, action.to)) out.push({ kind: 'send', text });
          break;
        case 'not-fully-acked':
          if (sub.phase.kind === 'closed' && sub.phase.missedEvents === true) break;
          out.push({ kind: 'warn', warning: { kind: 'not-fully-acked', id: action.id, missing: action.missing } });
          if (this.host.log.has(action.id)) out.push({ kind: 'status', id: action.id, status: 'late' });
          break;
        case 'fully-acked':
          sub.release(action.id);
          if (action.needed && this.host.log.has(action.id)) out.push({ kind: 'status', id: action.id, status: 'fully-acked' });
          break;
      }
    }
  }
}

/**
 * Deniability (mpENC §6.1.1): a packet under a signing key its owner published proves nothing
 * about its author; one that arrives after the publication is refused (code 'key-published').
 * Its message key stays: nothing was opened.
 */
function refusePublished(sub: Subsession, author: MemberId): void {
  if (sub.published.has(author)) throw new ProtocolError('key-published', `${author} published its signing key of this subsession`);
}

function decodeData(text: string): DataPacket | undefined {
  try {
    const packet = decodePacket(text);
    return packet.kind === 'data' ? packet : undefined;
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return undefined;
  }
}
