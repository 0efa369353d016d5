/**
 * People (issue 10 §5): contacts, contact requests, invitations and the personal inbox.
 *
 * Trust on first use: a contact added from a card (or accepted from a request) is 'unverified';
 * comparing the safety number or scanning their code makes it 'verified'. A contact is the same
 * person as long as their card names the same inbox (relay + inbox id): a card for that inbox with
 * another identity key is a key change, a loud warning that holds sending until accepted.
 *
 * Inbox messages are processed one at a time; each either changes records (in one transaction,
 * with its replay id) or is refused with an alert that says why, changing nothing else.
 */
import { base64UrlDecode, base64UrlEncode, hexEncode, utf8Encode } from '../protocol/bytes.js';
import type { CapabilityToken, ChannelId, MemberKey, RelayEvent } from '../shared/relay-api.js';
import {
  MAX_DISPLAY_NAME_CHARS,
  WorkerError,
  type CardPreview,
  type ContactId,
  type ConversationKind,
  type InvitationId,
  type InviteLinkPreview,
  type RequestId,
} from '../shared/worker-api.js';
import type { Batch } from '../store/client-store.js';
import {
  badLink,
  checkKey,
  checkRelayUrl,
  checkToken,
  cleanName,
  makeCard,
  parseLinkText,
  verifyBinding,
  verifyCard,
  verifyInviteLinkPayload,
  type Binding,
  type Card,
} from './cards.js';
import type { ClientStore } from '../store/client-store.js';
import type { FetchTokenRecord } from '../shared/client-db.js';
import type { ConversationRuntime } from './conversation.js';
import type { ClientDeps } from './deps.js';
import type { ProfileRecord } from './records.js';
import type { RelayLink } from './relays.js';
import { DEPOSIT_RENEW_MS, DEPOSIT_TTL_MS, DEPOSIT_USES } from './limits.js';
import { DEPOSITS_KEY, type ContactRecord, type InvitationBody, type InvitationRecord, type PendingDeposit, type RequestRecord } from './records.js';
import { RelayClientError, type RelaySigner } from './relay-client.js';
import { memberSigner } from './relay-signer.js';
import { safetyNumber } from './safety-number.js';
import { inboxKeyPair, InboxRejected, openInboxMessage, sealInboxMessage, type InboxMessageType } from './sealed-message.js';
import { MAX_GROUP_NAME_CHARS } from '../shared/worker-api.js';

/** Requests and invitations kept waiting for an answer (bounded: a spammer cannot fill the store). */
export const MAX_PENDING_REQUESTS = 200;
/** Deposits waiting for the network. */
const MAX_PENDING_DEPOSITS = 500;
/** Bindings an invitation may list (MAX_GROUP_MEMBERS). */
const MAX_INVITATION_MEMBERS = 128;

/** What People needs of the engine (an interface, so the two files do not import each other). */
export interface PeopleHost {
  readonly deps: ClientDeps;
  readonly store: ClientStore;
  profile: ProfileRecord | null;
  readonly identitySeed: Uint8Array | null;
  readonly sink: { invalidate(scope: 'app' | 'contacts' | 'conversations'): void };
  readonly conversations: ReadonlyMap<string, ConversationRuntime>;
  relay(url: string): RelayLink;
  alert(tone: 'info' | 'warning' | 'danger', text: string, whatToDo: string | null): void;
  inboxRun<T>(fn: () => Promise<T>): Promise<T>;
  saveProfile(change: Partial<ProfileRecord>): Promise<void>;
  inboxToken: FetchTokenRecord | null;
  renewFetchToken(relay: string, channel: ChannelId, signer: RelaySigner, current: FetchTokenRecord | null, afterSeq: number, set: (t: FetchTokenRecord) => void): Promise<void>;
  acceptInvitation(id: InvitationId): Promise<ConversationRuntime>;
}
type CoveyEngine = PeopleHost;

const randomId = (engine: CoveyEngine, prefix: string) => `${prefix}${base64UrlEncode(engine.deps.crypto.randomBytes(12))}`;

