/**
 * View models (src/shared/worker-api.ts) computed from the engine's state: what the UI renders.
 * Plain words are made here, once, so every screen says the same thing.
 */
import type { MemberId } from '../protocol/ids.js';
import type { MessageKey } from '../protocol/session/index.js';
import type { MemberKey } from '../shared/relay-api.js';
import type {
  AppView,
  ContactView,
  ContactsView,
  ConversationSummary,
  ConversationView,
  ConversationsView,
  Delivery,
  MemberRef,
  MemberView,
  MessageDetails,
  MessageRef,
  MessageView,
  OperationView,
  Presence,
  TimelineItem,
  Verification,
} from '../shared/worker-api.js';
import type { ConversationRuntime } from './conversation.js';
import type { CoveyEngine } from './engine.js';
import type { Card } from './cards.js';
import type { ContactRecord, ConversationRecord, OperationRecord, TimelineRecord } from './records.js';
import { decodePayload } from './group-messages.js';

/** Messages whose kind (chat or control) a conversation remembers for its views. */
const CHAT_CACHE = 10_000;
/** Characters of a message shown in the conversation list. */
const PREVIEW_CHARS = 100;

const firstLine = (text: string) => {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS - 1)}…` : line;
};

export async function appView(engine: CoveyEngine | null, fallback: Pick<AppView, 'phase' | 'failure'>): Promise<AppView> {
  if (engine === null || engine.phase !== 'ready') {
    return {
      phase: engine?.phase ?? fallback.phase,
      me: null,
      persistence: engine?.persistence ?? 'unknown',
      passphraseSet: engine === null ? false : await engine.passphraseSet().catch(() => false),
      relays: [],
      queued: 0,
      unread: 0,
      pendingRequests: 0,
      invitations: 0,
      failure: fallback.failure,
      alerts: [],
    };
  }
  const p = engine.profile!;
  let unread = 0;
  // (While the sessions restore, from the stored records: CoveyEngine.listed.)
  if (engine.listed !== null) for (const r of engine.listed) unread += r.unread;
  else for (const c of engine.conversations.values()) unread += c.record.unread;
  return {
    phase: 'ready',
    me: { displayName: p.displayName, fingerprint: await engine.ownFingerprint(), homeRelay: p.homeRelay },
    persistence: engine.persistence,
    passphraseSet: await engine.passphraseSet(),
    relays: [...engine.relays.values()].map((r) => ({ url: r.url, state: r.state, queued: engine.outbox.count(r.url), messages: engine.outbox.count(r.url, true), problem: r.problem })),
    queued: engine.outbox.count() + engine.people.pendingDeposits(),
    unread,
    pendingRequests: engine.people.requests.size,
    invitations: engine.people.invitations.size,
    failure: null,
    alerts: [...engine.alerts],
    push: p.push == null ? 'off' : 'on',
  };
}

// ── people ───────────────────────────────────────────────────────────────────────────────────

export function verificationOf(engine: CoveyEngine, ik: string | undefined, self: boolean): Verification {
  if (self) return 'verified';
  if (ik === undefined) return 'unverified';
  const contact = engine.people.contactByIk(ik);
  if (contact === undefined) return 'unverified';
  if (contact.verification === 'key-changed') return 'key-changed';
  return contact.card.ik === ik ? contact.verification : 'unverified';
}

/**
 * async-groups rule 15: the engine's presence (online = heartbeats fresh; last seen = relay time
 * of the latest authenticated packet of theirs). Before a member's first mpENC packet (a joiner's
 * claim, a ping) the relay time of its latest channel packet stands in.
 *
 * While our own relay is out of reach we hear no heartbeats, so nobody else is "online" to us:
 * the heartbeats we heard last say when we last saw them (the header said "· 2 online" while the
 * delivery details said "not online since", from the same engine).
 */
function presenceOf(engine: CoveyEngine, rt: ConversationRuntime, member: MemberKey): Presence {
  if (member === rt.self) return { state: 'online' };
  const reachable = engine.relays.get(rt.record.relay)?.state === 'connected';
  const raw = rt.meta.lastSeen[member];
  let p: ReturnType<ConversationRuntime['session']['presenceOf']>;
  try {
    p = rt.session.presenceOf(member as string as MemberId);
  } catch {
    p = { kind: 'never' };
  }
  if (p.kind === 'online' && reachable) return { state: 'online' };
  const atMs = Math.max(p.kind === 'last-seen' || p.kind === 'online' ? p.lastSeenMs : -Infinity, raw ?? -Infinity);
  return atMs === -Infinity ? { state: 'unknown' } : { state: 'last-seen', atMs };
}

function bestPresence(a: Presence, b: Presence): Presence {
  if (a.state === 'online' || b.state === 'online') return { state: 'online' };
  if (a.state === 'last-seen' && b.state === 'last-seen') return a.atMs >= b.atMs ? a : b;
  return a.state === 'last-seen' ? a : b;
}

export async function contactsView(engine: CoveyEngine): Promise<ContactsView> {
  const people = engine.people;
  const contacts: ContactView[] = [];
  for (const c of people.contacts.values()) {
    let presence: Presence = { state: 'unknown' };
    for (const rt of engine.conversations.values()) {
      for (const [member, binding] of Object.entries(rt.record.bindings)) {
        if (binding.ik === c.card.ik && member !== rt.self) presence = bestPresence(presence, presenceOf(engine, rt, member as MemberKey));
      }
    }
    contacts.push({
      id: c.id,
      name: people.displayName(c),
      verification: c.verification,
      safetyNumber: await people.safety(c.changedCard?.ik ?? c.card.ik),
      state: c.state,
      directConversationId: c.directConversationId,
      presence,
      keyChange:
        c.changedCard === null
          ? null
          : {
              text: `${people.displayName(c)}'s security key changed`,
              whatToDo: `If ${people.displayName(c)} reinstalled Covey, compare the new safety number with them, then accept the new key. Until then nothing is sent to them.`,
              previousSafetyNumber: await people.safety(c.card.ik),
            },
      addedAtMs: c.addedAtMs,
    });
  }
  contacts.sort((a, b) => a.name.localeCompare(b.name));
  const requests = await Promise.all(
    [...people.requests.values()].map(async (r) => ({
      id: r.id,
      name: r.card.name,
      safetyNumber: await people.safety(r.card.ik),
      receivedAtMs: r.receivedAtMs,
      existingContactId: namesake(people, r.card)?.id ?? null,
    })),
  );
  requests.sort((a, b) => b.receivedAtMs - a.receivedAtMs);
  return { contacts, requests };
}

