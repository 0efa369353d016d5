/**
 * The worker's front: serves the bridge (commands and view watches) and makes sure exactly one
 * engine runs per browser profile (issue 10 §1). Two engines on one profile would sign two
 * different messages as the same next one, so:
 *
 * - The engine runs only while this tab holds the Web Lock `covey-engine`. A tab that cannot get
 *   it shows phase 'engine-elsewhere' and waits in the lock's queue (it takes over by itself when
 *   the other tab closes).
 * - `useEngineHere` asks the holder over a BroadcastChannel to stop and release the lock; a holder
 *   that does not answer in HANDOVER_TIMEOUT_MS (a frozen background tab) has the lock stolen.
 * - Whatever the lock says, the store refuses every write of an engine that is no longer the
 *   newest (epoch check in ClientStore.commit), so a stale engine cannot persist, hence cannot send.
 */
import { WorkerError, type AppPhase, type AppView, type ConversationId, type ConversationView, type ViewName } from '../shared/worker-api.js';
import { diffConversation, type ConversationPatch } from '../shared/view-patch.js';
import type { BridgeHandler } from '../shared/worker-bridge.js';
import { DEFAULT_MESSAGE_WINDOW, MAX_MESSAGE_WINDOW, type WorkerErrorBody } from '../shared/worker-api.js';
import { runCommand } from './commands.js';
import type { BroadcastLike, ClientDeps, LockManagerLike } from './deps.js';
import type { ConversationRuntime } from './conversation.js';
import { CoveyEngine, type ViewSink } from './engine.js';
import type { TimelineRecord } from './records.js';
import { appView, contactsView, conversationsView, conversationView, listedView } from './views.js';
import { ENGINE_LOCK_NAME } from '../shared/client-db.js';

export const ENGINE_LOCK = ENGINE_LOCK_NAME;
export const HANDOVER_CHANNEL = 'covey-engine-handover';
/** How long a holder may take to hand the engine over before its lock is stolen. */
export const HANDOVER_TIMEOUT_MS = 5_000;

export interface HostDeps extends ClientDeps {
  /** navigator.locks; absent: this tab always runs the engine. */
  readonly locks?: LockManagerLike;
  readonly broadcast?: (name: string) => BroadcastLike;
}

interface Watcher {
  readonly view: ViewName;
  readonly conversationId: ConversationId | null;
  readonly limit: number;
  push(value: unknown): void;
  fail(error: WorkerErrorBody): void;
  /** Conversation watches whose bridge takes patches: changes go as patches after the first value. */
  pushPatch: ((patch: ConversationPatch) => void) | undefined;
  dirty: boolean;
  running: boolean;
  /** The value last pushed (views other than a conversation: as JSON): an unchanged view is not pushed again. */
  last: string | null;
  lastConversation: ConversationView | null;
}

export class EngineHost implements BridgeHandler, ViewSink {
  engine: CoveyEngine | null = null;
  private phase: AppPhase = 'starting';
  private failure: AppView['failure'] = null;
  private readonly watchers = new Set<Watcher>();
  private flushScheduled = false;
  /** Resolves once the conversation views of the scheduled flush are pushed (see viewsPushed). */
  private conversationsPushed: Promise<void> = Promise.resolve();
  private release: (() => void) | null = null;
  private channel: BroadcastLike | null = null;
  private waiting = false;
  private closed = false;
  /** Resolves when the engine has started (or failed to). */
  private started: Promise<void> = Promise.resolve();
  /** Resolves when the latest runEngine has finished opening (sessions restored, or failed). */
  private opening: Promise<void> = Promise.resolve();

  constructor(private readonly deps: HostDeps) {}

  /** Starts: takes the lock if free, else waits for it in phase 'engine-elsewhere'. */
  async start(): Promise<void> {
    if (this.deps.broadcast !== undefined) {
      this.channel = this.deps.broadcast(HANDOVER_CHANNEL);
      this.channel.addEventListener('message', (event) => {
        const data = event.data as { type?: unknown } | null;
        if (data?.type === 'handover' && this.engine !== null) void this.handOver();
      });
    }
    const locks = this.deps.locks;
    if (locks === undefined) {
      await this.runEngine();
      return;
    }
    let granted = false;
    await new Promise<void>((resolve) => {
      void locks
        .request(ENGINE_LOCK, { ifAvailable: true }, async (lock) => {
          if (lock === null) {
            resolve();
            return;
          }
          granted = true;
          await this.holdLock(resolve);
        })
        .catch(() => this.lost());
    });
    if (!granted) {
      this.setPhase('engine-elsewhere');
      this.queueForLock();
    }
  }

