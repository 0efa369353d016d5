/**
 * Save and load (mpENC §6.3 "Save and load current session"): the whole session state as a
 * versioned, JSON-safe snapshot. Bytes are base64 text. Derived structures (vector clocks, the
 * MessageLog order, ack queues) are not stored: they are rebuilt by replaying the transcript in
 * acceptance order, which gives the identical structures.
 *
 * A snapshot holds secrets (group keys, our ephemeral signing seed): the worker encrypts it at
 * rest (DESIGN.md §4) and never logs it.
 */
import { base64Decode, base64Encode } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import { sessionId, type MemberId } from '../ids.js';
import type { MessageBody } from '../packets/body.js';
import { SenderChains, type SenderChainsSnapshot } from '../packets/ratchet.js';
import type { PresenceSnapshot } from '../presence/presence-tracker.js';
import type { AckMonitorSnapshot } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import type { SubsessionSetup } from './membership.js';
import type { SessionState } from './effects.js';
import { assert } from '../errors.js';
import { AckMonitor } from '../reliability/ack-monitor.js';
import type { TranscriptMessage } from '../transcript/message.js';
import type { SessionConfig } from './config.js';
import { needsAck } from './effects.js';
import { Subsession, type SubsessionPhase } from './subsession.js';

/**
 * 2: groups that work while phones sleep (async-groups.md): confirmations, last words, relay
 * orders, session-wide presence, catch-up state, pruned subsessions. Version 1 snapshots were
 * never stored by a released app; they are refused.
 */
export const SESSION_SNAPSHOT_VERSION = 2;

export interface SnapshotMessage {
  readonly id: MessageKey;
  readonly author: MemberId;
  readonly parents: readonly MessageKey[];
  readonly body: MessageBody;
}

export interface SetupSnapshot {
  readonly members: readonly MemberId[];
  readonly sessionId: string;
  readonly groupKey: string;
  readonly signingKeys: readonly (readonly [MemberId, string])[];
  readonly ownSigningSeed: string;
  readonly confirmed: readonly MemberId[] | null;
  readonly initiator: MemberId | null;
  /** 1 for an mpenc_js subsession; absent for v2 (issue 9 §3). */
  readonly version?: 1 | 2;
}

export interface SubsessionSnapshot {
  readonly index: number;
  readonly hint: number;
  readonly installedAtSeq: number | null;
  readonly setup: SetupSnapshot;
  /** Accepted messages in acceptance order. */
  readonly messages: readonly SnapshotMessage[];
  /** Messages waiting for parents, in arrival order. */
  readonly pending: readonly { readonly message: SnapshotMessage; readonly text: string; readonly seq: number | null; readonly sender: MemberId; readonly atMs: number; readonly receivedAtMs: number }[];
  /** Messages waiting for their author's confirmation (rule 5). */
  readonly held: readonly { readonly message: SnapshotMessage; readonly text: string; readonly seq: number | null; readonly sender: MemberId; readonly atMs: number; readonly receivedAtMs: number }[];
  readonly packets: readonly (readonly [MessageKey, string])[];
  readonly acks: AckMonitorSnapshot;
  readonly phase: SubsessionPhase;
  readonly confirmed: readonly MemberId[];
  readonly confirmedByPacket: readonly MemberId[];
  readonly done: readonly MemberId[];
  /** Members whose signing key here was published (deniability): their later packets are refused. Absent: none. */
  readonly published?: readonly MemberId[];
  /**
   * Issue 9 §3: a v2 subsession holds its sender chains and SHA-256(sid ‖ gk), never the group
   * key (`setup.groupKey` is empty then).
   */
  readonly ratchet?: { readonly sidkeyHash: string; readonly chains: SenderChainsSnapshot };
}

export interface SessionSnapshot {
  readonly version: typeof SESSION_SNAPSHOT_VERSION;
  /**
   * How many calls of this session authored something (issue 9 §2: snapshot generations). A
   * restored snapshot may be older than what the session already sent; the worker can compare
   * generations, and the session refuses to author after any restore until it has caught up.
   * Absent in snapshots stored before it existed (read as 0).
   */
  readonly generation?: number;
  readonly self: MemberId;
  readonly state: SessionState;
  readonly channel: readonly MemberId[];
  readonly membershipSeq: number | null;
  readonly lastSeq: number | null;
  readonly catchUpTo: number | null;
  readonly current: number | null;
  readonly nextIndex: number;
  readonly lastTimerMs: number | null;
  readonly nowMs: number;
  readonly unreadable: number;
  readonly presence: PresenceSnapshot;
  readonly pruned: readonly { readonly index: number; readonly sessionId: string; readonly members: readonly MemberId[] }[];
  readonly subsessions: readonly SubsessionSnapshot[];
  /** The membership half's own snapshot; the caller restores it with its own factory. */
  readonly membership: unknown;
}

export function setupToSnapshot(setup: SubsessionSetup): SetupSnapshot {
  return {
    members: [...setup.members],
    sessionId: base64Encode(setup.keys.sessionId),
    groupKey: base64Encode(setup.keys.groupKey),
    signingKeys: [...setup.signingKeys].map(([m, k]) => [m, base64Encode(k)] as const),
    ownSigningSeed: base64Encode(setup.ownSigningSeed),
    confirmed: setup.confirmed === undefined ? null : [...setup.confirmed],
    initiator: setup.initiator ?? null,
    ...(setup.version === 1 && { version: 1 as const }),
  };
}

