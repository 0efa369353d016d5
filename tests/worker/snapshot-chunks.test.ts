/**
 * Session snapshots stored in chunks (src/worker/snapshot-chunks.ts): the reassembled snapshot is
 * exactly the original; each step writes only the tail and new chunks; a rewritten history is
 * written again; and a real conversation longer than several chunks survives a restart.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SessionSnapshot } from '../../src/protocol/session/index.js';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { ClientStore } from '../../src/store/client-store.js';
import { CLIENT_DB_VERSION } from '../../src/store/schema.js';
import { createKeys, unlockKeys } from '../../src/store/vault.js';
import { SNAPSHOT_CHUNK_ENTRIES, SNAPSHOT_CHUNK_MESSAGES, SnapshotChunks, type StoredSnapshot } from '../../src/worker/snapshot-chunks.js';
import { connect, identity, Profile, startTestRelay, TestClient } from './helpers/client-harness.js';

function fakeSnapshot(counts: number[], tag = 'm'): SessionSnapshot {
  return {
    version: 1,
    self: 'me',
    subsessions: counts.map((n, index) => ({
      index,
      messages: Array.from({ length: n }, (_, i) => ({ id: `${tag}${index}-${i}`, author: 'a', parents: [], body: { type: 'payload', text: `text ${i}` } })),
      acks: { tracked: [] },
    })),
    membership: { m: 1 },
  } as unknown as SessionSnapshot;
}

/** A snapshot whose ack monitors list `acked` fully acknowledged messages and their relay orders (and a few top-level fields). */
function withAckLists(snapshot: SessionSnapshot, acked: number[], tag = 'k'): SessionSnapshot {
  return {
    ...snapshot,
    subsessions: snapshot.subsessions.map((sub, i) => ({
      ...sub,
      acks: {
        ...sub.acks,
        fullyAcked: Array.from({ length: acked[i]! }, (_, k) => `${tag}${i}-${k}`),
        orders: Array.from({ length: acked[i]! }, (_, k) => [`${tag}${i}-${k}`, 10 + k]),
        reacks: [['x', 1]],
        // Top-level fields pass through as they are (AckMonitorSnapshot.scanned, resendFloorMs).
        scanned: [['b', 'a', 2]],
        resendFloorMs: 1_234,
      },
    })),
  } as unknown as SessionSnapshot;
}

async function store() {
  const s = await ClientStore.open(new IDBFactory());
  const { record, dataKey } = await createKeys();
  await s.putKeys(record);
  s.setDataKey(dataKey);
  return s;
}

