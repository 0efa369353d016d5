/**
 * The worker on the asynchronous engine (issue 10 with issue 8, shared/spec/async-groups.md):
 * delivery "k of n, m not yet online" (rule 14) and presence (rule 15) from the engine, a reader
 * removed before acking no longer counted, rule 7 at post time (a message sealed under a key that
 * an include replaced before it left is sealed again, so the newcomer reads it), an include that
 * waits for a newcomer who closed Covey shown as waiting (rule 9) and cancelled by a signed abort,
 * and a catch-up backlog processed as pages (receiveAll) with each message at its own relay time.
 * Real relays, fake-indexeddb, the real worker core.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Session } from '../../src/protocol/session/index.js';
import type { RunningRelay } from '../../src/relay/server.js';
import { startRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { ContactId, ConversationId, MessageView, NoticeView } from '../../src/shared/worker-api.js';
import type { FetchLike } from '../../src/worker/relay-client.js';
import { connect, identity, OPEN_LIMITS, Profile, TestClient } from './helpers/client-harness.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';

const original = Session.prototype.receiveAll;
/** What must never reach a person: a member key, or an engine code or kind as it is. */
const RAW = /[A-Za-z0-9_-]{40,}|\b(?:bad-signature|decrypt-failed|unknown-member|unexpected-packet|inconsistent-order|forged-source|key-mismatch|peer-alarm|member-left|left-channel|rejected-packet|not-fully-acked|start-over|late-message|sealed-after-moving-on|unconfirmed-author|subsession-closed|include|exclude)\b/;

/** One clock for the relay and every client, moved forward by tests (presence expiry, claims). */
let offsetMs = 0;
const now = () => Date.now() + offsetMs;
let relay: RunningRelay;
let clients: TestClient[] = [];

beforeAll(async () => {
  relay = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', limits: OPEN_LIMITS, now });
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  // The clock only moves forward (the relay's rate limits and freshness checks assume so).
});
afterAll(async () => {
  await relay.close();
});

async function client(name: string, options: { profile?: Profile; fetch?: FetchLike; socketPosts?: boolean; fresh?: boolean } = {}): Promise<TestClient> {
  const c = await TestClient.start(name, { relay, now, ...options });
  clients.push(c);
  if (options.fresh !== false) await identity(c);
  return c;
}

function close(c: TestClient): void {
  c.close();
  clients = clients.filter((x) => x !== c);
}

const message = (c: TestClient, id: ConversationId, text: string) =>
  c.view(id)?.timeline.find((t): t is MessageView => t.type === 'message' && t.text === text);
const notices = (c: TestClient, id: ConversationId) => (c.view(id)?.timeline ?? []).filter((t): t is NoticeView => t.type === 'notice');
const members = (c: TestClient, id: ConversationId) => (c.view(id)?.members ?? []).filter((m) => m.role === 'member').length;

