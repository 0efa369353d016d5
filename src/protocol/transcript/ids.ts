/**
 * The id types the transcript layer uses. Re-exported from the protocol-wide branded ids so that
 * the transcript, MessageLog and reliability code name them in one place.
 */
export type MemberId = string;
export type MessageId = string;