export class People {
  readonly contacts = new Map<ContactId, ContactRecord>();
  readonly requests = new Map<RequestId, RequestRecord>();
  readonly invitations = new Map<InvitationId, InvitationRecord>();
  private deposits: PendingDeposit[] = [];
  private keyPair: CryptoKeyPair | null = null;
  private flushing = false;

  constructor(private readonly engine: CoveyEngine) {}

  async load(): Promise<void> {
    const store = this.engine.store;
    // Side by side: each read is a round trip to IndexedDB's thread (a cold start waits for them).
    const [contacts, requests, invitations, deposits, inbox] = await Promise.all([
      store.all<ContactRecord>('contacts'),
      store.all<RequestRecord>('requests'),
      store.all<InvitationRecord>('invitations'),
      store.get<PendingDeposit[]>('profile', DEPOSITS_KEY),
      inboxKeyPair(base64UrlDecode(this.engine.profile!.inbox.hpkeSeed)),
    ]);
    for (const [id, c] of contacts) this.contacts.set(id as ContactId, c);
    for (const [id, r] of requests) this.requests.set(id as RequestId, r);
    for (const [id, i] of invitations) this.invitations.set(id as InvitationId, i);
    this.deposits = deposits ?? [];
    this.keyPair = inbox.keyPair;
  }

  async inboxPublicKey(seed: Uint8Array): Promise<string> {
    return (await inboxKeyPair(seed)).publicKey;
  }

  private get me() {
    return this.engine.profile!;
  }

  ownerSigner(): Promise<RelaySigner> {
    return this.owner();
  }

  private async owner(): Promise<RelaySigner> {
    const crypto = this.engine.deps.crypto;
    const seed = base64UrlDecode(this.me.inbox.ownerSeed);
    return memberSigner(crypto, seed, base64UrlEncode(await crypto.ed25519PublicKey(seed)) as MemberKey);
  }

  watchInbox(): void {
    void this.owner().then((owner) => {
      this.engine.relay(this.me.homeRelay).watch(this.me.inbox.channel, this.me.inbox.lastSeq, owner);
      void this.engine.renewFetchToken(this.me.homeRelay, this.me.inbox.channel, owner, this.engine.inboxToken, this.me.inbox.lastSeq, (t) => (this.engine.inboxToken = t));
    });
  }

  // ── lookups ──────────────────────────────────────────────────────────────────────────────

  displayName(contact: ContactRecord): string {
    return contact.nickname ?? contact.card.name;
  }

  contact(id: unknown): ContactRecord {
    const contact = typeof id === 'string' ? this.contacts.get(id as ContactId) : undefined;
    if (contact === undefined) throw new WorkerError('not-found', 'There is no such contact.');
    return contact;
  }

  /** The contact with this identity key (current, or the changed one waiting for acceptance). */
  contactByIk(ik: string): ContactRecord | undefined {
    for (const c of this.contacts.values()) if (c.card.ik === ik || c.changedCard?.ik === ik) return c;
    return undefined;
  }

  private contactByInbox(card: Card): ContactRecord | undefined {
    for (const c of this.contacts.values()) if (c.card.relay === card.relay && c.card.inbox === card.inbox) return c;
    return undefined;
  }

  invitation(id: unknown): InvitationRecord {
    const inv = typeof id === 'string' ? this.invitations.get(id as InvitationId) : undefined;
    if (inv === undefined) throw new WorkerError('not-found', 'There is no such invitation.');
    return inv;
  }

  request(id: unknown): RequestRecord {
    const r = typeof id === 'string' ? this.requests.get(id as RequestId) : undefined;
    if (r === undefined) throw new WorkerError('not-found', 'There is no such contact request.');
    return r;
  }

  async safety(ik: string): Promise<string> {
    return safetyNumber(this.engine.deps.crypto, this.me.identityKey, ik);
  }

  // ── persistence ──────────────────────────────────────────────────────────────────────────