  /** Runs the engine inside a granted lock until it is handed over or closed. */
  private async holdLock(onStarted: () => void): Promise<void> {
    const released = new Promise<void>((resolve) => (this.release = resolve));
    this.started = this.runEngine();
    await this.started;
    onStarted();
    await released;
  }

  private queueForLock(): void {
    const locks = this.deps.locks;
    if (locks === undefined || this.waiting || this.closed) return;
    this.waiting = true;
    void locks
      .request(ENGINE_LOCK, {}, async () => {
        this.waiting = false;
        if (this.closed) return;
        await this.holdLock(() => undefined);
      })
      .catch(() => this.lost());
  }

  /** Our lock was stolen (another tab's useEngineHere after a timeout): stop at once. */
  private lost(): void {
    this.stopEngine();
    if (this.closed) return;
    this.setPhase('engine-elsewhere');
    this.queueForLock();
  }

  private async runEngine(): Promise<void> {
    let opened!: () => void;
    this.opening = new Promise<void>((resolve) => (opened = resolve));
    // Set once the stored records are read: the stored chat list shows while the sessions restore.
    let listed: CoveyEngine | null = null;
    try {
      const engine = await CoveyEngine.open(this.deps, this, (early) => {
        if (this.closed) return;
        listed = early;
        this.adopt(early);
      });
      // Closed, or handed over while the sessions restored (then it was stopped).
      if (this.closed || engine.isStopped) {
        engine.stop();
        return;
      }
      if (listed === null) this.adopt(engine);
      else this.setPhase(engine.phase); // every view again, now from the sessions
      // The stored chat list is shown from here; the stored inbox and the relays follow behind it.
      void this.goLive(engine);
    } catch (error) {
      // Stopped while its sessions restored (handed over, closed): it failed on its closed store.
      if (listed !== null && (listed as CoveyEngine).isStopped) return;
      this.stopEngine();
      this.openFailed(error);
    } finally {
      opened();
    }
  }

  /** The engine is ours from here (its phase shown; commands reach it). */
  private adopt(engine: CoveyEngine): void {
    engine.onFatal = () => {
      // Replaced by another tab's engine (epoch), or an injected crash: stop and give way.
      this.stopEngine();
      this.release?.();
      this.release = null;
      if (!this.closed) {
        this.setPhase('engine-elsewhere');
        this.queueForLock();
      }
    };
    this.engine = engine;
    this.setPhase(engine.phase);
  }

  /** The stored inbox, then the relays (CoveyEngine.goLive), behind the restored views. */
  private async goLive(engine: CoveyEngine): Promise<void> {
    try {
      await engine.goLive();
    } catch (error) {
      // A stopped engine (handed over, replaced) fails on its closed store: nothing to report.
      if (engine.isStopped || this.engine !== engine) return;
      this.stopEngine();
      this.openFailed(error);
    }
  }

  private openFailed(error: unknown): void {
    this.failure = { code: 'storage', text: `Covey could not open its storage on this device: ${error instanceof Error ? error.message : String(error)}` };
    this.setPhase('failed');
  }

  private stopEngine(): void {
    this.engine?.stop();
    this.engine = null;
  }

  /** Another tab asked for the engine: stop and release the lock, then wait in the queue. */
  private async handOver(): Promise<void> {
    this.stopEngine();
    this.release?.();
    this.release = null;
    this.setPhase('engine-elsewhere');
    this.queueForLock();
  }

  private async useEngineHere(): Promise<void> {
    if (this.engine !== null) return;
    const locks = this.deps.locks;
    if (locks === undefined) return;
    this.channel?.postMessage({ type: 'handover' });
    this.queueForLock();
    const deadline = this.deps.now() + HANDOVER_TIMEOUT_MS;
    while (this.engine === null && this.deps.now() < deadline && !this.closed) await new Promise<void>((r) => this.deps.timers.setTimeout(r, 50));
    if (this.engine === null && !this.closed) {
      // The holder did not answer (a frozen tab): take the lock. The store epoch keeps the old
      // engine from writing even if it wakes before noticing.
      await new Promise<void>((resolve) => {
        void locks.request(ENGINE_LOCK, { steal: true }, async () => {
          await this.holdLock(resolve);
        });
      });
    }
    await this.started;
  }

