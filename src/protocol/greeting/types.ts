/**
 * Public types of the membership layer (mpENC §3.1–§3.3, §4.3 Greeter/Greeting/ServerOrder).
 *
 * One member's view is a `MembershipState` value; `step(state, input, env)` (machine.ts) returns
 * the next value and a list of effects, never mutating its input. Inputs are user intents,
 * channel events (with the relay's seq) and ticks; effects are packets to post, results,
 * failures, security warnings and timers.
 */
import type { ChannelEvent } from '../channel.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { ChainHash, MemberId, MessageId, PacketId, SessionId } from '../ids.js';
import type { RandomSource } from '../random.js';
import type { ServerOrder } from '../order/server-order.js';
import type { Contributions, IntKey } from './cliques.js';
import type { AbortReason } from './wire.js';

/** Static identity keys of members, e.g. from the contact list (DESIGN.md §5). */
export interface KeyDirectory {
  /** The member's static ed25519 public key, or undefined when unknown. */
  staticKey(member: MemberId): Uint8Array | undefined;
}

export interface MembershipEnv {
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
  readonly nowMs: number;
  readonly keys: KeyDirectory;
}

export type OperationKind = 'start' | 'include' | 'exclude' | 'refresh';

/** An ephemeral ed25519 signing key pair; reused across subsessions (mpenc-wire.md "ASKE"). */
export interface SigningKeyPair {
  /** 32-byte seed. Secret. */
  readonly seed: Uint8Array;
  readonly pub: Uint8Array;
}

/** The result of a finished operation: a subsession of static membership (mpENC §3.1). */
export interface Subsession {
  /** In CLIQUES order (initiator of the start first, joiners appended). */
  readonly members: readonly MemberId[];
  readonly sid: SessionId;
  /** 32-byte AES key; null for a passive observer, which holds no contribution. Secret. */
  readonly groupKey: Uint8Array | null;
  /** Ephemeral signing public key of members[i]. */
  readonly ephemeralPubKeys: readonly Uint8Array[];
  readonly nonces: readonly Uint8Array[];
  /** Intermediate keys of the last downflow: the next AKA starts from them. */
  readonly intKeys: readonly Uint8Array[];
  /** Final packet of the operation that made this subsession, and the chain hash there. */
  readonly finalPacketId: PacketId;
  readonly chainHash: ChainHash;
}

/** Our own secrets for the current subsession (mpENC §5.2 "keep all contributions"). */
export interface OwnSecrets {
  readonly contributions: Contributions;
}

/** An accepted, unfinished operation, tracked by participants and observers alike. */
export interface Operation {
  readonly kind: OperationKind;
  readonly version: 1 | 2;
  readonly initiator: MemberId;
  /** The membership M this operation would create, in CLIQUES order. */
  readonly members: readonly MemberId[];
  readonly initialId: PacketId;
  /** Chain hash right after the initial packet: the operation's name in v2 packets. */
  readonly opRef: ChainHash;
  /** v2: SHA-256 of the initial packet's PREV_PF ‖ CHAIN_HASH ‖ LATEST_PM (signed by every ack). */
  readonly metaHash: Uint8Array | null;
  readonly acceptedAtMs: number;
  /** 'participant': we are in `members`; 'observer': we watch (being excluded, or passive). */
  readonly role: 'participant' | 'observer';
  /** Index in `members` of the member whose upflow/downflow packet comes next; -1 once downflow is out. */
  readonly nextIndex: number;
  readonly intKeys: readonly IntKey[];
  readonly nonces: readonly Uint8Array[];
  readonly pubKeys: readonly Uint8Array[];
  /** Known once the downflow is out. */
  readonly sid: SessionId | null;
  /** Members whose session signature verified. */
  readonly confirmed: readonly MemberId[];
  /** Participant only: our contributions after this operation, and the new group key. Secret. */
  readonly contributions: Contributions | null;
  readonly nonce: Uint8Array | null;
  readonly groupKey: Uint8Array | null;
  /** We stopped taking part (a check failed, or we timed out) and posted ABORT_DOWN. */
  readonly abortSent: boolean;
}

/** Our own initial packet, posted and waiting to be accepted or rejected by ServerOrder. */
export interface Proposal {
  readonly kind: OperationKind;
  readonly text: string;
  readonly members: readonly MemberId[];
  /** Our contributions after our step in this operation, our nonce, and (exclude/refresh) the new key. Secret. */
  readonly contributions: Contributions;
  readonly nonce: Uint8Array;
  readonly groupKey: Uint8Array | null;
  /** Automatic exclusion of members who left the channel (mpENC §3.3), not a user intent. */
  readonly automatic: boolean;
}

