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
 * Most private key contributions one member keeps (mpENC §5.2.1 "Updating Private Key
 * Contributions": all must be kept and applied one by one). Each costs one x25519 per later
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
 * An operation that has not finished this long after its initial packet was accepted is
 * aborted by every participant still waiting (Covey closes mpENC §6.1.1 "Error and abort
 * messages"). Generous: relay round trips of a slow phone on a bad network, times O(n) upflow
 * steps, must fit well inside it; an offline member (still in the channel) stalls it this long.
 */
export const OPERATION_TIMEOUT_MS = 120_000;

/**
 * Packet ids of finished operations we remember, to tell a late packet of a finished operation
 * (benign: ignore) from a packet of an operation we never accepted (an inconsistent order).
 */
export const MAX_REMEMBERED_OPERATIONS = 256;

/**
 * Greeting packet texts remembered (as hashes) to recognise an exact replay. Covers the last
 * few operations of a full group (a start of n members is about 2n packets).
 */
export const MAX_REMEMBERED_GREETINGS = 1024;

/**
 * A proposal of ours that the relay has not put in the order after this long is given up (the
 * relay dropped it, or we lost the connection): the user may propose again.
 */
export const PROPOSAL_TIMEOUT_MS = 120_000;
