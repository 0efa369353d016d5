/**
 * A backlog received in pages, each page's Session call overlapping the commit of the page before
 * (src/worker/conversation.ts receivePage): the next page's signature checks start while the last
 * page is still being stored, every message arrives once and in order, and a crash at any step of
 * the catch-up loses and duplicates nothing (issue 10 §2 across pages, issue 12 catch-up).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Session } from '../../src/protocol/session/index.js';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { ClientStore } from '../../src/store/client-store.js';
import { CrashError } from '../../src/worker/conversation.js';
import { CoveyEngine } from '../../src/worker/engine.js';
import type { FaultHook, FaultPoint } from '../../src/worker/deps.js';
import type { ConversationRecord } from '../../src/worker/records.js';
import { connect, identity, Profile, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

/** Messages waiting for Bob; in pages of PAGE that is several pages, with pages in flight together. */
const BACKLOG = 14;
const PAGE = 3;
const texts = Array.from({ length: BACKLOG }, (_, i) => `backlog ${i}`);

interface Crash {
  readonly point: FaultPoint;
  /** Which receive step of Bob's catch-up crashes. */
  readonly nth: number;
}

/** Alice and Bob in a group; Alice writes BACKLOG messages while Bob (`bobProfile`) is closed. */
async function backlog(clients: TestClient[], bobProfile: Profile): Promise<{ alice: TestClient; aId: ConversationId; bId: ConversationId; bobKey: ConversationRecord['memberKey']; channel: ConversationRecord['channel'] }> {
  const alice = await TestClient.start('Alice', { relay });
  clients.push(alice);
  const bob = await TestClient.start('Bob', { relay, profile: bobProfile });
  clients.push(bob);
  await identity(alice);
  await identity(bob);
  const [aliceBob] = await connect(alice, bob);
  const { conversationId: aId } = await alice.call('createGroup', { name: 'Pages', contactIds: [aliceBob as ContactId] });
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  const { conversationId: bId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
  await alice.until('active', () => alice.view(aId)?.state === 'active');
  await bob.until('roster', () => bob.view(bId)?.name === 'Pages');
  const { memberKey: bobKey, channel } = bob.host.engine!.conversations.get(bId)!.record;
  bob.close();
  for (const text of texts) await alice.call('send', { conversationId: aId, text });
  await alice.until('posted', () => alice.view(aId)!.timeline.every((t) => t.type !== 'message' || !t.mine || t.delivery.state !== 'waiting-to-send'));
  return { alice, aId, bId, bobKey, channel };
}

/** Bob started again on his stored profile, once he shows the whole backlog (waited for as `what`). */
async function startBob(clients: TestClient[], bobProfile: Profile, bId: ConversationId, what: string): Promise<TestClient> {
  const bob = await TestClient.start('Bob', { relay, profile: bobProfile, receivePage: PAGE });
  clients.push(bob);
  await bob.until(what, () => texts.every((t) => bob.texts(bId).includes(t)));
  return bob;
}

/** Alice writes BACKLOG messages while Bob is closed; Bob comes back in pages of PAGE (crashing once, if asked). */
async function catchUp(crash: Crash | null): Promise<{ bob: string[]; overlapped: number; crashed: boolean; reopened: string[]; timelineRecords: number }> {
  const clients: TestClient[] = [];
  const bobProfile = new Profile('Bob');
  try {
    const { alice, aId, bId } = await backlog(clients, bobProfile);
    let bob: TestClient;
    // Watch Bob's commits and Session calls: a page's call while an earlier page's commit is open is an overlap.
    let committing = 0;
    let overlapped = 0;
    const commit = ClientStore.prototype.commit;
    const receiveAll = Session.prototype.receiveAll;
    vi.spyOn(ClientStore.prototype, 'commit').mockImplementation(async function (this: ClientStore, batch) {
      committing++;
      try {
        return await commit.call(this, batch);
      } finally {
        committing--;
      }
    });
    vi.spyOn(Session.prototype, 'receiveAll').mockImplementation(function (this: Session, events, nowMs) {
      if (committing > 0) overlapped++;
      return receiveAll.call(this, events, nowMs);
    });
    let seen = 0;
    let crashed = false;
    const fault: FaultHook = (point, detail) => {
      if (crash === null || crashed || point !== crash.point || detail !== 'receive') return;
      if (++seen === crash.nth) {
        crashed = true;
        throw new CrashError(point);
      }
    };
    try {
      bob = await TestClient.start('Bob', { relay, profile: bobProfile, receivePage: PAGE, fault });
      clients.push(bob);
      await bob.until('the backlog, or the crash', () => crashed || texts.every((t) => bob.texts(bId).includes(t)));
    } finally {
      vi.restoreAllMocks();
    }
    if (crashed) {
      bob.close();
      bob = await startBob(clients, bobProfile, bId, 'the backlog after the restart');
    }
    // Everything settled: Alice's ack state says Bob has them all, so nothing more can arrive.
    await alice.until('all delivered', () => alice.view(aId)!.timeline.every((t) => t.type !== 'message' || !t.mine || t.delivery.state === 'delivered-to-all'));
    const shown = bob.texts(bId);
    // What the store holds: Bob's timeline records (raw), then Bob started again, his view read
    // from the store alone (the runtime's window starts empty).
    bob.close();
    const raw = await ClientStore.open(bobProfile.indexedDB);
    const timelineRecords = (await raw.db.getAllKeys('timeline')).filter((key) => (key as [string, number])[0] === bId).length;
    raw.close();
    const again = await startBob(clients, bobProfile, bId, 'the stored history');
    return { bob: shown, overlapped, crashed, reopened: again.texts(bId), timelineRecords };
  } finally {
    for (const c of clients) c.close();
  }
}

describe('a catch-up in pages', () => {
  it('verifies the next page while the page before is stored, and delivers each message once, in order', async () => {
    const { bob, overlapped, reopened, timelineRecords } = await catchUp(null);
    expect(bob.filter((t) => t.startsWith('backlog'))).toEqual(texts);
    expect(overlapped).toBeGreaterThan(0);
    // The same history read back from the store after a restart, in the same order.
    expect(reopened).toEqual(bob);
    // A page's messages are stored as packs (Batch.appendTimeline): fewer timeline records than
    // messages shown (one per message before; at most one per page of PAGE, plus the notices).
    expect(timelineRecords).toBeLessThan(bob.length);
  });

  const cases: Crash[] = [
    // While page 1 is stored, page 2's Session call is done: the crash comes with page 1's commit in flight.
    { point: 'after-session-call', nth: 2 },
    { point: 'after-persist', nth: 2 },
    { point: 'after-session-call', nth: 3 },
  ];
  for (const crash of cases) {
    it(`crashes ${crash.point} of receive #${crash.nth}: nothing lost or duplicated`, async () => {
      const result = await catchUp(crash);
      expect(result.crashed, 'the crash happened').toBe(true);
      expect(result.bob.filter((t) => t.startsWith('backlog'))).toEqual(texts);
      expect(result.reopened).toEqual(result.bob);
    });
  }
});

/**
 * The page that reaches the relay's head sends Bob's ack (rule 6: one ack for all he read while
 * catching up). Its messages are shown once its transaction is queued, like a page that sends
 * nothing, and its ack goes to the relay only after the commit. With `crash`, Bob dies right
 * there (shown, queued, not committed); started again, he receives the page again.
 */
async function ackPage(crash: boolean): Promise<{
  at: { point: FaultPoint; shown: boolean; outbox: number; signed: number } | null;
  bob: string[];
  reopened: string[];
  acks: number;
}> {
  const clients: TestClient[] = [];
  const bobProfile = new Profile('Bob');
  try {
    const { alice, aId, bId, bobKey, channel } = await backlog(clients, bobProfile);
    const head = (await relay.store.getChannel(channel))!.headSeq;
    // Posts signed by Bob's engine: a step signs the posts of its outbox records while it folds.
    let signs = 0;
    const signPost = CoveyEngine.prototype.signPost;
    vi.spyOn(CoveyEngine.prototype, 'signPost').mockImplementation(function (this: CoveyEngine, ...args) {
      signs++;
      return signPost.apply(this, args);
    });
    let watched: TestClient | null = null;
    let signsAtCall = 0;
    // The last page (it holds the last message): what it signed, then Bob at its first point after 'before-commit'.
    let last: { signed: number } | null = null;
    let at: { point: FaultPoint; shown: boolean; outbox: number; signed: number } | null = null;
    const fault: FaultHook = (point, what) => {
      if (watched === null || what !== 'receive' || at !== null) return;
      const runtime = watched.host.engine?.conversations.get(bId);
      if (point === 'after-session-call') signsAtCall = signs;
      else if (point === 'before-commit' && last === null && [...(runtime?.window.values() ?? [])].some((r) => r.t === 'm' && r.text === texts.at(-1))) {
        last = { signed: signs - signsAtCall };
      } else if (last !== null && (point === 'after-queue' || point === 'after-persist')) {
        const shown = watched.texts(bId);
        at = { point, shown: texts.every((t) => shown.includes(t)), outbox: watched.host.engine!.outbox.count(), signed: last.signed };
        if (crash) throw new CrashError(point);
      }
    };
    let bob: TestClient;
    try {
      bob = await TestClient.start('Bob', {
        relay,
        profile: bobProfile,
        receivePage: PAGE,
        fault,
        onCreated: (client) => {
          watched = client;
          client.view(bId);
        },
      });
      clients.push(bob);
      await bob.until('the last page, or the crash', () => at !== null && (crash || texts.every((t) => bob.texts(bId).includes(t))));
    } finally {
      vi.restoreAllMocks();
    }
    if (crash) {
      bob.close();
      bob = await startBob(clients, bobProfile, bId, 'the backlog after the restart');
    }
    await alice.until('all delivered', () => alice.view(aId)!.timeline.every((t) => t.type !== 'message' || !t.mine || t.delivery.state === 'delivered-to-all'));
    const shown = bob.texts(bId);
    const after = await relay.store.readEvents(channel, head, 1000, 1 << 30);
    const acks = after.filter((e) => e.type === 'packet' && e.author === bobKey).length;
    bob.close();
    const again = await startBob(clients, bobProfile, bId, 'the stored history');
    return { at, bob: shown, reopened: again.texts(bId), acks };
  } finally {
    for (const c of clients) c.close();
  }
}

describe('the last page of a catch-up, which sends our ack', () => {
  for (const crash of [false, true]) {
    it(`is shown once its transaction is queued, before its commit, its ack posted after${crash ? '; a crash there loses and duplicates nothing' : ''}`, async () => {
      const { at, bob, reopened, acks } = await ackPage(crash);
      expect(at, 'the last page was committed or crashed').not.toBeNull();
      // It sends (the ack), and nothing of it is in the outbox before the commit.
      expect(at!.signed).toBeGreaterThan(0);
      expect(at!.outbox).toBe(0);
      // Shown by then: the view was pushed before the transaction was queued ('after-queue' comes
      // only for a page shown before its commit; any other page's first point is 'after-persist').
      expect(at!.point).toBe('after-queue');
      expect(at!.shown).toBe(true);
      // Each message once, in order, also as stored; Bob's ack reached the relay once.
      expect(bob.filter((t) => t.startsWith('backlog'))).toEqual(texts);
      expect(new Set(bob).size).toBe(bob.length);
      expect(reopened).toEqual(bob);
      expect(acks).toBe(1);
    });
  }
});
