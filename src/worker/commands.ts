/**
 * The commands of src/shared/worker-api.ts, with their parameters checked (they arrive over
 * postMessage: untrusted shapes, fuzzed in tests). Each checks the app phase, validates, then
 * acts; refusals are WorkerErrors with plain words.
 */
import { base64UrlEncode } from '../protocol/bytes.js';
import type { MemberKey } from '../shared/relay-api.js';
import {
  MAX_DRAFT_CHARS,
  MAX_GROUP_MEMBERS,
  MAX_GROUP_NAME_CHARS,
  MAX_LINK_CHARS,
  MAX_MESSAGE_TEXT_CHARS,
  MAX_PASSPHRASE_CHARS,
  MIN_PASSPHRASE_CHARS,
  WorkerError,
  type CommandName,
  type ContactId,
  type ConversationId,
  type InvitationId,
  type MessageRef,
  type OperationId,
  type PushSubscriptionJson,
  type RequestId,
} from '../shared/worker-api.js';
import { cleanName, linkFor, makeInviteLinkPayload, INVITE_FRAGMENT } from './cards.js';
import type { ConversationRuntime } from './conversation.js';
import type { CoveyEngine } from './engine.js';
import { makeQr } from './qr.js';
import { messageDetails } from './views.js';

type Params = Record<string, unknown>;

const bad = (message: string) => new WorkerError('bad-request', message);

function params(value: unknown): Params {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('parameters must be an object');
  return value as Params;
}

function text(p: Params, key: string, max: number, options: { optional?: boolean; min?: number } = {}): string {
  const v = p[key];
  if (v === undefined && options.optional === true) return '';
  if (typeof v !== 'string') throw bad(`${key} must be text`);
  if (v.length > max) throw bad(`${key} is longer than ${max} characters`);
  if (v.length < (options.min ?? 0)) throw bad(`${key} is shorter than ${options.min} characters`);
  return v;
}

function id<T extends string>(p: Params, key: string): T {
  const v = p[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 200) throw bad(`${key} must be an id`);
  return v as T;
}

function ids<T extends string>(p: Params, key: string, max: number): T[] {
  const v = p[key];
  if (!Array.isArray(v) || v.length > max || !v.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 200)) throw bad(`${key} must be a list of ids`);
  return [...new Set(v as T[])];
}

/** Commands allowed before the profile is ready (each checks its own phase). */
const ANY_PHASE: ReadonlySet<string> = new Set(['createIdentity', 'importBackup', 'unlock', 'reportPersistence', 'useEngineHere', 'networkChanged']);

