/**
 * Decoding limits (STYLE.md §3, DESIGN.md §7): every count and size a peer controls is bounded
 * here, with the reason next to it. Decoders check these before allocating or looping.
 */
import { MAX_MEMBER_ID_CHARS } from '../ids.js';

/** A record's length field is a u16 (mpenc-wire.md "Framing"). */
export const MAX_RECORD_VALUE_BYTES = 65535;

/**
 * Members of one greeting (= one group). CLIQUES costs each member O(n) x25519 operations and
 * the upflow is n sequential hops (mpENC §5.2.1), so groups much beyond this are impractical:
 * starting a group of 100 already costs ~10^4 x25519 operations in all (bench:protocol greet).
 * A full greeting of 128 members with the longest ids is ~35 KiB, inside MAX_PACKET_BYTES.
 */
export const MAX_GROUP_MEMBERS = 128;

/**
 * MESSAGE_PARENT records of one message: parents form an anti-chain and each author's messages
 * form a line (mpENC §3.4), so there is at most one parent per member.
 */
export const MAX_MESSAGE_PARENTS = MAX_GROUP_MEMBERS;

/** LATEST_PM records of an initial greeting: the latest messages, at most one per member (§3.4). */
export const MAX_LATEST_PM = MAX_GROUP_MEMBERS;

/**
 * Largest padded plaintext: padding sizes are 128 × 2^k (mpENC §5.3) and the ciphertext must fit
 * one MESSAGE_PAYLOAD record (≤ 65535 bytes), so 128 × 2^8 is the last size that fits.
 */
export const MAX_PADDED_PLAINTEXT_BYTES = 32768;

/** Text of an error packet (MESSAGE_PAYLOAD): a short human-readable reason, not content. */
export const MAX_ERROR_TEXT_BYTES = 1024;

/**
 * Decoded bytes of one packet. The largest data packet is a 32 KiB payload plus ~120 bytes of
 * records; the largest greeting is MAX_GROUP_MEMBERS × (member id + 3 × 36 bytes of keys) plus
 * LATEST_PM records, about 35 KiB. 64 KiB holds both with room for Covey's extension records.
 */
export const MAX_PACKET_BYTES = 65536;

/** Packet text: "?mpENC:" + base64 of MAX_PACKET_BYTES + "."; checked before decoding base64. */
export const MAX_PACKET_TEXT_CHARS = 7 + 4 * Math.ceil(MAX_PACKET_BYTES / 3) + 1;

/**
 * Records in one packet: a greeting has ~12 fixed records, 4 per member (MEMBER, INT_KEY, NONCE,
 * PUB_KEY) and up to MAX_LATEST_PM; data packets have 6. The rest is room for extensions.
 */
export const MAX_RECORDS_PER_PACKET = 32 + 4 * MAX_GROUP_MEMBERS + MAX_LATEST_PM;

export { MAX_MEMBER_ID_CHARS };
