// Signature checks on worker threads (issue 13 "Scale-out"; RELAY_VERIFY_THREADS): the same
// answers as the inline check for valid, tampered and malformed signatures, batched under load,
// and a relay running with them refuses forged requests and serves honest ones, WebSocket too.
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyEd25519 } from '../../src/relay/auth.js';
import { startVerifierPool, verifyThreadsFromEnv, type SignatureVerifier } from '../../src/relay/signature-pool.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { MemberKey, ServerFrame } from '../../src/shared/relay-api.js';
import { RelayClient, RelayClientError } from '../../src/worker/relay-client.js';
import { makeMember, nodeFetch, NodeWebSocket, packetOf } from './helpers/relay-harness.js';

function keyPair(): { key: MemberKey; signNow: (message: Buffer) => Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const key = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url') as MemberKey;
  return { key, signNow: (message) => sign(null, message, privateKey) };
}

describe('signature threads', () => {
  const pools: SignatureVerifier[] = [];
  const relays: RunningRelay[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
    await Promise.all(relays.splice(0).map((relay) => relay.close()));
  });

  it('answers as the inline check does, for 600 mixed checks at once', async () => {
    const pool = startVerifierPool(2, () => undefined);
    pools.push(pool);
    const signers = [keyPair(), keyPair(), keyPair()];
    const cases = Array.from({ length: 600 }, (_, i) => {
      const signer = signers[i % signers.length] ?? signers[0]!;
      const message = Buffer.from(`message ${i}`);
      let signature = signer.signNow(message);
      let key = signer.key;
      const kind = i % 5;
      if (kind === 1) signature = Buffer.from(signature.map((byte, j) => (j === 10 ? byte ^ 1 : byte)));
      if (kind === 2) key = (signers[(i + 1) % signers.length] ?? signers[0]!).key;
      if (kind === 3) signature = signature.subarray(0, 63);
      if (kind === 4) key = 'not-a-key' as MemberKey;
      return { key, message, signature };
    });
    const answers = await Promise.all(cases.map(({ key, message, signature }) => pool.verify(key, message, signature)));
    expect(answers).toEqual(cases.map(({ key, message, signature }) => verifyEd25519(key, message, signature)));
    expect(answers.filter(Boolean)).toHaveLength(120);
  });

  it('is off unless RELAY_VERIFY_THREADS asks (unset: libuv thread pool, 0: event loop), and refuses nonsense', () => {
    expect(verifyThreadsFromEnv(undefined)).toBeUndefined();
    expect(verifyThreadsFromEnv('')).toBeUndefined();
    expect(verifyThreadsFromEnv('0')).toBe(0);
    expect(verifyThreadsFromEnv('2')).toBe(2);
    expect(() => verifyThreadsFromEnv('two')).toThrow(/RELAY_VERIFY_THREADS/);
    expect(() => verifyThreadsFromEnv('99')).toThrow(/RELAY_VERIFY_THREADS/);
  });

  it.each([
    ['1 worker thread', 1],
    ["libuv's thread pool (the default)", undefined],
    ['the event loop', 0],
  ])('serves a relay with checks on %s: honest requests and subscriptions pass, forged ones get 401', async (_where, verifyThreads) => {
    const relay = await startRelay({ store: openSqliteStore({ dataDir: ':memory:' }), port: 0, logLevel: 'silent', verifyThreads });
    relays.push(relay);
    const [a, b] = [makeMember(), makeMember()];
    const alice = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, signer: a, WebSocket: NodeWebSocket });
    const channel = (await alice.createChannel('group')).channelId;
    expect((await alice.post(channel, packetOf('hello'))).seq).toBe(2);
    // A key that signs with the wrong private key: its requests do not verify.
    const forger = new RelayClient({ baseUrl: relay.url, fetch: nodeFetch, signer: { publicKey: a.publicKey, sign: b.sign } });
    const refused = await forger.post(channel, packetOf('forged')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RelayClientError);
    expect((refused as RelayClientError).code).toBe('bad-signature');
    const frames: ServerFrame[] = [];
    const ws = new NodeWebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/ws`);
    ws.addEventListener('message', (event) => frames.push(JSON.parse(String(event.data)) as ServerFrame));
    await new Promise<void>((resolve) => ws.addEventListener('open', () => resolve()));
    ws.send(JSON.stringify(await alice.subscribeFrame(channel, 0)));
    await expect.poll(() => frames.filter((f) => f.type === 'event').length, { timeout: 5_000 }).toBe(2);
    ws.close();
  });
});