/**
 * A contact with another key who goes by the same name as this request's sender: the request
 * may be someone posing as them (ContactRequestView.existingContactId). Requests never come from
 * a key already in the contacts (those connect at once), so the same name is what to warn about.
 */
function namesake(people: CoveyEngine['people'], card: Card): ContactRecord | undefined {
  const name = card.name.toLocaleLowerCase();
  for (const c of people.contacts.values()) {
    if (c.card.ik === card.ik) continue;
    if (c.card.name.toLocaleLowerCase() === name || people.displayName(c).toLocaleLowerCase() === name) return c;
  }
  return undefined;
}

// ── conversations ────────────────────────────────────────────────────────────────────────────

/** A conversation as the list shows it: a runtime, or (while the sessions restore) its stored record. */
type Listed = Pick<ConversationRuntime, 'self' | 'record'>;

function conversationName(engine: CoveyEngine, rt: Listed): string {
  const r = rt.record;
  if (r.kind !== 'direct') return r.name;
  const other = Object.keys(r.bindings).find((m) => m !== rt.self);
  if (other !== undefined) return engine.nameOf(other as MemberKey, rt);
  const invited = r.operations.find((o) => o.kind === 'add' || o.kind === 'join')?.targets[0]?.name;
  return invited ?? 'Chat';
}

