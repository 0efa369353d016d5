/**
 * The worker ↔ UI API (issue 10 §3; DESIGN.md §1): everything the UI thread may ask of the engine
 * in the Web Worker, and every view model the engine shows. The UI holds no keys and runs no
 * crypto: it sends commands (`WorkerCommands`) and renders views (`WorkerViews`) that the worker
 * pushes whenever they change. Prose version with examples: src/worker/README.md "API".
 *
 * Types and plain constants only (ES2022): the UI, the worker and tests import this file.
 * Stability: after it lands, changes are additive only (new commands, new optional fields, new
 * union members the UI may render generically). `WORKER_API_VERSION` counts breaking changes.
 *
 * Ids are opaque strings made by the worker; the UI passes them back unchanged and never parses
 * them. Times are milliseconds since the Unix epoch. Every text meant for people (`text`,
 * `whatToDo`, error messages) is plain English words, ready to show as text (never HTML).
 */

export const WORKER_API_VERSION = 1;

// ---- ids ------------------------------------------------------------------------------------

/** A person we know (one per identity key), stable for the life of the profile. */
export type ContactId = string & { readonly __brand: 'ContactId' };
/** A conversation: a group, or a chat of two (a group of two). */
export type ConversationId = string & { readonly __brand: 'ConversationId' };
/** A message, stable from the moment it appears (ours: from `send`, before it is sealed). */
export type MessageRef = string & { readonly __brand: 'MessageRef' };
/** A member of one conversation (its per-conversation key: the same person differs per group). */
export type MemberRef = string & { readonly __brand: 'MemberRef' };
/** A received contact request, waiting for accept or decline. */
export type RequestId = string & { readonly __brand: 'RequestId' };
/** A received group invitation (from the inbox or an opened invite link). */
export type InvitationId = string & { readonly __brand: 'InvitationId' };
/** A membership operation of a conversation (add, remove, leave, rename, join). */
export type OperationId = string & { readonly __brand: 'OperationId' };

// ---- input limits (each with its reason) ------------------------------------------------------

/** Display names and contact names: a line in a list, not a paragraph. */
export const MAX_DISPLAY_NAME_CHARS = 64;
/** Group names: a title line. */
export const MAX_GROUP_NAME_CHARS = 100;
/**
 * One message's text. A sealed packet must stay well under the relay's 192 KiB packet limit after
 * mpENC padding (powers of two) and base64; 16,000 UTF-16 units is at most 48 KB of UTF-8.
 */
export const MAX_MESSAGE_TEXT_CHARS = 16_000;
/** A draft is a message not yet sent: the same bound. */
export const MAX_DRAFT_CHARS = MAX_MESSAGE_TEXT_CHARS;
/** A pasted link or scanned QR text: a card link is ~400 characters; anything far longer is not ours. */
export const MAX_LINK_CHARS = 4_096;
/** Passphrases: long enough for any diceware phrase, short enough to bound PBKDF2 input. */
export const MIN_PASSPHRASE_CHARS = 8;
export const MAX_PASSPHRASE_CHARS = 1_024;
/** Members of one group (the engine's MAX_GROUP_MEMBERS). */
export const MAX_GROUP_MEMBERS = 128;
/** Messages a conversation view holds at first; `loadEarlier` raises its limit by this step. */
export const DEFAULT_MESSAGE_WINDOW = 200;
/** Largest message window a view may ask for: keeps one view update small to clone. */
export const MAX_MESSAGE_WINDOW = 5_000;

// ---- shared view pieces -----------------------------------------------------------------------

/**
 * Whose key we checked (issue 10 §5): trusted on first use and 'unverified'; 'verified' after the
 * user compared the safety number or scanned their code; 'key-changed' when a different key
 * appeared for them: a loud warning that holds sending to them until the user accepts it.
 */
export type Verification = 'unverified' | 'verified' | 'key-changed';

/** async-groups rule 15: online if heard from lately, else the last time they were seen. */
export type Presence =
  | { readonly state: 'online' }
  | { readonly state: 'last-seen'; readonly atMs: number }
  /** Never heard from in this conversation yet (e.g. invited, not yet joined). */
  | { readonly state: 'unknown' };

