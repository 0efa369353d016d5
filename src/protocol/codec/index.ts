/** The mpENC codec: records, framing and the packet union (mpENC §5; mpenc-wire.md). */
export * from './constants.js';
export * from './limits.js';
export * from './records.js';
export * from './framing.js';
export { KEY_BYTES, SIGNATURE_BYTES } from './fields.js';
export * from './greeting.js';
export * from './data.js';
export * from './error-packet.js';
export * from './query.js';
export * from './packet.js';
