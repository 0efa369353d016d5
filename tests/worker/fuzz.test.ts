/**
 * Fuzz (issue 10 "Tests"): the RPC surface with random commands and parameters, mutated card and
 * invite links, and hostile inbox contents (random bytes, and well-sealed messages with random or
 * damaged insides). Every refusal is a typed WorkerError (never 'internal'), and afterwards the
 * store and the client are intact: the same conversation still works.
 *
 * COVEY_FUZZ_RUNS scales the run counts (CI: 1).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64UrlEncode } from '../../src/protocol/bytes.js';
import type { RunningRelay } from '../../src/relay/server.js';
import { WorkerError, type ContactId, type ConversationId, type WorkerCommands } from '../../src/shared/worker-api.js';
import { RelayClient } from '../../src/worker/relay-client.js';
import { sealInboxMessage } from '../../src/worker/sealed-message.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { connect, identity, startTestRelay, testCrypto, TestClient } from './helpers/client-harness.js';

const SCALE = Number(process.env.COVEY_FUZZ_RUNS ?? 1);

let relay: RunningRelay;
let alice: TestClient;
let bob: TestClient;
let groupId: ConversationId;
let bobGroupId: ConversationId;
let aliceBob: ContactId;

beforeAll(async () => {
  relay = await startTestRelay();
  alice = await TestClient.start('Alice', { relay });
  bob = await TestClient.start('Bob', { relay });
  await identity(alice);
  await identity(bob);
  [aliceBob] = (await connect(alice, bob)) as [ContactId, string];
  groupId = (await alice.call('createGroup', { name: 'Fuzz', contactIds: [aliceBob] })).conversationId;
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  bobGroupId = (await bob.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
  await alice.until('active', () => alice.view(groupId)?.state === 'active');
});
afterAll(async () => {
  alice.close();
  bob.close();
  await relay.close();
});

/** Sends one message each way and checks it arrives: the clients still work. */
async function stillWorks(tag: string): Promise<void> {
  await alice.call('send', { conversationId: groupId, text: `alive ${tag}` });
  await bob.until(`alive ${tag}`, () => bob.texts(bobGroupId).includes(`alive ${tag}`));
}

const COMMANDS = [
  'createIdentity', 'setDisplayName', 'myCard', 'reportPersistence', 'setPassphrase', 'clearPassphrase', 'unlock', 'lock',
  'previewLink', 'addContact', 'acceptContactRequest', 'declineContactRequest', 'verifyContact', 'verifyContactByQr', 'unverifyContact',
  'acceptKeyChange', 'renameContact', 'removeContact', 'startDirectChat', 'createGroup', 'inviteContacts', 'createInviteLink',
  'openInviteLink', 'acceptInvitation', 'declineInvitation', 'send', 'retrySend', 'markRead', 'saveDraft', 'messageDetails',
  'removeMember', 'leaveConversation', 'renameGroup', 'cancelOperation', 'retryOperation', 'replaceOperation', 'deleteConversation',
  'pushServerKey', 'setPush', 'exportBackup', 'importBackup', 'noSuchCommand', '__proto__', 'constructor',
] as const satisfies readonly (keyof WorkerCommands | string)[];
/** Commands that would legitimately change what the check after the fuzz relies on. */
const DESTRUCTIVE = new Set(['removeContact', 'deleteConversation', 'leaveConversation', 'removeMember', 'setPassphrase', 'lock', 'declineInvitation', 'setPush']);

const junk = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
  fc.string({ minLength: 5000, maxLength: 20_000 }),
  fc.constantFrom('c1', '', 'p', 'https://evil.example/#c=AAAA', '#i=e30', '#c=' + 'A'.repeat(50)),
);