  async saveContact(contact: ContactRecord, batch = this.engine.store.batch()): Promise<void> {
    batch.put('contacts', contact.id, contact);
    await this.engine.store.commit(batch);
    this.contacts.set(contact.id, contact);
    this.engine.sink.invalidate('contacts');
    this.engine.sink.invalidate('conversations');
  }

  async dropInvitation(id: InvitationId): Promise<void> {
    await this.engine.store.commit(this.engine.store.batch().delete('invitations', id));
    this.forgetInvitation(id);
  }

  forgetInvitation(id: InvitationId): void {
    this.invitations.delete(id);
    this.engine.sink.invalidate('conversations');
    this.engine.sink.invalidate('app');
  }

  // ── links ────────────────────────────────────────────────────────────────────────────────

  async preview(text: unknown): Promise<CardPreview | InviteLinkPreview> {
    const parsed = parseLinkText(text);
    if (parsed.kind === 'c') {
      const card = await verifyCard(this.engine.deps.crypto, parsed.value);
      const existing = this.contactByIk(card.ik) ?? this.contactByInbox(card);
      return { kind: 'contact', name: card.name, safetyNumber: await this.safety(card.ik), relay: card.relay, existingContactId: existing?.id ?? null, isSelf: card.ik === this.me.identityKey };
    }
    const invite = await verifyInviteLinkPayload(this.engine.deps.crypto, parsed.value);
    return { kind: 'invite', groupName: invite.name, inviterName: invite.by.name, relay: invite.relay, expiresAtMs: invite.exp };
  }

  /** Adds the person of a card link and sends them a contact request. */
  async addContact(link: unknown): Promise<ContactId> {
    const parsed = parseLinkText(link);
    if (parsed.kind !== 'c') throw badLink('that is an invite link, not a contact card: open it as an invitation');
    const card = await verifyCard(this.engine.deps.crypto, parsed.value);
    if (card.ik === this.me.identityKey) throw new WorkerError('own-card', 'That is your own card.');
    // They asked first (both added each other): adding them answers their request.
    const theirs = [...this.requests.values()].find((r) => r.card.ik === card.ik);
    if (theirs !== undefined) return this.acceptRequest(theirs.id);
    const known = this.contactByIk(card.ik);
    if (known !== undefined) {
      if (known.card.ik === card.ik && card.exp > known.card.exp) await this.saveContact({ ...known, card });
      return known.id;
    }
    const sameInbox = this.contactByInbox(card);
    if (sameInbox !== undefined) {
      await this.keyChanged(sameInbox, card);
      return sameInbox.id;
    }
    const contact: ContactRecord = {
      id: randomId(this.engine, 'p') as ContactId,
      card,
      nickname: null,
      verification: 'unverified',
      state: 'requested',
      changedCard: null,
      keyChangedAtMs: null,
      directConversationId: null,
      addedAtMs: this.engine.deps.now(),
    };
    await this.saveContact(contact);
    await this.sendToInbox(card, 'contact-request', {}, `your contact request to ${card.name}`);
    return contact.id;
  }

  private async keyChanged(contact: ContactRecord, card: Card, batch?: Batch): Promise<void> {
    if (contact.changedCard?.ik === card.ik) return;
    await this.saveContact({ ...contact, changedCard: card, verification: 'key-changed', keyChangedAtMs: this.engine.deps.now() }, batch);
    this.engine.alert(
      'danger',
      `${this.displayName(contact)}'s security key changed`,
      `Sending to ${this.displayName(contact)} is held. If they reinstalled Covey, compare the new safety number with them, then accept the new key. If not, someone may be impersonating them.`,
    );
  }

  // ── contact state changes ────────────────────────────────────────────────────────────────