/** A QR code as a square of dark (true) and light modules, quiet zone not included. */
export interface QrCode {
  readonly size: number;
  /** `rows[y][x]`: true = dark. Render with SVG rects or a canvas: no HTML, no image URL needed. */
  readonly rows: readonly (readonly boolean[])[];
  /** The same code as an SVG document (text). Safe: made by the worker from our own data. */
  readonly svg: string;
}

// ---- app ------------------------------------------------------------------------------------

/**
 * - 'starting': opening the store (brief).
 * - 'no-identity': first run: show the welcome screen, then `createIdentity`.
 * - 'locked': a passphrase protects the store: show the lock screen, then `unlock`.
 * - 'ready': everything works.
 * - 'engine-elsewhere': another tab of this profile runs the engine (issue 10 §1); offer
 *   `useEngineHere`. Only `useEngineHere` works in this state.
 * - 'failed': the store cannot be opened (e.g. private mode without IndexedDB); see `failure`.
 */
export type AppPhase = 'starting' | 'no-identity' | 'locked' | 'ready' | 'engine-elsewhere' | 'failed';

/**
 * Whether the browser keeps our data under storage pressure (DESIGN.md §4). 'refused' must be
 * shown (with the reason: the browser may delete messages and keys of a site it considers unused).
 */
export type PersistenceState = 'granted' | 'refused' | 'unsupported' | 'unknown';

export interface RelayView {
  /** The relay's origin, e.g. https://relay.example. */
  readonly url: string;
  readonly state: 'connected' | 'connecting' | 'offline';
  /** Packets waiting in the outbox for this relay. */
  readonly queued: number;
  /**
   * Of those, messages people wrote: what "N messages wait" counts (the others are
   * acknowledgements, presence and key agreement, which nobody wrote).
   */
  readonly messages: number;
  /** Plain words when something is wrong ("Cannot reach relay.example; retrying in 20 s"). */
  readonly problem: string | null;
}

export interface MeView {
  readonly displayName: string;
  /** Your own half of every safety number, as digit groups (for support and debugging). */
  readonly fingerprint: string;
  /** The relay your inbox and new groups live on. */
  readonly homeRelay: string;
}

export interface AppView {
  readonly phase: AppPhase;
  readonly me: MeView | null;
  readonly persistence: PersistenceState;
  readonly passphraseSet: boolean;
  readonly relays: readonly RelayView[];
  /** Packets waiting to leave (all relays). */
  readonly queued: number;
  /** Unread messages across conversations (for a badge and the document title). */
  readonly unread: number;
  /** Contact requests waiting for an answer (they are listed under Contacts). */
  readonly pendingRequests: number;
  /** Group invitations waiting for an answer (they are listed under Chats). */
  readonly invitations: number;
  /** Set when phase is 'failed'. */
  readonly failure: { readonly code: WorkerErrorCode; readonly text: string } | null;
  /**
   * Security and delivery alerts that belong to no conversation, newest first (e.g. "A contact
   * request was refused: it was a replay"). Show them where the person looks for news.
   * (Added after v1 landed: absent means none.)
   */
  readonly alerts?: readonly NoticeView[];
  /** Web Push wake-ups (`setPush`): 'on' or 'off'. (Added after v1 landed: absent means off.) */
  readonly push?: 'on' | 'off';
}

// ---- contacts -------------------------------------------------------------------------------

export interface ContactView {
  readonly id: ContactId;
  readonly name: string;
  readonly verification: Verification;
  /**
   * The safety number for you and this contact: 60 digits in 12 groups of 5, separated by spaces.
   * Both sides see the same digits (derivation in src/worker/README.md "Safety numbers").
   */
  readonly safetyNumber: string;
  /**
   * 'requested': you added them and they have not accepted yet (you can already invite them and
   * chat: they see your request first). 'connected': both sides have each other's card.
   */
  readonly state: 'requested' | 'connected';
  /** The chat of two with them, if one exists. */
  readonly directConversationId: ConversationId | null;
  /** Best presence across the conversations you share. */
  readonly presence: Presence;
  /** Set when verification is 'key-changed': what happened and what to do, in plain words. */
  readonly keyChange: { readonly text: string; readonly whatToDo: string; readonly previousSafetyNumber: string } | null;
  readonly addedAtMs: number;
}

export interface ContactRequestView {
  readonly id: RequestId;
  /** The name they gave themselves (unverified). */
  readonly name: string;
  readonly safetyNumber: string;
  readonly receivedAtMs: number;
  /** A contact with another key goes by the same name: the request may be someone posing as them. */
  readonly existingContactId: ContactId | null;
}

