/**
 * Ids as the transcript layer keys them. Message ids are 20-byte arrays (src/protocol/ids.ts),
 * which compare by identity in a Map; the transcript, MessageLog and reliability code therefore
 * key messages by `idKey(messageId)`, the hex text, called a MessageKey here.
 */
export type { MemberId } from '../ids.js';

/** `idKey(messageId)`: the hex text of a message id. */
export type MessageKey = string;