  /** Stops everything (worker terminating, tests). */
  close(): void {
    this.closed = true;
    this.stopEngine();
    this.release?.();
    this.channel?.close();
  }

  private setPhase(phase: AppPhase): void {
    this.phase = phase;
    this.invalidate('app');
    this.invalidate('contacts');
    this.invalidate('conversations');
    for (const w of this.watchers) if (w.view === 'conversation') w.dirty = true;
    this.scheduleFlush();
  }

  // ── commands ─────────────────────────────────────────────────────────────────────────────

  async call(command: string, params: unknown): Promise<unknown> {
    if (command === 'useEngineHere') {
      await this.useEngineHere();
      return {};
    }
    if (command === 'lock') return this.lock();
    // The stored chat list shows before the sessions are restored (CoveyEngine.listed): a command
    // waits for them, and then reaches whichever engine is ours (none if it failed or was handed over).
    if (this.engine?.listed != null) await this.opening;
    const engine = this.engine;
    if (engine === null || engine.isStopped) {
      if (this.phase === 'engine-elsewhere') throw new WorkerError('engine-elsewhere', 'Covey is open in another tab. Use it there, or choose “Use here”.');
      if (this.phase === 'failed') throw new WorkerError('storage', this.failure?.text ?? 'Covey could not open its storage.');
      throw new WorkerError('starting', 'Covey is still starting.');
    }
    const result = await runCommand(engine, command, params);
    if (command === 'unlock' || command === 'createIdentity' || command === 'importBackup') this.setPhase(engine.phase);
    return result;
  }

  private async lock(): Promise<unknown> {
    const engine = this.engine;
    if (engine === null || engine.phase !== 'ready') throw new WorkerError('invalid-state', 'Covey is not open.');
    if (!(await engine.passphraseSet())) throw new WorkerError('invalid-state', 'Set a passphrase first: without one there is nothing to lock with.');
    // Forget the data key by restarting the engine: it opens locked.
    this.stopEngine();
    this.setPhase('starting');
    await this.runEngine();
    return {};
  }

  // ── views ────────────────────────────────────────────────────────────────────────────────

  watch(view: string, rawParams: unknown, push: (value: unknown) => void, fail: (error: WorkerErrorBody) => void, pushPatch?: (patch: ConversationPatch) => void): () => void {
    if (view !== 'app' && view !== 'contacts' && view !== 'conversations' && view !== 'conversation') throw new WorkerError('bad-request', `unknown view ${JSON.stringify(view.slice(0, 40))}`);
    const p = (typeof rawParams === 'object' && rawParams !== null ? rawParams : {}) as Record<string, unknown>;
    let conversationId: ConversationId | null = null;
    let limit = DEFAULT_MESSAGE_WINDOW;
    if (view === 'conversation') {
      if (typeof p.conversationId !== 'string') throw new WorkerError('bad-request', 'conversationId must be an id');
      conversationId = p.conversationId as ConversationId;
      if (p.limit !== undefined) {
        if (typeof p.limit !== 'number' || !Number.isInteger(p.limit) || p.limit < 1 || p.limit > MAX_MESSAGE_WINDOW) throw new WorkerError('bad-request', `limit must be 1..${MAX_MESSAGE_WINDOW}`);
        limit = p.limit;
      }
    }
    const watcher: Watcher = { view, conversationId, limit, push, fail, pushPatch, dirty: true, running: false, last: null, lastConversation: null };
    this.watchers.add(watcher);
    void this.refresh(watcher);
    return () => this.watchers.delete(watcher);
  }

  invalidate(scope: 'app' | 'contacts' | 'conversations' | { conversation: ConversationId }): void {
    for (const w of this.watchers) {
      if (typeof scope === 'string' ? w.view === scope : w.view === 'conversation' && w.conversationId === scope.conversation) w.dirty = true;
    }
    this.scheduleFlush();
  }