/** What a pasted or scanned card says, before you add it (`previewLink`). */
export interface CardPreview {
  readonly kind: 'contact';
  readonly name: string;
  readonly safetyNumber: string;
  readonly relay: string;
  /** Already a contact: adding again is a no-op; if the key differs this is a key change. */
  readonly existingContactId: ContactId | null;
  readonly isSelf: boolean;
}

/** What an invite link says, before you join (`previewLink`). */
export interface InviteLinkPreview {
  readonly kind: 'invite';
  readonly groupName: string;
  readonly inviterName: string;
  readonly relay: string;
  readonly expiresAtMs: number;
}

export interface ContactsView {
  /** Sorted by name. */
  readonly contacts: readonly ContactView[];
  /** Newest first. */
  readonly requests: readonly ContactRequestView[];
}

// ---- conversations --------------------------------------------------------------------------

export type ConversationKind = 'direct' | 'group';

/**
 * - 'active': you are in the group's key agreement and can send.
 * - 'waiting': the group has nobody else in it yet, or you joined and wait for a member to
 *   include you (async-groups rule 10); messages you write wait and go when it is done.
 * - 'left': you left. 'removed': someone removed you. Both are read-only.
 */
export type ConversationState = 'active' | 'waiting' | 'left' | 'removed';

export type OperationKind = 'create' | 'add' | 'join' | 'remove' | 'leave' | 'rename';

/**
 * A membership operation in words a person understands (issue 10 §7): "Adding Carol — waits for
 * Carol to open Covey", "Removing Dave", "Could not add Carol: she declined or the invitation
 * expired". Shown in the conversation list and as an inline notice.
 */
export interface OperationView {
  readonly id: OperationId;
  readonly kind: OperationKind;
  /**
   * 'waiting': waits for someone (named in `text`) to open Covey; 'running': key agreement under
   * way; 'failed': did not happen (see `text`; retry or cancel); 'done' operations drop out of
   * `operations` and stay as notices in the timeline.
   */
  readonly state: 'waiting' | 'running' | 'failed';
  readonly text: string;
  /** The people it concerns, by name. */
  readonly targets: readonly string[];
  readonly startedAtMs: number;
  /** When a waiting operation gives up by itself (async-groups rule 9: a long named limit). */
  readonly expiresAtMs: number | null;
  readonly canCancel: boolean;
  readonly canRetry: boolean;
  /**
   * The retry button's words when retrying is not a plain "Try again": e.g. "Go on without Carol"
   * (async-groups rule 9: the engine aborts the waiting include and proposes it again without the
   * members who never came). Absent: "Try again".
   */
  readonly retryLabel?: string;
}

export interface LastMessageView {
  readonly authorName: string;
  readonly mine: boolean;
  /** The first line of the text, shortened. */
  readonly text: string;
  readonly timeMs: number;
}

export interface ConversationSummary {
  readonly id: ConversationId;
  readonly kind: ConversationKind;
  /** Group name, or for a chat of two the other person's name. */
  readonly name: string;
  readonly state: ConversationState;
  readonly lastMessage: LastMessageView | null;
  readonly unread: number;
  /** Time of the latest activity (sort key, newest first). */
  readonly timeMs: number;
  /** Operations waiting, running or failed. */
  readonly operations: readonly OperationView[];
  /** A security warning waits for you here (e.g. a key changed): show a mark. */
  readonly needsAttention: boolean;
  /** The first line of what you started writing here and did not send, or null. */
  readonly draft: string | null;
  readonly memberCount: number;
}

export interface InvitationView {
  readonly id: InvitationId;
  readonly kind: ConversationKind;
  readonly groupName: string;
  readonly inviterName: string;
  /** The inviter's verification in your contacts ('unverified' for a stranger's invite link). */
  readonly inviterVerification: Verification;
  readonly inviterIsContact: boolean;
  /** Names of the members the inviter listed, as they named themselves. */
  readonly memberNames: readonly string[];
  readonly via: 'inbox' | 'link';
  readonly receivedAtMs: number;
  readonly expiresAtMs: number;
}

export interface ConversationsView {
  /** Newest activity first. */
  readonly conversations: readonly ConversationSummary[];
  /** Group invitations waiting for accept or decline, newest first. */
  readonly invitations: readonly InvitationView[];
}

// ---- one conversation -------------------------------------------------------------------------

