/**
 * The worker's stored records (values of the sealed stores of src/store/schema.ts, JSON inside
 * AES-GCM). Bytes are base64url text. README "Store format" lists them with their keys.
 */
import type { CapabilityToken, ChannelId, MemberKey } from '../shared/relay-api.js';
import type {
  ContactId,
  ConversationId,
  ConversationKind,
  ConversationState,
  InvitationId,
  MessageRef,
  NoticeAction,
  NoticeTone,
  OperationId,
  OperationKind,
  PushSubscriptionJson,
  RequestId,
  Verification,
} from '../shared/worker-api.js';
import type { Binding, Card } from './cards.js';
import type { StoredSnapshot } from './snapshot-chunks.js';

/** profile 'me'. */
export interface ProfileRecord {
  readonly identitySeed: string;
  readonly identityKey: string;
  readonly displayName: string;
  readonly homeRelay: string;
  readonly inbox: {
    readonly channel: ChannelId;
    /** The inbox owner's relay key (not the identity key: the relay learns no identity). */
    readonly ownerSeed: string;
    /** Seed of the HPKE X25519 key pair messages to this inbox are sealed to. */
    readonly hpkeSeed: string;
    readonly deposit: CapabilityToken;
    readonly depositExpiresAtMs: number;
    /** Newest inbox seq processed. */
    readonly lastSeq: number;
  };
  readonly card: Card;
  readonly persistence: 'granted' | 'refused' | 'unsupported' | 'unknown';
  readonly createdAtMs: number;
  /** The Web Push subscription registered in our channels on the home relay (setPush), if any. */
  readonly push?: PushSubscriptionJson | null;
  /**
   * Our fingerprint (safety-number.ts `fingerprint(identityKey)`), stored so that a start does
   * not compute it: 5,200 SHA-256 steps, ~27 ms of the engine thread before the stored chat list
   * and a catch-up (bench:catchup profile). Absent in records of older builds: computed once then
   * and stored.
   */
  readonly fingerprint?: string;
}

/** profile 'deposits': sealed inbox messages waiting to be deposited (offline, relay down). */
export interface PendingDeposit {
  readonly id: string;
  readonly relay: string;
  readonly inbox: ChannelId;
  readonly capability: CapabilityToken;
  /** The sealed packet, base64url. */
  readonly packet: string;
  readonly queuedAtMs: number;
  readonly attempts: number;
  /** What to say if it fails for good. */
  readonly what: string;
}

export interface ContactRecord {
  readonly id: ContactId;
  readonly card: Card;
  /** A name the user gave them, overriding the card's. */
  readonly nickname: string | null;
  readonly verification: Verification;
  readonly state: 'requested' | 'connected';
  /** Set while verification is 'key-changed': the new card, waiting for acceptKeyChange. */
  readonly changedCard: Card | null;
  readonly keyChangedAtMs: number | null;
  readonly directConversationId: ConversationId | null;
  readonly addedAtMs: number;
}

export interface RequestRecord {
  readonly id: RequestId;
  readonly card: Card;
  readonly receivedAtMs: number;
}

/** The body of a sealed invitation, and of an opened invite link (then `members` is empty). */
export interface InvitationBody {
  readonly kind: ConversationKind;
  readonly relay: string;
  readonly ch: ChannelId;
  readonly cap: CapabilityToken;
  readonly jk: string;
  readonly id: string;
  readonly name: string;
  readonly exp: number;
  readonly members: readonly Binding[];
}

export interface InvitationRecord {
  readonly id: InvitationId;
  readonly via: 'inbox' | 'link';
  readonly body: InvitationBody;
  readonly inviter: { readonly name: string; readonly ik: string; readonly card: Card | null };
  readonly receivedAtMs: number;
}

/** An invitation this group knows of (ours, or announced by another member). */
export interface GroupInvite {
  readonly id: string;
  readonly jk: string;
  /** The invitee's identity key, or null for a one-time link (anyone may redeem it). */
  readonly ik: string | null;
  readonly name: string | null;
  /** Channel key of the member who made it (it includes the joiner first: rule 10). */
  readonly by: MemberKey;
  readonly expiresAtMs: number;
  readonly operationId: OperationId | null;
  /** The member who joined with it (each invitation admits one person). */
  readonly usedBy: MemberKey | null;
}

/** A verified join claim: this channel key asks to be included. */
export interface JoinClaim {
  readonly member: MemberKey;
  readonly binding: Binding;
  readonly inviteId: string;
  readonly atMs: number;
}

