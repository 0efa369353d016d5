/**
 * Presence while our own relay is out of reach (issue 10, async-groups rule 15): we hear no
 * heartbeats, so the conversation view shows nobody else online (the header counted "· 1 online"
 * from heartbeats heard before the connection dropped, while the delivery details said "not
 * online since"). What we last heard stays as "last seen".
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ConversationId } from '../../src/shared/worker-api.js';
import { connect, identity, startTestRelay, TestClient } from './helpers/client-harness.js';

const clients: TestClient[] = [];
let relay: RunningRelay | null = null;
afterAll(async () => {
  for (const c of clients) c.close();
  await relay?.close();
});

describe('presence while our relay is unreachable', () => {
  it('shows nobody else online; what it heard last becomes last seen', async () => {
    relay = await startTestRelay();
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay });
    clients.push(alice, bob);
    await identity(alice);
    await identity(bob);
    const [ab] = await connect(alice, bob);
    const { conversationId: aliceId } = await alice.call('createGroup', { name: 'Presence', contactIds: [ab] as never });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
    await bob.until('group active', () => bob.view(bobId)?.state === 'active' && alice.view(aliceId)?.state === 'active');
    await bob.call('send', { conversationId: bobId, text: 'hello' });
    const bobAt = (id: ConversationId) => alice.view(id)?.members.find((m) => m.name === 'Bob')?.presence;
    await alice.until('Bob online', () => bobAt(aliceId)?.state === 'online');

    // Alice's relay goes away (Bob's heartbeat is seconds old: fresh for minutes yet).
    await relay.close();
    await alice.until('relay offline', () => alice.app?.relays.every((r) => r.state !== 'connected'));
    const presence = await alice.until('Bob no longer online', () => (bobAt(aliceId)?.state === 'online' ? undefined : bobAt(aliceId)));
    expect(presence.state).toBe('last-seen');
    expect(alice.view(aliceId)!.members.filter((m) => !m.self && m.presence.state === 'online')).toEqual([]);
  }, 60_000);
});