export interface AuthorView {
  readonly member: MemberRef;
  /** The contact behind this member, when they are one of your contacts. */
  readonly contactId: ContactId | null;
  readonly name: string;
  readonly self: boolean;
  /** Yours is always 'verified'. A member who is not your contact is 'unverified'. */
  readonly verification: Verification;
}

/**
 * Per-message delivery (mpENC §2.3, async-groups rule 14), for your messages and others' alike:
 * - 'waiting-to-send': not yet sealed or not yet at the relay (offline, no key agreement yet, or
 *   held by a key change); `text` says which.
 * - 'at-relay': the relay has it; nobody has acknowledged it yet.
 * - 'delivered': `acked` of `of` other members have it; `notYetOnline` names the others, who have
 *   not been online since (pending, not a fault).
 * - 'delivered-to-all': every member has it.
 * - 'not-acked': a member who has been active since did not acknowledge it: a warning mark,
 *   explained by `text` on tap.
 * - 'failed': it can never be delivered (e.g. you were removed before it left); `text` says why.
 */
export type Delivery =
  | { readonly state: 'waiting-to-send'; readonly text: string }
  | { readonly state: 'at-relay' }
  | { readonly state: 'delivered'; readonly acked: number; readonly of: number; readonly notYetOnline: readonly string[] }
  | { readonly state: 'delivered-to-all'; readonly of: number }
  | { readonly state: 'not-acked'; readonly missing: readonly string[]; readonly text: string }
  | { readonly state: 'failed'; readonly text: string };

export interface MessageView {
  readonly type: 'message';
  readonly id: MessageRef;
  readonly author: AuthorView;
  readonly mine: boolean;
  /** Relay time when it reached the relay; for unsent messages, when you wrote it. */
  readonly timeMs: number;
  /** Plain text exactly as written: render as text, never as HTML. */
  readonly text: string;
  readonly delivery: Delivery;
  /** Its real parents (mpENC §3.4), as ids of this view's messages (older ones may be absent). */
  readonly parents: readonly MessageRef[];
  /** mpENC §2.3(b): its real parents differ from the message shown above it; say so. */
  readonly parentsDiffer: boolean;
  /** Whether you have read it (your own are read). */
  readonly read: boolean;
}

export type NoticeTone = 'info' | 'warning' | 'danger';

/** A suggested action attached to a notice: the UI shows a button that runs the command. */
export type NoticeAction =
  | { readonly label: string; readonly command: 'acceptKeyChange'; readonly contactId: ContactId }
  | { readonly label: string; readonly command: 'verifyContact'; readonly contactId: ContactId }
  | { readonly label: string; readonly command: 'retryOperation' | 'cancelOperation'; readonly operationId: OperationId }
  | { readonly label: string; readonly command: 'retrySend'; readonly messageId: MessageRef };

/**
 * Inline notices (mpENC §2.3): membership changes, operations and their outcome, security warnings
 * in plain words with what to do.
 */
export interface NoticeView {
  readonly type: 'notice';
  readonly id: string;
  readonly timeMs: number;
  readonly tone: NoticeTone;
  readonly text: string;
  /** For warnings: what the person should do, in plain words (or null when nothing). */
  readonly whatToDo: string | null;
  readonly action: NoticeAction | null;
}

export type TimelineItem = MessageView | NoticeView;

export interface MemberView {
  readonly member: MemberRef;
  readonly contactId: ContactId | null;
  readonly name: string;
  readonly self: boolean;
  readonly verification: Verification;
  readonly presence: Presence;
  /**
   * 'member': in the group's key agreement. 'joining': joined the channel, waits to be included.
   * 'invited': invited, has not opened the invitation yet.
   */
  readonly role: 'member' | 'joining' | 'invited';
}

export interface ConversationView {
  readonly id: ConversationId;
  readonly kind: ConversationKind;
  readonly name: string;
  readonly state: ConversationState;
  /** Members, you first, then by name. */
  readonly members: readonly MemberView[];
  /** Messages and notices in display order (oldest first), at most `limit` messages. */
  readonly timeline: readonly TimelineItem[];
  /** Older messages exist beyond the window: offer "load earlier" (watch again with a higher limit). */
  readonly hasEarlier: boolean;
  readonly draft: string;
  readonly unread: number;
  readonly operations: readonly OperationView[];
  /**
   * Whether `send` works now. When false, `sendBlocked` says why in plain words ("Bob's key
   * changed: check the safety number, then accept the new key"); a message written while the
   * group is merely waiting for others is accepted and waits ('waiting-to-send').
   */
  readonly canSend: boolean;
  readonly sendBlocked: { readonly text: string; readonly action: NoticeAction | null } | null;
  /** Whether `inviteContacts`, `removeMember`, `renameGroup` make sense now. */
  readonly canManage: boolean;
  /** The relay this conversation lives on (its creator's). */
  readonly relay: string;
}

