/**
 * One engine per browser profile (issue 10 §1): a second tab shows 'engine-elsewhere' and runs no
 * engine; "use here" hands the engine over (the first tab then shows 'engine-elsewhere'); a tab
 * that does not answer has its lock stolen and its writes refused; closing the engine's tab lets
 * the waiting tab take over by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import { identity, Profile, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

describe('tabs of one profile', () => {
  it('runs one engine, hands it over on request, and takes over when the first tab closes', async () => {
    const profile = new Profile('Bob');
    const first = await TestClient.start('Bob', { relay, profile, locks: true });
    await identity(first);
    const { conversationId } = await first.call('createGroup', { name: 'Tabs', contactIds: [] });
    await first.call('send', { conversationId, text: 'from the first tab' });

    const second = await TestClient.start('Bob', { relay, profile, locks: true });
    await second.until('engine elsewhere', () => second.app?.phase === 'engine-elsewhere');
    expect(second.host.engine).toBeNull();
    await expect(second.call('myCard', {})).rejects.toMatchObject({ code: 'engine-elsewhere' });

    await second.call('useEngineHere', {});
    await second.until('ready here', () => second.app?.phase === 'ready');
    await first.until('engine elsewhere there', () => first.app?.phase === 'engine-elsewhere');
    expect(first.host.engine).toBeNull();
    await second.until('the message', () => second.texts(conversationId).includes('from the first tab'));
    await second.call('send', { conversationId, text: 'from the second tab' });

    // The first tab waits in the lock queue: closing the second gives it the engine back.
    second.close();
    await first.until('ready again', () => first.app?.phase === 'ready');
    await first.until('both messages', () => first.texts(conversationId).join('|') === 'from the first tab|from the second tab');
    first.close();
  });

  it('steals the lock from a tab that does not answer; the old engine cannot write', async () => {
    const profile = new Profile('Carol');
    const frozen = await TestClient.start('Carol', { relay, profile, locks: true });
    await identity(frozen);
    const { conversationId } = await frozen.call('createGroup', { name: 'Frozen', contactIds: [] });
    const oldEngine = frozen.host.engine!;
    // A frozen tab hears nothing: detach its hand-over listener by closing its channel side.
    (frozen.host as unknown as { channel: { close(): void } }).channel.close();

    const fresh = await TestClient.start('Carol', { relay, profile, locks: true });
    await fresh.until('engine elsewhere', () => fresh.app?.phase === 'engine-elsewhere');
    await fresh.call('useEngineHere', {});
    await fresh.until('ready', () => fresh.app?.phase === 'ready');
    // The frozen tab wakes and tries to write: its engine stopped when the lock was stolen, and
    // the store's epoch would refuse the write anyway (tests/store).
    await expect(oldEngine.saveDraft(conversationId, 'stale')).rejects.toThrow(/another tab took over|store is locked/);
    await fresh.call('saveDraft', { conversationId, text: 'current' });
    await fresh.until('draft', () => fresh.view(conversationId)?.draft === 'current');
    fresh.close();
    frozen.close();
  });
});
