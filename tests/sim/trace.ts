/**
 * `COVEY_SIM_TRACE=1 npm run sim -- …`: one SHA-256 over every packet the simulated relays
 * order (sender and text, in order), printed to stderr at exit as `sim-trace {"packets":N,
 * "digest":"…"}`. The scenarios are pure functions of their seeds, so two builds of the engine
 * that send the same packets print the same digest: what a change meant to keep behaviour
 * identical (a performance change) must show. Off by default (no cost).
 */
import { createHash } from 'node:crypto';

const hash = process.env['COVEY_SIM_TRACE'] === '1' ? createHash('sha256') : null;
let packets = 0;

if (hash !== null) process.on('exit', () => console.error(`sim-trace ${JSON.stringify({ packets, digest: hash.digest('hex') })}`));

export function tracePacket(sender: string, text: string): void {
  if (hash === null) return;
  packets += 1;
  hash.update(`${sender}\n${text}\n`);
}