/** `messageDetails`: who has a message, and its causal context for the grey-out (mpENC §2.3). */
export interface MessageDetails {
  readonly id: MessageRef;
  readonly readers: readonly {
    readonly name: string;
    readonly member: MemberRef;
    /** 'acked': has it; 'pending': not online since; 'not-acked': active since and did not ack. */
    readonly state: 'acked' | 'pending' | 'not-acked';
  }[];
  readonly parents: readonly MessageRef[];
  /** Every ancestor (transitively) in this conversation: grey out every other message. */
  readonly ancestors: readonly MessageRef[];
}

// ---- my card --------------------------------------------------------------------------------

export interface MyCard {
  /** https://<app>/#c=… : the card sits in the fragment, which no server sees (issue 10 §5). */
  readonly link: string;
  readonly qr: QrCode;
  readonly name: string;
  readonly fingerprint: string;
  /** The card stops working for new contacts after this time (the relay's deposit capability). */
  readonly expiresAtMs: number;
}

export interface InviteLink {
  readonly link: string;
  readonly qr: QrCode;
  readonly expiresAtMs: number;
}

/** `PushSubscription.toJSON()`, as the page gets it from PushManager.subscribe. */
export interface PushSubscriptionJson {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

// ---- views (the stream) -----------------------------------------------------------------------

/**
 * Views the UI watches; each update replaces the whole value of one watch. Parameters pick the
 * instance (which conversation, how many messages).
 */
export interface WorkerViews {
  app: { params: Record<string, never>; value: AppView };
  contacts: { params: Record<string, never>; value: ContactsView };
  conversations: { params: Record<string, never>; value: ConversationsView };
  /** `limit` messages (default DEFAULT_MESSAGE_WINDOW, at most MAX_MESSAGE_WINDOW), newest kept. */
  conversation: { params: { readonly conversationId: ConversationId; readonly limit?: number }; value: ConversationView };
}
export type ViewName = keyof WorkerViews;

// ---- commands -------------------------------------------------------------------------------

type Empty = Record<string, never>;
type Cmd<P, R> = { params: P; result: R };

/** Operation requests for `replaceOperation`. */
export type OperationRequest =
  | { readonly kind: 'add'; readonly contactIds: readonly ContactId[] }
  | { readonly kind: 'remove'; readonly members: readonly MemberRef[] };

export interface WorkerCommands {
  // app and profile
  /** First run: make the identity key, the inbox on `relay` (default: the app's own origin). */
  createIdentity: Cmd<{ readonly displayName: string; readonly relay?: string }, MyCard>;
  setDisplayName: Cmd<{ readonly displayName: string }, Empty>;
  /** Your card as a link and QR code (renews the deposit capability when it nears expiry). */
  myCard: Cmd<Empty, MyCard>;
  /**
   * The result of `navigator.storage.persist()`, which only the page can call (the worker can
   * only read `persisted()`): call it once after `createIdentity` and report here.
   */
  reportPersistence: Cmd<{ readonly granted: boolean | 'unsupported' }, Empty>;
  /** Take the engine over from another tab (phase 'engine-elsewhere'); that tab shows the same state. */
  useEngineHere: Cmd<Empty, Empty>;
  /** Protect the store with a passphrase (PBKDF2-SHA-256, 600,000 iterations): a lock screen. */
  setPassphrase: Cmd<{ readonly passphrase: string; readonly current?: string }, Empty>;
  clearPassphrase: Cmd<{ readonly current: string }, Empty>;
  unlock: Cmd<{ readonly passphrase: string }, Empty>;
  /** Lock now (only with a passphrase set): the worker forgets the data key. */
  lock: Cmd<Empty, Empty>;

