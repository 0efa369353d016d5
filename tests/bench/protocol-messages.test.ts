/**
 * Smoke tests of the messages benchmark (bench/protocol-messages.ts, bench/messages-fixture.ts)
 * on tiny sizes: messages go through real Sessions and arrive as sent, the catch-up queue has a
 * real DAG and is accepted whole, and the report has the shape the runner prints. No timing claims.
 */
import { describe, expect, it } from 'vitest';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { buildCatchUpQueue } from '../../bench/messages-fixture.js';
import {
  CATCH_UP_TABLE_HEADERS,
  coveyCatchUp,
  coveyMessages,
  MESSAGES_TABLE_HEADERS,
  runMessagesBench,
} from '../../bench/protocol-messages.js';
import { hybridProvider, providers, webCryptoProvider } from '../helpers/providers.js';

describe('messages benchmark', () => {
  for (const crypto of providers) {
    it(`${crypto.name}: round-robin messages are delivered as sent to every other member`, async () => {
      const r = await coveyMessages(crypto, 6, { members: 3, warmup: 2 });
      expect(r).toMatchObject({ provider: crypto.name, members: 3, count: 6, allDelivered: true });
      expect(r.send.cpuMs).toBeGreaterThanOrEqual(0);
      expect(r.receive.wallMs).toBeGreaterThan(0);
      expect(r.receivePerMessageMs.wallMs).toBeCloseTo(r.receive.wallMs / 12, 9);
    });
  }

  it('the catch-up queue is a DAG with merges, from every author, and is accepted whole', async () => {
    const queue = await buildCatchUpQueue(webCryptoProvider, 80, 5, 7);
    expect(queue.packets).toHaveLength(80);
    expect(new Set(queue.packets.map((p) => p.sender)).size).toBe(5);
    expect(queue.members).toHaveLength(6);
    expect(queue.packets.some((p) => p.sender === queue.reader)).toBe(false);
    // Concurrent writers: some message merges several heads.
    expect(queue.maxParents).toBeGreaterThan(1);
    for (const crypto of providers) {
      const r = await coveyCatchUp(crypto, queue);
      expect(r).toMatchObject({ provider: crypto.name, messages: 80, authors: 5, allAccepted: true });
      expect(r.msgsPerSec).toBeGreaterThan(0);
    }
  });

  it('catch-up says so when a message is missing (its descendants wait for it)', async () => {
    const queue = await buildCatchUpQueue(webCryptoProvider, 30, 3, 8);
    const gap = { ...queue, packets: queue.packets.filter((_, i) => i !== 10) };
    const r = await coveyCatchUp(nobleProvider, gap);
    expect(r.allAccepted).toBe(false);
  });

  it('runMessagesBench returns rows for every implementation and a JSON-safe summary', async () => {
    const report = await runMessagesBench({ messages: 3, warmup: 1, catchUpMessages: 20, catchUpAuthors: 2, providers: [nobleProvider] });
    expect(report.covey.map((r) => r.allDelivered)).toEqual([true]);
    expect(report.mls?.allDelivered).toBe(true);
    // One provider, no hybrid: its catch-up one event at a time and in receiveAll pages (no
    // scaling rows, which run on the hybrid provider only).
    expect(report.catchUp.map((c) => [c.messages, c.authors, c.page > 0, c.allAccepted])).toEqual([
      [20, 2, false, true],
      [20, 2, true, true],
    ]);
    // send and receive: one covey row per provider and one ts-mls row each.
    expect(report.rows.map((r) => r[1])).toEqual(['covey/noble', 'ts-mls', 'covey/noble', 'ts-mls']);
    for (const row of report.rows) expect(row).toHaveLength(MESSAGES_TABLE_HEADERS.length);
    for (const row of report.catchUpRows) expect(row).toHaveLength(CATCH_UP_TABLE_HEADERS.length);
    const json = JSON.parse(JSON.stringify(report.json)) as {
      messages: { coveyOverMls: Record<string, { send: number; receive: number }>; covey: Record<string, { ok: boolean }> };
      catchUp: { messages: number; results: Record<string, { oneByOne: { ok: boolean }; paged: { ok: boolean }; pagedOverVerifyCpu: number }> };
    };
    expect(json.messages.covey['noble']!.ok).toBe(true);
    expect(json.messages.coveyOverMls['noble']!.send).toBeGreaterThan(0);
    expect(json.catchUp.messages).toBe(20);
    expect(json.catchUp.results['noble']!.oneByOne.ok).toBe(true);
    expect(json.catchUp.results['noble']!.paged.ok).toBe(true);
    expect(json.catchUp.results['noble']!.pagedOverVerifyCpu).toBeGreaterThan(0);
    expect(report.mlsCatchUp).toBeUndefined();
  });

  it('adds ts-mls to the catch-up when asked', async () => {
    const report = await runMessagesBench({ messages: 1, warmup: 0, catchUpMessages: 12, catchUpAuthors: 3, providers: [nobleProvider], mlsCatchUp: true });
    expect(report.mlsCatchUp).toMatchObject({ messages: 12, authors: 3, allDelivered: true });
    // The provider's verify rate (the yardstick), its two catch-up rows, then ts-mls.
    expect(report.catchUpRows.map((r) => r[1])).toEqual(['covey/noble', 'covey/noble', 'covey/noble', 'ts-mls']);
    expect(report.catchUpRows[0]![0]).toMatch(/signature checks/);
    const results = (report.json['catchUp'] as { results: Record<string, { ok: boolean }> }).results;
    expect(results['ts-mls']!.ok).toBe(true);
  });

  it('the hybrid also catches up the whole queue with no look-ahead, between its two look-ahead runs, with the same result', async () => {
    const report = await runMessagesBench({ messages: 1, warmup: 0, catchUpMessages: 24, catchUpAuthors: 2, catchUpScale: [], providers: [hybridProvider], mls: false });
    // Paged runs of the whole queue: the provider's own (32 ahead), the scaling pair, and one with none.
    expect(report.catchUp.filter((c) => c.page > 0).map((c) => c.verifyAhead).sort((a, b) => a - b)).toEqual([0, 32, 32]);
    expect(report.catchUp.every((c) => c.allAccepted)).toBe(true);
    const row = report.catchUpRows.find((r) => /no look-ahead/.test(r[0]!));
    expect(row?.[0]).toMatch(/^24(\.0)? msgs, 2 authors, pages of 200, no look-ahead \(wall with 32 ahead: \d+\.\d\d×\)$/);
    const hybrid = (report.json['catchUp'] as { results: Record<string, { sequential?: { ok: boolean; overlappedOverSequentialWall: number } }> }).results['hybrid']!;
    expect(hybrid.sequential?.ok).toBe(true);
    expect(hybrid.sequential?.overlappedOverSequentialWall).toBeGreaterThan(0);
  });

  it('skips ts-mls and catch-up when asked', async () => {
    const report = await runMessagesBench({ messages: 2, warmup: 0, catchUpMessages: 0, providers: [nobleProvider], mls: false });
    expect(report.mls).toBeUndefined();
    expect(report.catchUp).toEqual([]);
    expect(report.rows.map((r) => r[5])).toEqual(['-', '-']);
    expect(report.json['catchUp']).toBeNull();
  });
});
