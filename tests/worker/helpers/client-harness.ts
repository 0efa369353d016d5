/**
 * UI-less Covey clients in Node (issue 10 "Tests"): the real worker core (EngineHost) on
 * fake-indexeddb, Node's fetch and WebCrypto, the `ws` WebSocket and an in-memory lock manager,
 * against real relays started in-process. Each client keeps the latest value of every view, and
 * tests wait on them.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import type { CryptoProvider } from '../../../src/protocol/crypto/provider.js';
import { selectCryptoProvider } from '../../../src/protocol/crypto/select.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from '../../../src/protocol/session/index.js';
import { startRelay, type RunningRelay } from '../../../src/relay/server.js';
import { openSqliteStore } from '../../../src/relay/store/sqlite.js';
import type {
  AppView,
  CommandName,
  CommandParams,
  CommandResult,
  ContactId,
  ContactsView,
  ConversationId,
  ConversationView,
  ConversationsView,
} from '../../../src/shared/worker-api.js';
import type { FaultHook, LockManagerLike, Timers } from '../../../src/worker/deps.js';
import type { FetchLike, WebSocketConstructor } from '../../../src/worker/relay-client.js';
import { EngineHost, type HostDeps } from '../../../src/worker/engine-host.js';
import { NodeWebSocket, nodeFetch } from '../../relay/helpers/relay-harness.js';

/** How long a test waits for a view to reach an expected state. */
export const WAIT_MS = 20_000;

/** Quicker acks than production so tests settle fast; everything else as shipped. */
export const TEST_SESSION_CONFIG: SessionConfig = {
  ...DEFAULT_SESSION_CONFIG,
  reliability: { ...DEFAULT_SESSION_CONFIG.reliability, autoAckDelayMs: 100 },
};

let cryptoProvider: CryptoProvider | undefined;
export async function testCrypto(): Promise<CryptoProvider> {
  cryptoProvider ??= await selectCryptoProvider();
  return cryptoProvider;
}

export const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Per-address rate limits lifted: every client of a test or benchmark shares 127.0.0.1. */
export const OPEN_LIMITS = { rateRequestsPerSecond: 100_000, rateBurst: 100_000 };

export async function startTestRelay(): Promise<RunningRelay> {
  return startRelay({
    store: openSqliteStore({ dataDir: ':memory:' }),
    port: 0,
    logLevel: 'silent',
    limits: OPEN_LIMITS,
  });
}

/** Web Locks for one simulated browser profile: exclusive, queued, ifAvailable and steal. */
export class MemoryLocks implements LockManagerLike {
  private held: { release: () => void; reject: (e: unknown) => void } | null = null;
  private readonly queue: (() => void)[] = [];

  request(_name: string, options: { ifAvailable?: boolean; steal?: boolean }, callback: (lock: unknown) => Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const grant = () => {
        let done = false;
        const release = () => {
          if (done) return;
          done = true;
          this.held = null;
          this.queue.shift()?.();
        };
        this.held = { release, reject };
        callback({ name: 'lock' }).then(
          (v) => {
            if (!done) {
              release();
              resolve(v);
            }
          },
          (e: unknown) => {
            if (!done) {
              release();
              reject(e);
            }
          },
        );
      };
      if (options.steal === true) {
        const old = this.held;
        this.held = null;
        old?.reject(new Error('AbortError: lock stolen'));
        grant();
      } else if (this.held === null) grant();
      else if (options.ifAvailable === true) void callback(null).then(resolve, reject);
      else this.queue.push(grant);
    });
  }
}

/** A BroadcastChannel between the tabs of one simulated profile. */
export class MemoryBroadcast {
  private readonly members = new Set<{ deliver(data: unknown): void }>();
  open(): { postMessage(m: unknown): void; addEventListener(t: 'message', l: (e: { data: unknown }) => void): void; close(): void } {
    const listeners: ((e: { data: unknown }) => void)[] = [];
    const member = { deliver: (data: unknown) => listeners.forEach((l) => l({ data })) };
    this.members.add(member);
    return {
      postMessage: (data) => {
        for (const m of this.members) if (m !== member) setTimeout(() => m.deliver(structuredClone(data)), 0);
      },
      addEventListener: (_t, l) => void listeners.push(l),
      close: () => void this.members.delete(member),
    };
  }
}

/** One browser profile: its IndexedDB, locks and tabs. */
export class Profile {
  readonly indexedDB = new IDBFactory();
  readonly locks = new MemoryLocks();
  readonly broadcast = new MemoryBroadcast();
  constructor(readonly name: string) {}
}

export interface ClientOptions {
  readonly relay: { readonly url: string };
  readonly profile?: Profile;
  readonly locks?: boolean;
  readonly fault?: FaultHook;
  readonly now?: () => number;
  readonly timers?: Timers;
  readonly sessionConfig?: SessionConfig;
  readonly appOrigin?: string;
  /** Wraps Node's fetch (tests that watch or break the network). */
  readonly fetch?: FetchLike;
  /** Replaces the `ws` WebSocket (tests that watch or break the socket). */
  readonly WebSocket?: WebSocketConstructor;
  /** false: posts only over HTTP (tests that hold or fail post requests through `fetch`). */
  readonly socketPosts?: boolean;
  /** Relay events per receive page (a backlog of a few messages goes in several pages). */
  readonly receivePage?: number;
  /** Inbox records read first when the app opens (the rest in a second read). */
  readonly inboxFirstRead?: number;
  /** The crypto provider the worker core is given (default: the test provider). */
  readonly crypto?: CryptoProvider;
  /** Called with the client before its engine starts (tests that watch a view from the first step on). */
  readonly onCreated?: (client: TestClient) => void;
}

