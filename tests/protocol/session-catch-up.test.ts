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

  it("checks ahead with the provider's first answer only, and checks a `false` from it again in order", async () => {
    const queue = await buildCatchUpQueue(webCryptoProvider, 120, 4, 3);
    const events: ChannelPacket[] = queue.packets.map((p, i) => ({ kind: 'packet', seq: i + 1, sender: p.sender, text: p.text, atMs: NOW + i }));
    const reader = queue.members.indexOf(queue.reader);
    const PAGE = 30;
    const pages = Math.ceil(events.length / PAGE);
    // `first`: what the look-ahead may ask (CryptoProvider.ed25519VerifyFirst); `full`: the whole check.
    const run = async (first: (p: Uint8Array, m: Uint8Array, s: Uint8Array) => Promise<boolean>) => {
      const calls = { first: 0, full: 0 };
      const crypto = {
        ...hybridProvider,
        ed25519Verify: (p: Uint8Array, m: Uint8Array, s: Uint8Array) => ((calls.full += 1), hybridProvider.ed25519Verify(p, m, s)),
        ed25519VerifyFirst: (p: Uint8Array, m: Uint8Array, s: Uint8Array) => ((calls.first += 1), first(p, m, s)),
      };
      const session = (await agreedSessions(crypto, queue.members, queue.label, NOW))[reader]!;
      const before = { ...calls };
      const shown: string[] = [];
      for (let i = 0; i < events.length; i += PAGE) {
        for (const e of await session.receiveAll(events.slice(i, i + PAGE), NOW + 60_000)) if (e.kind === 'deliver') shown.push(e.message.text);
      }
      return { shown, first: calls.first - before.first, full: calls.full - before.full };
    };
    // A platform that answers right: every packet but each page's first is checked ahead, and
    // none again (one check per message).
    const right = await run((p, m, s) => hybridProvider.ed25519Verify(p, m, s));
    expect(right.shown).toEqual(queue.texts);
    expect(right.first).toBe(events.length - pages);
    expect(right.full).toBe(pages);
    // A platform that refuses every key (its `false` is not the verdict): each packet is checked
    // again in order, in full, and every message is still accepted.
    const refusing = await run(async () => false);
    expect(refusing.shown).toEqual(queue.texts);
    expect(refusing.first).toBe(events.length - pages);
    expect(refusing.full).toBe(events.length);
  });
});
