/**
 * Issue 9 §2, "the worker can only pass crypto.getRandomValues": in a real client the engine's
 * randomness (here: the IV of every data packet it seals) is drawn from the platform's CSPRNG,
 * never from the CryptoProvider the worker core is given. A test double or a replayed generator
 * given as the provider (this test gives a seeded one) must not reach a group's packets.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { base64UrlDecode, utf8Decode } from '../../src/protocol/bytes.js';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId } from '../../src/shared/worker-api.js';
import type { FetchLike } from '../../src/worker/relay-client.js';
import { nodeFetch } from '../relay/helpers/relay-harness.js';
import { connect, identity, startTestRelay, testCrypto, TestClient, type ClientOptions } from './helpers/client-harness.js';

let relay: RunningRelay;
let clients: TestClient[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  vi.restoreAllMocks();
});
afterAll(async () => {
  await relay.close();
});

async function client(name: string, options: Partial<ClientOptions> = {}): Promise<TestClient> {
  const c = await TestClient.start(name, { relay, ...options });
  clients.push(c);
  await identity(c);
  return c;
}

/** The test provider with `randomBytes` replaced by a seeded generator (xorshift32) that records its draws. */
function seededProvider(base: CryptoProvider, draws: Uint8Array[]): CryptoProvider {
  let state = 0x2545f491;
  const randomBytes = (length: number): Uint8Array => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      out[i] = state & 0xff;
    }
    draws.push(out.slice());
    return out;
  };
  return new Proxy(base, {
    get(target, property) {
      if (property === 'randomBytes') return randomBytes;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => Buffer.from(haystack).includes(Buffer.from(needle));

describe('the engine randomness of a client', () => {
  it('is the platform CSPRNG, not the injected provider: every data IV is a crypto.getRandomValues draw', async () => {
    const platformDraws: Uint8Array[] = [];
    const original = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
    vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
      const out = original(array as never) as T;
      if (out !== null) platformDraws.push(new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice());
      return out;
    });
    const providerDraws: Uint8Array[] = [];
    const posted: string[] = [];
    const watching: FetchLike = async (url, init) => {
      if (init.method === 'POST' && url.endsWith('/events') && init.body !== undefined) posted.push(new TextDecoder().decode(init.body));
      return nodeFetch(url, init);
    };

    // Over HTTP only, where `watching` sees the posted packets.
    const alice = await client('Alice', { crypto: seededProvider(await testCrypto(), providerDraws), fetch: watching, socketPosts: false });
    const bob = await client('Bob');
    const [ab] = await connect(alice, bob);
    const { conversationId } = await alice.call('createGroup', { name: 'Seeded', contactIds: [ab as ContactId] });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
    await alice.until('active', () => alice.view(conversationId)?.state === 'active');
    for (const text of ['one', 'two', 'three']) await alice.call('send', { conversationId, text });
    await bob.until('three messages', () => (bob.texts(bobId).includes('three') ? true : undefined));

    const ivs = posted.flatMap((body) => {
      const packet = decodePacket(utf8Decode(base64UrlDecode((JSON.parse(body) as { packet: string }).packet)));
      return packet.kind === 'data' ? [packet.iv] : [];
    });
    expect(ivs.length).toBeGreaterThanOrEqual(3);
    // The seeded provider was in use (the worker draws its ids from it), so the check below means something.
    expect(providerDraws.length).toBeGreaterThan(0);
    for (const iv of ivs) {
      expect(platformDraws.some((draw) => contains(draw, iv))).toBe(true);
      expect(providerDraws.some((draw) => contains(draw, iv))).toBe(false);
    }
  });
});
