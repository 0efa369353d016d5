/** Limits shared across runtimes (DESIGN.md §7): each with its reason. */

/** A record value's length is a u16 (mpenc-wire.md "Framing"). */
export const MAX_RECORD_VALUE_BYTES = 65535;