  async acceptRequest(id: RequestId): Promise<ContactId> {
    const request = this.request(id);
    const card = request.card;
    const batch = this.engine.store.batch().delete('requests', id);
    let contact = this.contactByIk(card.ik);
    if (contact === undefined) {
      contact = {
        id: randomId(this.engine, 'p') as ContactId,
        card,
        nickname: null,
        verification: 'unverified',
        state: 'connected',
        changedCard: null,
        keyChangedAtMs: null,
        directConversationId: null,
        addedAtMs: this.engine.deps.now(),
      };
    } else contact = { ...contact, state: 'connected', card: contact.card.ik === card.ik ? card : contact.card };
    await this.saveContact(contact, batch);
    this.requests.delete(id);
    this.engine.sink.invalidate('app');
    await this.sendToInbox(card, 'contact-accept', {}, `your answer to ${card.name}`);
    return contact.id;
  }

  async declineRequest(id: RequestId): Promise<void> {
    this.request(id);
    await this.engine.store.commit(this.engine.store.batch().delete('requests', id));
    this.requests.delete(id);
    this.engine.sink.invalidate('contacts');
    this.engine.sink.invalidate('app');
  }

  async verify(id: ContactId): Promise<void> {
    const contact = this.contact(id);
    if (contact.verification === 'key-changed') throw new WorkerError('invalid-state', 'Their key changed: accept the new key first, then verify it.');
    await this.saveContact({ ...contact, verification: 'verified' });
  }

  async verifyByQr(id: ContactId, scanned: unknown): Promise<void> {
    const contact = this.contact(id);
    const parsed = parseLinkText(scanned);
    if (parsed.kind !== 'c') throw badLink('that code is not a contact card');
    const card = await verifyCard(this.engine.deps.crypto, parsed.value);
    if (card.ik === contact.changedCard?.ik) {
      // Scanning the new key in person is the strongest acceptance there is.
      await this.saveContact({ ...contact, card, changedCard: null, keyChangedAtMs: null, verification: 'verified' });
      return;
    }
    if (card.ik !== contact.card.ik) {
      throw new WorkerError('key-mismatch', `That code holds a different key than the one you have for ${this.displayName(contact)}. It is someone else's code, or someone is impersonating them.`);
    }
    await this.saveContact({ ...contact, verification: 'verified' });
  }

  async unverify(id: ContactId): Promise<void> {
    const contact = this.contact(id);
    if (contact.verification === 'verified') await this.saveContact({ ...contact, verification: 'unverified' });
  }

  async acceptKeyChange(id: ContactId): Promise<void> {
    const contact = this.contact(id);
    if (contact.changedCard === null) return;
    await this.saveContact({ ...contact, card: contact.changedCard, changedCard: null, keyChangedAtMs: null, verification: 'unverified' });
    for (const c of this.engine.conversations.values()) void c.run('key-accepted', () => c.followUps()).catch(() => undefined);
  }

  async rename(id: ContactId, name: unknown): Promise<void> {
    const contact = this.contact(id);
    await this.saveContact({ ...contact, nickname: cleanName(name, MAX_DISPLAY_NAME_CHARS, 'The name', (m) => new WorkerError('bad-request', m)) });
  }

  async remove(id: ContactId): Promise<void> {
    this.contact(id);
    await this.engine.store.commit(this.engine.store.batch().delete('contacts', id));
    this.contacts.delete(id);
    this.engine.sink.invalidate('contacts');
    this.engine.sink.invalidate('conversations');
  }

  // ── invite links ─────────────────────────────────────────────────────────────────────────

