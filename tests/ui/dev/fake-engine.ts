/**
 * A development fake of the engine behind the worker bridge: in-memory view models for every
 * screen and state (first run, locked, another tab, a busy group with every delivery state, a
 * changed key, requests, invitations, operations). For building and reviewing screens only; it is
 * not in the production bundle (the app's entry is src/ui/main.tsx), and the issue-11 flow tests
 * run against the real worker and relay.
 */
import type {
  AppView,
  ContactId,
  ContactView,
  ConversationId,
  ConversationView,
  Delivery,
  InvitationView,
  MemberRef,
  MemberView,
  MessageRef,
  MessageView,
  NoticeView,
  QrCode,
  TimelineItem,
  WorkerErrorBody,
} from '../../../src/shared/worker-api.js';
import type { BridgeHandler } from '../../../src/shared/worker-bridge.js';

export type Scene = 'first-run' | 'locked' | 'elsewhere' | 'empty' | 'busy';

const MIN = 60_000;
const NOW = Date.now();
const SAFETY = '05812 39017 44120 90531 11873 62290 37415 80026 55190 21347 66081 93725';

function qr(size = 29): QrCode {
  const rows: boolean[][] = [];
  for (let y = 0; y < size; y++) {
    const row: boolean[] = [];
    for (let x = 0; x < size; x++) {
      const finder = (cx: number, cy: number) => {
        const dx = x - cx;
        const dy = y - cy;
        if (dx < 0 || dy < 0 || dx > 6 || dy > 6) return null;
        return dx === 0 || dy === 0 || dx === 6 || dy === 6 || (dx >= 2 && dx <= 4 && dy >= 2 && dy <= 4);
      };
      row.push(finder(0, 0) ?? finder(size - 7, 0) ?? finder(0, size - 7) ?? ((x * 7 + y * 13 + x * y) % 5 < 2));
    }
    rows.push(row);
  }
  return { size, rows, svg: '' };
}

interface FakeConversation {
  view: ConversationView;
}

const err = (code: WorkerErrorBody['code'], message: string) => Object.assign(new Error(message), { code, toJSON: () => ({ code, message }) });

