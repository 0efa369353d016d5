// Signature checks on worker threads (issue 13 "Scale-out"; RELAY_VERIFY_THREADS): the same
// answers as the inline check for valid, tampered and malformed signatures, batched under load,
// and a relay running with them refuses forged requests and serves honest ones, WebSocket too.
import { generateKeyPairSync, sign } from 'node:crypto';
import { fdatasync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Worker } from 'node:worker_threads';
import { idleInlineVerifier, verifyEd25519 } from '../../src/relay/auth.js';
import { startVerifierPool, verifyThreadsFromEnv, type SignatureVerifier } from '../../src/relay/signature-pool.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { openSqliteStore } from '../../src/relay/store/sqlite.js';
import type { MemberKey, ServerFrame } from '../../src/shared/relay-api.js';
import { RelayClient, RelayClientError } from '../../src/worker/relay-client.js';
import { framedEvents, makeMember, nodeFetch, NodeWebSocket, packetOf } from './helpers/relay-harness.js';

function makeClient(baseUrl: string, signer: ConstructorParameters<typeof RelayClient>[0]['signer']): RelayClient {
  return new RelayClient({ baseUrl, fetch: nodeFetch, ...(signer === undefined ? {} : { signer }) });
}

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

  it('reads RELAY_VERIFY_THREADS (unset: the default, 0: event loop, n: threads), and refuses nonsense', () => {
    expect(verifyThreadsFromEnv(undefined)).toBeUndefined();
    expect(verifyThreadsFromEnv('')).toBeUndefined();
    expect(verifyThreadsFromEnv('0')).toBe(0);
    expect(verifyThreadsFromEnv('2')).toBe(2);
    expect(() => verifyThreadsFromEnv('two')).toThrow(/RELAY_VERIFY_THREADS/);
    expect(() => verifyThreadsFromEnv('99')).toThrow(/RELAY_VERIFY_THREADS/);
  });

  it.each([
    ['1 worker thread', 1],
    ['the default (a worker thread, inline when idle)', undefined],
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
    await expect.poll(() => framedEvents(frames).length, { timeout: 5_000 }).toBe(2);
    ws.close();
  });

  it('by default checks a lone request on the event loop, and requests that come while another is served on a worker thread', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covey-idle-verify-'));
    // The store's fdatasync, held by the test while `hold` is set: a post then stays in flight.
    let hold = false;
    const held: Array<(error: Error | null) => void> = [];
    const syncFile = (fd: number, done: (error: Error | null) => void): void => {
      if (hold) held.push(done);
      else fdatasync(fd, done);
    };
    // Checks sent to signature threads: each message carries a batch (`keys`, one per check).
    const toThreads = vi.spyOn(Worker.prototype, 'postMessage');
    const checksOnThreads = (): number =>
      toThreads.mock.calls.reduce((sum, [message]) => sum + ((message as { keys?: unknown[] }).keys?.length ?? 0), 0);
    try {
      const relay = await startRelay({ store: openSqliteStore({ dataDir, syncFile }), port: 0, logLevel: 'silent' });
      relays.push(relay);
      const [a, b] = [makeMember(), makeMember()];
      const client = (signer: Parameters<typeof makeClient>[1]) => makeClient(relay.url, signer);
      const forgedSigner = { publicKey: a.publicKey, sign: b.sign };
      // One request at a time: nothing else is being served, so no trip to the pool.
      const channel = (await client(a).createChannel('group')).channelId;
      for (let i = 0; i < 3; i++) await client(a).post(channel, packetOf(`alone ${i}`));
      const forged = await client(forgedSigner).post(channel, packetOf('forged')).catch((error: unknown) => error);
      expect((forged as RelayClientError).code).toBe('bad-signature');
      expect(checksOnThreads()).toBe(0);
      // A post held in flight (its fdatasync waits): the requests that come meanwhile are checked
      // on the pool, with the same answers.
      hold = true;
      const first = client(a).post(channel, packetOf('held'));
      await expect.poll(() => held.length, { timeout: 5_000 }).toBe(1);
      expect(checksOnThreads()).toBe(0);
      const during = [client(a).post(channel, packetOf('during 1')), client(a).post(channel, packetOf('during 2'))];
      const forgedDuring = await client(forgedSigner).post(channel, packetOf('forged during')).catch((error: unknown) => error);
      expect((forgedDuring as RelayClientError).code).toBe('bad-signature');
      await expect.poll(checksOnThreads, { timeout: 5_000 }).toBe(3);
      hold = false;
      for (const done of held.splice(0)) done(null);
      expect((await first).seq).toBe(5);
      expect((await Promise.all(during)).map((r) => r.seq).sort()).toEqual([6, 7]);
      expect(checksOnThreads()).toBe(3);
    } finally {
      // A failed expectation must not leave the relay's close waiting for a held sync.
      hold = false;
      for (const done of held.splice(0)) done(null);
      toThreads.mockRestore();
      await Promise.all(relays.splice(0).map((relay) => relay.close()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('idle inline verifier: inline when idle, at most once per event-loop turn, else on the pool while busy or while checks are there', async () => {
    const signer = keyPair();
    const message = Buffer.from('signed text');
    const good = signer.signNow(message);
    const bad = Buffer.from(good.map((byte, j) => (j === 0 ? byte ^ 1 : byte)));
    const held: Array<() => void> = [];
    const offLoopCalls: boolean[] = [];
    const offLoop: SignatureVerifier = {
      verify: (key, m, s) => {
        const answer = verifyEd25519(key, m, s);
        offLoopCalls.push(answer);
        return new Promise((resolve) => held.push(() => resolve(answer)));
      },
      close: () => Promise.resolve(),
    };
    let busy = false;
    const verifier = idleInlineVerifier(offLoop, () => busy);
    const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    // Idle: inline, the same answers as verifyEd25519; a second check in the same turn goes to the pool.
    const first = verifier.verify(signer.key, message, good);
    const second = verifier.verify(signer.key, message, bad);
    expect(await first).toBe(true);
    expect(offLoopCalls).toEqual([false]);
    // While that check is on the pool, the next ones go there too, in later turns as well.
    await nextTurn();
    const third = verifier.verify(signer.key, message, good);
    expect(offLoopCalls).toEqual([false, true]);
    for (const release of held.splice(0)) release();
    expect([await second, await third]).toEqual([false, true]);
    // Pool empty, a new turn: inline again (a bad signature too).
    await nextTurn();
    expect(await verifier.verify(signer.key, message, bad)).toBe(false);
    expect(offLoopCalls).toHaveLength(2);
    // Other requests being served: the pool.
    await nextTurn();
    busy = true;
    const busyCheck = verifier.verify(signer.key, message, good);
    expect(offLoopCalls).toHaveLength(3);
    for (const release of held.splice(0)) release();
    expect(await busyCheck).toBe(true);
  });
});
