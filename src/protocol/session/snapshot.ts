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
import type { PresenceSnapshot } from '../presence/presence-tracker.js';
import type { AckMonitorSnapshot } from '../reliability/ack-monitor.js';
import type { MessageKey } from '../transcript/ids.js';
import type { SubsessionSetup } from './membership.js';
import type { SessionState } from './effects.js';
import { assert } from '../errors.js';
import { PresenceTracker } from '../presence/presence-tracker.js';
import { AckMonitor } from '../reliability/ack-monitor.js';
import type { TranscriptMessage } from '../transcript/message.js';
import type { SessionConfig } from './config.js';
import { needsAck } from './effects.js';
import { Subsession, type SubsessionPhase } from './subsession.js';

export const SESSION_SNAPSHOT_VERSION = 1;

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
}

export interface SubsessionSnapshot {
  readonly index: number;
  readonly hint: number;
  readonly setup: SetupSnapshot;
  /** Accepted messages in acceptance order. */
  readonly messages: readonly SnapshotMessage[];
  /** Messages waiting for parents, in arrival order. */
  readonly pending: readonly { readonly message: SnapshotMessage; readonly text: string; readonly receivedAtMs: number }[];
  readonly packets: readonly (readonly [MessageKey, string])[];
  readonly acks: AckMonitorSnapshot;
  readonly presence: PresenceSnapshot;
  readonly phase: SubsessionPhase;
  readonly departed: readonly MemberId[];
}

export interface SessionSnapshot {
  readonly version: typeof SESSION_SNAPSHOT_VERSION;
  readonly self: MemberId;
  readonly state: SessionState;
  readonly channel: readonly MemberId[];
  readonly current: number | null;
  readonly lastTimerMs: number | null;
  readonly firstSubsessionAtMs: number | null;
  readonly undecryptable: readonly {
    readonly sender: MemberId;
    readonly seq: number;
    readonly text: string;
    readonly receivedAtMs: number;
    readonly expected: boolean;
  }[];
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
  };
}

export function setupFromSnapshot(s: SetupSnapshot): SubsessionSetup {
  return {
    members: [...s.members],
    keys: { sessionId: sessionId(base64Decode(s.sessionId)), groupKey: base64Decode(s.groupKey) },
    signingKeys: new Map(s.signingKeys.map(([m, k]) => [m, base64Decode(k)])),
    ownSigningSeed: base64Decode(s.ownSigningSeed),
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

export function snapshotSubsession(sub: Subsession): SubsessionSnapshot {
  return {
    index: sub.index,
    hint: sub.hint,
    setup: setupToSnapshot(sub.setup),
    messages: sub.transcript.ids().map((id) => snapshotMessage(sub.transcript.get(id))),
    pending: sub.pending.list().map((p) => ({ message: snapshotMessage(p.message), text: p.extra, receivedAtMs: p.receivedAtMs })),
    packets: [...sub.packets],
    acks: sub.acks.snapshot(),
    presence: sub.presence.snapshot(),
    phase: sub.phase,
    departed: [...sub.departed],
  };
}

/** Replays the transcript in acceptance order, which rebuilds clocks, depths and the frontier. */
export function restoreSubsession(s: SubsessionSnapshot, self: MemberId, config: SessionConfig): Subsession {
  const sub = new Subsession(s.index, setupFromSnapshot(s.setup), s.hint, self, config, 0);
  for (const m of s.messages) sub.transcript.add(m);
  for (const p of s.pending) {
    const check = sub.transcript.check(p.message);
    assert(check.kind === 'missing-parents', 'a pending message still misses parents');
    sub.pending.add({ message: p.message, extra: p.text, receivedAtMs: p.receivedAtMs }, check.missing);
  }
  for (const [id, text] of s.packets) sub.packets.set(id, text);
  sub.acks = AckMonitor.restore(s.acks, self, sub.transcript, needsAck, config.reliability);
  sub.presence = PresenceTracker.restore(s.presence, self, config.presence);
  sub.phase = s.phase;
  for (const m of s.departed) sub.departed.add(m);
  return sub;
}
