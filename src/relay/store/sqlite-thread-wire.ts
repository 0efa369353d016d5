/**
 * The messages between the relay's event loop (./sqlite-proxy.ts) and the SQLite store's own
 * thread (./sqlite-thread.ts), and how an error crosses between them with its class.
 *
 * One message each way per batch, not per call (issue 13: the event loop is what bounds a SQLite
 * relay): the calls made in one event-loop turn go to the thread together, and what a group
 * commit produces (its events, in commit order, then its answers) comes back together. Events and
 * answers share one message on purpose: a post's answer holds the same event object the store
 * announces, and structured clone copies an object seen twice in one message only once.
 */
import type { ChannelId, RelayEvent } from '../../shared/relay-api.js';
import type { SqliteRelayStore } from './sqlite.js';
import { StoreUnavailableError } from './types.js';

/**
 * The store methods the thread runs: all of RelayStore but `name`, `idleWhen` (the thread's
 * fdatasync never blocks the event loop, so it needs no idle check), `subscribe` (the thread sends
 * every event; the proxy keeps the listeners) and `close` (a message of its own), plus
 * SqliteRelayStore's `durability`.
 */
export const THREAD_METHODS = [
  'createChannel',
  'getChannel',
  'getMember',
  'listMembers',
  'joinWithCapability',
  'removeMember',
  'appendEvent',
  'readEvents',
  'ackCursor',
  'trim',
  'putCapability',
  'checkCapability',
  'revokeCapability',
  'useNonce',
  'putFetchToken',
  'useFetchToken',
  'revokeFetchTokens',
  'putPushSubscription',
  'deletePushSubscription',
  'pushTargets',
  'setOnline',
  'vapidKeys',
  'createUpload',
  'getUpload',
  'appendUploadChunk',
  'readUploadRange',
  'deleteUpload',
  'finalizeUpload',
  'openBlob',
  'readBlobRange',
  'sweep',
  'stats',
  'storageUsage',
  'durability',
] as const satisfies readonly (keyof SqliteRelayStore)[];
export type ThreadMethod = (typeof THREAD_METHODS)[number];

/** What the thread opens (workerData): only values that survive structured clone. */
export interface ThreadStoreOptions {
  readonly dataDir: string;
  /** As SqliteStoreOptions.durability ('off': the bench's comparison only). */
  readonly durability?: 'fsync' | 'off';
  /** Tests: every fdatasync in the thread fails with this message (a broken disk). */
  readonly syncFailure?: string;
}

export interface ThreadCall {
  readonly id: number;
  readonly method: ThreadMethod;
  readonly args: readonly unknown[];
}

/** Event loop → thread. */
export type ToThread = { readonly kind: 'calls'; readonly calls: readonly ThreadCall[] } | { readonly kind: 'close' };

/** One thing the thread reports, in the order it happened. */
export type ThreadItem =
  /** `frame`: the event's WebSocket frame JSON, made here so the event loop does not (EventListener). */
  | { readonly kind: 'event'; readonly channelId: ChannelId; readonly event: RelayEvent; readonly frame: string }
  | { readonly kind: 'value'; readonly id: number; readonly value: unknown }
  | { readonly kind: 'error'; readonly id: number; readonly error: WireError }
  | { readonly kind: 'warn'; readonly message: string };

/** Thread → event loop. */
export type FromThread =
  | { readonly kind: 'ready' }
  | { readonly kind: 'open-failed'; readonly error: WireError }
  | { readonly kind: 'items'; readonly items: readonly ThreadItem[] }
  | { readonly kind: 'closed' };

/**
 * An error as it crosses: structured clone would make every error a plain Error, and the routes
 * tell a 503 (`StoreUnavailableError`) from a bug's 500 by class.
 */
export interface WireError {
  readonly unavailable: boolean;
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    return { unavailable: error instanceof StoreUnavailableError, name: error.name, message: error.message, stack: error.stack };
  }
  return { unavailable: false, name: 'Error', message: String(error), stack: undefined };
}

/** The error again, on this side: StoreUnavailableError stays one; the thread's stack is kept for logs. */
export function fromWireError(wire: WireError): Error {
  let error: Error;
  if (wire.unavailable) error = new StoreUnavailableError(wire.message);
  else {
    error = new Error(wire.message);
    if (wire.name !== 'Error') error.name = wire.name;
  }
  if (wire.stack !== undefined) error.stack = `${error.stack ?? ''}\n    --- in the SQLite store thread ---\n${wire.stack}`;
  return error;
}

/**
 * A copy of `bytes` that owns its whole ArrayBuffer, to transfer: structured clone copies a view's
 * whole buffer (a pooled Buffer's 8 KiB slab, a better-sqlite3 chunk's megabyte) and transferring
 * the caller's own would detach memory it may still use.
 */
export function ownedCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