export async function runCommand(engine: CoveyEngine, command: CommandName | string, raw: unknown): Promise<unknown> {
  const p = params(raw);
  if (!ANY_PHASE.has(command)) engine.requireReady();
  const people = engine.people;
  switch (command as CommandName) {
    case 'createIdentity': {
      const relay = p.relay === undefined ? undefined : text(p, 'relay', 300);
      return engine.createIdentity(text(p, 'displayName', 200), relay);
    }
    case 'setDisplayName':
      await engine.setDisplayName(text(p, 'displayName', 200));
      return {};
    case 'myCard':
      return engine.myCard();
    case 'reportPersistence': {
      const granted = p.granted;
      if (granted !== true && granted !== false && granted !== 'unsupported') throw bad('granted must be true, false or "unsupported"');
      await engine.reportPersistence(granted);
      return {};
    }
    case 'useEngineHere':
      return {}; // this tab already runs the engine
    case 'networkChanged':
      if (p.online === true) engine.networkMayBeBack();
      else if (p.online === false) engine.networkLost();
      else throw bad('online must be true or false');
      return {};
    case 'setPassphrase': {
      const passphrase = text(p, 'passphrase', MAX_PASSPHRASE_CHARS, { min: MIN_PASSPHRASE_CHARS });
      const current = p.current === undefined ? undefined : text(p, 'current', MAX_PASSPHRASE_CHARS);
      await engine.setPassphrase(passphrase, current);
      return {};
    }
    case 'clearPassphrase':
      await engine.clearPassphrase(text(p, 'current', MAX_PASSPHRASE_CHARS));
      return {};
    case 'unlock':
      await engine.unlock(text(p, 'passphrase', MAX_PASSPHRASE_CHARS));
      return {};
    case 'lock':
      throw new WorkerError('invalid-state', 'lock is handled by the engine host');

    case 'previewLink':
      return people.preview(text(p, 'text', MAX_LINK_CHARS));
    case 'addContact':
      return { contactId: await people.addContact(text(p, 'link', MAX_LINK_CHARS)) };
    case 'acceptContactRequest':
      return { contactId: await people.acceptRequest(id<RequestId>(p, 'requestId')) };
    case 'declineContactRequest':
      await people.declineRequest(id<RequestId>(p, 'requestId'));
      return {};
    case 'verifyContact':
      await people.verify(id<ContactId>(p, 'contactId'));
      return {};
    case 'verifyContactByQr':
      await people.verifyByQr(id<ContactId>(p, 'contactId'), text(p, 'scanned', MAX_LINK_CHARS));
      return {};
    case 'unverifyContact':
      await people.unverify(id<ContactId>(p, 'contactId'));
      return {};
    case 'acceptKeyChange':
      await people.acceptKeyChange(id<ContactId>(p, 'contactId'));
      return {};
    case 'renameContact':
      await people.rename(id<ContactId>(p, 'contactId'), text(p, 'name', 200));
      return {};
    case 'removeContact':
      await people.remove(id<ContactId>(p, 'contactId'));
      return {};

    case 'startDirectChat':
      return { conversationId: await startDirectChat(engine, id<ContactId>(p, 'contactId')) };
    case 'createGroup': {
      const contactIds = ids<ContactId>(p, 'contactIds', MAX_GROUP_MEMBERS - 1);
      for (const c of contactIds) people.contact(c);
      const runtime = await engine.createGroup('group', text(p, 'name', MAX_GROUP_NAME_CHARS * 2), contactIds);
      return { conversationId: runtime.id };
    }
    case 'inviteContacts': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const contactIds = ids<ContactId>(p, 'contactIds', MAX_GROUP_MEMBERS - 1);
      for (const c of contactIds) people.contact(c);
      if (runtime.record.kind === 'direct') throw new WorkerError('invalid-state', 'A chat of two cannot grow: create a group instead.');
      const operationIds: OperationId[] = [];
      for (const c of contactIds) operationIds.push(await engine.invite(runtime, c));
      return { operationIds };
    }
    case 'createInviteLink':
      return createInviteLink(engine, engine.conversation(id<ConversationId>(p, 'conversationId')));
    case 'openInviteLink':
      return { invitationId: await people.openInviteLink(text(p, 'link', MAX_LINK_CHARS)) };
    case 'acceptInvitation':
      return { conversationId: (await engine.acceptInvitation(id<InvitationId>(p, 'invitationId'))).id };
    case 'declineInvitation':
      people.invitation(id<InvitationId>(p, 'invitationId'));
      await people.dropInvitation(id<InvitationId>(p, 'invitationId'));
      return {};
    case 'send': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const body = text(p, 'text', MAX_MESSAGE_TEXT_CHARS);
      if (body.trim().length === 0) throw bad('an empty message is not sent');
      if (engine.heldBy(runtime).length > 0) throw new WorkerError('send-held', 'Sending is held because a member’s security key changed: accept or verify it first.');
      const messageId = await runtime.send(body);
      if (engine.drafts.has(runtime.id)) await engine.saveDraft(runtime.id, '');
      return { messageId };
    }
    case 'retrySend': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const ref = id<MessageRef>(p, 'messageId');
      const item = [...runtime.window.values()].find((t) => t.t === 'm' && t.ref === ref);
      if (item === undefined || item.t !== 'm') throw new WorkerError('not-found', 'There is no such message.');
      if (item.state !== 'failed') throw new WorkerError('invalid-state', 'That message did not fail.');
      return { messageId: await runtime.send(item.text) };
    }
    case 'markRead': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const upTo = p.upTo === undefined ? undefined : id<MessageRef>(p, 'upTo');
      await markRead(runtime, upTo);
      return {};
    }
    case 'saveDraft':
      await engine.saveDraft(id<ConversationId>(p, 'conversationId'), text(p, 'text', MAX_DRAFT_CHARS));
      return {};
    case 'messageDetails': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      return messageDetails(engine, runtime, id<MessageRef>(p, 'messageId'));
    }
    case 'removeMember': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const member = id<string>(p, 'member');
      if (member.startsWith('i:')) throw new WorkerError('invalid-state', 'That person has not joined yet: cancel the invitation instead.');
      if (member === runtime.self) throw new WorkerError('invalid-state', 'To remove yourself, leave the group.');
      const operationId = `op-${base64UrlEncode(engine.deps.crypto.randomBytes(9))}` as OperationId;
      await runtime.exclude(member as MemberKey, operationId);
      return { operationId };
    }
    case 'leaveConversation':
      await engine.conversation(id<ConversationId>(p, 'conversationId')).leave();
      return {};
    case 'renameGroup': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const name = cleanName(text(p, 'name', MAX_GROUP_NAME_CHARS * 2), MAX_GROUP_NAME_CHARS, 'The group name', bad);
      await rename(runtime, name);
      return {};
    }
    case 'cancelOperation': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      await cancelOperation(runtime, id<OperationId>(p, 'operationId'));
      return {};
    }
    case 'retryOperation': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      return { operationId: await retryOperation(engine, runtime, id<OperationId>(p, 'operationId')) };
    }
    case 'replaceOperation': {
      const runtime = engine.conversation(id<ConversationId>(p, 'conversationId'));
      const opId = id<OperationId>(p, 'operationId');
      const replacement = params(p.replacement);
      await cancelOperation(runtime, opId);
      if (replacement.kind === 'add') {
        const contactIds = ids<ContactId>(replacement, 'contactIds', MAX_GROUP_MEMBERS - 1);
        const operationIds: OperationId[] = [];
        for (const c of contactIds) operationIds.push(await engine.invite(runtime, c));
        return { operationIds };
      }
      if (replacement.kind === 'remove') {
        const members = ids<string>(replacement, 'members', MAX_GROUP_MEMBERS);
        if (members.length !== 1) throw bad('remove one member at a time');
        const operationId = `op-${base64UrlEncode(engine.deps.crypto.randomBytes(9))}` as OperationId;
        await runtime.exclude(members[0] as MemberKey, operationId);
        return { operationIds: [operationId] };
      }
      throw bad('replacement.kind must be "add" or "remove"');
    }
    case 'deleteConversation':
      await engine.deleteConversation(id<ConversationId>(p, 'conversationId'));
      return {};
    case 'exportBackup':
      return engine.exportBackup(text(p, 'passphrase', MAX_PASSPHRASE_CHARS, { min: MIN_PASSPHRASE_CHARS }));
    case 'importBackup':
      await engine.importBackup(text(p, 'text', 200_000_000), text(p, 'passphrase', MAX_PASSPHRASE_CHARS));
      return {};
    case 'pushServerKey':
      return engine.pushServerKey();
    case 'setPush':
      return { channels: await engine.setPush(pushSubscription(p.subscription)) };
  }
  throw bad(`unknown command ${JSON.stringify(String(command).slice(0, 40))}`);
}

