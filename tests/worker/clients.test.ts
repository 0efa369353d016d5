/**
 * Three UI-less clients (the real worker core) against a real relay (issue 10 "Tests"): exchange
 * contact links, create a group, invite both, chat, remove one, who then cannot read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import { isPublishedKeyPacket } from '../../src/protocol/packets/published-key.js';
import type { RunningRelay } from '../../src/relay/server.js';
import { base64UrlDecode } from '../../src/protocol/bytes.js';
import type { RelayEvent } from '../../src/shared/relay-api.js';
import type { ConversationId } from '../../src/shared/worker-api.js';
import { connect, identity, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
const clients: TestClient[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await relay.close();
});

/** Whether a channel packet is a key publication (QUIT_DOWN v2). */
function isPublication(packet: string): boolean {
  const text = new TextDecoder().decode(base64UrlDecode(packet));
  if (!text.startsWith('?mpENC')) return false; // join claims, rosters and pings share the channel
  const decoded = decodePacket(text);
  return decoded.kind === 'greeting' && isPublishedKeyPacket(decoded);
}

async function client(name: string): Promise<TestClient> {
  const c = await TestClient.start(name, { relay });
  clients.push(c);
  await identity(c);
  return c;
}

describe('three clients on one relay', () => {
  it('contacts, a group, chat, removal', async () => {
    const alice = await client('Alice');
    const bob = await client('Bob');
    const carol = await client('Carol');
    const [aliceBob] = await connect(alice, bob);
    const [aliceCarol] = await connect(alice, carol);

    const { conversationId } = await alice.call('createGroup', { name: 'Hiking club', contactIds: [aliceBob, aliceCarol] as never });
    const ops = await alice.until('two waiting adds', () => {
      const ops = alice.view(conversationId)?.operations ?? [];
      return ops.length === 2 ? ops : undefined;
    });
    expect(ops.map((o) => o.text).sort()).toEqual(['Adding Bob — waits for Bob to open Covey', 'Adding Carol — waits for Carol to open Covey']);

    const joined: Record<string, ConversationId> = {};
    for (const who of [bob, carol]) {
      const invitation = await who.until('the invitation', () => who.conversations?.invitations[0]);
      expect(invitation).toMatchObject({ groupName: 'Hiking club', inviterName: 'Alice', inviterIsContact: true });
      joined[who.name] = (await who.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
    }
    for (const who of [alice, bob, carol]) {
      const id = who === alice ? conversationId : joined[who.name]!;
      await who.until('three members', () => who.view(id)?.members.filter((m) => m.role === 'member').length === 3);
      await who.until('active', () => who.view(id)?.state === 'active');
    }
    expect(alice.view(conversationId)?.operations).toEqual([]);
    await bob.until('the group name', () => bob.view(joined.Bob!)?.name === 'Hiking club');

    await alice.call('send', { conversationId, text: 'hello all' });
    await bob.until('alice message', () => bob.texts(joined.Bob!).includes('hello all'));
    // Unread until read; the conversation list and the app badge agree.
    await bob.until('unread', () => bob.conversations?.conversations.find((c) => c.id === joined.Bob)?.unread === 1 && bob.app?.unread === 1);
    expect(bob.view(joined.Bob!)!.timeline.find((t) => t.type === 'message' && t.text === 'hello all')).toMatchObject({ read: false, mine: false });
    await bob.call('markRead', { conversationId: joined.Bob! });
    await bob.until('read', () => bob.app?.unread === 0 && bob.view(joined.Bob!)!.timeline.every((t) => t.type !== 'message' || t.read));
    await bob.call('send', { conversationId: joined.Bob!, text: 'hi from bob' });
    await carol.until('both messages', () => carol.texts(joined.Carol!).join('|') === 'hello all|hi from bob');
    const fromBob = carol.view(joined.Carol!)!.timeline.find((t) => t.type === 'message' && t.text === 'hi from bob');
    expect(fromBob).toMatchObject({ author: { name: 'Bob', verification: 'unverified' } });
    await alice.until('delivered to all', () => {
      const m = alice.view(conversationId)?.timeline.find((t) => t.type === 'message' && t.text === 'hello all');
      return m?.type === 'message' && m.delivery.state === 'delivered-to-all';
    });

    // mpENC §2.3(b): one after the other, nothing to say; concurrent messages, then a reply that
    // saw both, which says its real parents differ from the message above it.
    const shown = (c: TestClient, id: ConversationId) => c.view(id)!.timeline.flatMap((t) => (t.type === 'message' ? [t] : []));
    expect(shown(carol, joined.Carol!).map((m) => m.parentsDiffer)).toEqual([false, false]);
    await Promise.all([alice.call('send', { conversationId, text: 'at once A' }), bob.call('send', { conversationId: joined.Bob!, text: 'at once B' })]);
    await carol.until('both concurrent', () => carol.texts(joined.Carol!).length === 4);
    await carol.call('send', { conversationId: joined.Carol!, text: 'saw both' });
    await alice.until('the reply', () => alice.texts(conversationId).includes('saw both'));
    const reply = shown(alice, conversationId).at(-1)!;
    expect(reply.text).toBe('saw both');
    expect(reply.parents.length).toBe(2);
    expect(reply.parentsDiffer).toBe(true);
    const details = await alice.call('messageDetails', { conversationId, messageId: reply.id });
    expect(details.ancestors.length).toBe(4);
    expect(details.readers.map((r) => r.name).sort()).toEqual(['Bob', 'You']);

    const carolMember = alice.view(conversationId)!.members.find((m) => m.name === 'Carol')!;
    await alice.call('removeMember', { conversationId, member: carolMember.member });
    await carol.until('removed', () => carol.view(joined.Carol!)?.state === 'removed');
    await alice.until('two members', () => alice.view(conversationId)?.members.length === 2);
    await alice.call('send', { conversationId, text: 'carol cannot read this' });
    await bob.until('after removal', () => bob.texts(joined.Bob!).includes('carol cannot read this'));
    expect(carol.texts(joined.Carol!)).not.toContain('carol cannot read this');
    expect(carol.view(joined.Carol!)?.canSend).toBe(false);
    // Removed, not left: Bob is not told Carol left.
    const bobNotices = bob.view(joined.Bob!)!.timeline.flatMap((t) => (t.type === 'notice' ? [t.text] : []));
    expect(bobNotices).toContain('Carol is no longer in the group');
    expect(bobNotices).not.toContain('Carol left the group');
    // Rename, then Bob leaves: Alice is told, Bob's copy stays read-only, then he deletes it.
    await alice.call('renameGroup', { conversationId, name: 'Walking club' });
    await bob.until('renamed', () => bob.view(joined.Bob!)?.name === 'Walking club');
    expect(bob.view(joined.Bob!)!.timeline.some((t) => t.type === 'notice' && t.text === 'Alice renamed the group to “Walking club”')).toBe(true);
    // Dave is invited and has not answered when Bob leaves: Bob's copy then lists only Bob (it
    // listed Dave as a member, and dropped Alice, who is still there).
    const dave = await client('Dave');
    const [aliceDave] = await connect(alice, dave);
    await alice.call('inviteContacts', { conversationId, contactIds: [aliceDave] as never });
    await bob.until('Dave invited', () => bob.view(joined.Bob!)?.members.some((m) => m.name === 'Dave' && m.role === 'invited'));
    await bob.call('leaveConversation', { conversationId: joined.Bob! });
    await bob.until('left', () => bob.view(joined.Bob!)?.state === 'left');
    // Everyone acked Bob's FIN, so he published his signing key (deniability, mpENC §6.1.1), and
    // it reached the relay before his leave did (a non-member's post is refused).
    const bobs = bob.host.engine!.conversation(joined.Bob!);
    const isBobsLeave = (e: RelayEvent) => e.type === 'member-left' && e.member === bobs.self && e.by === bobs.self;
    // The view says 'left' once the session left; the relay's leave follows the outbox.
    const events = await bob.until('Bob out of the channel', async () => {
      const all = await relay.store.readEvents(bobs.channel, 0, 1_000, 1 << 22);
      return all.some(isBobsLeave) ? all : undefined;
    });
    const leftAt = events.findIndex(isBobsLeave);
    const publishedAt = events.findIndex((e) => e.type === 'packet' && e.author === bobs.self && isPublication(e.packet));
    expect(publishedAt).toBeGreaterThan(0);
    expect(publishedAt).toBeLessThan(leftAt);
    expect(bob.view(joined.Bob!)!.members.map((m) => m.name)).toEqual(['Bob (you)']);
    expect(carol.view(joined.Carol!)!.members.map((m) => m.name)).toEqual(['Carol (you)']);
    await alice.until('bob gone', () => alice.view(conversationId)!.timeline.some((t) => t.type === 'notice' && t.text === 'Bob left the group'));
    expect(bob.view(joined.Bob!)!.canSend).toBe(false);
    await expect(bob.call('send', { conversationId: joined.Bob!, text: 'too late' })).rejects.toMatchObject({ code: 'invalid-state' });
    await bob.call('deleteConversation', { conversationId: joined.Bob! });
    await bob.until('deleted', () => !bob.conversations!.conversations.some((c) => c.id === joined.Bob));
    expect(await bob.host.engine!.store.timeline(joined.Bob!, 10)).toEqual([]);
    for (const c of [alice, bob, carol, dave]) expect(c.errors).toEqual([]);
  });
});
