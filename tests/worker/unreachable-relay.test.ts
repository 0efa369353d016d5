/**
 * A relay out of reach (issue 10: clear errors): the person gets the typed 'offline' error in
 * words they understand, and the log keeps the reason fetch hides in its `cause`, so a refused
 * connection, a reset and a DNS failure can be told apart in a bug report.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { FetchLike } from '../../src/worker/relay-client.js';
import { causeChain } from '../../src/worker/engine.js';
import { identity, startTestRelay, TestClient } from './helpers/client-harness.js';

const clients: TestClient[] = [];
let relay: RunningRelay | null = null;
afterAll(async () => {
  for (const c of clients) c.close();
  await relay?.close();
});

describe('a relay out of reach', () => {
  it("fails with 'offline' and logs the underlying cause", async () => {
    relay = await startTestRelay();
    let reachable = true;
    const refused = () => new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    const fetchOrRefuse: FetchLike = (input, init) => (reachable ? fetch(input, init as RequestInit) : Promise.reject(refused()));
    const alice = await TestClient.start('Alice', { relay, fetch: fetchOrRefuse });
    clients.push(alice);
    await identity(alice);
    // (The chat list is pushed once the engine is ready, nothing before it.)
    const before = (await alice.until('the chat list', () => alice.conversations)).conversations.length;

    reachable = false;
    const error = await alice.call('createGroup', { name: 'Unreached', contactIds: [] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'offline' });
    expect(String((error as Error).message)).toContain(relay.url);
    expect(alice.warnings.some((w) => w.includes('fetch failed') && w.includes('ECONNREFUSED'))).toBe(true);
    expect(alice.conversations?.conversations.length).toBe(before);
  }, 30_000);

  it('names each cause once, and stops on a cycle', () => {
    const inner = new Error('socket hang up');
    const outer = new TypeError('fetch failed', { cause: inner });
    expect(causeChain(outer)).toBe('TypeError: fetch failed ← Error: socket hang up');
    expect(causeChain('plain')).toBe('plain');
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(causeChain(a).split(' ← ')).toHaveLength(4);
  });
});
