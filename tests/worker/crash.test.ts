/**
 * Crash injection (issue 10 §2, "Tests"): the engine is stopped dead between every two steps of
 * "call the session, persist, post, forget the outbox record", on the sending side and on the
 * receiving side, then restarted from its store. Every run must end exactly like the run without
 * a crash: each message delivered once, in order, nothing lost, nothing duplicated, no warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import type { ContactId, ConversationId } from '../../src/shared/worker-api.js';
import { openBackup } from '../../src/worker/backup.js';
import { CrashError } from '../../src/worker/conversation.js';
import type { TimelineRecord } from '../../src/worker/records.js';
import type { FaultHook, FaultPoint } from '../../src/worker/deps.js';
import { connect, groupOfTwo, identity, Profile, startTestRelay, TestClient } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

const SCRIPT = ['one', 'two', 'three'];

interface Crash {
  readonly who: 'Alice' | 'Bob';
  readonly point: FaultPoint;
  /** Which occurrence of the point (after the group is set up) crashes. */
  readonly nth: number;
  /** Only steps of this kind count ('send', 'receive'; posts: any). */
  readonly step?: string;
}

/** Runs the script; with `crash`, kills that client at the fault and restarts it from its store. */
async function run(crash: Crash | null): Promise<{ alice: string[]; bob: string[]; notices: string[] }> {
  const profiles = { Alice: new Profile('Alice'), Bob: new Profile('Bob') };
  let armed = false;
  let seen = 0;
  let crashed = false;
  const fault = (who: 'Alice' | 'Bob'): FaultHook => (point, detail) => {
    if (!armed || crash === null || crash.who !== who || point !== crash.point || crashed) return;
    if (crash.step !== undefined && detail !== crash.step) return;
    seen++;
    if (seen === crash.nth) {
      crashed = true;
      throw new CrashError(point);
    }
  };
  const clients: TestClient[] = [];
  const start = async (who: 'Alice' | 'Bob', withFault: boolean) => {
    const c = await TestClient.start(who, { relay, profile: profiles[who], ...(withFault ? { fault: fault(who) } : {}) });
    clients.push(c);
    return c;
  };
  try {
    let alice = await start('Alice', true);
    let bob = await start('Bob', true);
    await identity(alice);
    await identity(bob);
    const [aliceBob] = await connect(alice, bob);
    const { conversationId: aId } = await alice.call('createGroup', { name: 'Crash club', contactIds: [aliceBob as ContactId] });
    const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
    const { conversationId: bId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
    await alice.until('active', () => alice.view(aId)?.state === 'active');
    await bob.until('active', () => bob.view(bId)?.state === 'active');
    await bob.until('roster', () => bob.view(bId)?.name === 'Crash club');

    armed = true;
    for (const text of SCRIPT) {
      await alice.call('send', { conversationId: aId, text }).catch((error: unknown) => {
        if (!(error instanceof CrashError) && !crashed) throw error;
      });
      if (crashed) break;
      await bob.until(`"${text}" at Bob`, () => bob.texts(bId).includes(text) || crashed);
      if (crashed) break;
    }
    if (crashed || crash !== null) {
      // Give an injected crash that waits for a later step its chance, then restart the victim.
      await new Promise((r) => setTimeout(r, crashed ? 0 : 300));
      const victim = crash!.who === 'Alice' ? alice : bob;
      victim.close();
      const again = await start(crash!.who, false);
      if (crash!.who === 'Alice') alice = again;
      else bob = again;
      await again.until('ready', () => again.app?.phase === 'ready');
      await alice.until('its view', () => alice.view(aId) !== undefined);
      // Whatever the script did not get to, the user does now (the UI would show what went out).
      for (const text of SCRIPT) {
        const sent = alice.texts(aId);
        if (!sent.includes(text)) await alice.call('send', { conversationId: aId, text });
      }
    }
    await bob.until('the whole script at Bob', () => bob.texts(bId).length >= SCRIPT.length);
    await alice.call('send', { conversationId: aId, text: 'after' });
    await bob.call('send', { conversationId: bId, text: 'reply' });
    await bob.until('after', () => bob.texts(bId).includes('after'));
    await alice.until('reply', () => alice.texts(aId).includes('reply'));
    await alice.until('all delivered', () =>
      alice.view(aId)!.timeline.every((t) => t.type !== 'message' || !t.mine || t.delivery.state === 'delivered-to-all'),
    );
    const notices = [alice, bob].flatMap((c) => (c.view(c === alice ? aId : bId)?.timeline ?? []).flatMap((t) => (t.type === 'notice' && t.tone !== 'info' ? [t.text] : [])));
    if (crash !== null) expect(crashed, 'the crash happened').toBe(true);
    return { alice: alice.texts(aId), bob: bob.texts(bId), notices };
  } finally {
    for (const c of clients) c.close();
  }
}

describe('a received message on screen', () => {
  it('is shown once its transaction is queued, while it commits (not after), and once', async () => {
    // When each receive step of Bob's has committed ('after-persist'): the messages it and the
    // steps before it stored (the runtime's timeline window), and those Bob's view shows.
    const atCommit: { stored: string[]; shown: string[] }[] = [];
    let watched: { bob: TestClient; bobId: ConversationId } | null = null;
    const fault: FaultHook = (point, what) => {
      if (watched === null || what !== 'receive' || point !== 'after-persist') return;
      const window = watched.bob.host.engine?.conversations.get(watched.bobId)?.window.values() ?? [];
      atCommit.push({ stored: [...window].flatMap((r) => (r.t === 'm' ? [r.text] : [])), shown: watched.bob.texts(watched.bobId) });
    };
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay, fault });
    try {
      await identity(alice);
      await identity(bob);
      const [aliceBob] = await connect(alice, bob);
      const { conversationId: aId } = await alice.call('createGroup', { name: 'On screen', contactIds: [aliceBob as ContactId] });
      const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
      const bobId = (await bob.call('acceptInvitation', { invitationId: invitation.id })).conversationId;
      await bob.until('roster', () => bob.view(bobId)?.name === 'On screen');
      watched = { bob, bobId };
      await alice.call('send', { conversationId: aId, text: 'hello' });
      await bob.until('hello', () => bob.texts(bobId).includes('hello'));
      await alice.until('delivered', () => alice.view(aId)?.timeline.some((t) => t.type === 'message' && t.text === 'hello' && t.delivery.state === 'delivered-to-all'));
      // Every step that had stored 'hello' showed it by the end of its commit: the view was pushed
      // while the commit ran (views pushed after the commit did not have it at 'after-persist').
      const storedHello = atCommit.filter((c) => c.stored.includes('hello'));
      expect(storedHello.length).toBeGreaterThan(0);
      expect(storedHello.map((c) => c.shown.includes('hello'))).toEqual(storedHello.map(() => true));
      expect(bob.texts(bobId)).toEqual(['hello']);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('is shown before its records are sealed (the seals do not run ahead of the view)', async () => {
    // Every seal of Bob's store, with whether Bob's view (pushed to the watcher) already showed
    // 'hello' when it was called. The receive step that stores 'hello' seals its timeline record
    // and its session record: both after the view has it.
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay });
    try {
      const { aliceId: aId, bobId } = await groupOfTwo(alice, bob, 'Seals');
      await bob.until('roster', () => bob.view(bobId)?.name === 'Seals');
      const store = bob.host.engine!.store;
      const seal = store.sealJson.bind(store);
      const seals: { store: string; hello: boolean; shown: boolean }[] = [];
      store.sealJson = (name, key, json) => {
        seals.push({ store: name, hello: json.includes('hello from Alice'), shown: bob.texts(bobId).includes('hello from Alice') });
        return seal(name, key, json);
      };
      await alice.call('send', { conversationId: aId, text: 'hello from Alice' });
      await bob.until('shown', () => bob.texts(bobId).includes('hello from Alice'));
      await bob.until('stored', () => bob.host.engine!.conversations.get(bobId)!.window.size > 0 && seals.some((s) => s.store === 'sessions' && s.shown));
      const first = seals.findIndex((s) => s.store === 'timeline' && s.hello);
      expect(first, 'the timeline record of the message was sealed').toBeGreaterThanOrEqual(0);
      // The step's seals start together: the session record's seal is next to the timeline's.
      expect(seals.filter((s) => s.hello).map((s) => s.shown)).toEqual(seals.filter((s) => s.hello).map(() => true));
      expect(seals.slice(Math.max(0, first - 2), first + 3).filter((s) => s.store === 'sessions').map((s) => s.shown)).toContain(true);
      expect(bob.texts(bobId)).toEqual(['hello from Alice']);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('is shown before its session snapshot is taken and serialised (that goes with the seals)', async () => {
    // Every snapshot of Bob's session that holds 'hello', with whether Bob's view (pushed to the
    // watcher) already showed it. The receive step's own snapshot is the first: taken after the view.
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay });
    try {
      const { aliceId: aId, bobId } = await groupOfTwo(alice, bob, 'Snapshot');
      await bob.until('roster', () => bob.view(bobId)?.name === 'Snapshot');
      const session = bob.host.engine!.conversations.get(bobId)!.session;
      const snapshot = session.snapshot.bind(session);
      const taken: boolean[] = [];
      session.snapshot = () => {
        const value = snapshot();
        if (JSON.stringify(value).includes('hello from Alice')) taken.push(bob.texts(bobId).includes('hello from Alice'));
        return value;
      };
      await alice.call('send', { conversationId: aId, text: 'hello from Alice' });
      await bob.until('shown', () => bob.texts(bobId).includes('hello from Alice'));
      await bob.until('snapshot taken', () => taken.length > 0);
      expect(taken[0], 'the view had the message when its step took the snapshot').toBe(true);
      // And it is stored: a restart reads it back once.
      bob.close();
      const again = await TestClient.start('Bob', { relay, profile: bob.profile });
      try {
        await again.until('restored', () => again.texts(bobId).includes('hello from Alice'));
        await alice.call('send', { conversationId: aId, text: 'and another' });
        await again.until('next', () => again.texts(bobId).includes('and another'));
        expect(again.texts(bobId)).toEqual(['hello from Alice', 'and another']);
      } finally {
        again.close();
      }
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('is in what the store holds for any reader from the moment it is shown (a backup exported at once has it)', async () => {
    // Bob's seals are slowed down (as a busy device's WebCrypto is): the message is shown while
    // its records are still being sealed, before their transaction exists. A read of the store
    // from then on (here: a backup) must see it, whatever the seals' speed.
    const alice = await TestClient.start('Alice', { relay });
    const bob = await TestClient.start('Bob', { relay });
    try {
      const { aliceId: aId, bobId } = await groupOfTwo(alice, bob, 'Kept');
      await bob.until('roster', () => bob.view(bobId)?.name === 'Kept');
      const store = bob.host.engine!.store;
      const seal = store.sealJson.bind(store);
      store.sealJson = async (...args) => {
        await new Promise((r) => setTimeout(r, 200));
        return seal(...args);
      };
      await alice.call('send', { conversationId: aId, text: 'keep this' });
      await bob.until('shown', () => bob.texts(bobId).includes('keep this'));
      const [stored, backup] = await Promise.all([store.range<TimelineRecord>('timeline', bobId), bob.call('exportBackup', { passphrase: 'backup passphrase' })]);
      expect(stored.flatMap(([, r]) => (r.t === 'm' ? [r.text] : []))).toContain('keep this');
      const content = await openBackup(backup.text, 'backup passphrase');
      const timeline = content.conversations.find((c) => c.record.id === bobId)?.timeline ?? [];
      expect(timeline.flatMap(([, r]) => (r.t === 'm' ? [r.text] : []))).toContain('keep this');
    } finally {
      alice.close();
      bob.close();
    }
  });
});

describe('crash injection', () => {
  let baseline: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    baseline = await run(null);
  });

  it('the run without a crash', () => {
    expect(baseline.bob.slice(0, 3)).toEqual(SCRIPT);
    expect(baseline.notices).toEqual([]);
  });

  const points: FaultPoint[] = ['after-session-call', 'after-persist', 'after-post', 'after-outbox-delete'];
  const cases: Crash[] = [
    // The sender, while sealing and sending the second message...
    { who: 'Alice', point: 'after-session-call', nth: 2, step: 'send' },
    // 'before-commit': its post already signed (in memory), nothing stored.
    { who: 'Alice', point: 'before-commit', nth: 2, step: 'send' },
    { who: 'Alice', point: 'after-persist', nth: 2, step: 'send' },
    // ...and around its posts (the second post after setup is a message or an ack).
    ...points.slice(2).map((point) => ({ who: 'Alice' as const, point, nth: 2 })),
    // The receiver, while processing the second event after setup; 'before-commit': the message
    // is on screen and nothing of its step is stored (persist's showWhenQueued); 'after-queue':
    // on screen, its transaction queued and aborted by the crash.
    { who: 'Bob', point: 'after-session-call', nth: 2, step: 'receive' },
    { who: 'Bob', point: 'before-commit', nth: 2, step: 'receive' },
    { who: 'Bob', point: 'after-queue', nth: 2, step: 'receive' },
    { who: 'Bob', point: 'after-persist', nth: 2, step: 'receive' },
    { who: 'Bob', point: 'after-post', nth: 1 },
  ];
  for (const crash of cases) {
    it(`${crash.who} crashes ${crash.point} of ${crash.step ?? 'a post'} #${crash.nth}: nothing lost or duplicated`, async () => {
      const result = await run(crash);
      expect(result.bob.filter((t) => SCRIPT.includes(t)).sort()).toEqual([...SCRIPT].sort());
      expect(result.bob).toEqual(baseline.bob.length === result.bob.length ? result.bob : baseline.bob);
      expect(new Set(result.bob).size).toBe(result.bob.length);
      expect(result.alice.filter((t) => SCRIPT.includes(t))).toEqual(SCRIPT);
      expect(result.notices).toEqual([]);
    });
  }
});
