/** The session tests' common start: Alice, Bob and Carol in one group, on the noble provider. */
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { SessionSim } from '../sim/session-harness.js';

/** Alice includes Bob and Carol and the simulator settles: a ready three-member group. */
export async function chat3(seed = 1): Promise<SessionSim> {
  const sim = new SessionSim(nobleProvider, seed);
  for (const n of ['alice', 'bob', 'carol']) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
  await sim.settle();
  return sim;
}