export interface MembershipState {
  readonly self: MemberId;
  /** Our static identity seed; null for a passive observer (it never sends). Secret. */
  readonly staticSeed: Uint8Array | null;
  readonly ephemeral: SigningKeyPair | null;
  /** Channel membership as of the last event, and whether we are in the channel. */
  readonly channel: readonly MemberId[];
  /** Relay seq of the last event we processed (null before the first, and after leaving). */
  readonly lastSeq: number | null;
  readonly order: ServerOrder;
  readonly current: Subsession | null;
  readonly own: OwnSecrets | null;
  readonly op: Operation | null;
  readonly proposal: Proposal | null;
  /** When we posted `proposal` (PROPOSAL_TIMEOUT_MS). */
  readonly proposedAtMs: number | null;
  /** Automatic exclusions proposed since the last success or channel change (MAX_AUTOMATIC_ATTEMPTS). */
  readonly automaticAttempts: number;
  /** Hex SHA-256 of greeting packet texts seen recently: an exact repeat is a replay. */
  readonly seen: readonly string[];
  /** A passive observer follows every operation it sees, as the mpENC trace check needs. */
  readonly passive: boolean;
}

export type MembershipInput =
  /** Start a new group with us and `others` (only while we are in no subsession). */
  | { readonly kind: 'start'; readonly others: readonly MemberId[] }
  | { readonly kind: 'include'; readonly members: readonly MemberId[]; readonly latestPms?: readonly MessageId[] }
  /** mpENC §3.3: never ourselves (we leave instead). */
  | { readonly kind: 'exclude'; readonly members: readonly MemberId[]; readonly latestPms?: readonly MessageId[] }
  | { readonly kind: 'refresh'; readonly latestPms?: readonly MessageId[] }
  /** Abort the ongoing operation we take part in. */
  | { readonly kind: 'abort' }
  | { readonly kind: 'channel'; readonly event: ChannelEvent }
  /** Time passed (env.nowMs); the worker sends one at each `set-timer` deadline. */
  | { readonly kind: 'tick' };

/** 'aborted': an ABORT_DOWN was accepted; 'member-left': a target left the channel (§3.3);
 * 'left-channel': we left; 'rejected-packet': a packet of the operation failed our checks. */
export type FailureReason = 'aborted' | 'member-left' | 'left-channel' | 'rejected-packet';

export type WarningCode =
  | 'bad-packet' // undecodable or malformed greeting
  | 'bad-signature' // a signature, session signature or own contribution did not verify
  | 'forged-source' // SOURCE is not the channel sender
  | 'replay' // an exact repeat of a greeting packet
  | 'inconsistent-order' // a packet of an operation we never accepted, or an unknown parent
  | 'events-withheld' // a gap in the relay's seq numbers
  | 'low-order-point' // a CLIQUES value of small order
  | 'peer-alarm'; // a member aborted for a security reason

export type MembershipEffect =
  | { readonly kind: 'send'; readonly text: string }
  /** mpENC §3.3: excluded members are removed from the channel by the others. */
  | { readonly kind: 'kick'; readonly members: readonly MemberId[] }
  | { readonly kind: 'operation-accepted'; readonly operation: OperationKind; readonly initiator: MemberId; readonly members: readonly MemberId[]; readonly opRef: ChainHash }
  | {
      readonly kind: 'subsession';
      readonly operation: OperationKind;
      readonly subsession: Subsession;
      /** Our ephemeral key pair (null for a passive observer). */
      readonly ownEphemeral: SigningKeyPair | null;
      readonly previousSid: SessionId | null;
    }
  /** The operation ended without a new subsession; our state is exactly as before it. */
  | { readonly kind: 'operation-failed'; readonly operation: OperationKind; readonly reason: FailureReason; readonly abortReason?: AbortReason; readonly by?: MemberId; readonly opRef: ChainHash }
  /** Our proposal was not accepted (another operation won, or its targets left the channel). */
  | { readonly kind: 'proposal-rejected'; readonly operation: OperationKind; readonly reason: string }
  /** An intent we cannot act on now (e.g. start while in a subsession). Nothing was sent. */
  | { readonly kind: 'intent-refused'; readonly intent: MembershipInput['kind']; readonly reason: string }
  /** Others excluded us; we wait to be removed from the channel (mpENC §3.3). */
  | { readonly kind: 'excluded'; readonly by: MemberId }
  | { readonly kind: 'warning'; readonly code: WarningCode; readonly member: MemberId | null; readonly message: string }
  | { readonly kind: 'set-timer'; readonly atMs: number };

export interface StepResult {
  readonly state: MembershipState;
  readonly effects: readonly MembershipEffect[];
}
