/** mpENC packet functions: ids, chain hash, padding, bodies, seal/open, signatures, ASKE, group key. */
export * from './ids.js';
export * from './padding.js';
export * from './body.js';
export * from './data.js';
export * from './greeting-signature.js';
export * from './aske.js';
export * from './group-key.js';
