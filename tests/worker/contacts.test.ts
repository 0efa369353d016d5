/**
 * Adding friends the way people do it (found in hands-on QA): a link pasted with the message it
 * came in, two friends who add each other at the same time, and where the "waiting" counts of the
 * app view point (requests under Contacts, group invitations under Chats).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId } from '../../src/shared/worker-api.js';
import { parseLinkText } from '../../src/worker/cards.js';
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

async function client(name: string): Promise<TestClient> {
  const c = await TestClient.start(name, { relay });
  clients.push(c);
  await identity(c);
  return c;
}

describe('links as people paste them', () => {
  const payload = Buffer.from(JSON.stringify({ v: 1, hello: 'there' })).toString('base64url');
  const link = `https://covey.example/#c=${payload}`;

  it.each([
    ['the link alone', link],
    ['the fragment alone', `c=${payload}`],
    ['with spaces and a line break around it', `  ${link}\n`],
    ['at the end of a sentence', `Add me on Covey: ${link}.`],
    ['inside a message', `Hi Bob! Here is my link ${link} — see you Saturday`],
    ['in angle brackets', `<${link}>`],
  ])('%s', (_what, text) => {
    expect(parseLinkText(text)).toEqual({ kind: 'c', value: { v: 1, hello: 'there' } });
  });

  it('a message with no link is still refused', () => {
    expect(() => parseLinkText('Hi Bob, add me: I will send the link later')).toThrow(/not a Covey link/);
  });
});

describe('adding contacts', () => {
  it('a card link pasted with its message adds the contact', async () => {
    const alice = await client('Alice');
    const bob = await client('Bob');
    const card = await bob.call('myCard', {});
    const { contactId } = await alice.call('addContact', { link: `Hi Alice, this is my Covey link: ${card.link}. Talk soon!` });
    const request = await bob.until('the request', () => bob.contacts?.requests.find((r) => r.name === 'Alice'));
    expect(request.existingContactId).toBeNull();
    await bob.call('acceptContactRequest', { requestId: request.id });
    await alice.until('Bob connected', () => alice.contacts?.contacts.find((c) => c.id === contactId && c.state === 'connected'));
  });

  it('two people who add each other at the same time are connected on both sides, with no request left over', async () => {
    const carol = await client('Carol');
    const dave = await client('Dave');
    const carolCard = await carol.call('myCard', {});
    const daveCard = await dave.call('myCard', {});
    // Carol adds Dave; Dave, before he sees her request, adds Carol from her link.
    await carol.call('addContact', { link: daveCard.link });
    await dave.until('Carol’s request', () => dave.contacts?.requests.find((r) => r.name === 'Carol'));
    expect(dave.app?.pendingRequests).toBe(1);
    const { contactId } = await dave.call('addContact', { link: carolCard.link });
    // Adding her answered her request: nothing waits under Contacts, and no "someone posing as
    // Carol" warning for a request from the very key just added.
    expect(dave.contacts?.requests).toEqual([]);
    await dave.until('no request counted', () => dave.app?.pendingRequests === 0);
    expect(dave.contacts?.contacts.find((c) => c.id === contactId)?.state).toBe('connected');
    await carol.until('Dave connected', () => carol.contacts?.contacts.find((c) => c.name === 'Dave' && c.state === 'connected'));
    expect(carol.contacts?.requests).toEqual([]);
  });

  it('a request from someone using a contact’s name with another key is flagged; invitations count under Chats', async () => {
    const erin = await client('Erin');
    const frank = await client('Frank');
    const fakeFrank = await client('Frank');
    const [erinFrank] = await connect(erin, frank);
    const fakeCard = await fakeFrank.call('myCard', {});
    await fakeFrank.call('addContact', { link: (await erin.call('myCard', {})).link });
    const request = await erin.until('the second Frank’s request', () => erin.contacts?.requests.find((r) => r.name === 'Frank'));
    expect(request.existingContactId).toBe(erinFrank as ContactId);
    expect(fakeCard.link).not.toBe((await frank.call('myCard', {})).link);

    // An invitation to a group is listed under Chats: it is not a contact request.
    const frankErin = frank.contacts!.contacts.find((c) => c.name === 'Erin')!.id;
    await frank.call('createGroup', { name: 'Climbing', contactIds: [frankErin] });
    await erin.until('the invitation', () => erin.conversations?.invitations.length === 1);
    await erin.until('counted as an invitation', () => erin.app?.invitations === 1);
    expect(erin.app?.pendingRequests).toBe(1);
  });
});
