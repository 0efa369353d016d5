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
import type { ServerOrder, WitnessedInitial } from '../order/server-order.js';
import type { IntKey, OwnKey } from './cliques.js';
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
  /**
   * Relay time of the event being processed (ChannelEvent.atMs), for "last seen" and the age of
   * contributions (rule 13). Default: nowMs.
   */
  readonly atMs?: number;
  /**
   * Catching up (async-groups rule 6): until we reach the head we saw when we started fetching,
   * we send nothing. Sends that fall due are kept (`due`) and made at the `caught-up` input.
   */
  readonly quiet?: boolean;
  /** Whether a member is shown online (rule 15: an authenticated packet within the expiry). */
  readonly isOnline?: (member: MemberId) => boolean;
  /** FIN_PM of our confirmation of `confirming`: our last messages in the subsession we confirmed before it. */
  readonly lastWord?: (confirming: SessionId) => readonly MessageId[];
}

export type OperationKind = 'start' | 'include' | 'exclude' | 'refresh';

/**
 * An ephemeral ed25519 signing key pair (mpenc-wire.md "ASKE"). v2 renews it at every
 * subsession a member confirms (issue 9 §3 deniability: the confirmation carries the next one),
 * so that the key of a subsession can be published once it is over.
 */
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
  /**
   * 32-byte AES key; null for a passive observer, which holds no contribution, and once handed
   * to the session (GreetingMembership drops it: issue 9 §3; the machine never reads it). Secret.
   */
  readonly groupKey: Uint8Array | null;
  /** v2: key of the key-confirmation MACs (rule 4); null for observers and v1. Secret. */
  readonly confirmKey: Uint8Array | null;
  /** Ephemeral signing public key of members[i], as the operation that made it lists them. */
  readonly ephemeralPubKeys: readonly Uint8Array[];
  /**
   * v2 (issue 9 §3): members[i]'s signing key here now. A member's confirmation of this
   * subsession (rule 5), signed with its listed key, brings a fresh one; its data here is signed
   * with that. Absent: nobody renewed (= ephemeralPubKeys; snapshots from before).
   */
  readonly signingKeys?: readonly Uint8Array[];
  readonly nonces: readonly Uint8Array[];
  /** Intermediate keys of the last downflow: the next AKA starts from them. */
  readonly intKeys: readonly Uint8Array[];
  /** Final packet of the operation that made this subsession, and the chain hash there. */
  readonly finalPacketId: PacketId;
  readonly chainHash: ChainHash;
  /** The operation that made it (its OP_REF names it in confirmations) and its kind. */
  readonly opRef: ChainHash;
  readonly kind: OperationKind;
  readonly version: 1 | 2;
  readonly initiator: MemberId;
  /**
   * Members whose confirmation we have (rule 5): the contributors at once (their own packets
   * count), the others as their confirmations arrive, however late.
   */
  readonly confirmed: readonly MemberId[];
  /** Members whose confirmation packet we processed (one each: a second one is a replay). */
  readonly finned: readonly MemberId[];
  /** Relay seq of the final packet (rule 12: data ordered before it cannot be under it). */
  readonly finalSeq: number | null;
  /** v2: who contributed to the operation that made it (the others confirm later, rule 5). */
  readonly contributors?: readonly MemberId[];
  /**
   * We were a newcomer of the include that made it. A newcomer cannot check an include against
   * the group's chain; until a member who did not contribute confirms it, it is provisional: if
   * its initiator says the order refused it, or a member includes us again, we drop it.
   */
  readonly joinedHere?: boolean;
}

/**
 * Our own secrets for the current subsession: v1, every contribution (mpENC §5.2 "keep all
 * contributions"); v2, one ratcheted scalar (issue 9 §3, greeting/cliques.ts OwnKey).
 */
export interface OwnSecrets {
  readonly contributions: OwnKey;
  /** Relay time of our latest contribution (rule 13: refresh when it is older than 7 days). */
  readonly contributedAtMs: number;
}