/** A UI-less client: one tab of one profile, running the worker core. */
export class TestClient {
  readonly host: EngineHost;
  readonly profile: Profile;
  app: AppView | undefined;
  contacts: ContactsView | undefined;
  conversations: ConversationsView | undefined;
  private readonly open = new Map<ConversationId, { view: ConversationView | undefined; stop: () => void }>();
  private readonly stops: (() => void)[] = [];
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  /** Called with every conversation view pushed (benchmarks time what is shown). */
  onConversationView: ((id: ConversationId, view: ConversationView) => void) | null = null;

  private constructor(
    readonly name: string,
    readonly hostDeps: HostDeps,
    profile: Profile,
  ) {
    this.profile = profile;
    this.host = new EngineHost(hostDeps);
  }

  static async start(name: string, options: ClientOptions): Promise<TestClient> {
    const profile = options.profile ?? new Profile(name);
    const deps: HostDeps = {
      indexedDB: profile.indexedDB,
      fetch: options.fetch ?? nodeFetch,
      WebSocket: options.WebSocket ?? NodeWebSocket,
      crypto: options.crypto ?? (await testCrypto()),
      now: options.now ?? (() => Date.now()),
      timers: options.timers ?? realTimers,
      appOrigin: options.appOrigin ?? 'https://covey.test',
      defaultRelay: options.relay.url,
      sessionConfig: options.sessionConfig ?? TEST_SESSION_CONFIG,
      pbkdf2Iterations: 1_000,
      ...(options.fault === undefined ? {} : { fault: options.fault }),
      ...(options.receivePage === undefined ? {} : { receivePage: options.receivePage }),
      ...(options.socketPosts === undefined ? {} : { socketPosts: options.socketPosts }),
      ...(options.inboxFirstRead === undefined ? {} : { inboxFirstRead: options.inboxFirstRead }),
      ...(options.locks === true ? { locks: profile.locks, broadcast: () => profile.broadcast.open() } : {}),
      log: (level, message) => {
        if (level === 'error') client.errors.push(message);
        if (level === 'warn') client.warnings.push(message);
      },
    };
    const client = new TestClient(name, deps, profile);
    client.stops.push(client.host.watch('app', {}, (v) => (client.app = v as AppView), () => undefined));
    client.stops.push(client.host.watch('contacts', {}, (v) => (client.contacts = v as ContactsView), () => undefined));
    client.stops.push(client.host.watch('conversations', {}, (v) => (client.conversations = v as ConversationsView), () => undefined));
    options.onCreated?.(client);
    await client.host.start();
    return client;
  }

  call<C extends CommandName>(command: C, params: CommandParams<C>): Promise<CommandResult<C>> {
    return this.host.call(command, params) as Promise<CommandResult<C>>;
  }

  /** The conversation view, watched from the first call on. */
  view(id: ConversationId, limit?: number): ConversationView | undefined {
    let entry = this.open.get(id);
    if (entry === undefined) {
      const e: { view: ConversationView | undefined; stop: () => void } = { view: undefined, stop: () => undefined };
      e.stop = this.host.watch(
        'conversation',
        limit === undefined ? { conversationId: id } : { conversationId: id, limit },
        (v) => {
          e.view = v as ConversationView;
          this.onConversationView?.(id, e.view);
        },
        () => undefined,
      );
      this.open.set(id, e);
      entry = e;
    }
    return entry.view;
  }

  async until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  texts(id: ConversationId): string[] {
    return (this.view(id)?.timeline ?? []).flatMap((t) => (t.type === 'message' ? [t.text] : []));
  }

  close(): void {
    for (const stop of this.stops) stop();
    for (const e of this.open.values()) e.stop();
    this.host.close();
  }
}

/** Alice adds Bob by his card link; Bob accepts. Returns [Alice's contact id for Bob, Bob's for Alice]. */
export async function connect(a: TestClient, b: TestClient): Promise<[string, string]> {
  const card = await b.call('myCard', {});
  const { contactId } = await a.call('addContact', { link: card.link });
  const request = await b.until(`a request from ${a.name}`, () => b.contacts?.requests.find((r) => r.name === a.name));
  const accepted = await b.call('acceptContactRequest', { requestId: request.id });
  await a.until(`${b.name} connected`, () => a.contacts?.contacts.find((c) => c.id === contactId && c.state === 'connected'));
  return [contactId, accepted.contactId];
}

export async function identity(client: TestClient): Promise<void> {
  await client.call('createIdentity', { displayName: client.name });
  if (client.host.engine?.phase !== 'ready') throw new Error(`${client.name}: not ready after createIdentity`);
}

/**
 * Alice and Bob with identities, contacts, and a group `name` that Alice made and Bob accepted.
 * Returns each one's conversation id; what to wait for next (roster, active) is the caller's.
 */
export async function groupOfTwo(alice: TestClient, bob: TestClient, name: string): Promise<{ aliceId: ConversationId; bobId: ConversationId }> {
  await identity(alice);
  await identity(bob);
  const [aliceBob] = await connect(alice, bob);
  const { conversationId: aliceId } = await alice.call('createGroup', { name, contactIds: [aliceBob as ContactId] });
  const invitation = await bob.until('invitation', () => bob.conversations?.invitations[0]);
  const { conversationId: bobId } = await bob.call('acceptInvitation', { invitationId: invitation.id });
  return { aliceId, bobId };
}