/** `rt`: null in the stored chat list before the sessions are restored (an add or remove under way then shows as running). */
function operationView(engine: CoveyEngine, listed: Listed, rt: ConversationRuntime | null, op: OperationRecord): OperationView {
  const now = engine.deps.now();
  const names = op.targets.map((t) => (t.member !== null && listed.record.bindings[t.member] !== undefined ? engine.nameOf(t.member, listed) : t.name));
  const who = names.join(', ');
  const expired = op.state === 'waiting' && op.expiresAtMs !== null && op.expiresAtMs < now;
  let state: OperationView['state'] = expired ? 'failed' : op.state;
  let expiresAtMs = op.expiresAtMs;
  let text: string;
  let canCancel = state !== 'running' && (op.kind === 'add' || op.kind === 'join');
  let canRetry = state === 'failed' && op.kind !== 'join';
  let retryLabel: string | undefined;
  // Rule 9: a key agreement under way that waits for a contributor who is not online is a state
  // ("waits for Carol to open Covey"), with the engine's wait limit; we may cancel it, or go on
  // without whoever has not come.
  const engineWait = rt !== null && state === 'running' && (op.kind === 'add' || op.kind === 'remove') ? rt.session.waiting() : null;
  const awaiting = (engineWait?.awaiting ?? []).filter((m) => (m as string) !== (listed.self as string));
  if (rt !== null && engineWait !== null && awaiting.length > 0) {
    const awaitingNames = awaiting.map((m) => engine.nameOf(m as string as MemberKey, rt));
    state = 'waiting';
    expiresAtMs = engineWait.limitAtMs;
    canCancel = engineWait.canAbort;
    // Offered on the adds that would go on (the engine leaves out whoever is not shown online).
    const plan = op.kind === 'add' ? rt.withoutMissing() : null;
    canRetry = plan !== null && plan.rest.length > 0 && op.targets.some((t) => t.member !== null && plan.rest.includes(t.member));
    if (canRetry) retryLabel = `Go on without ${[...plan!.missing].map((m) => engine.nameOf(m as MemberKey, rt)).join(', ')}`;
    text = `${op.kind === 'add' ? 'Adding' : 'Removing'} ${who} — waits for ${awaitingNames.join(', ')} to open Covey`;
  } else {
    switch (op.kind) {
      case 'add':
        if (state === 'failed') text = expired ? `Could not add ${who}: the invitation expired before it was used` : `Could not add ${who}${op.failure === null ? '' : `: ${op.failure}`}`;
        else if (state === 'running') text = `Adding ${who}`;
        else if (op.targets.some((t) => t.member !== null)) text = `Adding ${who} — ${who} joined; a member who is online adds them`;
        else text = op.targets[0]?.ik === null ? `Invite link — waits for someone to open it` : `Adding ${who} — waits for ${who} to open Covey`;
        break;
      case 'join':
        text = state === 'failed' ? `Could not join${op.failure === null ? '' : `: ${op.failure}`}` : `Joining — waits for a member of the group to open Covey and add you`;
        break;
      case 'remove':
        text = state === 'failed' ? `Could not remove ${who}${op.failure === null ? '' : `: ${op.failure}`}` : `Removing ${who}`;
        break;
      case 'leave':
        text = `Leaving the group`;
        break;
      case 'rename':
        text = `Renaming the group`;
        break;
      case 'create':
        text = `Creating the group`;
        break;
    }
  }
  return {
    id: op.id,
    kind: op.kind,
    state,
    text,
    targets: names,
    startedAtMs: op.startedAtMs,
    expiresAtMs,
    canCancel,
    canRetry,
    ...(retryLabel === undefined ? {} : { retryLabel }),
  };
}

export function summary(engine: CoveyEngine, rt: ConversationRuntime): ConversationSummary {
  return summaryOf(engine, rt, rt, rt.session.members());
}