describe('snapshot chunks', () => {
  it('round-trips exactly and writes each chunk once', async () => {
    const s = await store();
    const writer = new SnapshotChunks('c1');
    const chunkWrites: number[] = [];
    let stored;
    for (const counts of [[3], [SNAPSHOT_CHUNK_MESSAGES + 1], [2 * SNAPSHOT_CHUNK_MESSAGES + 5, 7], [2 * SNAPSHOT_CHUNK_MESSAGES + 6, SNAPSHOT_CHUNK_MESSAGES]]) {
      const snapshot = fakeSnapshot(counts);
      const batch = s.batch();
      stored = writer.split(snapshot, batch);
      batch.put('sessions', 'c1', stored);
      await s.commit(batch);
      chunkWrites.push(batch.writes.filter((w) => w.store === 'sessionChunks').length);
      expect(stored.subsessions.every((sub) => sub.messages.length < SNAPSHOT_CHUNK_MESSAGES)).toBe(true);
      const again = await new SnapshotChunks('c1').join(s, (await s.get('sessions', 'c1'))!);
      expect(again).toEqual(snapshot);
    }
    expect(chunkWrites).toEqual([0, 1, 1, 1]);
    s.close();
  });

  it('chunks the ack monitor lists too: the session record stays small, the snapshot round-trips', async () => {
    const s = await store();
    const writer = new SnapshotChunks('c3');
    const perStep: number[] = [];
    for (const acked of [[5], [SNAPSHOT_CHUNK_ENTRIES], [SNAPSHOT_CHUNK_ENTRIES + 3], [3 * SNAPSHOT_CHUNK_ENTRIES + 1]]) {
      const snapshot = withAckLists(fakeSnapshot([3]), acked);
      const batch = s.batch();
      const stored = writer.split(snapshot, batch);
      batch.put('sessions', 'c3', stored);
      await s.commit(batch);
      perStep.push(batch.writes.filter((w) => w.store === 'sessionChunks').length);
      const acks = stored.subsessions[0]!.acks;
      expect(acks.fullyAcked.length).toBeLessThan(SNAPSHOT_CHUNK_ENTRIES);
      expect(acks.orders.length).toBeLessThan(SNAPSHOT_CHUNK_ENTRIES);
      expect(await new SnapshotChunks('c3').join(s, (await s.get('sessions', 'c3'))!)).toEqual(snapshot);
    }
    // Each list's chunk is written once, when it fills (two lists: two writes per filled chunk).
    expect(perStep).toEqual([0, 2, 0, 4]);
    // A record stored before the ack lists were chunked (no `ackChunks`) still opens as it was.
    const old = withAckLists(fakeSnapshot([2]), [SNAPSHOT_CHUNK_ENTRIES + 9], 'old');
    const batch = s.batch();
    batch.put('sessions', 'c4', { ...old, subsessions: old.subsessions.map((sub) => ({ ...sub, chunks: 0 })) });
    await s.commit(batch);
    expect(await new SnapshotChunks('c4').join(s, (await s.get('sessions', 'c4'))!)).toEqual(old);
    s.close();
  });

  it('keeps the resend packets and tracked acks in keyed chunks: a step rewrites only the closed chunks that changed, the open one is inline', async () => {
    const s = await store();
    const writer = new SnapshotChunks('c5');
    const base = withAckLists(fakeSnapshot([3]), [2]);
    /** `ids` tracked (and their packets kept); `remaining` per id (default both readers). */
    const withUnacked = (ids: number[], remaining: Record<number, string[]> = {}): SessionSnapshot =>
      ({
        ...base,
        subsessions: base.subsessions.map((sub) => ({
          ...sub,
          packets: ids.map((i) => [`u${i}`, `?mpENC:packet ${i}`]),
          acks: { ...sub.acks, tracked: ids.map((i) => ({ id: `u${i}`, needed: true, acceptedAtMs: i, atMs: i, remaining: remaining[i] ?? ['bob', 'carol'], owing: [], gone: [], warned: false, resends: 0, nextResendMs: 0 })) },
        })),
      }) as unknown as SessionSnapshot;
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    const n = SNAPSHOT_CHUNK_ENTRIES;
    // `inline`: how many entries of each list the record holds (the open chunk).
    const steps: { snapshot: SessionSnapshot; puts: number; deletes: number; inline: number }[] = [
      // A catch-up: 2.5 chunks of unacked messages, then more. The chunks that closed are written.
      { snapshot: withUnacked(range(0, 2 * n + n / 2)), puts: 2 * 2, deletes: 0, inline: n / 2 },
      { snapshot: withUnacked(range(0, 3 * n + 1)), puts: 2, deletes: 0, inline: 1 },
      // Bob acks one message of the first chunk: that tracked chunk alone changes.
      { snapshot: withUnacked(range(0, 3 * n + 1), { 1: ['carol'] }), puts: 1, deletes: 0, inline: 1 },
      // Everything of the first chunk is acked by all: it goes (packets and tracked), the rest stays.
      { snapshot: withUnacked(range(n, 3 * n + 1)), puts: 0, deletes: 2, inline: 1 },
      // Nothing changed: nothing written.
      { snapshot: withUnacked(range(n, 3 * n + 1)), puts: 0, deletes: 0, inline: 1 },
      // One in the middle goes, one new one comes: its chunk is written, the new one joins the open one.
      { snapshot: withUnacked([...range(n, 3 * n + 1).filter((i) => i !== n + 5), 3 * n + 1]), puts: 2, deletes: 0, inline: 2 },
    ];
    // Live chat first, in a conversation of its own: a few unacked messages, all in the open
    // chunk, acks coming in: the record alone is written, no chunk (two chunk writes per step before).
    const chat = new SnapshotChunks('c8');
    const chatSteps: [number[], Record<number, string[]>][] = [[range(0, 3), {}], [range(0, 4), { 1: ['carol'] }], [range(2, 6), {}], [range(5, 7), { 6: ['bob'] }]];
    for (const [ids, remaining] of chatSteps) {
      const batch = s.batch();
      const stored = chat.split(withUnacked(ids, remaining), batch);
      batch.put('sessions', 'c8', stored);
      await s.commit(batch);
      expect(batch.writes.map((w) => w.store)).toEqual(['sessions']);
      expect(await new SnapshotChunks('c8').join(s, (await s.get('sessions', 'c8'))!)).toEqual(withUnacked(ids, remaining));
    }
    for (const [i, step] of steps.entries()) {
      const batch = s.batch();
      const stored = writer.split(step.snapshot, batch);
      batch.put('sessions', 'c5', stored);
      await s.commit(batch);
      const sub = stored.subsessions[0]!;
      // The open chunk is in the record (`open`, stored form: packets plain, tracked acks compact).
      expect([sub.packets, sub.acks.tracked]).toEqual([[], []]);
      expect(sub.open?.packets).toEqual(step.snapshot.subsessions[0]!.packets.slice(-step.inline));
      expect(sub.open?.tracked).toMatchObject({ v: 1 });
      expect((sub.open?.tracked as { e: unknown[] }).e.length).toBe(step.inline);
      const chunkWrites = batch.writes.filter((w) => w.store === 'sessionChunks');
      expect({ step: i, puts: chunkWrites.filter((w) => w.kind === 'sealed').length, deletes: chunkWrites.filter((w) => w.kind === 'delete').length }).toEqual({ step: i, puts: step.puts, deletes: step.deletes });
      // Read back by a fresh reader (a restart), exactly, in order.
      const reader = new SnapshotChunks('c5');
      expect(await reader.join(s, (await s.get('sessions', 'c5'))!)).toEqual(step.snapshot);
    }
    // A writer restored from the store goes on writing only what changes.
    const restored = new SnapshotChunks('c5');
    const last = steps.at(-1)!.snapshot;
    await restored.join(s, (await s.get('sessions', 'c5'))!);
    const again = s.batch();
    restored.split(last, again);
    await again.ready(); // sealed writes are listed once sealed
    expect(again.writes.filter((w) => w.store === 'sessionChunks').length).toBe(0);
    // It goes on after the restart: a new entry joins the open chunk (inline), nothing is written.
    const more = withUnacked([...range(n, 3 * n + 1).filter((i) => i !== n + 5), 3 * n + 1, 3 * n + 2]);
    const next = s.batch();
    const continued = restored.split(more, next);
    next.put('sessions', 'c5', continued);
    await s.commit(next);
    expect(next.writes.map((w) => w.store)).toEqual(['sessions']);
    expect(await new SnapshotChunks('c5').join(s, (await s.get('sessions', 'c5'))!)).toEqual(more);
    // Entries in another order than stored (never today): written afresh, still read back exactly.
    const reordered = withUnacked([3 * n + 1, ...range(n, 2 * n)]);
    const batch = s.batch();
    const stored = writer.split(reordered, batch);
    batch.put('sessions', 'c5', stored);
    await s.commit(batch);
    expect(await new SnapshotChunks('c5').join(s, (await s.get('sessions', 'c5'))!)).toEqual(reordered);
    // A record stored while the open chunk went to `sessionChunks` too (nothing inline) opens as it was,
    // and a writer restored from it writes nothing more until a chunk changes.
    const before = withUnacked(range(0, n + 3));
    const beforeBatch = s.batch();
    const sub0 = before.subsessions[0]!;
    beforeBatch.put('sessionChunks', ['c7/0/p', 0], sub0.packets.slice(0, n));
    beforeBatch.put('sessionChunks', ['c7/0/p', 1], sub0.packets.slice(n));
    beforeBatch.put('sessionChunks', ['c7/0/t', 0], sub0.acks.tracked.slice(0, n));
    beforeBatch.put('sessionChunks', ['c7/0/t', 1], sub0.acks.tracked.slice(n));
    beforeBatch.put('sessions', 'c7', {
      ...before,
      subsessions: [{ ...sub0, chunks: 0, ackChunks: { fullyAcked: 0, orders: 0 }, packets: [], acks: { ...sub0.acks, tracked: [] }, keyedChunks: { packets: [0, 1], tracked: [0, 1] } }],
    });
    await s.commit(beforeBatch);
    const fromBefore = new SnapshotChunks('c7');
    expect(await fromBefore.join(s, (await s.get('sessions', 'c7'))!)).toEqual(before);
    const unchanged = s.batch();
    fromBefore.split(before, unchanged);
    await unchanged.ready();
    expect(unchanged.writes.filter((w) => w.store === 'sessionChunks').length).toBe(0);
    // A record stored before these were chunked (inline, no `keyedChunks`) opens as it was.
    const old = withUnacked(range(0, n + 3));
    const oldBatch = s.batch();
    oldBatch.put('sessions', 'c6', { ...old, subsessions: old.subsessions.map((sub) => ({ ...sub, chunks: 0, ackChunks: { fullyAcked: 0, orders: 0 } })) });
    await s.commit(oldBatch);
    expect(await new SnapshotChunks('c6').join(s, (await s.get('sessions', 'c6'))!)).toEqual(old);
    s.close();
  });

  it('stores messages and tracked acks compactly (schema v5): a fraction of the bytes, read back exactly, odd entries stored plain', async () => {
    const s = await store();
    const n = SNAPSHOT_CHUNK_ENTRIES;
    // Member ids as the engine has them (43 characters), so the sizes below are real.
    const member = (k: number) => `${String.fromCharCode(65 + k)}${'m'.repeat(41)}${k}`;
    const readers = [1, 2, 3, 4, 5, 6].map(member);
    const t0 = 1_796_306_205_346;
    const base = withAckLists(fakeSnapshot([2 * SNAPSHOT_CHUNK_MESSAGES + 3]), [2]);
    const snapshot = {
      ...base,
      subsessions: base.subsessions.map((sub) => ({
        ...sub,
        messages: sub.messages.map((m, i) => ({
          ...m,
          author: member(i % 5),
          parents: i === 0 ? [] : [`${sub.messages[i - 1]!.id}`],
          // Bodies other than a chat payload are kept as they are.
          body: i % 7 === 3 ? { type: 'explicit-ack', manual: false } : i % 7 === 5 ? { type: 'consistency', close: true } : m.body,
        })),
        packets: Array.from({ length: 2 * n }, (_, i) => [`u${i}`, `?mpENC:packet ${i}`]),
        acks: {
          ...sub.acks,
          tracked: Array.from({ length: 2 * n }, (_, i) => ({
            id: `u${i}`,
            needed: i % 3 !== 0,
            acceptedAtMs: t0 + 1000 + i,
            atMs: t0 + i * 7,
            remaining: readers.filter((_, k) => (i + k) % 4 !== 0),
            owing: i % 5 === 0 ? [readers[2]!] : [],
            gone: i % 11 === 0 ? [readers[0]!, readers[5]!] : [],
            warned: i % 5 === 0,
            resends: i % 3,
            nextResendMs: t0 + 16_000 + i,
          })),
        },
      })),
    } as unknown as SessionSnapshot;
    const batch = s.batch();
    batch.put('sessions', 'c7', new SnapshotChunks('c7').split(snapshot, batch));
    await s.commit(batch);
    expect(await new SnapshotChunks('c7').join(s, (await s.get('sessions', 'c7'))!)).toEqual(snapshot);
    const sub = snapshot.subsessions[0]!;
    const storedTracked = await s.get<{ v: number; m: string[] }>('sessionChunks', ['c7/0/t', 0]);
    const storedMessages = await s.get<{ v: number; a: string[] }>('sessionChunks', ['c7/0', 0]);
    expect(storedTracked).toMatchObject({ v: 1, m: readers });
    expect(storedMessages).toMatchObject({ v: 1, a: [0, 1, 2, 3, 4].map(member) });
    // A fraction of the plain entries' JSON (the sealed bytes follow the JSON's length).
    expect(JSON.stringify(storedTracked).length).toBeLessThan(0.3 * JSON.stringify(sub.acks.tracked.slice(0, n)).length);
    expect(JSON.stringify(storedMessages).length).toBeLessThan(0.7 * JSON.stringify(sub.messages.slice(0, SNAPSHOT_CHUNK_MESSAGES)).length);

    // What the compact form cannot carry exactly goes plain (the chunks with it), and still round-trips.
    const odd = {
      ...snapshot,
      subsessions: snapshot.subsessions.map((sub) => ({
        ...sub,
        messages: sub.messages.map((m, i) => (i === 1 ? { ...m, extra: 1 } : m)),
        acks: { ...sub.acks, tracked: sub.acks.tracked.map((t, i) => (i === 2 ? { ...t, atMs: t.atMs + 0.5 } : i === n + 1 ? { ...t, remaining: [...t.remaining].reverse() } : t)) },
      })),
    } as unknown as SessionSnapshot;
    const oddBatch = s.batch();
    oddBatch.put('sessions', 'c8', new SnapshotChunks('c8').split(odd, oddBatch));
    await s.commit(oddBatch);
    expect(Array.isArray(await s.get('sessionChunks', ['c8/0', 0]))).toBe(true);
    expect(Array.isArray(await s.get('sessionChunks', ['c8/0/t', 0]))).toBe(true);
    // The second chunk of tracked acks is the open one: in the session record, plain too.
    expect(await s.get('sessionChunks', ['c8/0/t', 1])).toBeUndefined();
    expect(Array.isArray((await s.get<StoredSnapshot>('sessions', 'c8'))!.subsessions[0]!.open?.tracked)).toBe(true);
    expect(await s.get('sessionChunks', ['c8/0', 1])).toMatchObject({ v: 1 });
    expect(await new SnapshotChunks('c8').join(s, (await s.get('sessions', 'c8'))!)).toEqual(odd);
    // A tracked ack with its fields in another order, or with one more, cannot be carried either.
    type Tracked = SessionSnapshot['subsessions'][number]['acks']['tracked'][number];
    const reordered = (t: Tracked) => Object.fromEntries(Object.entries(t).reverse());
    for (const change of [reordered, (t: Tracked) => ({ ...t, extra: 1 })]) {
      const other = { ...snapshot, subsessions: snapshot.subsessions.map((sub) => ({ ...sub, acks: { ...sub.acks, tracked: sub.acks.tracked.map((t, i) => (i === 0 ? change(t) : t)) } })) } as unknown as SessionSnapshot;
      const otherBatch = s.batch();
      otherBatch.put('sessions', 'c7', new SnapshotChunks('c7').split(other, otherBatch));
      await s.commit(otherBatch);
      expect(Array.isArray(await s.get('sessionChunks', ['c7/0/t', 0]))).toBe(true);
      expect(await new SnapshotChunks('c7').join(s, (await s.get('sessions', 'c7'))!)).toEqual(other);
    }
    // Sealed like every record: no member id or text readable at rest.
    const raw = JSON.stringify(await s.rawDump(), (_, v: unknown) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v));
    expect(raw).not.toContain(readers[0]);
    expect(raw).not.toContain('text 1');
    s.close();
  });

  it('reads the plain chunks of a version 4 database after the upgrade, and writes compact ones from then on', async () => {
    const factory = new IDBFactory();
    const { record, dataKey } = await createKeys();
    const n = SNAPSHOT_CHUNK_ENTRIES;
    const tracked = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, k) => ({ id: `u${from + k}`, needed: true, acceptedAtMs: 5_000 + from + k, atMs: 4_000 + from + k, remaining: ['bob', 'carol'], owing: [], gone: [], warned: false, resends: 0, nextResendMs: 20_000 }));
    const version4 = (count: number, unacked: number): SessionSnapshot => {
      const base = withAckLists(fakeSnapshot([count]), [2]);
      return {
        ...base,
        subsessions: base.subsessions.map((sub) => ({
          ...sub,
          packets: Array.from({ length: unacked }, (_, i) => [`u${i}`, `?mpENC:packet ${i}`]),
          acks: { ...sub.acks, tracked: tracked(0, unacked) },
        })),
      } as unknown as SessionSnapshot;
    };
    const before = version4(SNAPSHOT_CHUNK_MESSAGES + 5, n + 3);
    {
      // What a version 4 build stored: every chunk a plain array of entries.
      const v4 = await ClientStore.open(factory, undefined, 4);
      await v4.putKeys(record);
      v4.setDataKey(dataKey);
      const sub = before.subsessions[0]!;
      const batch = v4.batch();
      batch.put('sessionChunks', ['c9/0', 0], sub.messages.slice(0, SNAPSHOT_CHUNK_MESSAGES));
      batch.put('sessionChunks', ['c9/0/p', 0], sub.packets.slice(0, n));
      batch.put('sessionChunks', ['c9/0/p', 1], sub.packets.slice(n));
      batch.put('sessionChunks', ['c9/0/t', 0], sub.acks.tracked.slice(0, n));
      batch.put('sessionChunks', ['c9/0/t', 1], sub.acks.tracked.slice(n));
      batch.put('sessions', 'c9', {
        ...before,
        subsessions: [
          {
            ...sub,
            messages: sub.messages.slice(SNAPSHOT_CHUNK_MESSAGES),
            chunks: 1,
            packets: [],
            acks: { ...sub.acks, tracked: [] },
            ackChunks: { fullyAcked: 0, orders: 0 },
            keyedChunks: { packets: [0, 1], tracked: [0, 1] },
          },
        ],
      });
      await v4.commit(batch);
      expect(v4.db.version).toBe(4);
      v4.close();
    }
    const s = await ClientStore.open(factory);
    expect(s.db.version).toBe(CLIENT_DB_VERSION);
    expect(CLIENT_DB_VERSION).toBeGreaterThanOrEqual(5);
    s.setDataKey(await unlockKeys((await s.keys())!));
    const reader = new SnapshotChunks('c9');
    expect(await reader.join(s, (await s.get('sessions', 'c9'))!)).toEqual(before);
    // The next step: more messages fill the second message chunk (written, compact), one more
    // tracked message (and its packet) starts a new chunk after the restored ones (the open one:
    // in the record, compact); the old plain chunks stay as they are.
    const after = version4(2 * SNAPSHOT_CHUNK_MESSAGES, n + 4);
    const batch = s.batch();
    batch.put('sessions', 'c9', reader.split(after, batch));
    await s.commit(batch);
    expect(batch.writes.filter((w) => w.store === 'sessionChunks').map((w) => (w as { key: unknown }).key)).toEqual([['c9/0', 1]]);
    expect(Array.isArray(await s.get('sessionChunks', ['c9/0', 0]))).toBe(true);
    expect(await s.get('sessionChunks', ['c9/0', 1])).toMatchObject({ v: 1 });
    expect(Array.isArray(await s.get('sessionChunks', ['c9/0/t', 1]))).toBe(true);
    expect((await s.get<StoredSnapshot>('sessions', 'c9'))!.subsessions[0]!.open).toMatchObject({ packets: [[`u${n + 3}`, `?mpENC:packet ${n + 3}`]], tracked: { v: 1 } });
    expect(await new SnapshotChunks('c9').join(s, (await s.get('sessions', 'c9'))!)).toEqual(after);
    s.close();
  });

  it('writes every chunk again when history under them changed', async () => {
    const s = await store();
    const writer = new SnapshotChunks('c2');
    const first = s.batch();
    writer.split(fakeSnapshot([2 * SNAPSHOT_CHUNK_MESSAGES]), first);
    await s.commit(first);
    const rewritten = fakeSnapshot([2 * SNAPSHOT_CHUNK_MESSAGES + 1], 'x');
    const batch = s.batch();
    const stored = writer.split(rewritten, batch);
    batch.put('sessions', 'c2', stored);
    await s.commit(batch);
    expect(batch.writes.filter((w) => w.store === 'sessionChunks').length).toBe(2);
    expect(await new SnapshotChunks('c2').join(s, (await s.get('sessions', 'c2'))!)).toEqual(rewritten);
    s.close();
  });

  describe('our ack after a catch-up while a member sleeps (issue 12)', () => {
    let relay: RunningRelay;
    beforeAll(async () => {
      relay = await startTestRelay();
    });
    afterAll(async () => {
      await relay.close();
    });

    /**
     * Bob catches up Alice's messages in pages while Carol's app stays closed: every message
     * stays tracked, waiting for Carol. Bob's ack takes him out of every entry's readers still to
     * ack; that must not rewrite the stored chunks of tracked acks (with Bob listed in each
     * entry, it rewrote every one: ~150 at 10,000 messages, bench:catchup).
     */
    it('rewrites no stored chunk of tracked acks', async () => {
      const clients: TestClient[] = [];
      try {
        const bobProfile = new Profile('Bob');
        const alice = await TestClient.start('Alice', { relay });
        const bob = await TestClient.start('Bob', { relay, profile: bobProfile });
        const carol = await TestClient.start('Carol', { relay });
        clients.push(alice, bob, carol);
        for (const c of [alice, bob, carol]) await identity(c);
        const [ab] = await connect(alice, bob);
        const [ac] = await connect(alice, carol);
        const { conversationId: aId } = await alice.call('createGroup', { name: 'Sleepers', contactIds: [ab, ac] as ContactId[] });
        const ids: Record<string, ConversationId> = {};
        for (const who of [bob, carol]) {
          const invitation = await who.until('invitation', () => who.conversations?.invitations[0]);
          ids[who.name] = (await who.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
        }
        for (const [who, id] of [[alice, aId], [bob, ids.Bob!], [carol, ids.Carol!]] as const) {
          await who.until('three members', () => who.view(id)?.members.filter((m) => m.role === 'member').length === 3);
        }
        carol.close();
        bob.close();
        // Pages of 20: a chunk of tracked acks closes (and is stored) before the last page, which sends Bob's ack.
        const count = 2 * SNAPSHOT_CHUNK_ENTRIES + 10;
        for (let i = 0; i < count; i++) await alice.call('send', { conversationId: aId, text: `b${i}` });
        // Bob's commits: the tracked-ack chunks each puts, and whether it sends (an outbox record).
        const steps: { tracked: string[]; sends: boolean }[] = [];
        const prefix = `${ids.Bob!}/`;
        const commit = ClientStore.prototype.commit;
        vi.spyOn(ClientStore.prototype, 'commit').mockImplementation(async function (this: ClientStore, batch, ...rest) {
          const result = await commit.call(this, batch, ...rest);
          const tracked = batch.writes.flatMap((w) => {
            if (w.kind !== 'sealed' || w.store !== 'sessionChunks') return [];
            const [list, c] = w.key as [string, number];
            return list.startsWith(prefix) && list.endsWith('/t') ? [`${list} ${c}`] : [];
          });
          const ours = batch.writes.some((w) => w.kind === 'sealed' && w.store === 'sessions' && w.key === ids.Bob);
          if (ours) steps.push({ tracked, sends: batch.writes.some((w) => w.kind === 'transit' && w.store === 'outbox') });
          return result;
        });
        let back: TestClient;
        try {
          back = await TestClient.start('Bob', { relay, profile: bobProfile, receivePage: 20 });
          clients.push(back);
          await back.until('the backlog', () => back.view(ids.Bob!, 500)?.timeline.filter((t) => t.type === 'message').length === count, 60_000);
          // Alice sees Bob's ack: every message delivered to Bob (Carol's phone still asleep).
          await alice.until('acked by Bob', () => alice.view(aId, 500)!.timeline.every((t) => t.type !== 'message' || !t.mine || (t.delivery.state === 'delivered' && t.delivery.acked === 1)), 60_000);
        } finally {
          vi.restoreAllMocks();
        }
        const sending = steps.flatMap((step, i) => (step.sends ? [i] : []));
        expect(sending.length).toBeGreaterThan(0);
        // Closed chunks were stored during the catch-up, before Bob's ack.
        expect(steps.slice(0, sending[0]).flatMap((step) => step.tracked).length).toBeGreaterThanOrEqual(1);
        // A step that sends rewrites no chunk stored before it (a chunk that closes then is new).
        for (const i of sending) {
          const before = new Set(steps.slice(0, i).flatMap((step) => step.tracked));
          expect({ step: i, rewritten: steps[i]!.tracked.filter((key) => before.has(key)) }).toEqual({ step: i, rewritten: [] });
        }
      } finally {
        for (const c of clients) c.close();
      }
    });
  });

  describe('a long conversation across a restart', () => {
    let relay: RunningRelay;
    beforeAll(async () => {
      relay = await startTestRelay();
    });
    afterAll(async () => {
      await relay.close();
    });

    it('keeps every message and keeps working', async () => {
      const bobProfile = new Profile('Bob');
      const alice = await TestClient.start('Alice', { relay });
      let bob = await TestClient.start('Bob', { relay, profile: bobProfile });
      await identity(alice);
      await identity(bob);
      const [ab] = await connect(alice, bob);
      const { conversationId } = await alice.call('createGroup', { name: 'Long', contactIds: [ab as ContactId] });
      const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
      const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
      await alice.until('active', () => alice.view(conversationId)?.state === 'active');
      const count = SNAPSHOT_CHUNK_MESSAGES + 10; // one stored chunk and a tail (the unit tests above cover more)
      for (let i = 0; i < count; i++) await alice.call('send', { conversationId, text: `n${i}` });
      await bob.until('all', () => bob.view(bobId, 500)?.timeline.filter((t) => t.type === 'message').length === count, 60_000);
      bob.close();
      bob = await TestClient.start('Bob', { relay, profile: bobProfile });
      await bob.until('ready', () => bob.app?.phase === 'ready');
      const session = bob.host.engine!.conversations.get(bobId)!.session;
      expect(session.entries().length).toBe(count + 1); // the roster is a message too
      await bob.call('send', { conversationId: bobId, text: 'still here' });
      await alice.until('reply', () => alice.texts(conversationId).includes('still here'));
      const shown = await bob.until('the restored view', () => {
        const texts = bob.view(bobId, 500)?.timeline.flatMap((t) => (t.type === 'message' ? [t.text] : [])) ?? [];
        return texts.length === count + 1 ? texts : undefined;
      });
      expect(shown.slice(0, 3)).toEqual(['n0', 'n1', 'n2']);
      alice.close();
      bob.close();
    });
  });
});
