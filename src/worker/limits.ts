/** The worker's own limits and lifetimes, each with its reason (DESIGN.md §7). */

/** The relay's longest capability lifetime (src/relay/limits.ts): a card works this long. */
export const DEPOSIT_TTL_MS = 30 * 24 * 3600_000;
/** A card's capability is renewed when it has less than this left. */
export const DEPOSIT_RENEW_MS = 7 * 24 * 3600_000;
/** Deposits one card may receive (the relay's maximum): requests and invitations from many people. */
export const DEPOSIT_USES = 1_000;
/** Invitations live as long as the waiting limit of async-groups rule 9 (14 days). */
export const INVITE_TTL_MS = 14 * 24 * 3600_000;
/** A joiner still waiting re-posts its claim when the last one is older than this (rule 10: "online now"). */
export const CLAIM_REPOST_MS = 10 * 60_000;
/** Fetch tokens for the service worker live the relay's longest (maxFetchTokenTtlMs: 30 days)... */
export const FETCH_TOKEN_TTL_MS = 30 * 24 * 3600_000;
/** ...and are renewed when less than this is left (the app renews them whenever it runs). */
export const FETCH_TOKEN_RENEW_MS = 20 * 24 * 3600_000;