/**
 * The stored chat list while the sessions restore (CoveyEngine.listed): from the records alone.
 * Members are the record's (those of the newest subsession it saw); an add or remove under way
 * shows as running until the session can say what it waits for. The full list replaces it once
 * the sessions are restored.
 */
export function listedView(engine: CoveyEngine, records: readonly ConversationRecord[]): ConversationsView {
  const conversations = records
    .map((record) => {
      const listed: Listed = { record, self: record.memberKey };
      return summaryOf(engine, listed, null, record.lastMembers.length > 0 ? record.lastMembers : [record.memberKey]);
    })
    .sort((a, b) => b.timeMs - a.timeMs);
  return { conversations, invitations: invitationsView(engine) };
}

function summaryOf(engine: CoveyEngine, listed: Listed, rt: ConversationRuntime | null, members: readonly string[]): ConversationSummary {
  const r = listed.record;
  return {
    id: r.id,
    kind: r.kind,
    name: conversationName(engine, listed),
    state: r.state,
    lastMessage: r.last === null ? null : { authorName: engine.nameOf(r.last.author, listed), mine: r.last.author === listed.self, text: firstLine(r.last.text), timeMs: r.last.atMs },
    unread: r.unread,
    timeMs: r.lastActivityMs,
    operations: r.operations.map((op) => operationView(engine, listed, rt, op)),
    needsAttention: r.attention || engine.heldAmong(listed, members).length > 0,
    draft: engine.drafts.has(r.id) ? firstLine(engine.drafts.get(r.id)!) : null,
    memberCount: members.length,
  };
}

export function conversationsView(engine: CoveyEngine): ConversationsView {
  const conversations = [...engine.conversations.values()].map((rt) => summary(engine, rt)).sort((a, b) => b.timeMs - a.timeMs);
  return { conversations, invitations: invitationsView(engine) };
}

function invitationsView(engine: CoveyEngine): ConversationsView['invitations'] {
  return [...engine.people.invitations.values()]
    .map((i) => {
      const contact = engine.people.contactByIk(i.inviter.ik);
      return {
        id: i.id,
        kind: i.body.kind,
        groupName: i.body.kind === 'direct' ? `Chat with ${contact === undefined ? i.inviter.name : engine.people.displayName(contact)}` : i.body.name,
        inviterName: contact === undefined ? i.inviter.name : engine.people.displayName(contact),
        inviterVerification: verificationOf(engine, i.inviter.ik, false),
        inviterIsContact: contact !== undefined,
        memberNames: i.body.members.filter((b) => b.ik !== i.inviter.ik).map((b) => b.name),
        via: i.via,
        receivedAtMs: i.receivedAtMs,
        expiresAtMs: i.body.exp,
      };
    })
    .sort((a, b) => b.receivedAtMs - a.receivedAtMs);
}