/** An accepted, unfinished operation, tracked by participants and observers alike. */
export interface Operation {
  readonly kind: OperationKind;
  readonly version: 1 | 2;
  readonly initiator: MemberId;
  /** The membership M this operation would create, in CLIQUES order. */
  readonly members: readonly MemberId[];
  readonly initialId: PacketId;
  /** Hex of the initial packet's signature: a repeat of it is a replay of this operation. */
  readonly initialSignature: string;
  /** Chain hash right after the initial packet: the operation's name in v2 packets. */
  readonly opRef: ChainHash;
  /** v2: SHA-256 of the initial packet's PREV_PF ‖ CHAIN_HASH ‖ LATEST_PM. */
  readonly metaHash: Uint8Array | null;
  readonly acceptedAtMs: number;
  /** When the current contributor's turn began (the 2-minute timeout counts from here). */
  readonly turnSinceMs: number;
  /** 'participant': we are in `members`; 'observer': we watch (being excluded, or passive). */
  readonly role: 'participant' | 'observer';
  /** Rule 1: the members who act (see helpers.contributorsOf); the others confirm later. */
  readonly contributors: readonly MemberId[];
  /** Whether every awaited contributor was online when its turn began (rule 9's 2-minute timeout). */
  readonly turnOnline: boolean;
  /** v2: the new subsession's key-confirmation key, once we know it. Secret. */
  readonly confirmKey: Uint8Array | null;
  /** Index in `members` of the member whose upflow/downflow packet comes next; -1 once downflow is out. */
  readonly nextIndex: number;
  readonly intKeys: readonly IntKey[];
  readonly nonces: readonly Uint8Array[];
  readonly pubKeys: readonly Uint8Array[];
  /** Known once the downflow is out (v1). */
  readonly sid: SessionId | null;
  /** v1: members whose session signature verified. */
  readonly confirmed: readonly MemberId[];
  /** Participant only: our contributions (v2: scalar) after this operation, and the new group key. Secret. */
  readonly contributions: OwnKey | null;
  readonly nonce: Uint8Array | null;
  readonly groupKey: Uint8Array | null;
  /** We stopped taking part (a check failed, or we timed out) and posted ABORT_DOWN. */
  readonly abortSent: boolean;
}

/** Our own initial packet, posted and waiting for the relay's order to decide it (rule 8). */
export interface Proposal {
  readonly kind: OperationKind;
  readonly text: string;
  readonly members: readonly MemberId[];
  /** Our contributions (v2: scalar) after our step in this operation, our nonce, and (exclude/refresh) the new keys. Secret. */
  readonly contributions: OwnKey;
  readonly nonce: Uint8Array;
  readonly groupKey: Uint8Array | null;
  readonly confirmKey: Uint8Array | null;
  /** An automatic proposal (mpENC §3.3 exclusion of members who left, rule 10 include, rule 13 refresh), not a user intent. */
  readonly automatic: boolean;
}

/**
 * Sends that fell due while we were catching up (rule 6), made at `caught-up` if still due:
 * our turn in an operation, our confirmation of the head subsession, an abort, a rejoin request.
 */
export interface DueSends {
  readonly contribute: boolean;
  readonly confirm: boolean;
  readonly abort: AbortReason | null;
  readonly rejoin: boolean;
  /** Rule 13: check the age of our contributions once we reach the head. */
  readonly refreshCheck: boolean;
  /** OP_REFs (hex) of our own includes the order refused, to declare void (AbortReason.REFUSED). */
  readonly voids?: readonly string[];
}

/** An automatic include to propose (rule 10) at `atMs`, unless it became moot by then. */
export interface PlannedInclude {
  readonly atMs: number;
  /** Seq of the channel event that made it due (one proposal per event). */
  readonly forSeq: number;
}

