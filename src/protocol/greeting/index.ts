/**
 * The membership layer (mpENC §3.1–§3.3, §5.2; Covey's closures of §6.1.1): one pure state
 * machine per member. `createMembership` makes a solo member; `step(state, input, env)` returns
 * `{ state, effects }`. See types.ts for the inputs and effects, wire.ts for Covey's v2 rules.
 */
export { createMembership, step } from './machine.js';
export type * from './types.js';
export { AbortReason, isAlarmingAbort } from './wire.js';