  /** Opening an invite link makes an invitation (nothing is sent until it is accepted). */
  async openInviteLink(link: unknown): Promise<InvitationId> {
    const parsed = parseLinkText(link);
    if (parsed.kind !== 'i') throw badLink('that is a contact card, not an invite link: add it as a contact');
    const payload = await verifyInviteLinkPayload(this.engine.deps.crypto, parsed.value);
    if (payload.exp < this.engine.deps.now()) throw new WorkerError('expired', 'This invite link has expired. Ask for a new one.');
    for (const inv of this.invitations.values()) if (inv.body.id === payload.id) return inv.id;
    const record: InvitationRecord = {
      id: randomId(this.engine, 'v') as InvitationId,
      via: 'link',
      body: { kind: payload.kind, relay: payload.relay, ch: payload.ch, cap: payload.cap, jk: payload.jk, id: payload.id, name: payload.name, exp: payload.exp, members: [] },
      inviter: { name: payload.by.name, ik: payload.by.ik, card: null },
      receivedAtMs: this.engine.deps.now(),
    };
    await this.engine.store.commit(this.engine.store.batch().put('invitations', record.id, record));
    this.invitations.set(record.id, record);
    this.engine.sink.invalidate('conversations');
    this.engine.sink.invalidate('app');
    return record.id;
  }

  // ── sending to inboxes ───────────────────────────────────────────────────────────────────

  /** Seals a message to `card`'s inbox and deposits it (or keeps it to retry while offline). */
  async sendToInbox(card: Card, type: InboxMessageType, body: unknown, what: string): Promise<void> {
    const engine = this.engine;
    const message = { v: 1 as const, type, mid: base64UrlEncode(engine.deps.crypto.randomBytes(16)), at: engine.deps.now(), to: card.ik, from: this.me.card, body };
    const packet = await sealInboxMessage(engine.deps.crypto, engine.identitySeed!, card.hk, message);
    const deposit: PendingDeposit = {
      id: message.mid,
      relay: card.relay,
      inbox: card.inbox,
      capability: card.deposit,
      packet: base64UrlEncode(packet),
      queuedAtMs: engine.deps.now(),
      attempts: 0,
      what,
    };
    this.deposits = [...this.deposits, deposit].slice(-MAX_PENDING_DEPOSITS);
    await engine.store.commit(engine.store.batch().put('profile', DEPOSITS_KEY, this.deposits));
    await this.flushDeposits();
  }