export function createFakeEngine(scene: Scene): BridgeHandler {
  const listeners = new Set<() => void>();
  const notify = () => queueMicrotask(() => listeners.forEach((listener) => listener()));

  let app: AppView = {
    phase: scene === 'first-run' ? 'no-identity' : scene === 'locked' ? 'locked' : scene === 'elsewhere' ? 'engine-elsewhere' : 'ready',
    me: scene === 'first-run' ? null : { displayName: 'Alice', fingerprint: '05812 39017 44120 90531 11873 62290', homeRelay: location.origin },
    persistence: 'granted',
    passphraseSet: scene === 'locked',
    relays: [{ url: location.origin, state: 'connected', queued: 0, messages: 0, problem: null }],
    queued: 0,
    unread: 0,
    pendingRequests: 0,
    invitations: 0,
    failure: null,
    alerts:
      scene === 'busy'
        ? [
            {
              type: 'notice',
              id: 'alert-1',
              timeMs: NOW - 3 * MIN,
              tone: 'danger',
              text: 'Dana Diaz’s security key changed',
              whatToDo: 'Sending to Dana Diaz is held. If they reinstalled Covey, compare the new safety number with them, then accept the new key.',
              action: null,
            },
          ]
        : [],
  };

  const contact = (id: string, name: string, verification: ContactView['verification'], extra: Partial<ContactView> = {}): ContactView => ({
    id: id as ContactId,
    name,
    verification,
    safetyNumber: SAFETY,
    state: 'connected',
    directConversationId: null,
    presence: { state: 'last-seen', atMs: NOW - 42 * MIN },
    keyChange: null,
    addedAtMs: NOW - 3 * 86_400_000,
    ...extra,
  });

  let contacts: ContactView[] = [];
  let requests: { id: string; name: string; safetyNumber: string; receivedAtMs: number; existingContactId: ContactId | null }[] = [];
  const conversations = new Map<ConversationId, FakeConversation>();
  let invitations: InvitationView[] = [];

  const member = (name: string, self = false, extra: Partial<MemberView> = {}) => ({
    member: `m-${name}` as MemberRef,
    contactId: self ? null : (`c-${name.toLowerCase()}` as ContactId),
    name,
    self,
    verification: self ? ('verified' as const) : ('unverified' as const),
    presence: { state: 'online' } as const,
    role: 'member' as const,
    ...extra,
  });
  const author = (name: string, self = false, verification: ContactView['verification'] = 'unverified') => ({
    member: `m-${name}` as MemberRef,
    contactId: self ? null : (`c-${name.toLowerCase()}` as ContactId),
    name,
    self,
    verification: self ? ('verified' as const) : verification,
  });
  let counter = 0;
  const message = (who: ReturnType<typeof author>, text: string, atMs: number, delivery: Delivery, extra: Partial<MessageView> = {}): MessageView => ({
    type: 'message',
    id: `msg-${++counter}` as MessageRef,
    author: who,
    mine: who.self,
    timeMs: atMs,
    text,
    delivery,
    parents: [],
    parentsDiffer: false,
    read: true,
    ...extra,
  });
  const notice = (text: string, atMs: number, tone: NoticeView['tone'] = 'info', extra: Partial<NoticeView> = {}): NoticeView => ({
    type: 'notice',
    id: `n-${++counter}`,
    timeMs: atMs,
    tone,
    text,
    whatToDo: null,
    action: null,
    ...extra,
  });

  if (scene === 'busy') {
    contacts = [
      contact('c-bob', 'Bob', 'verified', { presence: { state: 'online' }, directConversationId: 'conv-bob' as ConversationId }),
      contact('c-carol', 'Carol', 'unverified'),
      contact('c-dave', 'Dave', 'key-changed', {
        keyChange: { text: 'Dave’s safety number changed', whatToDo: 'Dave may have a new phone, or someone may be trying to listen in. Check the new number with Dave before you accept it.', previousSafetyNumber: SAFETY },
      }),
      contact('c-erin', 'Erin Okafor-Lindqvist', 'unverified', { state: 'requested', presence: { state: 'unknown' } }),
    ];
    requests = [{ id: 'r-frank', name: 'Frank', safetyNumber: SAFETY, receivedAtMs: NOW - 5 * MIN, existingContactId: null }];
    invitations = [
      {
        id: 'inv-1' as never,
        kind: 'group',
        groupName: 'Book club',
        inviterName: 'Carol',
        inviterVerification: 'unverified',
        inviterIsContact: true,
        memberNames: ['Carol', 'Grace', 'Heidi'],
        via: 'inbox',
        receivedAtMs: NOW - 3 * MIN,
        expiresAtMs: NOW + 6 * 86_400_000,
      },
    ];
    const me = author('Alice', true);
    const bob = author('Bob', false, 'verified');
    const carol = author('Carol');
    const m1 = message(bob, 'Who is in for the lake on Saturday? 🚣', NOW - 26 * 60 * MIN, { state: 'delivered-to-all', of: 2 });
    const m2 = message(me, 'Me! I can bring the tent and the small stove.', NOW - 25 * 60 * MIN, { state: 'delivered-to-all', of: 2 }, { parents: [m1.id] });
    const m3 = message(carol, 'Count me in. The forecast: https://weather.example.org/lake?day=sat', NOW - 40 * MIN, { state: 'delivered-to-all', of: 2 }, { parents: [m2.id] });
    const m4 = message(bob, 'I’ll drive. Leaving 8:00 from the station.', NOW - 12 * MIN, { state: 'delivered', acked: 1, of: 2, notYetOnline: ['Carol'] }, { parents: [m3.id], read: false });
    const m5 = message(carol, 'Can we make it 8:30?', NOW - 11 * MIN, { state: 'not-acked', missing: ['Bob'], text: 'Bob was online since and did not confirm getting it.' }, { parents: [m3.id], parentsDiffer: true, read: false });
    const m6 = message(me, '<img src=x onerror=alert(1)> is just text here', NOW - 4 * MIN, { state: 'at-relay' }, { parents: [m4.id, m5.id] });
    const m7 = message(me, 'See you all there!', NOW - 1 * MIN, { state: 'waiting-to-send', text: 'Waits for the network' }, { parents: [m6.id] });
    conversations.set('conv-trip' as ConversationId, {
      view: {
        id: 'conv-trip' as ConversationId,
        kind: 'group',
        name: 'Weekend trip',
        state: 'active',
        members: [
          member('Alice', true),
          member('Bob', false, { verification: 'verified' }),
          member('Carol', false, { presence: { state: 'last-seen', atMs: NOW - 9 * MIN } }),
          member('Erin Okafor-Lindqvist', false, { role: 'invited', presence: { state: 'unknown' } }),
        ],
        timeline: [
          notice('You made the group “Weekend trip” with Bob and Carol', NOW - 27 * 60 * MIN),
          m1,
          m2,
          m3,
          notice('Carol joined', NOW - 41 * MIN),
          m4,
          m5,
          m6,
          m7,
        ] as TimelineItem[],
        hasEarlier: false,
        draft: '',
        unread: 2,
        operations: [
          {
            id: 'op-1' as never,
            kind: 'add',
            state: 'waiting',
            text: 'Adding Erin Okafor-Lindqvist — waits for Erin to open Covey',
            targets: ['Erin Okafor-Lindqvist'],
            startedAtMs: NOW - 2 * MIN,
            expiresAtMs: NOW + 7 * 86_400_000,
            canCancel: true,
            canRetry: false,
          },
        ],
        canSend: true,
        sendBlocked: null,
        canManage: true,
        relay: location.origin,
      },
    });
    const dave = author('Dave', false, 'key-changed');
    conversations.set('conv-dave' as ConversationId, {
      view: {
        id: 'conv-dave' as ConversationId,
        kind: 'direct',
        name: 'Dave',
        state: 'active',
        members: [member('Alice', true), member('Dave', false, { verification: 'key-changed', presence: { state: 'last-seen', atMs: NOW - 3 * 60 * MIN } })],
        timeline: [
          message(dave, 'Did you get the photos?', NOW - 3 * 86_400_000, { state: 'delivered-to-all', of: 1 }),
          message(me, 'Yes, thanks!', NOW - 3 * 86_400_000 + 5 * MIN, { state: 'delivered-to-all', of: 1 }),
          notice('Dave’s safety number changed', NOW - 3 * 60 * MIN, 'danger', {
            whatToDo: 'Dave may have a new phone, or someone may be trying to listen in. Check the new number with Dave before you accept it.',
            action: { label: 'Check the safety number', command: 'verifyContact', contactId: 'c-dave' as ContactId },
          }),
        ],
        hasEarlier: false,
        draft: '',
        unread: 0,
        operations: [],
        canSend: false,
        sendBlocked: { text: 'Dave’s safety number changed. Check it with Dave, then accept the new key to send again.', action: { label: 'Accept the new key', command: 'acceptKeyChange', contactId: 'c-dave' as ContactId } },
        canManage: false,
        relay: location.origin,
      },
    });
    conversations.set('conv-old' as ConversationId, {
      view: {
        id: 'conv-old' as ConversationId,
        kind: 'group',
        name: 'Flat 4B',
        state: 'removed',
        members: [member('Alice', true), member('Bob')],
        timeline: [message(bob, 'Rent is due Friday', NOW - 9 * 86_400_000, { state: 'delivered-to-all', of: 2 }), notice('Bob removed you from the group', NOW - 8 * 86_400_000, 'warning')],
        hasEarlier: false,
        draft: '',
        unread: 0,
        operations: [
          { id: 'op-2' as never, kind: 'remove', state: 'failed', text: 'Could not remove Dave: the group did not answer in time', targets: ['Dave'], startedAtMs: NOW, expiresAtMs: null, canCancel: true, canRetry: true },
        ],
        canSend: false,
        sendBlocked: null,
        canManage: false,
        relay: location.origin,
      },
    });
    app = { ...app, unread: 2, pendingRequests: 1, invitations: 1 };
  }

  const conversationsView = () => ({
    conversations: [...conversations.values()]
      .map(({ view }) => {
        const last = [...view.timeline].reverse().find((item): item is MessageView => item.type === 'message') ?? null;
        return {
          id: view.id,
          kind: view.kind,
          name: view.name,
          state: view.state,
          lastMessage: last === null ? null : { authorName: last.author.name, mine: last.mine, text: last.text.split('\n')[0] ?? '', timeMs: last.timeMs },
          unread: view.unread,
          timeMs: last?.timeMs ?? NOW,
          operations: view.operations,
          needsAttention: view.sendBlocked !== null,
          draft: view.draft === '' ? null : view.draft,
          memberCount: view.members.length,
        };
      })
      .sort((a, b) => b.timeMs - a.timeMs),
    invitations,
  });

  const get = (id: unknown): FakeConversation => {
    const found = conversations.get(id as ConversationId);
    if (found === undefined) throw err('not-found', 'No such conversation');
    return found;
  };
  const update = (id: ConversationId, change: (view: ConversationView) => ConversationView) => {
    const found = get(id);
    found.view = change(found.view);
    notify();
  };

  const commands: Record<string, (p: Record<string, unknown>) => unknown> = {
    createIdentity: (p) => {
      app = { ...app, phase: 'ready', me: { displayName: String(p['displayName']), fingerprint: '05812 39017 44120 90531 11873 62290', homeRelay: location.origin } };
      return commands['myCard']!({});
    },
    myCard: () => ({ link: `${location.origin}/#c=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f`, qr: qr(), name: app.me?.displayName ?? '', fingerprint: app.me?.fingerprint ?? '', expiresAtMs: NOW + 30 * 86_400_000 }),
    reportPersistence: () => ({}),
    unlock: (p) => {
      if (p['passphrase'] !== 'correct horse') throw err('wrong-passphrase', 'That passphrase is not right. Check for typing mistakes and try again.');
      app = { ...app, phase: 'ready' };
      return {};
    },
    useEngineHere: () => {
      app = { ...app, phase: 'ready' };
      return {};
    },
    lock: () => {
      app = { ...app, phase: 'locked' };
      return {};
    },
    previewLink: (p) => {
      const text = String(p['text']);
      if (text.includes('#c=')) return { kind: 'contact', name: 'Grace', safetyNumber: SAFETY, relay: location.origin, existingContactId: null, isSelf: false };
      if (text.includes('#i=')) return { kind: 'invite', groupName: 'Choir', inviterName: 'Heidi', relay: location.origin, expiresAtMs: NOW + 86_400_000 };
      throw err('bad-link', 'That is not a Covey link. Ask your friend to send the link from Covey’s “Your link and code” page.');
    },
    addContact: () => {
      contacts = [...contacts, contact('c-grace', 'Grace', 'unverified', { state: 'requested' })];
      notify();
      return { contactId: 'c-grace' };
    },
    verifyContact: (p) => {
      contacts = contacts.map((c) => (c.id === p['contactId'] ? { ...c, verification: 'verified' } : c));
      notify();
      return {};
    },
    unverifyContact: (p) => {
      contacts = contacts.map((c) => (c.id === p['contactId'] ? { ...c, verification: 'unverified' } : c));
      notify();
      return {};
    },
    acceptKeyChange: (p) => {
      contacts = contacts.map((c) => (c.id === p['contactId'] ? { ...c, verification: 'unverified', keyChange: null } : c));
      if (conversations.has('conv-dave' as ConversationId)) update('conv-dave' as ConversationId, (v) => ({ ...v, canSend: true, sendBlocked: null }));
      notify();
      return {};
    },
    acceptContactRequest: () => {
      requests = [];
      contacts = [...contacts, contact('c-frank', 'Frank', 'unverified')];
      app = { ...app, pendingRequests: 0 };
      notify();
      return { contactId: 'c-frank' };
    },
    declineContactRequest: () => {
      requests = [];
      app = { ...app, pendingRequests: 0 };
      notify();
      return {};
    },
    startDirectChat: (p) => ({ conversationId: contacts.find((c) => c.id === p['contactId'])?.directConversationId ?? 'conv-trip' }),
    createGroup: (p) => {
      const id = `conv-${++counter}` as ConversationId;
      const names = (p['contactIds'] as string[]).map((cid) => contacts.find((c) => c.id === cid)?.name ?? '?');
      conversations.set(id, {
        view: {
          id,
          kind: 'group',
          name: String(p['name']),
          state: names.length === 0 ? 'waiting' : 'active',
          members: [member(app.me?.displayName ?? 'Me', true), ...names.map((name) => member(name, false, { role: 'invited', presence: { state: 'unknown' } }))],
          timeline: [notice(`You made the group “${String(p['name'])}”`, Date.now())],
          hasEarlier: false,
          draft: '',
          unread: 0,
          operations: [],
          canSend: true,
          sendBlocked: null,
          canManage: true,
          relay: location.origin,
        },
      });
      notify();
      return { conversationId: id };
    },
    send: (p) => {
      const id = p['conversationId'] as ConversationId;
      const sent = message(author(app.me?.displayName ?? 'Me', true), String(p['text']), Date.now(), { state: 'waiting-to-send', text: 'Sending…' });
      update(id, (v) => ({ ...v, timeline: [...v.timeline, sent] }));
      const setDelivery = (delivery: Delivery) => update(id, (v) => ({ ...v, timeline: v.timeline.map((item) => (item.id === sent.id ? { ...sent, delivery } : item)) }));
      setTimeout(() => setDelivery({ state: 'at-relay' }), 400);
      setTimeout(() => setDelivery({ state: 'delivered-to-all', of: 2 }), 1_500);
      return { messageId: sent.id };
    },
    markRead: (p) => {
      update(p['conversationId'] as ConversationId, (v) => ({ ...v, unread: 0, timeline: v.timeline.map((item) => (item.type === 'message' ? { ...item, read: true } : item)) }));
      app = { ...app, unread: [...conversations.values()].reduce((sum, c) => sum + c.view.unread, 0) };
      notify();
      return {};
    },
    saveDraft: (p) => {
      get(p['conversationId']).view = { ...get(p['conversationId']).view, draft: String(p['text']) };
      return {};
    },
    messageDetails: (p) => {
      const view = get(p['conversationId']).view;
      const messages = view.timeline.filter((item): item is MessageView => item.type === 'message');
      const target = messages.find((m) => m.id === p['messageId']);
      if (target === undefined) throw err('not-found', 'No such message');
      const byId = new Map(messages.map((m) => [m.id, m]));
      const ancestors = new Set<MessageRef>();
      const walk = (ids: readonly MessageRef[]) => ids.forEach((id) => !ancestors.has(id) && (ancestors.add(id), walk(byId.get(id)?.parents ?? [])));
      walk(target.parents);
      const others = view.members.filter((m) => !m.self && m.name !== target.author.name);
      return {
        id: target.id,
        parents: target.parents,
        ancestors: [...ancestors],
        readers: others.map((m) => ({
          name: m.name,
          member: m.member,
          state: target.delivery.state === 'not-acked' && target.delivery.missing.includes(m.name) ? 'not-acked' : target.delivery.state === 'delivered' && target.delivery.notYetOnline.includes(m.name) ? 'pending' : 'acked',
        })),
      };
    },
    acceptInvitation: () => {
      invitations = [];
      app = { ...app, invitations: 0 };
      notify();
      return { conversationId: 'conv-trip' };
    },
    declineInvitation: () => {
      invitations = [];
      app = { ...app, invitations: 0 };
      notify();
      return {};
    },
  };

  const viewOf = (view: string, params: Record<string, unknown>): unknown => {
    switch (view) {
      case 'app':
        return app;
      case 'contacts':
        return { contacts: [...contacts].sort((a, b) => a.name.localeCompare(b.name)), requests };
      case 'conversations':
        return conversationsView();
      case 'conversation':
        return get(params['conversationId']).view;
      default:
        throw err('bad-request', `no view ${view}`);
    }
  };

  return {
    async call(command, params) {
      const run = commands[command];
      if (run === undefined) throw err('invalid-state', `The development fake has no "${command}"`);
      return run((params ?? {}) as Record<string, unknown>);
    },
    watch(view, params, push, fail) {
      const send = () => {
        try {
          push(structuredClone(viewOf(view, (params ?? {}) as Record<string, unknown>)));
        } catch (error) {
          fail({ code: 'not-found', message: error instanceof Error ? error.message : String(error) });
        }
      };
      send();
      listeners.add(send);
      return () => listeners.delete(send);
    },
  };
}
