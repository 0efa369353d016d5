/**
 * Randomness is an input of the engine, never a global (DESIGN.md §1): production passes the
 * provider's `randomBytes`, tests and the simulator pass a seeded source so that any run replays.
 */
export type RandomSource = (length: number) => Uint8Array;