  /**
   * Rebuilds dirty views once the current step's synchronous part is over: every invalidation of
   * one step coalesces into one update per view, with no timer hop (a timer costs ≥ 1 ms).
   */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    let pushed!: () => void;
    this.conversationsPushed = new Promise<void>((resolve) => (pushed = resolve));
    queueMicrotask(() => {
      this.flushScheduled = false;
      // The open conversation first: its push is what a person waits for (a message shown), the
      // chat list and the app view once it has gone (bench:client measures send → shown). Started
      // side by side, the list was built before the conversation: the synchronous part of each
      // build runs before the first one resumes.
      const first: Promise<void>[] = [];
      for (const w of this.watchers) if (w.dirty && w.view === 'conversation') first.push(this.refresh(w));
      void Promise.all(first).then(() => {
        pushed();
        for (const w of this.watchers) if (w.dirty && w.view !== 'conversation') void this.refresh(w);
      });
    });
  }

  /**
   * Resolves once the conversation views of the flush scheduled now (if any) have been rebuilt
   * and pushed; at once when no flush is scheduled. A received message's step waits for it before
   * its records are sealed (conversation.ts `persist`, showWhenQueued), so that the seals do not
   * run ahead of the view in the worker's thread.
   */
  viewsPushed(): Promise<void> {
    return this.flushScheduled ? this.conversationsPushed : Promise.resolve();
  }

  private async refresh(w: Watcher): Promise<void> {
    if (w.running || !this.watchers.has(w)) return;
    w.running = true;
    w.dirty = false;
    try {
      const value = await this.build(w);
      if (value !== undefined && this.watchers.has(w)) {
        // Most steps change one view, or none that a person sees (an ack of a message already
        // shown delivered, a heartbeat): pushing all three anyway cost a structured clone in the
        // worker, another in the UI thread and a re-render each (bench:client, CPU per message).
        if (w.view === 'conversation') this.pushConversation(w, value as ConversationView);
        else {
          const json = JSON.stringify(value);
          if (json !== w.last) {
            w.last = json;
            w.push(value);
          }
        }
      }
    } catch (error) {
      if (error instanceof WorkerError && error.code === 'not-found') {
        this.watchers.delete(w);
        w.fail({ code: error.code, message: error.message });
      } else if (!(error instanceof WorkerError)) this.deps.log?.('error', `view ${w.view} failed: ${String(error)}`);
    } finally {
      w.running = false;
    }
    if (w.dirty && this.watchers.has(w)) this.scheduleFlush();
  }

  /**
   * A conversation goes whole once, then as patches of what changed (src/shared/view-patch.ts):
   * a step adds or changes one or two of its up to 200 items, and copying all of them to the UI
   * at every step was the largest part of the view cost (bench:client).
   */
  private pushConversation(w: Watcher, value: ConversationView): void {
    const previous = w.lastConversation;
    if (previous === null) {
      w.lastConversation = value;
      w.push(value);
      return;
    }
    const patch = diffConversation(previous, value);
    if (patch === null) return;
    w.lastConversation = value;
    if (w.pushPatch !== undefined) w.pushPatch(patch);
    else w.push(value);
  }

  /** The view's value now; undefined when it cannot be shown in this phase (nothing is pushed). */
  private async build(w: Watcher): Promise<unknown> {
    const engine = this.engine !== null && !this.engine.isStopped ? this.engine : null;
    if (w.view === 'app') return appView(engine, { phase: this.phase, failure: this.failure });
    if (engine === null || engine.phase !== 'ready') {
      if (w.view === 'contacts') return { contacts: [], requests: [] };
      // Nothing until ready: the page watches the list from its start (ui App), and an empty list
      // pushed now would show "no chats" for a moment once the app view says ready.
      return undefined;
    }
    if (engine.listed !== null) {
      // The sessions are still being restored: the chat list from the stored records; the rest
      // once they are (runEngine shows every view again then).
      return w.view === 'conversations' ? listedView(engine, engine.listed) : undefined;
    }
    if (w.view === 'contacts') return contactsView(engine);
    // A step's records folded in but not yet committed (a catch-up page stored while the next is
    // verified): not shown until stored; its commit invalidates the views again.
    if (w.view === 'conversations') return [...engine.conversations.values()].some((rt) => rt.unstored) ? undefined : conversationsView(engine);
    const runtime = engine.conversation(w.conversationId);
    if (runtime.unstored) return undefined;
    await ensureWindow(engine, runtime, w.limit);
    return conversationView(engine, runtime, w.limit);
  }
}

/** Loads the newest `limit` messages' timeline records into the runtime's window. */
async function ensureWindow(engine: CoveyEngine, runtime: ConversationRuntime, limit: number): Promise<void> {
  if (runtime.windowLoaded >= limit) return;
  const stored = await engine.store.timeline<TimelineRecord>(runtime.id, limit * 2);
  const merged = new Map<number, TimelineRecord>(stored);
  for (const [position, item] of runtime.window) merged.set(position, item);
  runtime.window.clear();
  for (const position of [...merged.keys()].sort((a, b) => a - b)) runtime.window.set(position, merged.get(position)!);
  runtime.windowLoaded = limit;
}