  // contacts
  /** What a pasted link or scanned QR text is, without changing anything. Card or invite link. */
  previewLink: Cmd<{ readonly text: string }, CardPreview | InviteLinkPreview>;
  /** Add the person of a card link (pasted, opened, or a scanned QR's text); sends them a request. */
  addContact: Cmd<{ readonly link: string }, { readonly contactId: ContactId }>;
  acceptContactRequest: Cmd<{ readonly requestId: RequestId }, { readonly contactId: ContactId }>;
  declineContactRequest: Cmd<{ readonly requestId: RequestId }, Empty>;
  /** The user compared the safety number digits with the contact's: mark verified. */
  verifyContact: Cmd<{ readonly contactId: ContactId }, Empty>;
  /**
   * The user scanned the contact's QR code: verified when its key matches. Error 'key-mismatch'
   * when the code holds another key (not this person's device, or an attack: say so).
   */
  verifyContactByQr: Cmd<{ readonly contactId: ContactId; readonly scanned: string }, Empty>;
  unverifyContact: Cmd<{ readonly contactId: ContactId }, Empty>;
  /** Accept a contact's changed key ('key-changed' → 'unverified'); sending to them resumes. */
  acceptKeyChange: Cmd<{ readonly contactId: ContactId }, Empty>;
  renameContact: Cmd<{ readonly contactId: ContactId; readonly name: string }, Empty>;
  removeContact: Cmd<{ readonly contactId: ContactId }, Empty>;

  // conversations
  /** The chat of two with a contact: the existing one, or a new group of two. */
  startDirectChat: Cmd<{ readonly contactId: ContactId }, { readonly conversationId: ConversationId }>;
  createGroup: Cmd<{ readonly name: string; readonly contactIds: readonly ContactId[] }, { readonly conversationId: ConversationId }>;
  inviteContacts: Cmd<{ readonly conversationId: ConversationId; readonly contactIds: readonly ContactId[] }, { readonly operationIds: readonly OperationId[] }>;
  /** A one-time invite link (capability in the fragment): anyone who opens it may ask to join. */
  createInviteLink: Cmd<{ readonly conversationId: ConversationId }, InviteLink>;
  /** Opening an invite link (pasted, scanned or navigated to) makes an invitation to accept. */
  openInviteLink: Cmd<{ readonly link: string }, { readonly invitationId: InvitationId }>;
  acceptInvitation: Cmd<{ readonly invitationId: InvitationId }, { readonly conversationId: ConversationId }>;
  declineInvitation: Cmd<{ readonly invitationId: InvitationId }, Empty>;
  /** Send a text message; it appears at once (delivery 'waiting-to-send' until it leaves). */
  send: Cmd<{ readonly conversationId: ConversationId; readonly text: string }, { readonly messageId: MessageRef }>;
  /** Send again a message that failed (delivery 'failed'), as a new message. */
  retrySend: Cmd<{ readonly conversationId: ConversationId; readonly messageId: MessageRef }, { readonly messageId: MessageRef }>;
  /** Everything up to and including `upTo` (default: everything) is read. */
  markRead: Cmd<{ readonly conversationId: ConversationId; readonly upTo?: MessageRef }, Empty>;
  saveDraft: Cmd<{ readonly conversationId: ConversationId; readonly text: string }, Empty>;
  messageDetails: Cmd<{ readonly conversationId: ConversationId; readonly messageId: MessageRef }, MessageDetails>;
  removeMember: Cmd<{ readonly conversationId: ConversationId; readonly member: MemberRef }, { readonly operationId: OperationId }>;
  /** Leave the group (mpENC §3.3: shut down, then leave the channel). The conversation stays, read-only. */
  leaveConversation: Cmd<{ readonly conversationId: ConversationId }, Empty>;
  renameGroup: Cmd<{ readonly conversationId: ConversationId; readonly name: string }, Empty>;
  /** Give up a waiting or failed operation (async-groups rule 9). */
  cancelOperation: Cmd<{ readonly conversationId: ConversationId; readonly operationId: OperationId }, Empty>;
  retryOperation: Cmd<{ readonly conversationId: ConversationId; readonly operationId: OperationId }, { readonly operationId: OperationId }>;
  /** Abort a waiting operation and start another at once (e.g. remove someone urgently). */
  replaceOperation: Cmd<
    { readonly conversationId: ConversationId; readonly operationId: OperationId; readonly replacement: OperationRequest },
    { readonly operationIds: readonly OperationId[] }
  >;
  /** Forget a conversation on this device (leaves it first when still a member). */
  deleteConversation: Cmd<{ readonly conversationId: ConversationId }, Empty>;