export interface MembershipState {
  readonly self: MemberId;
  /** Our static identity seed; null for a passive observer (it never sends). Secret. */
  readonly staticSeed: Uint8Array | null;
  /** Our newest ephemeral signing key (the one our next start or contribution lists). */
  readonly ephemeral: SigningKeyPair | null;
  /**
   * Issue 9 §3: our older signing keys that a kept subsession (or the ongoing operation) may
   * still list as ours: we sign our confirmations with them and publish them once their
   * subsession is over. Absent: none (snapshots from before).
   */
  readonly ownKeys?: readonly SigningKeyPair[];
  /** The fresh key our confirmation of subsession `sid` carries (the same one if we confirm it again). */
  readonly renewal?: { readonly sid: SessionId; readonly pair: SigningKeyPair } | null;
  /**
   * Hex of signing keys their owners published (deniability) that a kept subsession still lists:
   * nothing signed with them is accepted any more, nor an operation that lists them.
   */
  readonly revoked?: readonly string[];
  /** Channel membership as of the last event, and whether we are in the channel. */
  readonly channel: readonly MemberId[];
  /** Relay seq of the last event we processed (null before the first, and after leaving). */
  readonly lastSeq: number | null;
  /** Seq of the last channel membership event (joined/left): the channel's membership version (rule 7). */
  readonly membershipSeq: number | null;
  readonly order: ServerOrder;
  /**
   * Initial packets we saw ordered while we held no subsession or a provisional one (bounded),
   * to tell an include of us that lost a race before ours from one that supersedes ours (README
   * "A parent we never saw"). Absent: none (snapshots from before).
   */
  readonly witnessed?: readonly WitnessedInitial[];
  readonly current: Subsession | null;
  /** Subsessions before `current`, newest last (bounded): late confirmations still name them. */
  readonly recent: readonly Subsession[];
  readonly own: OwnSecrets | null;
  readonly op: Operation | null;
  readonly proposal: Proposal | null;
  /** Automatic proposals made since the last success or channel change (MAX_AUTOMATIC_ATTEMPTS). */
  readonly automaticAttempts: number;
  /** Signatures (hex) of greeting packets seen recently: an exact repeat is a replay (helpers.SeenSignatures). */
  readonly seen: readonly (readonly string[])[];
  /** A passive observer follows every operation it sees, as the mpENC trace check needs. */
  readonly passive: boolean;
  /** Rule 10: propose includes of newcomers automatically (the app's setting). */
  readonly autoInclude: boolean;
  /** Rule 10: until this relay time we invited someone, so we include newcomers at once. */
  readonly invitedUntilMs: number | null;
  readonly plannedInclude: PlannedInclude | null;
  /**
   * Rule 10: while we wait to be included, when we last said "I am here, include me" and until
   * when we say it again every WAITING_KNOCK_INTERVAL_MS (null: not waiting).
   */
  readonly knocking?: { readonly atMs: number; readonly untilMs: number } | null;
  /** Rule 11: members who asked to be included again; they are excluded (not kicked), then included. */
  readonly rejoining: readonly MemberId[];
  /** After a user's "retry without", the include to propose once our abort is ordered. */
  readonly retry: { readonly members: readonly MemberId[] } | null;
  readonly due: DueSends;
}