function members(engine: CoveyEngine, rt: ConversationRuntime): MemberView[] {
  const r = rt.record;
  const out: MemberView[] = [];
  // Out of the group (left or removed): its roster is no longer ours to know or show; listing
  // what is left of it showed pending invitations as members and dropped the people still there.
  const gone = r.state === 'left' || r.state === 'removed';
  const inSession = new Set<string>(gone ? [] : rt.session.members());
  // A joiner waiting to be included knows the members from its invitation.
  const listed = r.state === 'waiting' && !r.createdByMe ? Object.keys(r.bindings) : [...inSession];
  for (const m of new Set([rt.self as string, ...listed])) {
    const member = m as MemberKey;
    const binding = r.bindings[member];
    out.push({
      member: member as string as MemberRef,
      contactId: binding === undefined ? null : (engine.people.contactByIk(binding.ik)?.id ?? null),
      name: member === rt.self ? `${engine.profile!.displayName} (you)` : engine.nameOf(member, rt),
      self: member === rt.self,
      verification: verificationOf(engine, binding?.ik, member === rt.self),
      presence: presenceOf(engine, rt, member),
      role: 'member',
    });
  }
  for (const claim of gone ? [] : r.claims) {
    if (inSession.has(claim.member) || out.some((o) => o.member === (claim.member as string))) continue;
    out.push({
      member: claim.member as string as MemberRef,
      contactId: engine.people.contactByIk(claim.binding.ik)?.id ?? null,
      name: engine.nameOf(claim.member, rt),
      self: false,
      verification: verificationOf(engine, claim.binding.ik, false),
      presence: presenceOf(engine, rt, claim.member),
      role: 'joining',
    });
  }
  for (const invite of gone ? [] : r.invites) {
    if (invite.ik === null || invite.usedBy !== null || invite.expiresAtMs < engine.deps.now() || r.claims.some((c) => c.inviteId === invite.id)) continue;
    if (Object.values(r.bindings).some((b) => b.ik === invite.ik && inSession.has(b.mk))) continue;
    if (invite.by === rt.self && r.state === 'waiting' && !r.createdByMe) continue; // our own join
    out.push({
      member: `i:${invite.id}` as MemberRef,
      contactId: engine.people.contactByIk(invite.ik)?.id ?? null,
      name: invite.name ?? 'Invited',
      self: false,
      verification: verificationOf(engine, invite.ik, false),
      presence: { state: 'unknown' },
      role: 'invited',
    });
  }
  const [me, ...others] = out;
  others.sort((a, b) => a.name.localeCompare(b.name));
  return [me!, ...others];
}

function delivery(engine: CoveyEngine, rt: ConversationRuntime, item: Extract<TimelineRecord, { t: 'm' }>, pendingPosts: Set<string>): Delivery {
  if (item.state === 'failed') return { state: 'failed', text: item.failure ?? 'It could not be sent.' };
  if (item.state === 'queued' || item.mpenc === null) {
    const held = engine.heldBy(rt);
    let text = 'Waits for the group to be ready';
    if (held.length > 0) text = `Held: ${held.map((id) => engine.people.displayName(engine.people.contacts.get(id)!)).join(', ')}'s key changed`;
    else if (rt.record.state === 'waiting') text = rt.record.createdByMe ? 'Waits until someone you invited joins' : 'Waits until a member adds you to the group';
    return { state: 'waiting-to-send', text };
  }
  if (item.postIds.some((p) => pendingPosts.has(p))) return { state: 'waiting-to-send', text: 'Waits for the network' };
  if (!rt.session.messages().has(item.mpenc)) return { state: 'at-relay' };
  // Settled: every reader acked it (the engine stopped tracking it); that never changes again,
  // so the open view (up to 200 messages, rebuilt at every step) does not recompute it.
  const settled = rt.settledDelivery.get(item.mpenc);
  if (settled !== undefined) return settled;
  let d: ReturnType<ConversationRuntime['session']['delivery']>;
  try {
    d = rt.session.delivery(item.mpenc as MessageKey);
  } catch {
    return { state: 'at-relay' };
  }
  const name = (m: MemberId) => engine.nameOf(m as string as MemberKey, rt);
  // Readers who left (or were removed) without acking it are no longer counted (rule 14).
  const gone = new Set(d.gone);
  const of = d.readers.filter((m) => !gone.has(m)).length;
  const acked = d.acked.filter((m) => !gone.has(m)).length;
  if (d.late.length > 0) {
    // Rule 14: only a member who has been active since (or is online) and did not ack is a warning.
    const missing = d.late.map(name);
    return { state: 'not-acked', missing, text: `Not acknowledged by ${listWords(missing)}, who ${missing.length === 1 ? 'has' : 'have'} been active since` };
  }
  if (acked >= of) {
    const all: Delivery = { state: 'delivered-to-all', of };
    if (d.gone.length === 0 && rt.session.status(item.mpenc as MessageKey) === 'fully-acked') rt.settle(item.mpenc, all);
    return all;
  }
  if (acked === 0 && d.pending.length === 0 && item.author === rt.self) return { state: 'at-relay' };
  // "Delivered to k of n, m not yet online": members silent since are pending, not at fault.
  return { state: 'delivered', acked, of, notYetOnline: d.pending.map(name) };
}

