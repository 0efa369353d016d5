/**
 * The typed postMessage bridge (src/shared/worker-bridge.ts) over a real MessageChannel: calls
 * and their typed errors, timeouts, watches and their end, and malformed envelopes.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerError, type AppView, type ConversationId } from '../../src/shared/worker-api.js';
import { serveBridge, WorkerClient, type BridgeHandler, type BridgePort } from '../../src/shared/worker-bridge.js';

const opened: MessagePort[] = [];
afterEach(() => {
  for (const p of opened.splice(0)) p.close();
});

function pair(handler: BridgeHandler, timeoutMs = 2_000) {
  const channel = new MessageChannel();
  opened.push(channel.port1, channel.port2);
  const stop = serveBridge(channel.port2 as unknown as BridgePort, handler);
  const client = new WorkerClient(channel.port1 as unknown as BridgePort, { defaultTimeoutMs: timeoutMs });
  return { client, stop, raw: channel.port1 };
}

const appView = (unread: number): AppView => ({
  phase: 'ready',
  me: null,
  persistence: 'granted',
  passphraseSet: false,
  relays: [],
  queued: 0,
  unread,
  pendingRequests: 0,
  invitations: 0,
  failure: null,
});

describe('worker bridge', () => {
  it('answers calls with results and typed errors', async () => {
    const { client } = pair({
      async call(command, params) {
        if (command === 'send') return { messageId: `m:${(params as { text: string }).text}` };
        if (command === 'unlock') throw new WorkerError('wrong-passphrase', 'That passphrase is not right.');
        throw new Error('boom');
      },
      watch: () => () => {},
    });
    await expect(client.api.send({ conversationId: 'c1' as ConversationId, text: 'hi' })).resolves.toEqual({ messageId: 'm:hi' });
    const refused = await client.call('unlock', { passphrase: 'nope nope' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkerError);
    expect(refused).toMatchObject({ code: 'wrong-passphrase', message: 'That passphrase is not right.' });
    await expect(client.call('lock', {})).rejects.toMatchObject({ code: 'internal', message: 'internal error: boom' });
  });

  it('times a call out and ignores its late answer', async () => {
    let finish: (v: unknown) => void = () => {};
    const { client } = pair({ call: () => new Promise((r) => (finish = r)), watch: () => () => {} }, 50);
    await expect(client.call('lock', {})).rejects.toMatchObject({ code: 'timeout' });
    finish({});
    await expect(client.call('lock', {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('streams view values until unwatched', async () => {
    const pushes: ((v: unknown) => void)[] = [];
    let stopped = 0;
    const { client } = pair({
      call: async () => ({}),
      watch(view, _params, push) {
        expect(view).toBe('app');
        pushes.push(push);
        push(appView(0));
        return () => stopped++;
      },
    });
    const seen: number[] = [];
    const unwatch = client.watch('app', {}, (v) => seen.push(v.unread));
    await until(() => seen.length === 1);
    pushes[0]!(appView(3));
    await until(() => seen.length === 2);
    unwatch();
    await until(() => stopped === 1);
    pushes[0]!(appView(5)); // after unwatch: the server half dropped it
    await client.call('lock', {}); // a round trip, so a stray view would have arrived by now
    expect(seen).toEqual([0, 3]);
  });

  it('reports a view that fails or ends', async () => {
    let fail: (e: { code: 'not-found'; message: string }) => void = () => {};
    const { client } = pair({
      call: async () => ({}),
      watch(view, _params, _push, f) {
        if (view === 'nope') throw new WorkerError('bad-request', 'unknown view');
        fail = f;
        return () => {};
      },
    });
    const errors: WorkerError[] = [];
    client.watch('nope' as 'app', {}, () => {}, (e) => errors.push(e));
    client.watch('conversation', { conversationId: 'c' as ConversationId }, () => {}, (e) => errors.push(e));
    await until(() => errors.length === 1);
    fail({ code: 'not-found', message: 'That conversation was deleted.' });
    await until(() => errors.length === 2);
    expect(errors.map((e) => e.code)).toEqual(['bad-request', 'not-found']);
  });

  it('drops malformed envelopes and answers a bad command with bad-request', async () => {
    const calls: string[] = [];
    const { client, raw } = pair({
      call: async (command) => {
        calls.push(command);
        return {};
      },
      watch: () => () => {},
    });
    for (const junk of [null, 7, 'x', [], { t: 'call' }, { t: 'call', id: 'a' }, { t: 'nope', id: 1 }, { t: 'unwatch', id: 99 }]) raw.postMessage(junk);
    const answer = new Promise((resolve) => raw.once('message', resolve));
    raw.postMessage({ t: 'call', id: 123456, command: 42 });
    expect(await answer).toMatchObject({ t: 'result', id: 123456, ok: false, error: { code: 'bad-request' } });
    await client.call('lock', {});
    expect(calls).toEqual(['lock']);
  });

  it('fails pending calls on close', async () => {
    const { client } = pair({ call: () => new Promise(() => {}), watch: () => () => {} });
    const pending = client.call('lock', {});
    client.close();
    await expect(pending).rejects.toMatchObject({ code: 'invalid-state' });
    await expect(client.call('lock', {})).rejects.toMatchObject({ code: 'invalid-state' });
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