export function setupFromSnapshot(s: SetupSnapshot): SubsessionSetup {
  return {
    members: [...s.members],
    keys: { sessionId: sessionId(base64Decode(s.sessionId)), groupKey: base64Decode(s.groupKey) },
    signingKeys: new Map(s.signingKeys.map(([m, k]) => [m, base64Decode(k)])),
    ownSigningSeed: base64Decode(s.ownSigningSeed),
    ...(s.confirmed !== null && { confirmed: [...s.confirmed] }),
    ...(s.initiator !== null && { initiator: s.initiator }),
    ...(s.version === 1 && { version: 1 as const }),
  };
}

/** Rejects snapshots of another version (a later one would migrate here, step by step). */
export function checkSnapshotVersion(snapshot: { readonly version?: unknown }): void {
  if (snapshot.version !== SESSION_SNAPSHOT_VERSION) {
    throw new ProtocolError('unsupported-version', `session snapshot version ${String(snapshot.version)}`);
  }
}

function snapshotMessage(m: TranscriptMessage<MessageBody>): SnapshotMessage {
  return { id: m.id, author: m.author, parents: [...m.parents], body: m.body };
}

/**
 * A subsession's accepted messages as snapshot entries, made once each: the transcript only
 * grows, in acceptance order (mpENC §3.4), so a snapshot after every step (persist before send)
 * extends the entries made for the last one instead of rebuilding all of them (issue 12: at
 * 10,000 messages of a catch-up, every page rebuilt 10,000). The entries are frozen and shared
 * by every snapshot; each snapshot gets its own array.
 */
const madeMessages = new WeakMap<Subsession, SnapshotMessage[]>();

function snapshotMessages(sub: Subsession): SnapshotMessage[] {
  let made = madeMessages.get(sub);
  if (made === undefined) madeMessages.set(sub, (made = []));
  const ids = sub.transcript.ids();
  // The transcript never drops or reorders what it accepted; if it ever did, start over.
  if (made.length > ids.length || (made.length > 0 && made[made.length - 1]!.id !== ids[made.length - 1])) made.length = 0;
  for (let i = made.length; i < ids.length; i++) made.push(Object.freeze(snapshotMessage(sub.transcript.get(ids[i]!))));
  return made.slice();
}

export function snapshotSubsession(sub: Subsession): SubsessionSnapshot {
  return {
    index: sub.index,
    hint: sub.hint,
    installedAtSeq: sub.installedAtSeq,
    setup: setupToSnapshot(sub.setup),
    messages: snapshotMessages(sub),
    pending: sub.pending.list().map((p) => ({ message: snapshotMessage(p.message), text: p.extra.text, seq: p.extra.seq ?? null, sender: p.extra.sender, atMs: p.extra.atMs, receivedAtMs: p.receivedAtMs })),
    held: sub.held.map((h) => ({ message: snapshotMessage(h.message), text: h.carried.text, seq: h.carried.seq ?? null, sender: h.sender, atMs: h.carried.atMs, receivedAtMs: h.receivedAtMs })),
    packets: [...sub.packets],
    acks: sub.acks.snapshot(),
    phase: sub.phase,
    confirmed: [...sub.confirmed].sort(),
    confirmedByPacket: [...sub.confirmedByPacket].sort(),
    done: [...sub.done].sort(),
    ...(sub.published.size > 0 && { published: [...sub.published].sort() }),
    ...(sub.chains !== undefined && { ratchet: { sidkeyHash: base64Encode(sub.boundHash()), chains: sub.chains.snapshot() } }),
  };
}

/** Replays the transcript in acceptance order, which rebuilds clocks, depths and the frontier. */
export function restoreSubsession(s: SubsessionSnapshot, self: MemberId, config: SessionConfig, isOnline: (member: MemberId) => boolean): Subsession {
  const sub = new Subsession(s.index, setupFromSnapshot(s.setup), s.hint, self, config, s.installedAtSeq, isOnline);
  for (const m of s.messages) sub.transcript.add(m);
  for (const p of s.pending) {
    const check = sub.transcript.check(p.message);
    assert(check.kind === 'missing-parents', 'a pending message still misses parents');
    sub.pending.add({ message: p.message, extra: { text: p.text, seq: p.seq ?? undefined, sender: p.sender, atMs: p.atMs }, receivedAtMs: p.receivedAtMs }, check.missing);
  }
  sub.held = s.held.map((h) => ({ message: h.message, carried: { text: h.text, seq: h.seq ?? undefined, sender: h.sender, atMs: h.atMs }, sender: h.sender, receivedAtMs: h.receivedAtMs }));
  for (const [id, text] of s.packets) sub.packets.set(id, text);
  sub.acks = AckMonitor.restore(s.acks, self, sub.transcript, needsAck, config.reliability, isOnline);
  sub.phase = s.phase;
  sub.confirmed.clear();
  for (const m of s.confirmed) sub.confirmed.add(m);
  for (const m of s.confirmedByPacket) sub.confirmedByPacket.add(m);
  for (const m of s.done) sub.done.add(m);
  for (const m of s.published ?? []) sub.published.add(m);
  if (s.ratchet !== undefined) {
    sub.chains = SenderChains.restore(s.ratchet.chains);
    sub.dropGroupKey(base64Decode(s.ratchet.sidkeyHash));
  }
  return sub;
}