/** A PushSubscription.toJSON() shape (null: off); the relay checks the rest. */
function pushSubscription(value: unknown): PushSubscriptionJson | null {
  if (value === null) return null;
  const v = params(value);
  const keys = params(v.keys);
  const endpoint = text(v, 'endpoint', 2_000);
  if (!/^https:\/\//.test(endpoint)) throw bad('the push endpoint must be an https URL');
  return { endpoint, keys: { p256dh: text(keys, 'p256dh', 200), auth: text(keys, 'auth', 100) } };
}

async function startDirectChat(engine: CoveyEngine, contactId: ContactId): Promise<ConversationId> {
  const contact = engine.people.contact(contactId);
  const existing = contact.directConversationId === null ? undefined : engine.conversations.get(contact.directConversationId);
  if (existing !== undefined && existing.record.state !== 'left' && existing.record.state !== 'removed') return existing.id;
  const runtime = await engine.createGroup('direct', 'Chat', [contactId]);
  await engine.people.saveContact({ ...engine.people.contacts.get(contactId)!, directConversationId: runtime.id });
  return runtime.id;
}

async function createInviteLink(engine: CoveyEngine, runtime: ConversationRuntime) {
  const r = runtime.record;
  if (r.state === 'left' || r.state === 'removed') throw new WorkerError('invalid-state', 'You are no longer in this group.');
  if (r.kind === 'direct') throw new WorkerError('invalid-state', 'A chat of two cannot grow: create a group instead.');
  const { cap, jk, id: inviteId, exp } = await engine.makeInviteCapability(runtime);
  const profile = engine.profile!;
  const payload = await makeInviteLinkPayload(engine.deps.crypto, engine.identitySeed!, {
    relay: r.relay,
    ch: r.channel,
    cap,
    jk,
    id: inviteId,
    name: r.name,
    kind: r.kind,
    by: { name: profile.displayName, ik: profile.identityKey },
    exp,
  });
  await runtime.run('invite-link', async () => {
    runtime.learnInvite({ id: inviteId, jk, ik: null, name: null, by: runtime.self, expiresAtMs: exp, operationId: null, usedBy: null }, engine.deps.now());
    await runtime.save();
    await runtime.followUps();
  });
  const link = linkFor(engine.deps.appOrigin, INVITE_FRAGMENT, payload);
  return { link, qr: makeQr(link), expiresAtMs: exp };
}

async function markRead(runtime: ConversationRuntime, upTo: MessageRef | undefined): Promise<void> {
  await runtime.run('mark-read', async () => {
    const r = runtime.record;
    const latest = r.nextPosition - 1;
    let position = latest;
    if (upTo !== undefined) {
      const known = runtime.positionOf(upTo);
      if (known === undefined) throw new WorkerError('not-found', 'There is no such message.');
      position = known;
    }
    if (position <= r.readUpTo) return;
    r.readUpTo = position;
    if (position >= latest) r.unread = 0;
    else {
      let unread = 0;
      for (const [pos, item] of runtime.window) if (pos > position && item.t === 'm' && item.author !== runtime.self) unread++;
      r.unread = unread;
    }
    await runtime.save();
  });
}

async function rename(runtime: ConversationRuntime, name: string): Promise<void> {
  const r = runtime.record;
  if (r.kind === 'direct') throw new WorkerError('invalid-state', 'A chat of two has no name to change.');
  if (r.state === 'left' || r.state === 'removed') throw new WorkerError('invalid-state', 'You are no longer in this group.');
  await runtime.run('rename', async () => {
    if (runtime.canSeal()) {
      await runtime.sendControl({ t: 'n', name });
      return;
    }
    if (!r.createdByMe) {
      // In the group but not at the channel's head yet (rule 6, and after every restart: issue 9
      // §2): the name goes out once we have caught up, which needs the relay.
      const behind = runtime.session.catchingUp() && runtime.session.currentSubsession() !== undefined;
      throw new WorkerError('invalid-state', behind ? 'Covey is catching up with this group; you can rename it once it has (it needs the relay).' : 'You can rename the group once you are in it.');
    }
    r.name = name; // nobody else yet: the start's roster carries it
    await runtime.save();
  });
}

async function cancelOperation(runtime: ConversationRuntime, operationId: OperationId): Promise<void> {
  await runtime.run('cancel', async () => {
    const op = runtime.record.operations.find((o) => o.id === operationId);
    if (op === undefined) throw new WorkerError('not-found', 'There is no such operation.');
    if (op.state === 'running') {
      // Rule 9: a key agreement that waits for someone who is not online can be cancelled (a
      // signed abort); one whose contributors are all here finishes in seconds.
      if (!(await runtime.abortWaiting(op))) throw new WorkerError('invalid-state', 'It is under way and cannot be stopped now.');
      return;
    }
    runtime.record.operations = runtime.record.operations.filter((o) => o.id !== operationId);
    if (op.inviteId !== null) {
      const inviteId = op.inviteId;
      runtime.record.invites = runtime.record.invites.filter((i) => i.id !== inviteId);
      runtime.record.claims = runtime.record.claims.filter((c) => c.inviteId !== inviteId);
      if (runtime.canSeal()) {
        await runtime.sendControl({ t: 'x', id: inviteId });
        return;
      }
    }
    await runtime.save();
  });
}

async function retryOperation(engine: CoveyEngine, runtime: ConversationRuntime, operationId: OperationId): Promise<OperationId> {
  const op = runtime.record.operations.find((o) => o.id === operationId);
  if (op === undefined) throw new WorkerError('not-found', 'There is no such operation.');
  if (op.state === 'running') {
    // Rule 9: "go on without whoever has not come": the engine aborts the waiting include and
    // proposes it again without them (their add waits for their next claim).
    if (!(await runtime.run('retry-without', () => runtime.retryWithoutMissing()))) throw new WorkerError('invalid-state', 'It is under way; there is nothing to retry.');
    return op.id;
  }
  await cancelOperation(runtime, operationId);
  if (op.kind === 'add') {
    const contact = op.targets[0]?.ik == null ? undefined : engine.people.contactByIk(op.targets[0].ik);
    if (contact === undefined) throw new WorkerError('invalid-state', 'Invite them again from your contacts.');
    return engine.invite(runtime, contact.id);
  }
  if (op.kind === 'remove') {
    const member = op.targets[0]?.member;
    if (member == null) throw new WorkerError('invalid-state', 'Nothing to retry.');
    const next = `op-${base64UrlEncode(engine.deps.crypto.randomBytes(9))}` as OperationId;
    await runtime.exclude(member, next);
    return next;
  }
  throw new WorkerError('invalid-state', 'That cannot be retried.');
}