describe('fuzz', () => {
  it('RPC surface: random commands and parameters get typed errors; nothing breaks', async () => {
    const ids = () => [groupId, aliceBob, 'x', ''];
    const param = fc.oneof(junk, fc.constantFrom(...ids()));
    const keys = fc.constantFrom('conversationId', 'contactId', 'text', 'link', 'name', 'displayName', 'passphrase', 'current', 'member', 'messageId', 'operationId', 'requestId', 'invitationId', 'contactIds', 'granted', 'scanned', 'upTo', 'replacement', 'relay');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...COMMANDS), fc.oneof(fc.dictionary(keys, param, { maxKeys: 4 }), junk), async (command, params) => {
        if (DESTRUCTIVE.has(command)) return;
        try {
          await alice.host.call(command, params);
        } catch (error) {
          expect(error).toBeInstanceOf(WorkerError);
          expect((error as WorkerError).code, `${command} ${JSON.stringify(params)?.slice(0, 200)}: ${(error as Error).message}`).not.toBe('internal');
        }
      }),
      { numRuns: 300 * SCALE, seed: 42 },
    );
    expect(alice.errors).toEqual([]);
    await stillWorks('after rpc fuzz');
  });

  it('mutated card and invite links: bad-link (or another typed refusal), never a crash', async () => {
    const card = (await bob.call('myCard', {})).link;
    const invite = (await alice.call('createInviteLink', { conversationId: groupId })).link;
    const mutate = fc.tuple(fc.constantFrom(card, invite), fc.nat(), fc.integer({ min: 0, max: 3 }), fc.string({ maxLength: 3 }));
    await fc.assert(
      fc.asyncProperty(mutate, async ([link, at, how, insert]) => {
        const i = at % link.length;
        const mutated = how === 0 ? link.slice(0, i) : how === 1 ? link.slice(0, i) + insert + link.slice(i + 1) : how === 2 ? link.slice(0, i) + link.slice(i + 1) : link.slice(0, i) + insert + link.slice(i);
        for (const command of ['previewLink', 'addContact', 'openInviteLink'] as const) {
          const params = command === 'previewLink' ? { text: mutated } : { link: mutated };
          try {
            await alice.host.call(command, params);
          } catch (error) {
            expect(error).toBeInstanceOf(WorkerError);
            expect(['bad-link', 'bad-request', 'expired', 'own-card']).toContain((error as WorkerError).code);
          }
        }
      }),
      { numRuns: 150 * SCALE, seed: 7 },
    );
    await stillWorks('after link fuzz');
  });

  it('hostile inbox contents are refused with alerts; Bob is unchanged', async () => {
    const crypto = await testCrypto();
    const bobCard = bob.host.engine!.profile!.card;
    const raw = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch });
    const before = JSON.stringify([bob.contacts?.contacts, bob.conversations?.conversations.map((c) => [c.id, c.name, c.state])]);
    const alertsBefore = bob.app?.alerts?.length ?? 0;
    const seqBefore = bob.host.engine!.profile!.inbox.lastSeq;
    const seed = crypto.randomBytes(32);
    const from = alice.host.engine!.profile!.card;
    const inner = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.record({ type: fc.constantFrom('contact-request', 'invitation', 'contact-accept', 'nope'), body: fc.jsonValue({ maxDepth: 3 }) }).map((m) => ({ kind: 'message' as const, m })),
    );
    let deposits = 0;
    await fc.assert(
      fc.asyncProperty(inner, async (payload) => {
        let packet: Uint8Array;
        if (payload instanceof Uint8Array) packet = payload;
        else {
          // Properly sealed to Bob, signed by a stranger's key under Alice's card, or with junk.
          packet = await sealInboxMessage(crypto, seed, bobCard.hk, {
            v: 1,
            type: payload.m.type as 'invitation',
            mid: base64UrlEncode(crypto.randomBytes(16)),
            at: Date.now(),
            to: bobCard.ik,
            from,
            body: payload.m.body,
          });
        }
        if (packet.length === 0) return;
        await raw.deposit(bobCard.inbox, bobCard.deposit, packet);
        deposits++;
      }),
      { numRuns: 40 * SCALE, seed: 3 },
    );
    await bob.until('every deposit processed', () => bob.host.engine!.profile!.inbox.lastSeq >= seqBefore + deposits);
    expect((bob.app?.alerts?.length ?? 0) - alertsBefore).toBeGreaterThan(0);
    expect(JSON.stringify([bob.contacts?.contacts, bob.conversations?.conversations.map((c) => [c.id, c.name, c.state])])).toBe(before);
    expect(bob.conversations?.invitations).toEqual([]);
    expect(bob.errors).toEqual([]);
    await stillWorks('after inbox fuzz');
  });
});
