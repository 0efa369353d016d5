/**
 * Session.receiveAll (issue 8: catch-up): a page of relay events gives exactly what `receive`
 * one event at a time gives (effects and state), although it checks signatures ahead; a tampered
 * packet and a duplicate inside the page are treated the same way.
 */
import { describe, expect, it } from 'vitest';
import type { ChannelPacket } from '../../src/protocol/channel.js';
import type { SessionEffect } from '../../src/protocol/session/effects.js';
import { agreedSessions, buildCatchUpQueue } from '../../bench/messages-fixture.js';
import { DEFAULT_SESSION_CONFIG } from '../../src/protocol/session/config.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { hybridProvider, webCryptoProvider } from '../helpers/providers.js';

const NOW = 1_700_000_000_000;

function flip(text: string, at: number): string {
  const chars = [...text];
  chars[at] = chars[at] === 'A' ? 'B' : 'A';
  return chars.join('');
}

const withoutTimers = (effects: readonly SessionEffect[]) => effects.filter((e) => e.kind !== 'setTimer');

describe('Session.receiveAll', () => {
  it.each([
    ['hybrid', hybridProvider],
    ['noble', nobleProvider],
  ] as const)('%s: a page gives what receive gives event by event, tampered and repeated packets included', async (_name, crypto) => {
    const queue = await buildCatchUpQueue(webCryptoProvider, 160, 4, 3);
    const texts = queue.packets.map((p) => p.text);
    // A repeat of an early packet and a tampered copy of another, from a member, mid-page.
    texts.splice(90, 0, flip(queue.packets[40]!.text, queue.packets[40]!.text.length - 12));
    texts.splice(120, 0, queue.packets[10]!.text);
    const senders = queue.packets.map((p) => p.sender);
    senders.splice(90, 0, queue.packets[40]!.sender);
    senders.splice(120, 0, queue.packets[10]!.sender);
    const events: ChannelPacket[] = texts.map((text, i) => ({ kind: 'packet', seq: i + 1, sender: senders[i]!, text, atMs: NOW + i }));

    const reader = queue.members.indexOf(queue.reader);
    const one = (await agreedSessions(crypto, queue.members, queue.label, NOW))[reader]!;
    const sequential: SessionEffect[] = [];
    for (const e of events) sequential.push(...(await one.receive(e, NOW + 60_000)));
    // Any look-ahead (SessionConfig.verifyAhead: none, one, a few, the default, the whole page)
    // gives the same effects and state: only how many checks are in flight changes.
    for (const verifyAhead of [0, 1, 5, DEFAULT_SESSION_CONFIG.verifyAhead, 200]) {
      const config = { ...DEFAULT_SESSION_CONFIG, verifyAhead };
      const paged = (await agreedSessions(crypto, queue.members, queue.label, NOW, config))[reader]!;
      const batched: SessionEffect[] = [];
      for (let i = 0; i < events.length; i += 37) batched.push(...(await paged.receiveAll(events.slice(i, i + 37), NOW + 60_000)));

      expect(withoutTimers(batched)).toEqual(withoutTimers(sequential));
      expect(JSON.stringify(paged.snapshot())).toBe(JSON.stringify(one.snapshot()));
      // Every genuine message once, in queue order; the tampered copy never.
      expect(batched.flatMap((e) => (e.kind === 'deliver' ? [e.message.text] : []))).toEqual(queue.texts);
      expect(batched.some((e) => (e.kind === 'warn' && e.warning.kind === 'fork') || (e.kind === 'notice' && e.notice.kind === 'unreadable-dropped'))).toBe(true);
    }
  });
});