  // push (added after v1 landed)
  /**
   * The home relay's Web Push key (VAPID, base64url: `applicationServerKey` of
   * PushManager.subscribe), or null when that relay has push turned off.
   */
  pushServerKey: Cmd<Empty, { readonly publicKey: string | null; readonly relay: string }>;
  /**
   * Opt-in wake-ups while Covey is closed (ask first, and say what it reveals: the relay and the
   * push service learn that this browser is in these channels; src/relay/README.md). Registers
   * `subscription` in the inbox and every group on the home relay (a subscription is bound to one
   * relay's key), now and for groups joined later; null turns it off everywhere.
   */
  setPush: Cmd<{ readonly subscription: PushSubscriptionJson | null }, { readonly channels: number }>;

  // network (added after v1 landed)
  /**
   * The page's `online` / `offline` events (a dedicated worker does not always hear them itself:
   * emulated networks, some browsers). Offline: no relay socket is trusted until one reopens, so
   * `app.relays` says offline at once; online: every relay is tried now instead of after the
   * reconnect backoff, and what waits in the outbox leaves. Allowed in every phase.
   */
  networkChanged: Cmd<{ readonly online: boolean }, Empty>;

  // backup (added after v1 landed)
  /**
   * An encrypted backup of the identity, contacts and every conversation's history, as text to
   * save as a file (offer `fileName`). No group keys: after an import, conversations are
   * read-only until a member invites you again.
   */
  exportBackup: Cmd<{ readonly passphrase: string }, { readonly fileName: string; readonly text: string }>;
  /** First run only (phase 'no-identity'): restore a backup made by `exportBackup`. */
  importBackup: Cmd<{ readonly text: string; readonly passphrase: string }, Empty>;
}
export type CommandName = keyof WorkerCommands;
export type CommandParams<C extends CommandName> = WorkerCommands[C]['params'];
export type CommandResult<C extends CommandName> = WorkerCommands[C]['result'];

/** The whole API as methods: the worker implements it; tests call it directly. */
export type WorkerApi = { [C in CommandName]: (params: CommandParams<C>) => Promise<CommandResult<C>> };

// ---- errors ---------------------------------------------------------------------------------

/**
 * Every refusal is `{ code, message }`, message in plain words. Codes:
 * - 'bad-request': a parameter is missing, malformed or beyond its limit (a UI bug, or fuzz).
 * - 'not-found': no such contact, conversation, message, request, invitation or operation.
 * - 'no-identity' | 'locked' | 'engine-elsewhere' | 'starting': the app phase does not allow it.
 * - 'bad-link': not a Covey link or QR code, or a damaged or tampered one.
 * - 'expired': the link or invitation expired.
 * - 'own-card': that is your own card.
 * - 'wrong-passphrase'.
 * - 'key-mismatch': a scanned code holds another key than the contact's.
 * - 'send-held': sending is held (a key changed): see ConversationView.sendBlocked.
 * - 'invalid-state': not now (e.g. a removed conversation, an operation already running).
 * - 'refused': the relay or the other side refused (e.g. invite capability used up).
 * - 'offline': the relay cannot be reached and the action cannot wait (e.g. creating an invite link).
 * - 'storage': IndexedDB failed (quota, eviction, private mode).
 * - 'timeout': the bridge got no answer in time (the worker may be busy or gone).
 * - 'internal': a bug; the message says what was being done.
 */
export type WorkerErrorCode =
  | 'bad-request'
  | 'not-found'
  | 'no-identity'
  | 'locked'
  | 'engine-elsewhere'
  | 'starting'
  | 'bad-link'
  | 'expired'
  | 'own-card'
  | 'wrong-passphrase'
  | 'key-mismatch'
  | 'send-held'
  | 'invalid-state'
  | 'refused'
  | 'offline'
  | 'storage'
  | 'timeout'
  | 'internal';

export interface WorkerErrorBody {
  readonly code: WorkerErrorCode;
  readonly message: string;
}

/** A refused command, on both sides of the bridge. */
export class WorkerError extends Error implements WorkerErrorBody {
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerError';
  }

  toJSON(): WorkerErrorBody {
    return { code: this.code, message: this.message };
  }
}

export function isWorkerError(value: unknown): value is WorkerError {
  return value instanceof WorkerError;
}
