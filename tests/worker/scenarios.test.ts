/**
 * Client scenarios against a real relay (issue 10 "Tests"): a member closed for the whole
 * conversation reads everything after reopening; a tampered invitation, a replayed contact
 * request and forged bindings are each refused with a clear error and change nothing else; a
 * raw dump of each profile holds no message text, name or group name.
 */
import { createECDH } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { base64UrlDecode, base64UrlEncode } from '../../src/protocol/bytes.js';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ChannelId } from '../../src/shared/relay-api.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { makeBinding, type Card } from '../../src/worker/cards.js';
import { RelayClient, type FetchLike } from '../../src/worker/relay-client.js';
import { sealInboxMessage } from '../../src/worker/sealed-message.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { plaintextIn } from '../store/dump.js';
import { connect, identity, Profile, startTestRelay, testCrypto, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
let clients: TestClient[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
});
afterAll(async () => {
  await relay.close();
});

async function client(name: string, options: { profile?: Profile; fetch?: FetchLike; fresh?: boolean } = {}): Promise<TestClient> {
  const c = await TestClient.start(name, { relay, ...options });
  clients.push(c);
  if (options.fresh !== false) await identity(c);
  return c;
}

/** Alice with Bob and Carol as contacts, and a group of the three everyone has joined. */
async function groupOfThree(bobProfile?: Profile, carolProfile?: Profile) {
  const alice = await client('Alice');
  const bob = await client('Bob', bobProfile === undefined ? {} : { profile: bobProfile });
  const carol = await client('Carol', carolProfile === undefined ? {} : { profile: carolProfile });
  const [ab] = await connect(alice, bob);
  const [ac] = await connect(alice, carol);
  const { conversationId } = await alice.call('createGroup', { name: 'Book club', contactIds: [ab, ac] as ContactId[] });
  const ids: Record<string, ConversationId> = { Alice: conversationId };
  for (const who of [bob, carol]) {
    const invitation = await who.until('invitation', () => who.conversations?.invitations[0]);
    ids[who.name] = (await who.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
  }
  for (const who of [alice, bob, carol]) await who.until('three members', () => who.view(ids[who.name]!)?.members.filter((m) => m.role === 'member').length === 3);
  return { alice, bob, carol, ids };
}

const messages = (c: TestClient, id: ConversationId) => c.texts(id);

/** A real uncompressed P-256 point, as a browser's push subscription holds. */
function p256PublicKey(): Uint8Array {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return new Uint8Array(ecdh.getPublicKey());
}

describe('client scenarios', () => {
  it('a member closed for the whole conversation reads everything after reopening, in order', async () => {
    const carolProfile = new Profile('Carol');
    const { alice, bob, carol, ids } = await groupOfThree(undefined, carolProfile);
    carol.close();
    clients = clients.filter((c) => c !== carol);
    const said: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [from, id] = i % 2 === 0 ? [alice, ids.Alice!] : [bob, ids.Bob!];
      const text = `message ${i} from ${from.name}`;
      said.push(text);
      await from.call('send', { conversationId: id, text });
      await (from === alice ? bob : alice).until(text, () => messages(from === alice ? bob : alice, from === alice ? ids.Bob! : ids.Alice!).includes(text));
    }
    // While Carol is away, delivery counts who has it (she closed Covey a moment ago, so she is
    // still shown online: "not yet online" needs her presence to expire, tests/worker/async-groups).
    const last = alice.view(ids.Alice!)!.timeline.filter((t) => t.type === 'message').at(-2)!;
    expect(last.type === 'message' && last.delivery).toMatchObject({ state: 'delivered', acked: 1, of: 2 });

    const back = await client('Carol', { profile: carolProfile, fresh: false });
    expect(back.host.engine?.phase).toBe('ready');
    await back.until('every message', () => messages(back, ids.Carol!).length === 6);
    expect(messages(back, ids.Carol!)).toEqual(said);
    await alice.until('delivered to all', () =>
      alice.view(ids.Alice!)!.timeline.every((t) => t.type !== 'message' || t.delivery.state === 'delivered-to-all'),
    );
    await back.call('send', { conversationId: ids.Carol!, text: 'back again' });
    await bob.until('carol is back', () => messages(bob, ids.Bob!).includes('back again'));
  });

  it('a raw dump of every profile holds no message text, display name or group name', async () => {
    const { alice, bob, carol, ids } = await groupOfThree();
    await alice.call('send', { conversationId: ids.Alice!, text: 'the password is swordfish' });
    await bob.until('message', () => messages(bob, ids.Bob!).includes('the password is swordfish'));
    await bob.call('saveDraft', { conversationId: ids.Bob!, text: 'half-written reply about swordfish' });
    // The chat list shows the draft itself (it showed "Draft: " and the last message).
    await bob.until('draft in the list', () => bob.conversations?.conversations.find((c) => c.id === ids.Bob)?.draft === 'half-written reply about swordfish' || undefined);
    await carol.until('message', () => messages(carol, ids.Carol!).includes('the password is swordfish'));
    for (const c of [alice, bob, carol]) {
      const dump = await c.host.engine!.store.rawDump();
      expect(Object.keys(dump).length).toBeGreaterThan(5);
      expect(plaintextIn(dump, ['the password is swordfish', 'half-written reply', 'Book club', 'Alice', 'Bob', 'Carol'])).toEqual([]);
    }
  });

  it('refuses a tampered invitation, a forged binding and a replayed contact request, changing nothing else', async () => {
    const deposits: { url: string; body: string }[] = [];
    const watching: FetchLike = async (url, init) => {
      if (url.endsWith('/deposit') && init.body !== undefined) deposits.push({ url, body: new TextDecoder().decode(init.body) });
      return nodeFetch(url, init);
    };
    const alice = await client('Alice', { fetch: watching });
    const bob = await client('Bob');
    const [aliceBob] = await connect(alice, bob);
    const request = deposits.find((d) => d.url.includes((bob.host.engine!.profile!.card as Card).inbox))!;
    expect(request).toBeDefined();
    const before = JSON.stringify([bob.contacts, bob.conversations]);
    const bobCard = bob.host.engine!.profile!.card;
    const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
    const alerts = () => bob.app?.alerts?.map((a) => a.text) ?? [];

    // 1. The same contact request again (the relay cannot tell; Bob can).
    const packet = base64UrlDecode((JSON.parse(request.body) as { packet: string }).packet);
    await raw.deposit(bobCard.inbox, bobCard.deposit, packet);
    await bob.until('replay alert', () => alerts().some((a) => a.includes('arrived a second time (a replay)')));

    // 2. A sealed invitation altered on the way.
    const crypto = await testCrypto();
    const engine = alice.host.engine!;
    const { conversationId } = await alice.call('createGroup', { name: 'Tamper test', contactIds: [] });
    const runtime = engine.conversations.get(conversationId)!;
    const own = await engine.ownBinding(runtime.record);
    const body = { kind: 'group', relay: relay.url, ch: runtime.channel, cap: 'c'.repeat(43), jk: base64UrlEncode(new Uint8Array(32)), id: 'i'.repeat(22), name: 'Tamper test', exp: Date.now() + 3600_000, members: [own] };
    const message = (b: unknown) => ({ v: 1 as const, type: 'invitation' as const, mid: base64UrlEncode(crypto.randomBytes(16)), at: Date.now(), to: bobCard.ik, from: engine.profile!.card, body: b });
    const sealed = await sealInboxMessage(crypto, engine.identitySeed!, bobCard.hk, message(body));
    sealed[sealed.length - 5]! ^= 0x40;
    await raw.deposit(bobCard.inbox, bobCard.deposit, sealed);
    await bob.until('tamper alert', () => alerts().some((a) => a.includes('does not decrypt: it was altered')));

    // 3. An invitation (validly sealed and signed by Alice) listing a forged binding: "Carol" bound
    //    to a channel key, signed by a key that is not Carol's identity.
    const mallorySeed = crypto.randomBytes(32);
    const forged = { ...(await makeBinding(crypto, mallorySeed, { name: 'Carol', ch: runtime.channel as ChannelId, mk: own.mk })), ik: base64UrlEncode(crypto.randomBytes(32)) };
    await raw.deposit(bobCard.inbox, bobCard.deposit, await sealInboxMessage(crypto, engine.identitySeed!, bobCard.hk, message({ ...body, members: [own, forged] })));
    await bob.until('forged binding alert', () => alerts().some((a) => a.includes('binding signature does not verify')));

    // 4. A message signed by someone else claiming to be Alice.
    const impostor = await sealInboxMessage(crypto, mallorySeed, bobCard.hk, message(body));
    await raw.deposit(bobCard.inbox, bobCard.deposit, impostor);
    await bob.until('forgery alert', () => alerts().some((a) => a.includes('claiming to be from Alice has a signature that does not verify')));

    expect(JSON.stringify([bob.contacts, bob.conversations])).toBe(before);
    expect(bob.conversations?.invitations).toEqual([]);
    expect(bob.contacts?.contacts.map((c) => c.name)).toEqual(['Alice']);
    // And Bob still works: a real invitation from Alice goes through.
    await alice.call('inviteContacts', { conversationId, contactIds: [aliceBob as ContactId] });
    await bob.until('the real invitation', () => bob.conversations?.invitations.length === 1);
  });

  it('refuses a join claim whose binding names another person, and includes the real one', async () => {
    const alice = await client('Alice');
    const bob = await client('Bob');
    const [aliceBob] = await connect(alice, bob);
    const { conversationId } = await alice.call('createGroup', { name: 'Claims', contactIds: [aliceBob as ContactId] });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    // Bob's device forwards the invitation's capability to Mallory, who joins as Bob.
    const record = bob.host.engine!.people.invitations.get(invitation.id)!;
    const crypto = await testCrypto();
    const mallory = crypto.randomBytes(32);
    const key = base64UrlEncode(await crypto.ed25519PublicKey(mallory));
    const signer = { publicKey: key as never, sign: (m: Uint8Array) => crypto.ed25519Sign(mallory, m) };
    const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
    await raw.join(record.body.ch, record.body.cap, signer);
    const { sealJoinClaim } = await import('../../src/worker/group-messages.js');
    const binding = await makeBinding(crypto, mallory, { name: 'Bob', ch: record.body.ch, mk: key as never });
    await raw.post(record.body.ch, new TextEncoder().encode(await sealJoinClaim(crypto, record.body.jk, record.body.ch, record.body.id, binding)), undefined, signer);
    await alice.until('impostor notice', () =>
      alice.view(conversationId)?.timeline.some((t) => t.type === 'notice' && t.text.includes('with another identity key; they were not added')),
    );
    expect(alice.view(conversationId)?.members.map((m) => m.role)).toEqual(['member', 'invited']);
    expect(alice.view(conversationId)?.state).toBe('waiting');
  });

  it('locks with a passphrase: phase locked, commands refused, wrong passphrase refused, unlock restores everything', async () => {
    const profile = new Profile('Dora');
    const dora = await client('Dora', { profile });
    const { conversationId } = await dora.call('createGroup', { name: 'Locked room', contactIds: [] });
    await dora.call('send', { conversationId, text: 'kept safe' });
    await dora.call('reportPersistence', { granted: false });
    await dora.until('persistence refused', () => dora.app?.persistence === 'refused');
    await expect(dora.call('setPassphrase', { passphrase: 'short' })).rejects.toMatchObject({ code: 'bad-request' });
    await expect(dora.call('lock', {})).rejects.toMatchObject({ code: 'invalid-state' });
    await dora.call('setPassphrase', { passphrase: 'a long enough passphrase' });
    await dora.until('passphrase set', () => dora.app?.passphraseSet === true);
    await dora.call('lock', {});
    await dora.until('locked', () => dora.app?.phase === 'locked');
    await expect(dora.call('myCard', {})).rejects.toMatchObject({ code: 'locked' });
    await expect(dora.call('unlock', { passphrase: 'not the passphrase' })).rejects.toMatchObject({ code: 'wrong-passphrase' });
    // A restart stays locked.
    dora.close();
    clients = clients.filter((c) => c !== dora);
    const again = await client('Dora', { profile, fresh: false });
    await again.until('locked after restart', () => again.app?.phase === 'locked');
    await again.call('unlock', { passphrase: 'a long enough passphrase' });
    await again.until('ready', () => again.app?.phase === 'ready');
    await again.until('the message', () => again.texts(conversationId).includes('kept safe'));
    expect(again.app?.persistence).toBe('refused');
    await again.call('clearPassphrase', { current: 'a long enough passphrase' });
    await again.until('no passphrase', () => again.app?.passphraseSet === false);
  });

  it('works across two relays: a group lives on its creator\'s relay, inboxes on their owners\'', async () => {
    const other = await startTestRelay();
    try {
      const alice = await client('Alice');
      const bob = await TestClient.start('Bob', { relay: other });
      clients.push(bob);
      await identity(bob);
      expect(bob.host.engine!.profile!.homeRelay).toBe(other.url);
      const [ab] = await connect(alice, bob);
      const { conversationId } = await alice.call('createGroup', { name: 'Two relays', contactIds: [ab as ContactId] });
      const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
      const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
      expect(bob.view(bobId)?.relay ?? (await bob.until('view', () => bob.view(bobId)))?.relay).toBe(relay.url);
      await alice.until('active', () => alice.view(conversationId)?.state === 'active');
      await bob.call('send', { conversationId: bobId, text: 'from the other relay' });
      await alice.until('message', () => alice.texts(conversationId).includes('from the other relay'));
      await bob.until('connected to both', () => bob.app?.relays.length === 2 && bob.app.relays.every((r) => r.state === 'connected'));
    } finally {
      for (const c of clients) c.close();
      clients = [];
      await other.close();
    }
  });

  it('renews its card before the deposit capability expires and sends it to its contacts', async () => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    const { startRelay } = await import('../../src/relay/server.js');
    const { openSqliteStore } = await import('../../src/relay/store/sqlite.js');
    const { OPEN_LIMITS } = await import('./helpers/client-harness.js');
    const timed = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', limits: OPEN_LIMITS, now });
    try {
      const alice = await TestClient.start('Alice', { relay: timed, now });
      const bob = await TestClient.start('Bob', { relay: timed, now });
      clients.push(alice, bob);
      await identity(alice);
      await identity(bob);
      const [, bobAlice] = await connect(alice, bob);
      const before = (await alice.call('myCard', {})).expiresAtMs;
      offsetMs = 24 * 24 * 3600_000; // 24 days on: 6 left, under the 7-day renewal threshold
      const renewed = await alice.call('myCard', {});
      expect(renewed.expiresAtMs).toBeGreaterThan(before);
      await bob.until('the renewed card', () => bob.host.engine!.people.contacts.get(bobAlice as never)?.card.exp === renewed.expiresAtMs);
      // Bob can still reach Alice after the old capability expired.
      offsetMs = 31 * 24 * 3600_000;
      const { conversationId } = await bob.call('createGroup', { name: 'Still reachable', contactIds: [] });
      await bob.call('inviteContacts', { conversationId, contactIds: [bobAlice as ContactId] });
      await alice.until('the invitation', () => alice.conversations?.invitations.some((i) => i.groupName === 'Still reachable'));
    } finally {
      for (const c of clients) c.close();
      clients = [];
      await timed.close();
    }
  });

  it('registers a push subscription in its home relay channels, and removes it', async () => {
    const erin = await client('Erin');
    const { conversationId } = await erin.call('createGroup', { name: 'Pushy', contactIds: [] });
    const { publicKey, relay: home } = await erin.call('pushServerKey', {});
    expect(home).toBe(relay.url);
    expect(publicKey).toMatch(/^[A-Za-z0-9_-]{87}$/);
    const subscription = { endpoint: 'https://fcm.googleapis.com/fcm/send/covey-test', keys: { p256dh: base64UrlEncode(p256PublicKey()), auth: base64UrlEncode(new Uint8Array(16)) } };
    await expect(erin.call('setPush', { subscription: { ...subscription, endpoint: 'http://example.com/x' } })).rejects.toMatchObject({ code: 'bad-request' });
    expect(await erin.call('setPush', { subscription })).toEqual({ channels: 2 });
    await erin.until('push on', () => erin.app?.push === 'on');
    const { conversationId: second } = await erin.call('createGroup', { name: 'Pushy too', contactIds: [] });
    expect(second).not.toBe(conversationId);
    expect(await erin.call('setPush', { subscription: null })).toEqual({ channels: 3 });
    await erin.until('push off', () => erin.app?.push === 'off');
  });

  it('adds a joiner who accepted while every member was away, once both are online (rule 10)', async () => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    const { startRelay } = await import('../../src/relay/server.js');
    const { openSqliteStore } = await import('../../src/relay/store/sqlite.js');
    const { OPEN_LIMITS } = await import('./helpers/client-harness.js');
    const timed = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', limits: OPEN_LIMITS, now });
    try {
      const aliceProfile = new Profile('Alice');
      let alice = await TestClient.start('Alice', { relay: timed, now, profile: aliceProfile });
      const bob = await TestClient.start('Bob', { relay: timed, now });
      clients.push(alice, bob);
      await identity(alice);
      await identity(bob);
      const [ab] = await connect(alice, bob);
      const { conversationId } = await alice.call('createGroup', { name: 'Away', contactIds: [ab as ContactId] });
      alice.close();
      const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
      const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
      await bob.until('waiting', () => bob.view(bobId)?.operations.some((o) => o.kind === 'join'));
      // Before the clock moves: Bob's claim is at the relay (stamped now, so stale later) and his
      // subscription is confirmed (he processed his own join). Moving the clock while either was
      // in flight tested a different story (a claim fresh after all; a subscribe refused as
      // stale), and made this test fail under load.
      const bobRuntime = bob.host.engine!.conversations.get(bobId)!;
      await bob.until('claim posted and subscribed', () => bob.app?.queued === 0 && bobRuntime.session.channelMembers().includes(bobRuntime.self as never));
      offsetMs = 30 * 60_000; // Alice opens Covey half an hour later; Bob's claim is stale by then
      alice = await TestClient.start('Alice', { relay: timed, now, profile: aliceProfile });
      clients.push(alice);
      await alice.until('Bob added', () => alice.view(conversationId)?.members.filter((m) => m.role === 'member').length === 2);
      await bob.until('active', () => bob.view(bobId)?.state === 'active');
      await bob.call('send', { conversationId: bobId, text: 'made it' });
      await alice.until('message', () => alice.texts(conversationId).includes('made it'));
    } finally {
      for (const c of clients) c.close();
      clients = [];
      await timed.close();
    }
  });

  it('exports an encrypted backup and restores identity, contacts and history on an empty device', async () => {
    const alice = await client('Alice');
    const bob = await client('Bob');
    const [ab, ba] = await connect(alice, bob);
    await alice.call('verifyContact', { contactId: ab as ContactId });
    const { conversationId } = await alice.call('createGroup', { name: 'Before the loss', contactIds: [ab as ContactId] });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
    await alice.until('active', () => alice.view(conversationId)?.state === 'active');
    await bob.call('send', { conversationId: bobId, text: 'remember this' });
    await alice.until('message', () => alice.texts(conversationId).includes('remember this'));
    const fingerprint = alice.app!.me!.fingerprint;

    const { fileName, text } = await alice.call('exportBackup', { passphrase: 'backup passphrase' });
    expect(fileName).toMatch(/^covey-backup-\d{4}-\d{2}-\d{2}\.txt$/);
    expect(plaintextIn(text, ['remember this', 'Before the loss', 'Alice', 'Bob'])).toEqual([]);
    alice.close();

    const fresh = await client('Alice', { fresh: false });
    await fresh.until('first run', () => fresh.app?.phase === 'no-identity');
    await expect(fresh.call('importBackup', { text, passphrase: 'not it at all' })).rejects.toMatchObject({ code: 'wrong-passphrase' });
    await expect(fresh.call('importBackup', { text: 'hello', passphrase: 'backup passphrase' })).rejects.toMatchObject({ code: 'bad-request' });
    await fresh.call('importBackup', { text, passphrase: 'backup passphrase' });
    await fresh.until('ready', () => fresh.app?.phase === 'ready');
    expect(fresh.app!.me!.fingerprint).toBe(fingerprint);
    await expect(fresh.call('importBackup', { text, passphrase: 'backup passphrase' })).rejects.toMatchObject({ code: 'invalid-state' });
    await fresh.until('contacts', () => fresh.contacts?.contacts.find((c) => c.name === 'Bob' && c.verification === 'verified'));
    await fresh.until('history', () => fresh.texts(conversationId).includes('remember this'));
    const view = fresh.view(conversationId)!;
    expect(view.state).toBe('left');
    expect(view.timeline.at(-1)).toMatchObject({ type: 'notice', whatToDo: 'To take part again, ask a member to invite you.' });
    // Bob sees the same person (no key change) and can invite her again.
    const { conversationId: again } = await bob.call('createGroup', { name: 'After the loss', contactIds: [ba as ContactId] });
    const reinvite = await fresh.until('the new invitation', () => fresh.conversations?.invitations.find((i) => i.groupName === 'After the loss'));
    const { conversationId: freshAgain } = await fresh.call('acceptInvitation', { invitationId: reinvite.id });
    await bob.until('included', () => bob.view(again)?.state === 'active');
    await fresh.call('send', { conversationId: freshAgain, text: 'back in' });
    await bob.until('hello again', () => bob.texts(again).includes('back in'));
    expect(bob.contacts?.contacts.find((c) => c.name === 'Alice')?.verification).not.toBe('key-changed');
  });
});