export interface OperationRecord {
  readonly id: OperationId;
  readonly kind: OperationKind;
  readonly state: 'waiting' | 'running' | 'failed';
  /** Identity keys (or channel keys for remove) it concerns, and their names. */
  readonly targets: readonly { readonly ik: string | null; readonly member: MemberKey | null; readonly name: string }[];
  readonly startedAtMs: number;
  readonly expiresAtMs: number | null;
  readonly failure: string | null;
  readonly inviteId: string | null;
}

/** A message written while it could not be sealed yet (async-groups rule 7: plaintext under the data key). */
export interface QueuedMessage {
  readonly ref: MessageRef;
  readonly position: number;
  readonly text: string;
  readonly atMs: number;
}

export type RelayAction = { readonly kind: 'remove'; readonly member: MemberKey } | { readonly kind: 'leave' };

export interface ConversationRecord {
  readonly id: ConversationId;
  kind: ConversationKind;
  name: string;
  readonly relay: string;
  readonly channel: ChannelId;
  /** Our channel key's seed (the mpENC static key of this group) and its public key. */
  readonly memberSeed: string;
  readonly memberKey: MemberKey;
  state: ConversationState;
  readonly createdAtMs: number;
  /** Verified bindings by channel key (ours included). */
  bindings: Record<string, Binding>;
  invites: GroupInvite[];
  claims: JoinClaim[];
  operations: OperationRecord[];
  /** Channel membership at our own join (from the relay), until our join event is processed. */
  joinMembers: MemberKey[] | null;
  /** We owe the group a roster message (we completed an include or a start). */
  owesRoster: boolean;
  /** Channel keys we proposed to include or exclude and wait for. */
  proposing: { readonly kind: 'include' | 'exclude'; readonly members: MemberKey[] } | null;
  pendingRelay: RelayAction[];
  queued: QueuedMessage[];
  /** Next timeline position. */
  nextPosition: number;
  /** Positions up to this one (inclusive) are read. */
  readUpTo: number;
  unread: number;
  last: { readonly author: MemberKey; readonly text: string; readonly atMs: number; readonly position: number } | null;
  lastActivityMs: number;
  /** A security warning waits for the user. */
  attention: boolean;
  /** Members of the newest subsession we saw (to tell who joined and who went). */
  lastMembers: MemberKey[];
  /**
   * Members whose own member-left we saw on the channel and whose exclusion has not shown yet:
   * their notice says they left, not merely that they are gone (absent in older records).
   */
  leftThemselves?: MemberKey[];
  /** We made this group (its first key agreement is ours to start). */
  readonly createdByMe: boolean;
  /** We asked to leave (so our member-left is 'left', not 'removed'). */
  leaving: boolean;
  /** Ids of our invitations already announced to the group. */
  announced: string[];
  /** An accepted invitation whose relay join or claim is not done yet (crash-safe joining). */
  pendingJoin: { readonly cap: CapabilityToken; readonly jk: string; readonly inviteId: string } | null;
  /** When we last posted a join claim (re-posted on start while still waiting: rule 10). */
  claimedAtMs: number | null;
}

/** sessions/<conversationId>: written with every Session call (persist before send). */
export interface SessionRecord {
  /** The session snapshot, its settled messages cut out into sessionChunks (snapshot-chunks.ts). */
  readonly snapshot: StoredSnapshot | null;
  /** Newest channel seq processed (re-subscribe after it). */
  readonly lastSeq: number;
  /** Relay time of each member's latest packet (presence "last seen", async-groups rule 15). */
  readonly lastSeen: Record<string, number>;
  /**
   * The conversation record as of this write. When present it supersedes the `conversations`
   * store's copy: a step changes both, and one sealed record instead of two is one WebCrypto
   * call less per step (bench:client). Absent in records written before, or by a write that
   * reset the session (the `conversations` copy is then the current one).
   */
  readonly conversation?: ConversationRecord;
}

export type TimelineRecord =
  | {
      readonly t: 'm';
      readonly ref: MessageRef;
      /** mpENC message key (hex), null while queued. */
      readonly mpenc: string | null;
      readonly author: MemberKey;
      readonly text: string;
      readonly atMs: number;
      readonly parents: readonly string[];
      readonly hiddenParents: boolean;
      readonly state: 'queued' | 'sealed' | 'failed';
      readonly failure: string | null;
      /** postIds of its packets (delivery shows 'waiting-to-send' while any is in the outbox). */
      readonly postIds: readonly string[];
    }
  | {
      readonly t: 'n';
      readonly tone: NoticeTone;
      readonly text: string;
      readonly whatToDo: string | null;
      readonly action: NoticeAction | null;
      readonly atMs: number;
    };

export const PROFILE_KEY = 'me';
export const DEPOSITS_KEY = 'deposits';
