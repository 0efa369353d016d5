/**
 * Named limits of the engine (DESIGN.md §7; STYLE.md "put a limit on everything"): a flat list of
 * documented constants. Each says what it bounds and why this value.
 */

// ---------------------------------------------------------------------------------------------
// Membership (greeting, order): src/protocol/greeting, src/protocol/order
// ---------------------------------------------------------------------------------------------

/**
 * Most members in one subsession, and most LATEST_PM references of an initial packet: the codec
 * owns these (src/protocol/codec/limits.ts: CLIQUES costs O(n) rounds and O(n) x25519 per member,
 * mpENC §3.2), re-exported so that every membership limit is listed here.
 */
export { MAX_GROUP_MEMBERS, MAX_LATEST_PM } from './codec/limits.js';

/**
 * v1 (mpenc_js groups) only: most private key contributions one member keeps (mpENC §5.2.1
 * "Updating Private Key Contributions": all must be kept and applied one by one). A v2 member
 * keeps one scalar instead (issue 9 §3, greeting/cliques.ts), whatever the number of operations. Each costs one x25519 per later
 * operation; when a member reaches the limit it cannot initiate include/exclude/refresh and
 * must leave and start a new group (a fresh IKA resets the list).
 */
export const MAX_KEY_CONTRIBUTIONS = 128;

/**
 * Largest greeting packet text we accept or send, in characters: the codec's bound on any packet
 * (MAX_PACKET_TEXT_CHARS, 64 KiB of records as base64). A full downflow of MAX_GROUP_MEMBERS
 * members with 43-character ids is ~15 KiB of records, so this also bounds a forged packet's cost.
 */
export { MAX_PACKET_TEXT_CHARS as MAX_GREETING_PACKET_CHARS } from './codec/limits.js';

/**
 * Most of our own proposals waiting for acceptance (mpENC §3.3: a proposal whose parent is
 * overtaken is rejected and may be retried by the user; automatic retries are a security risk,
 * §6.1.1 footnote). One at a time keeps the "context-preserving" guarantee simple to reason about.
 */
export const MAX_PENDING_PROPOSALS = 1;

/**
 * Automatic exclusions of members who left the channel (mpENC §3.3) we propose in a row without
 * success. Losing a race to a concurrent proposal is normal, so a few; beyond that the history is
 * likely forked, and automatic retries are a security risk (§6.1.1 footnote): the user decides.
 */
export const MAX_AUTOMATIC_ATTEMPTS = 3;

/**
 * An operation whose awaited contributors are all shown online (rule 15) and that has not moved
 * this long since their turn began is aborted by its initiator (Covey closes mpENC §6.1.1
 * "Error and abort messages"; async-groups rule 9). Generous: relay round trips of a slow phone
 * on a bad network, times O(n) upflow steps, must fit well inside it. It never applies to a
 * contributor who is offline: that is waiting, not failing (OPERATION_WAIT_LIMIT_MS).
 */
export const OPERATION_TIMEOUT_MS = 120_000;

/**
 * How long an operation may wait for contributors who are offline (async-groups rule 9: "waiting
 * is a state, not a failure"). Phones sleep for days; two weeks covers a holiday, and a newcomer
 * who has not opened the app by then is unlikely to; the app can abort earlier (any member may
 * abort a waiting include) or retry without the member who never came.
 */
export const OPERATION_WAIT_LIMIT_MS = 14 * 24 * 60 * 60_000;

/**
 * Packet ids of finished operations we remember, to tell a late packet of a finished operation
 * (benign: ignore) from a packet of an operation we never accepted (an inconsistent order).
 */
export const MAX_REMEMBERED_OPERATIONS = 256;

/**
 * Initial packets a newcomer remembers from before its include is checked (README "A parent we
 * never saw": while it holds no subsession, or a provisional one), to recognise an include of it
 * that lost a race before the include it holds. It is included within a few operations of
 * joining (rule 10: members propose it at once), so a few dozen cover every race it can meet; a
 * race lost further back is treated as before (the newcomer gives way to it: a false alarm at
 * worst, never a key).
 */
export const MAX_WITNESSED_INITIALS = 32;

/**
 * Greeting signatures remembered to recognise an exact replay. Covers the last few operations
 * of a full group (a start of n members is about 2n packets).
 */
export const MAX_REMEMBERED_GREETINGS = 1024;

/**
 * Subsessions before the current one whose late confirmations we still check (rule 5): a member
 * confirms only the head it sees, which may be a few operations behind ours by the time its
 * confirmation is ordered; one whose subsession we no longer hold is ignored as old.
 */
export const MAX_RECENT_SUBSESSIONS = 8;

/**
 * Rule 10: newcomers who join within this long of the first are included together by the
 * member who invited them (it waits this long after a join before proposing).
 */
export const INCLUDE_GATHER_MS = 2_000;

/**
 * Rule 10: a member who did not invite the newcomer proposes its include only if nobody did
 * within this backoff times (1 + its rank among the members, by id), so that usually exactly one
 * member proposes, the inviter.
 */
export const INCLUDE_BACKOFF_MS = 20_000;

/**
 * Rule 10: a newcomer waiting to be included has no subsession to send heartbeats in, so it says
 * "I am here, include me" (REJOIN_DOWN) again this often while its app runs. Shorter than the
 * presence expiry (PresenceConfig.expiryMs, 4 minutes by default) so that it stays shown online;
 * the members' include planning treats each one as a new event (at most one proposal each).
 */
export const WAITING_KNOCK_INTERVAL_MS = 3 * 60_000;

/**
 * Rule 10: ... for this long after it joined, woke (caught up) or saw its include fail; then it
 * stops (no endless loops in the relay log) until the next of those.
 */
export const WAITING_KNOCK_FOR_MS = 30 * 60_000;

/**
 * Rule 13: on reaching the head, a member whose newest key contribution is older than this
 * proposes a refresh. Contributions change only when a member initiates, and a stolen snapshot
 * opens every key of the relay log its contributions apply to (compare RFC 9750 on inactive
 * members).
 */
export const REFRESH_AFTER_MS = 7 * 24 * 60 * 60_000;
