/**
 * CPU time of the calling thread, for the benchmark's servers: on the event loop it is the figure
 * that bounds a one-event-loop server, whatever its other threads (signature checks, fdatasync,
 * checkpoints) do. Linux only: /proc/thread-self/stat, utime and stime (fields 14 and 15) in
 * clock ticks (USER_HZ, 100 a second: 10 ms resolution, fine over steps of seconds).
 */
import { readFileSync } from 'node:fs';

const US_PER_TICK = 10_000;

/** µs of CPU this thread has used, or undefined where /proc/thread-self is missing. */
export function threadCpuUs(): number | undefined {
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
    // Fields 14 and 15 of stat(5), counted from 3 after the command name's closing parenthesis.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * US_PER_TICK : undefined;
  } catch {
    return undefined;
  }
}