  async flushDeposits(): Promise<void> {
    if (this.flushing || this.deposits.length === 0) return;
    this.flushing = true;
    try {
      for (const d of [...this.deposits]) {
        let done = true;
        try {
          await this.engine.relay(d.relay).client.deposit(d.inbox, d.capability, base64UrlDecode(d.packet));
        } catch (error) {
          if (error instanceof RelayClientError && error.status < 500 && error.status !== 429) {
            this.engine.alert('warning', `Could not deliver ${d.what}: the relay refused (${error.code})`, 'Their link may have expired: ask them for a new one.');
          } else {
            done = false;
            const link = this.engine.relay(d.relay);
            if (error instanceof RelayClientError) link.reportFailure(`Cannot reach ${d.relay}`);
            else link.reportUnreachable(`Cannot reach ${d.relay}`);
          }
        }
        if (done) {
          this.deposits = this.deposits.filter((x) => x.id !== d.id);
          await this.engine.store.commit(this.engine.store.batch().put('profile', DEPOSITS_KEY, this.deposits));
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  pendingDeposits(): number {
    return this.deposits.length;
  }

  /** Renews the card's deposit capability before it expires (the relay caps it at 30 days). */
  async renewCardIfDue(): Promise<void> {
    const p = this.me;
    if (p.inbox.depositExpiresAtMs - this.engine.deps.now() > DEPOSIT_RENEW_MS) return;
    try {
      const owner = await this.owner();
      const cap = await this.engine.relay(p.homeRelay).client.createCapability(p.inbox.channel, { kind: 'deposit', ttlMs: DEPOSIT_TTL_MS, uses: DEPOSIT_USES }, owner);
      const card = await makeCard(this.engine.deps.crypto, this.engine.identitySeed!, { name: p.displayName, hk: p.card.hk, relay: p.homeRelay, inbox: p.inbox.channel, deposit: cap.capability, exp: cap.expiresAtMs });
      await this.engine.saveProfile({ card, inbox: { ...p.inbox, deposit: cap.capability, depositExpiresAtMs: cap.expiresAtMs } });
      // Contacts hold the old capability: send them the new card (an acceptance carries it; a
      // newer card for the same key replaces the old one), so they can still invite us.
      for (const contact of this.contacts.values()) {
        if (contact.state === 'connected' && contact.verification !== 'key-changed') {
          void this.sendToInbox(contact.card, 'contact-accept', {}, `your renewed card to ${this.displayName(contact)}`).catch(() => undefined);
        }
      }
    } catch {
      // Offline: the old card keeps working until it expires; tried again on the next start.
    }
  }

  // ── receiving ────────────────────────────────────────────────────────────────────────────

  receiveInbox(event: RelayEvent, prepare?: (batch: Batch) => void): Promise<void> {
    return this.engine.inboxRun(async () => {
      const inbox = this.me.inbox;
      if (event.seq <= inbox.lastSeq) {
        if (prepare !== undefined) {
          const drop = this.engine.store.batch();
          prepare(drop);
          await this.engine.store.commit(drop);
        }
        return;
      }
      const batch = this.engine.store.batch();
      prepare?.(batch);
      const after: (() => Promise<void>)[] = [];
      if (event.type === 'packet') {
        try {
          await this.handle(base64UrlDecode(event.packet), batch, after);
        } catch (error) {
          if (!(error instanceof WorkerError)) throw error;
          this.engine.alert('danger', `A message to your inbox was refused: ${error.message}`, 'Nothing was changed. If it repeats, someone may be trying to trick you.');
        }
      }
      const profile = { ...this.me, inbox: { ...inbox, lastSeq: event.seq } };
      batch.put('profile', 'me', profile);
      const token = this.engine.inboxToken;
      if (token !== null) {
        this.engine.inboxToken = { ...token, afterSeq: event.seq };
        batch.putTransit('fetchTokens', this.engine.inboxToken);
      }
      await this.engine.store.commit(batch);
      this.engine.profile = profile;
      for (const fn of after) await fn().catch((e: unknown) => this.engine.deps.log?.('warn', `inbox follow-up failed: ${String(e)}`));
      void this.ackInbox(event.seq);
    });
  }

  private async ackInbox(seq: number): Promise<void> {
    try {
      await this.engine.relay(this.me.homeRelay).client.ackCursor(this.me.inbox.channel, seq, await this.owner());
    } catch {
      // The next ack covers it.
    }
  }

  private async handle(packet: Uint8Array, batch: Batch, after: (() => Promise<void>)[]): Promise<void> {
    const engine = this.engine;
    const message = await openInboxMessage(engine.deps.crypto, this.keyPair!, this.me.identityKey, packet, engine.deps.now());
    const seenKey = hexEncode(await engine.deps.crypto.sha256(utf8Encode(`covey-seen-v1\n${message.mid}`)));
    if ((await engine.store.get('seen', seenKey)) !== undefined) {
      throw new InboxRejected(`a message from ${message.from.name} arrived a second time (a replay); it was ignored`);
    }
    if (message.from.ik === this.me.identityKey) throw new InboxRejected('a message claims to come from you');
    // Validate fully before changing anything (mpenc_js: validate first, then change state).
    const invitation = message.type === 'invitation' ? await this.checkInvitation(message.body, message.from) : null;
    batch.put('seen', seenKey, { at: message.at });
    const from = message.from;
    const known = this.contactByIk(from.ik);
    const sameInbox = known === undefined ? this.contactByInbox(from) : undefined;
    if (sameInbox !== undefined) {
      // Their inbox, another key: a key change, never a silent switch.
      await this.keyChanged(sameInbox, from, batch);
      return;
    }
    switch (message.type) {
      case 'contact-request': {
        if (known !== undefined) {
          const updated: ContactRecord = { ...known, state: 'connected', card: known.card.ik === from.ik && from.exp > known.card.exp ? from : known.card };
          batch.put('contacts', known.id, updated);
          this.contacts.set(known.id, updated);
          // Both added each other: answer so they see us as connected too.
          if (known.state === 'requested') after.push(() => this.sendToInbox(from, 'contact-accept', {}, `your answer to ${from.name}`));
          this.engine.sink.invalidate('contacts');
          return;
        }
        for (const r of this.requests.values()) {
          if (r.card.ik === from.ik) {
            batch.delete('requests', r.id);
            this.requests.delete(r.id);
          }
        }
        if (this.requests.size >= MAX_PENDING_REQUESTS) throw new InboxRejected('too many contact requests are waiting; answer some first');
        const request: RequestRecord = { id: randomId(engine, 'r') as RequestId, card: from, receivedAtMs: engine.deps.now() };
        batch.put('requests', request.id, request);
        this.requests.set(request.id, request);
        this.engine.sink.invalidate('contacts');
        this.engine.sink.invalidate('app');
        return;
      }
      case 'contact-accept': {
        if (known === undefined) return; // an answer to a request we no longer have
        const updated: ContactRecord = { ...known, state: 'connected', card: known.card.ik === from.ik && from.exp >= known.card.exp ? from : known.card };
        batch.put('contacts', known.id, updated);
        this.contacts.set(known.id, updated);
        this.engine.sink.invalidate('contacts');
        return;
      }
      case 'invitation': {
        const body = invitation!;
        for (const inv of this.invitations.values()) if (inv.body.id === body.id) return;
        if (this.invitations.size >= MAX_PENDING_REQUESTS) throw new InboxRejected('too many invitations are waiting; answer some first');
        const record: InvitationRecord = { id: randomId(engine, 'v') as InvitationId, via: 'inbox', body, inviter: { name: from.name, ik: from.ik, card: from }, receivedAtMs: engine.deps.now() };
        batch.put('invitations', record.id, record);
        this.invitations.set(record.id, record);
        this.engine.sink.invalidate('conversations');
        this.engine.sink.invalidate('app');
        // A chat of two from someone you already accepted opens by itself (like a message from a contact).
        if (body.kind === 'direct' && known?.state === 'connected' && known.verification !== 'key-changed') {
          after.push(async () => {
            const runtime = await this.engine.acceptInvitation(record.id);
            await this.saveContact({ ...this.contacts.get(known.id)!, directConversationId: runtime.id });
          });
        }
        return;
      }
    }
  }

  /** An invitation's body, fully checked: every binding signed, the inviter among them. */
  private async checkInvitation(value: unknown, from: Card): Promise<InvitationBody> {
    const crypto = this.engine.deps.crypto;
    if (typeof value !== 'object' || value === null) throw new InboxRejected(`an invitation from ${from.name} is malformed`);
    const v = value as Record<string, unknown>;
    let body: InvitationBody;
    try {
      if (v.kind !== 'group' && v.kind !== 'direct') throw badLink('unknown kind');
      if (!Array.isArray(v.members) || v.members.length > MAX_INVITATION_MEMBERS) throw badLink('bad member list');
      const ch = checkToken(v.ch, 'group', 22) as ChannelId;
      const members: Binding[] = [];
      for (const b of v.members) members.push(await verifyBinding(crypto, b, { ch }));
      body = {
        kind: v.kind as ConversationKind,
        relay: checkRelayUrl(v.relay),
        ch,
        cap: checkToken(v.cap, 'capability', 43) as CapabilityToken,
        jk: checkKey(v.jk, 'join key'),
        id: checkToken(v.id, 'invite id', 22),
        name: v.kind === 'direct' ? 'Chat' : cleanName(v.name, MAX_GROUP_NAME_CHARS, 'group name'),
        exp: typeof v.exp === 'number' && Number.isSafeInteger(v.exp) ? v.exp : 0,
        members,
      };
    } catch (error) {
      throw new InboxRejected(`an invitation from ${from.name} was refused: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!body.members.some((b) => b.ik === from.ik)) throw new InboxRejected(`an invitation from ${from.name} does not list them as a member: refused`);
    if (body.exp < this.engine.deps.now()) throw new InboxRejected(`an invitation from ${from.name} had already expired`);
    return body;
  }
}
