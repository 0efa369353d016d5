/**
 * Issue 9 §2, restoring an older snapshot: a member whose app lost its newest state and starts
 * from one saved before its own exclude, refresh or include no longer holds that operation's
 * secrets (its proposal, its contribution). When the relay hands its own packet back during the
 * catch-up it cannot use the new subsession: it warns (`key-mismatch`), starts over and asks to
 * be included again (rule 11), and the others go on. Before, an own exclude or refresh coming
 * back this way threw ("operation finished before we derived the group key"): the session
 * stopped processing the channel. (The include case already started over: kept as a guard.)
 */
import { describe, expect, it } from 'vitest';
import type { ChannelEvent } from '../../src/protocol/channel.js';
import type { MemberId } from '../../src/protocol/ids.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const names = ['alice', 'bob', 'carol', 'dave'];

describe('restore of a snapshot older than our own operation (issue 9 §2)', () => {
  it.each(['refresh', 'exclude', 'include'] as const)('an initiator restored from a state older than its own %s warns and starts over, asking to be included again; the others go on', async (kind) => {
    const sim = new SessionSim(crypto, 33, SIM_CONFIG, await greetingMembershipKind(crypto, names));
    for (const n of names) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    // The relay's log as alice's app will read it again: packets and channel leaves (an exclude removes carol).
    const leaves: ChannelEvent[] = [];
    const leaveChannel = sim.leaveChannel.bind(sim);
    sim.leaveChannel = (id: MemberId) => {
      const was = sim.channel.includes(id);
      leaveChannel(id);
      if (was) leaves.push({ kind: 'left', seq: sim.seq, atMs: sim.nowMs, left: [id], members: sim.channel });
    };
    const log = (after: number): ChannelEvent[] => [...sim.posted, ...leaves].filter((e) => e.seq > after).sort((a, b) => a.seq - b.seq);
    await sim.act('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
    await sim.advance(2_000);
    const me = sim.member('alice');
    const old = JSON.parse(JSON.stringify(me.session.snapshot())) as SessionSnapshot;
    const oldSeq = me.session.processedSeq()!;
    await sim.act('alice', (s, now) => (kind === 'refresh' ? s.refresh(now) : kind === 'exclude' ? s.exclude(['carol'] as MemberId[], now) : s.include(['dave'] as MemberId[], now)));
    await sim.advance(5_000);
    await sim.act('bob', (s, now) => s.send('bob after it', now));
    await sim.advance(5_000);
    // Her app lost its newest state: the saved one predates her proposal.
    sim.restartFrom('alice', old);
    const marks = me.effects.length;
    await sim.apply(me, await me.session.catchUp(sim.seq, sim.nowMs));
    await sim.apply(me, await me.session.receiveAll(log(oldSeq), sim.nowMs));
    me.restored = false;
    const after = me.effects.slice(marks);
    expect(after.some((e) => e.kind === 'notice' && e.notice.kind === 'start-over')).toBe(true);
    expect(after.some((e) => e.kind === 'warn' && e.warning.kind === 'membership' && e.warning.text.startsWith('key-mismatch'))).toBe(true);
    // She asked to be included again (rule 11: REJOIN_DOWN, posted once caught up).
    expect(after.some((e) => e.kind === 'send' && e.text === sim.posted.at(-1)!.text)).toBe(true);
    await sim.act('bob', (s, now) => s.send('bob goes on', now));
    await sim.advance(5_000);
    expect(sim.member(kind === 'exclude' ? 'bob' : 'carol').delivered.map((d) => d.text)).toContain('bob goes on');
    expect(sim.warnings().filter((w) => !(w.kind === 'membership' && w.text.startsWith('key-mismatch'))), JSON.stringify(sim.warnings())).toEqual([]);
  });
});