export type MembershipInput =
  /** Start a new group with us and `others` (only while we are in no subsession). */
  | { readonly kind: 'start'; readonly others: readonly MemberId[] }
  | { readonly kind: 'include'; readonly members: readonly MemberId[]; readonly latestPms?: readonly MessageId[] }
  /** mpENC §3.3: never ourselves (we leave instead). */
  | { readonly kind: 'exclude'; readonly members: readonly MemberId[]; readonly latestPms?: readonly MessageId[] }
  | { readonly kind: 'refresh'; readonly latestPms?: readonly MessageId[] }
  /** Abort the ongoing operation: ours, or any waiting include (rule 9). */
  | { readonly kind: 'abort' }
  /** Rule 9: abort the waiting include and propose it again without those who never came. */
  | { readonly kind: 'retry-without-missing' }
  /** `knownData`: the session already knows it is a data packet (only the seq matters here). */
  | { readonly kind: 'channel'; readonly event: ChannelEvent; readonly knownData?: boolean }
  /** Time passed (env.nowMs); the worker sends one at each `set-timer` deadline. */
  | { readonly kind: 'tick' }
  /** Rule 6: we reached the head we saw when we started fetching; make the sends that fell due. */
  | { readonly kind: 'caught-up' }
  /** Rule 10: we invited someone (until `untilMs`, relay time): we include newcomers at once. */
  | { readonly kind: 'invited'; readonly untilMs: number }
  /**
   * Rule 11: the relay no longer holds events before `firstSeq` (its retention limit).
   * `members`: the channel's members just before `firstSeq`, as the relay reports them (the
   * membership events we missed are gone too).
   */
  | { readonly kind: 'retention'; readonly firstSeq: number; readonly members?: readonly MemberId[] };

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
  | 'key-mismatch' // rule 4: a key confirmation did not match the key we derived
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
  /**
   * Rule 5: `member`'s confirmation packet of subsession `sid` arrived and checked out against the
   * stored subsession, with its last messages in the subsession it had confirmed before
   * (`finPms`). (Contributors are confirmed by their own packets: Subsession.confirmed.)
   */
  | {
      readonly kind: 'confirmed';
      readonly sid: SessionId;
      readonly member: MemberId;
      readonly finPms: readonly MessageId[];
      /** Issue 9 §3: the member's signing key in `sid` from now on (its confirmation renewed it). */
      readonly signingKey?: Uint8Array;
    }
  /** Issue 9 §3: we sent our confirmation of `sid`; our data there is signed with `pair` from now on. */
  | { readonly kind: 'own-signing-key'; readonly sid: SessionId; readonly pair: SigningKeyPair }
  /** An authenticated greeting of `member` (rule 15: presence counts it). */
  | { readonly kind: 'seen'; readonly member: MemberId }
  /**
   * Rule 9: the ongoing operation waits for `awaiting` to contribute (their turn since
   * `sinceMs`); it is aborted at `limitAtMs` (OPERATION_WAIT_LIMIT_MS), or after
   * OPERATION_TIMEOUT_MS when all of them are online. `canAbort`: we may abort it now.
   */
  | { readonly kind: 'waiting'; readonly operation: OperationKind; readonly awaiting: readonly MemberId[]; readonly sinceMs: number; readonly limitAtMs: number; readonly canAbort: boolean }
  /** The operation ended without a new subsession; our state is exactly as before it. */
  | { readonly kind: 'operation-failed'; readonly operation: OperationKind; readonly reason: FailureReason; readonly abortReason?: AbortReason; readonly by?: MemberId; readonly opRef: ChainHash }
  /** Our proposal was not accepted (another operation won, or its targets left the channel). */
  | { readonly kind: 'proposal-rejected'; readonly operation: OperationKind; readonly reason: string }
  /** An intent we cannot act on now (e.g. start while in a subsession). Nothing was sent. */
  | { readonly kind: 'intent-refused'; readonly intent: MembershipInput['kind']; readonly reason: string }
  /** Others excluded us; we wait to be removed from the channel (mpENC §3.3). */
  | { readonly kind: 'excluded'; readonly by: MemberId }
  /**
   * Rule 11: we were away longer than the relay keeps events (or events were withheld, a key
   * confirmation failed, or the group went on with an operation we failed): our secrets of this
   * group are gone, we are solo and have asked (REJOIN_DOWN) to be included again.
   */
  | { readonly kind: 'start-over'; readonly reason: 'retention' | 'key-mismatch' | 'forked' | 'events-withheld' | 'superseded' }
  /**
   * A signed REJOIN_DOWN of `member` (rules 10, 11): `startedOver`, a member of our subsession
   * lost this group's state and asks to be excluded and included again; otherwise a channel
   * member outside it is online and waits to be included. (We include it only with autoInclude.)
   */
  | { readonly kind: 'rejoin-request'; readonly member: MemberId; readonly startedOver: boolean }
  | { readonly kind: 'warning'; readonly code: WarningCode; readonly member: MemberId | null; readonly message: string }
  | { readonly kind: 'set-timer'; readonly atMs: number };

export interface StepResult {
  readonly state: MembershipState;
  readonly effects: readonly MembershipEffect[];
}