function listWords(list: readonly string[]): string {
  if (list.length <= 1) return list.join('');
  return `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
}

/** Whether an accepted message is a chat message (shown), not a roster, rename or invite notice. */
function isChat(rt: ConversationRuntime, id: string): boolean {
  let chat = rt.chatCache.get(id);
  if (chat === undefined) {
    const body = rt.session.messages().get(id).body;
    chat = body.type === 'payload' && decodePayload(body.text).t === 'm';
    if (rt.chatCache.size >= CHAT_CACHE) rt.chatCache.delete(rt.chatCache.keys().next().value!);
    rt.chatCache.set(id, chat);
  }
  return chat;
}

/**
 * A message's real parents as the person sees them (mpENC §2.3): control payloads (roster,
 * rename, invite notices) are not shown, so they are replaced by their own parents.
 */
export function chatParents(rt: ConversationRuntime, id: string): readonly string[] {
  // An accepted message's parents never change, nor whether they are chat messages.
  const cached = rt.chatParentsCache.get(id);
  if (cached !== undefined) return cached;
  const found = findChatParents(rt, id);
  if (rt.chatParentsCache.size >= CHAT_CACHE) rt.chatParentsCache.delete(rt.chatParentsCache.keys().next().value!);
  rt.chatParentsCache.set(id, found);
  return found;
}

function findChatParents(rt: ConversationRuntime, id: string): string[] {
  const log = rt.session.messages();
  const out = new Set<string>();
  const seen = new Set<string>();
  const stack = [...log.parents(id)];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    if (isChat(rt, p)) out.add(p);
    else stack.push(...log.parents(p));
  }
  return [...out];
}

/** Timeline window (oldest first) holding at most `limit` messages. */
function windowItems(rt: ConversationRuntime, limit: number): [number, TimelineRecord][] {
  const all = [...rt.window.entries()].sort((a, b) => a[0] - b[0]);
  let messages = 0;
  let start = all.length;
  while (start > 0) {
    const item = all[start - 1]![1];
    if (item.t === 'm') {
      if (messages === limit) break;
      messages++;
    }
    start--;
  }
  return all.slice(start);
}

export function conversationView(engine: CoveyEngine, rt: ConversationRuntime, limit: number): ConversationView {
  const r = rt.record;
  const pendingPosts = engine.outbox.pending();
  const items = windowItems(rt, limit);
  const timeline: TimelineItem[] = [];
  let aboveMpenc: string | null | undefined;
  // Our own messages keep the ref `send` returned; parents name mpENC keys: map them back.
  const refs = new Map<string, MessageRef>();
  for (const [, item] of items) if (item.t === 'm' && item.mpenc !== null) refs.set(item.mpenc, item.ref);
  const refOf = (key: string) => refs.get(key) ?? (key as MessageRef);
  for (const [position, item] of items) {
    if (item.t === 'n') {
      timeline.push({ type: 'notice', id: `n${position}`, timeMs: item.atMs, tone: item.tone, text: item.text, whatToDo: item.whatToDo, action: item.action });
      continue;
    }
    const log = rt.session.messages();
    const parents = item.mpenc !== null && log.has(item.mpenc) ? chatParents(rt, item.mpenc) : [];
    // mpENC §2.3(b): say so when its real parents are not just the message shown above it (the
    // first message in the window has nothing above to compare with: only a merge is worth a note).
    let parentsDiffer = parents.length > 1;
    if (item.mpenc !== null && aboveMpenc !== undefined) parentsDiffer = aboveMpenc === null ? parents.length > 0 : !(parents.length === 1 && parents[0] === aboveMpenc);
    aboveMpenc = item.mpenc;
    const binding = r.bindings[item.author];
    const mine = item.author === rt.self;
    const view: MessageView = {
      type: 'message',
      id: item.ref,
      author: {
        member: item.author as string as MemberRef,
        contactId: binding === undefined ? null : (engine.people.contactByIk(binding.ik)?.id ?? null),
        name: mine ? 'You' : engine.nameOf(item.author, rt),
        self: mine,
        verification: verificationOf(engine, binding?.ik, mine),
      },
      mine,
      timeMs: item.atMs,
      text: item.text,
      delivery: delivery(engine, rt, item, pendingPosts),
      parents: parents.map(refOf),
      parentsDiffer: item.mpenc === null ? false : parentsDiffer,
      read: mine || position <= r.readUpTo,
    };
    timeline.push(view);
  }
  const held = engine.heldBy(rt);
  let sendBlocked: ConversationView['sendBlocked'] = null;
  if (r.state === 'left') sendBlocked = { text: 'You left this group.', action: null };
  else if (r.state === 'removed') sendBlocked = { text: 'You were removed from this group.', action: null };
  else if (held.length > 0) {
    const contact = engine.people.contacts.get(held[0]!)!;
    const name = engine.people.displayName(contact);
    sendBlocked = {
      text: `${name}'s security key changed. Nothing is sent until you accept it: if ${name} reinstalled Covey, compare the new safety number with them first.`,
      action: { label: 'Accept the new key', command: 'acceptKeyChange', contactId: contact.id },
    };
  }
  const first = items[0]?.[0];
  return {
    id: r.id,
    kind: r.kind,
    name: conversationName(engine, rt),
    state: r.state,
    members: members(engine, rt),
    timeline,
    hasEarlier: first !== undefined ? first > 1 : false,
    draft: engine.drafts.get(r.id) ?? '',
    unread: r.unread,
    operations: r.operations.map((op) => operationView(engine, rt, rt, op)),
    canSend: sendBlocked === null,
    sendBlocked,
    canManage: r.state === 'active' || (r.state === 'waiting' && r.createdByMe),
    relay: r.relay,
  };
}