/** Alice's group with the given contacts; each accepts and everyone sees every member. */
async function group(alice: TestClient, others: TestClient[]): Promise<Record<string, ConversationId>> {
  const contactIds: string[] = [];
  for (const o of others) contactIds.push((await connect(alice, o))[0]);
  const { conversationId } = await alice.call('createGroup', { name: 'Async', contactIds: contactIds as ContactId[] });
  const ids: Record<string, ConversationId> = { [alice.name]: conversationId };
  for (const who of others) {
    const invitation = await who.until('invitation', () => who.conversations?.invitations[0]);
    ids[who.name] = (await who.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
  }
  for (const who of [alice, ...others]) await who.until('every member', () => members(who, ids[who.name]!) === others.length + 1);
  return ids;
}

describe('the worker on the asynchronous engine', () => {
  it('says "delivered to 1 of 2, Carol not yet online", shows her last seen, and stops counting her once removed', async () => {
    const alice = await client('Alice');
    const bob = await client('Bob');
    const carol = await client('Carol');
    const ids = await group(alice, [bob, carol]);
    await bob.call('send', { conversationId: ids.Bob!, text: 'before Carol left' });
    await alice.until('Carol has it', () => message(alice, ids.Alice!, 'before Carol left') !== undefined && message(carol, ids.Carol!, 'before Carol left') !== undefined);
    close(carol);
    // Five minutes later (past the presence expiry), Carol has said nothing since.
    offsetMs = 5 * 60_000;
    await alice.call('send', { conversationId: ids.Alice!, text: 'while Carol sleeps' });
    await bob.until('the message', () => message(bob, ids.Bob!, 'while Carol sleeps') !== undefined);
    const pending = await alice.until('Bob acked, Carol pending', () => {
      const d = message(alice, ids.Alice!, 'while Carol sleeps')?.delivery;
      return d?.state === 'delivered' && d.acked === 1 ? d : undefined;
    });
    // Rule 14: a phone that slept is "not yet online", never a warning.
    expect(pending).toEqual({ state: 'delivered', acked: 1, of: 2, notYetOnline: ['Carol'] });
    const details = await alice.call('messageDetails', { conversationId: ids.Alice!, messageId: message(alice, ids.Alice!, 'while Carol sleeps')!.id });
    expect(details.readers.map((r) => [r.name, r.state]).sort()).toEqual([
      ['Bob', 'acked'],
      ['Carol', 'pending'],
    ]);
    // Rule 15: Bob is online (his ack just came); Carol was last seen before she closed Covey.
    const view = alice.view(ids.Alice!)!;
    expect(view.members.find((m) => m.name === 'Bob')?.presence).toEqual({ state: 'online' });
    const carolPresence = view.members.find((m) => m.name === 'Carol')?.presence;
    expect(carolPresence?.state).toBe('last-seen');
    expect(carolPresence?.state === 'last-seen' && carolPresence.atMs).toBeLessThan(now() - 4 * 60_000);

    // Carol is removed while asleep (only the initiator contributes to an exclude): she no
    // longer counts as a reader who has not got it.
    const carolRef = view.members.find((m) => m.name === 'Carol')!.member;
    await alice.call('removeMember', { conversationId: ids.Alice!, member: carolRef });
    await alice.until('two members', () => members(alice, ids.Alice!) === 2);
    await alice.until('delivered to all who remain', () => message(alice, ids.Alice!, 'while Carol sleeps')?.delivery.state === 'delivered-to-all');
    expect(message(alice, ids.Alice!, 'while Carol sleeps')?.delivery).toEqual({ state: 'delivered-to-all', of: 1 });
    // No notice names anyone by key or shows an engine code.
    for (const n of notices(alice, ids.Alice!)) expect(`${n.text} ${n.whatToDo ?? ''}`).not.toMatch(RAW);
  });

  it('seals a message again when an include replaced its key before it left (rule 7: the newcomer reads it)', async () => {
    let blocked = false;
    const blocking: FetchLike = (input, init) => {
      // The relay answers "busy" to Alice's posts: the message waits in her outbox.
      if (blocked && init.method === 'POST' && /\/v1\/channels\/[^/]+\/events$/.test(input)) return Promise.resolve(new Response('{"error":"busy","message":"busy"}', { status: 503 }));
      return nodeFetch(input, init);
    };
    // Over HTTP only, where `blocking` holds them (a post frame is refused the same way).
    const alice = await client('Alice', { fetch: blocking, socketPosts: false });
    const bob = await client('Bob');
    const carol = await client('Carol');
    const ids = await group(alice, [bob]);
    const [bobCarol] = await connect(bob, carol);
    blocked = true;
    await alice.call('send', { conversationId: ids.Alice!, text: 'sealed before Carol came' });
    await alice.until('waiting in the outbox', () => message(alice, ids.Alice!, 'sealed before Carol came')?.delivery.state === 'waiting-to-send');

    await bob.call('inviteContacts', { conversationId: ids.Bob!, contactIds: [bobCarol as ContactId] });
    const invitation = await carol.until('invitation', () => carol.conversations?.invitations[0]);
    ids.Carol = (await carol.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
    // Bob (the inviter) includes Carol; Alice contributes nothing and learns the new key by reading.
    await alice.until('Carol is a member for Alice', () => members(alice, ids.Alice!) === 3);
    blocked = false;
    await carol.until('Carol reads it', () => message(carol, ids.Carol!, 'sealed before Carol came') !== undefined, 60_000);
    await bob.until('Bob has it once', () => bob.texts(ids.Bob!).filter((t) => t === 'sealed before Carol came').length === 1);
    // Sent under the new key: nobody is told it was "sent before seeing" Carol join.
    expect(notices(bob, ids.Bob!).some((n) => n.text.includes('before seeing'))).toBe(false);
    expect(alice.texts(ids.Alice!).filter((t) => t === 'sealed before Carol came')).toHaveLength(1);
  });

  it('shows an include that waits for a newcomer who closed Covey, and cancels it with a signed abort (rule 9)', async () => {
    const aliceProfile = new Profile('Alice');
    let alice = await client('Alice', { profile: aliceProfile });
    const bob = await client('Bob');
    const [ab] = await connect(alice, bob);
    const { conversationId } = await alice.call('createGroup', { name: 'Waiting', contactIds: [ab as ContactId] });
    close(alice);
    // Bob accepts and claims while Alice is away, then closes Covey before she is back.
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    await bob.call('acceptInvitation', { invitationId: invitation.id });
    await bob.until('claim posted', () => bob.app?.queued === 0 && bob.conversations?.conversations[0]?.operations.some((o) => o.kind === 'join'));
    close(bob);
    alice = await client('Alice', { profile: aliceProfile, fresh: false });
    // Bob's claim is fresh: Alice includes him at once, and the key agreement waits for his turn.
    const session = () => alice.host.engine!.conversations.get(conversationId)!.session;
    await alice.until('the engine waits for Bob', () => (session().waiting()?.awaiting.length ?? 0) > 0);
    const waiting = await alice.until('the include waits for Bob', () => alice.view(conversationId)?.operations.find((o) => o.kind === 'add' && o.canCancel));
    expect(waiting).toMatchObject({ state: 'waiting', text: 'Adding Bob — waits for Bob to open Covey', canCancel: true });
    // The engine's wait limit (14 days), not the invitation's.
    expect(waiting.expiresAtMs! - now()).toBeGreaterThan(13 * 24 * 60 * 60_000);
    await alice.call('cancelOperation', { conversationId, operationId: waiting.id });
    await alice.until('cancelled', () => alice.view(conversationId)?.operations.length === 0 && notices(alice, conversationId).some((n) => n.text === 'You cancelled adding Bob'));
    expect(members(alice, conversationId)).toBe(1);
  });

  it('goes on without a newcomer who closed Covey: the others of the same include are added (rule 9)', async () => {
    const aliceProfile = new Profile('Alice');
    const bobProfile = new Profile('Bob');
    let alice = await client('Alice', { profile: aliceProfile });
    let bob = await client('Bob', { profile: bobProfile });
    const carol = await client('Carol');
    const [ab] = await connect(alice, bob);
    const [ac] = await connect(alice, carol);
    const { conversationId } = await alice.call('createGroup', { name: 'Without', contactIds: [ab, ac] as ContactId[] });
    close(alice);
    const ids: Record<string, ConversationId> = {};
    for (const who of [bob, carol]) {
      const invitation = await who.until('invitation', () => who.conversations?.invitations[0]);
      ids[who.name] = (await who.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
      const rt = who.host.engine!.conversations.get(ids[who.name]!)!;
      await who.until('claim posted and subscribed', () => who.app?.queued === 0 && rt.session.channelMembers().includes(rt.self as never));
    }
    close(carol);
    close(bob);
    // Five minutes later Carol's phone is still off (she is no longer shown online); Bob opens
    // Covey again (he says he is here), then Alice. Both claims are still fresh (10 minutes).
    offsetMs += 5 * 60_000;
    bob = await client('Bob', { profile: bobProfile, fresh: false });
    const bobRt = bob.host.engine!.conversations.get(ids.Bob!)!;
    await bob.until('Bob caught up', () => bobRt.meta.lastSeq > 0 && !bobRt.session.catchingUp() && bob.app?.queued === 0);
    alice = await client('Alice', { profile: aliceProfile, fresh: false });
    const session = () => alice.host.engine!.conversations.get(conversationId)!.session;
    await alice.until('the include waits for Carol', () => session().waiting()?.awaiting.some((m) => alice.host.engine!.nameOf(m as never, alice.host.engine!.conversations.get(conversationId)!) === 'Carol'), 40_000);
    const bobsAdd = await alice.until('go on without Carol', () => alice.view(conversationId)?.operations.find((o) => o.targets.includes('Bob') && o.canRetry));
    expect(bobsAdd).toMatchObject({ state: 'waiting', retryLabel: 'Go on without Carol' });
    expect(bobsAdd.text).toMatch(/^Adding Bob — waits for .*Carol.* to open Covey$/);
    await alice.call('retryOperation', { conversationId, operationId: bobsAdd.id });
    await alice.until('Bob added without Carol', () => members(alice, conversationId) === 2, 40_000);
    await bob.until('Bob is in', () => bob.view(ids.Bob!)?.state === 'active');
    // Carol's add waits for her again; nobody reported the abort as a failure.
    const carolsAdd = alice.view(conversationId)!.operations.find((o) => o.targets.includes('Carol'));
    expect(carolsAdd?.state).toBe('waiting');
    expect(notices(alice, conversationId).filter((n) => /did not go through|cancelled/.test(n.text))).toEqual([]);
    await bob.call('send', { conversationId: ids.Bob!, text: 'made it without Carol' });
    await alice.until('message', () => message(alice, conversationId, 'made it without Carol') !== undefined);
  });

  it('processes a backlog as pages, each message at the relay time of its own packet', async () => {
    const carolProfile = new Profile('Carol');
    const alice = await client('Alice');
    const bob = await client('Bob');
    const carol = await client('Carol', { profile: carolProfile });
    const ids = await group(alice, [bob, carol]);
    close(carol);
    const sentAt: number[] = [];
    for (let i = 0; i < 12; i++) {
      offsetMs += 60_000; // a minute apart
      const [from, id] = i % 2 === 0 ? [alice, ids.Alice!] : [bob, ids.Bob!];
      sentAt.push(now());
      await from.call('send', { conversationId: id, text: `backlog ${i}` });
      const other = from === alice ? bob : alice;
      await other.until(`backlog ${i}`, () => message(other, other === alice ? ids.Alice! : ids.Bob!, `backlog ${i}`) !== undefined);
    }
    // Watch every Session's receiveAll (installed before Carol's engine starts, so no page is missed).
    const calls: { session: Session; events: number }[] = [];
    const spy = vi.spyOn(Session.prototype, 'receiveAll').mockImplementation(function (this: Session, events, nowMs) {
      calls.push({ session: this, events: events.length });
      return spy.getMockImplementation() === undefined ? Promise.resolve([]) : original.call(this, events, nowMs);
    });
    let back: TestClient;
    try {
      back = await client('Carol', { profile: carolProfile, fresh: false });
      await back.until('the backlog', () => back.texts(ids.Carol!).filter((t) => t.startsWith('backlog')).length === 12);
    } finally {
      spy.mockRestore();
    }
    const session = back.host.engine!.conversations.get(ids.Carol!)!.session;
    expect(back.texts(ids.Carol!).filter((t) => t.startsWith('backlog'))).toEqual(sentAt.map((_, i) => `backlog ${i}`));
    // At least one page of several events went through receiveAll.
    expect(Math.max(0, ...calls.filter((c) => c.session === session).map((c) => c.events))).toBeGreaterThan(1);
    // Each message shows its own relay time (sent a minute apart), not its page's.
    const times = back.view(ids.Carol!)!.timeline.filter((t): t is MessageView => t.type === 'message' && t.text.startsWith('backlog')).map((m) => m.timeMs);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(50_000);
  });
});
