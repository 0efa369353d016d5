/**
 * The mpENC v1 trace (mpenc-wire.md "The trace file"): a passive Covey observer, given only the
 * static public keys, follows the trace's channel and must accept exactly the operations
 * mpenc_js accepted, with the same session ids and the same ServerOrder chain.
 */
import { describe, expect, it } from 'vitest';
import { base64Encode } from '../../src/protocol/bytes.js';
import type { ChannelEvent } from '../../src/protocol/channel.js';
import { createMembership, step } from '../../src/protocol/greeting/machine.js';
import type { MembershipEffect, MembershipState } from '../../src/protocol/greeting/types.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';
import { providers } from '../helpers/providers.js';
import { loadTrace } from '../helpers/trace.js';

const trace = loadTrace();
const b64 = (bytes: Uint8Array) => base64Encode(bytes);

/** The trace as channel events: membership changes become joined/left events before a packet. */
function traceEvents(): ChannelEvent[] {
  const events: ChannelEvent[] = [];
  let members: MemberId[] = [];
  for (const p of trace.packets) {
    if (p.packetId === null) continue; // never reached the channel (sent after its author left)
    const now = p.channelMembers.map(memberId);
    const left = members.filter((m) => !now.includes(m));
    const joined = now.filter((m) => !members.includes(m));
    if (left.length > 0) events.push({ kind: 'left', seq: events.length + 1, left, members: members.filter((m) => now.includes(m)) });
    if (joined.length > 0) events.push({ kind: 'joined', seq: events.length + 1, joined, members: now });
    members = now;
    events.push({ kind: 'packet', seq: events.length + 1, sender: memberId(p.sender), text: p.pubtxt });
  }
  return events;
}

async function observe(crypto: (typeof providers)[number]): Promise<{ state: MembershipState; effects: MembershipEffect[] }> {
  const keys = { staticKey: (m: MemberId) => trace.staticKeys[m]?.pub };
  let state = createMembership({ self: memberId('observer'), staticSeed: null });
  const effects: MembershipEffect[] = [];
  const random = () => {
    throw new Error('a passive observer needs no randomness');
  };
  for (const event of traceEvents()) {
    const r = await step(state, { kind: 'channel', event }, { crypto, random, nowMs: 0, keys });
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

describe.each(providers)('mpenc_js trace, passive observer ($name)', (crypto) => {
  it('accepts the three operations mpenc_js accepted, with its session ids and chain hashes', async () => {
    const { state, effects } = await observe(crypto);
    expect(effects.filter((e) => e.kind === 'warning')).toEqual([]);
    expect(effects.filter((e) => e.kind === 'operation-failed' || e.kind === 'proposal-rejected')).toEqual([]);
    const accepted = effects.filter((e) => e.kind === 'operation-accepted').map((e) => e.kind === 'operation-accepted' && e.operation);
    expect(accepted).toEqual(['start', 'exclude', 'include']);
    const results = effects.flatMap((e) => (e.kind === 'subsession' ? [e.subsession] : []));
    expect(results.map((r) => r.members)).toEqual([
      ['alice', 'bob', 'carol'],
      ['alice', 'bob'],
      ['alice', 'bob', 'carol'],
    ]);
    // The trace records each member's last two subsessions: the exclude's and the include's.
    const afterExclude = trace.subSessions.find((t) => t.members.length === 2)!;
    const afterInclude = trace.subSessions.find((t) => t.members.length === 3)!;
    expect(b64(results[1]!.sid)).toBe(b64(afterExclude.sessionId));
    expect(b64(results[2]!.sid)).toBe(b64(afterInclude.sessionId));
    expect(results[1]!.nonces.map(b64)).toEqual(afterExclude.nonces.map(b64));
    expect(results[2]!.nonces.map(b64)).toEqual(afterInclude.nonces.map(b64));
    expect(results[2]!.ephemeralPubKeys.map(b64)).toEqual(afterInclude.ephemeralPubKeys.map(b64));
    expect(b64(results[0]!.sid)).not.toBe(b64(results[2]!.sid));

    // ServerOrder: the same accepted packet ids and chain hashes as alice and bob computed.
    for (const owner of ['alice', 'bob']) {
      const order = trace.serverOrder[owner]!;
      expect(state.order.chain.map((e) => b64(e.packetId))).toEqual(order.packetId.map(b64));
      expect(state.order.chain.map((e) => b64(e.chainHash))).toEqual(order.chainHash.map(b64));
    }
    // carol re-joined by the include: her chain starts at its PREV_PF, and ends where ours does.
    const carol = trace.serverOrder['carol']!;
    const tail = state.order.chain.slice(-carol.packetId.length);
    expect(tail.map((e) => b64(e.chainHash))).toEqual(carol.chainHash.map(b64));
  });

  it('rejects the trace with one session signature altered', async () => {
    const keys = { staticKey: (m: MemberId) => trace.staticKeys[m]?.pub };
    let state = createMembership({ self: memberId('observer'), staticSeed: null });
    const effects: MembershipEffect[] = [];
    // Swap alice's and bob's static keys: every session signature of theirs fails.
    const swapped = { staticKey: (m: MemberId) => keys.staticKey((m === 'alice' ? 'bob' : m === 'bob' ? 'alice' : m) as MemberId) };
    for (const event of traceEvents().slice(0, 6)) {
      const r = await step(state, { kind: 'channel', event }, { crypto, random: () => new Uint8Array(0), nowMs: 0, keys: swapped });
      state = r.state;
      effects.push(...r.effects);
    }
    expect(effects.some((e) => e.kind === 'warning' && e.code === 'bad-signature')).toBe(true);
    expect(effects.some((e) => e.kind === 'subsession')).toBe(false);
    expect(state.current).toBeNull();
  });
});