export function messageDetails(engine: CoveyEngine, rt: ConversationRuntime, ref: MessageRef): MessageDetails {
  const position = rt.positionOf(ref);
  const item: TimelineRecord | undefined = position === undefined ? undefined : rt.window.get(position);
  const mpenc = item?.t === 'm' ? item.mpenc : rt.session.messages().has(ref) ? ref : null;
  const refs = new Map<string, MessageRef>();
  for (const candidate of rt.window.values()) if (candidate.t === 'm' && candidate.mpenc !== null) refs.set(candidate.mpenc, candidate.ref);
  const refOf = (key: string) => refs.get(key) ?? (key as MessageRef);
  if (mpenc === null || !rt.session.messages().has(mpenc)) return { id: ref, readers: [], parents: [], ancestors: [] };
  const log = rt.session.messages();
  let d: ReturnType<ConversationRuntime['session']['delivery']> | null;
  try {
    d = rt.session.delivery(mpenc as MessageKey);
  } catch {
    d = null;
  }
  const acked = new Set<string>(d?.acked ?? log.readers(mpenc).filter((m) => !log.unacked(mpenc).includes(m)));
  const late = new Set<string>(d?.late ?? []);
  return {
    id: ref,
    readers: log.readers(mpenc).map((m) => ({
      name: engine.nameOf(m as string as MemberKey, rt),
      member: m as string as MemberRef,
      state: acked.has(m) ? 'acked' : late.has(m) ? 'not-acked' : 'pending',
    })),
    parents: chatParents(rt, mpenc).map(refOf),
    ancestors: [...log.ancestors(mpenc)].filter((a) => isChat(rt, a)).map(refOf),
  };
}
