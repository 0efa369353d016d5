/**
 * The mpENC v1 traces (mpenc-wire.md "The trace file"; every trace tests/helpers/trace.ts finds):
 * a passive Covey observer, given only the static public keys, follows the trace's channel and
 * must accept exactly the operations mpenc_js accepted, with the same session ids and the same
 * ServerOrder chain. What to expect is read from the trace (its initial packets, subsessions and
 * orders), so another seed or scenario is checked the same way.
 */
import { describe, expect, it } from 'vitest';
import { base64Encode } from '../../src/protocol/bytes.js';
import type { ChannelEvent } from '../../src/protocol/channel.js';
import { createMembership, step } from '../../src/protocol/greeting/machine.js';
import type { MembershipEffect, MembershipState, OperationKind } from '../../src/protocol/greeting/types.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';
import { GreetOperation, greetTypeFlags } from '../../src/protocol/codec/constants.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { GreetingPacket } from '../../src/protocol/codec/greeting.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { providers } from '../helpers/providers.js';
import { loadTraces, type Trace } from '../helpers/trace.js';

const b64 = (bytes: Uint8Array) => base64Encode(bytes);
const OPERATION_OF: Readonly<Record<number, OperationKind>> = {
  [GreetOperation.START]: 'start',
  [GreetOperation.INCLUDE]: 'include',
  [GreetOperation.EXCLUDE]: 'exclude',
  [GreetOperation.REFRESH]: 'refresh',
};

/** The trace as channel events: membership changes become joined/left events before a packet. */
function traceEvents(trace: Trace): ChannelEvent[] {
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

type Keys = { readonly staticKey: (m: MemberId) => Uint8Array | undefined };

async function observe(crypto: CryptoProvider, trace: Trace, keys: Keys): Promise<{ state: MembershipState; effects: MembershipEffect[] }> {
  let state = createMembership({ self: memberId('observer'), staticSeed: null });
  const effects: MembershipEffect[] = [];
  const random = () => {
    throw new Error('a passive observer needs no randomness');
  };
  for (const event of traceEvents(trace)) {
    const r = await step(state, { kind: 'channel', event }, { crypto, random, nowMs: 0, keys });
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

/** The operations a trace runs, read from its initial packets (the initiator's first, with metadata). */
function initialPackets(trace: Trace): GreetingPacket[] {
  return trace.packets.flatMap((p) => {
    if (p.packetId === null) return [];
    const packet = decodePacket(p.pubtxt);
    // An operation's initial packet (a QUIT_DOWN has the INIT bit too, but makes no subsession).
    return packet.kind === 'greeting' && packet.metadata !== undefined && OPERATION_OF[greetTypeFlags(packet.greetType).operation] !== undefined ? [packet] : [];
  });
}

const cases = providers.flatMap((crypto) => loadTraces().map((named) => [crypto.name, named.name, crypto, named.trace] as const));

describe.each(cases)('mpenc_js trace, passive observer (%s, %s)', (_provider, _name, crypto: CryptoProvider, trace: Trace) => {
  const keys: Keys = { staticKey: (m) => trace.staticKeys[m]?.pub };

  it('accepts exactly the operations mpenc_js ran, with its session ids and chain hashes', async () => {
    const { state, effects } = await observe(crypto, trace, keys);
    expect(effects.filter((e) => e.kind === 'warning')).toEqual([]);
    expect(effects.filter((e) => e.kind === 'operation-failed' || e.kind === 'proposal-rejected')).toEqual([]);
    const initials = initialPackets(trace);
    const accepted = effects.flatMap((e) => (e.kind === 'operation-accepted' ? [e.operation] : []));
    expect(accepted).toEqual(initials.map((p) => OPERATION_OF[greetTypeFlags(p.greetType).operation]));
    // One operation at a time: each finished one made the subsession its initial packet named.
    const results = effects.flatMap((e) => (e.kind === 'subsession' ? [e.subsession] : []));
    expect(results.length).toBeGreaterThan(0);
    expect(results.map((r) => r.members)).toEqual(initials.slice(0, results.length).map((p) => p.members));
    // Every subsession the trace's members recorded is one the observer made, with the same keys.
    for (const t of trace.subSessions) {
      const mine = results.find((r) => b64(r.sid) === b64(t.sessionId));
      expect(mine, `${t.owner}'s subsession of ${t.members.join(', ')}`).toBeDefined();
      expect(mine!.members).toEqual(t.members);
      expect(mine!.nonces.map(b64)).toEqual(t.nonces.map(b64));
      expect(mine!.ephemeralPubKeys.map(b64)).toEqual(t.ephemeralPubKeys.map(b64));
    }
    expect(new Set(results.map((r) => b64(r.sid))).size).toBe(results.length);

    // ServerOrder: each member's accepted packet ids and chain hashes end where ours do; a
    // member there from the genesis on has the whole chain, a joiner the tail from its include.
    const chain = state.order.chain;
    for (const [member, order] of Object.entries(trace.serverOrder)) {
      expect(order.packetId.length, member).toBeLessThanOrEqual(chain.length);
      const tail = chain.slice(chain.length - order.packetId.length);
      expect(tail.map((e) => b64(e.packetId)), member).toEqual(order.packetId.map(b64));
      expect(tail.map((e) => b64(e.chainHash)), member).toEqual(order.chainHash.map(b64));
    }
    const founders = initials[0]!.members;
    for (const member of founders.filter((m) => trace.serverOrder[m] !== undefined && !initials.slice(1).some((p) => !p.members.includes(m)))) {
      expect(trace.serverOrder[member]!.packetId.length, `${member} was there throughout`).toBe(chain.length);
    }
  });

  it('rejects the trace with the session signatures of two members altered', async () => {
    // Swap two founders' static keys: every session signature of theirs fails.
    const [a, b] = initialPackets(trace)[0]!.members as [MemberId, MemberId];
    const swapped: Keys = { staticKey: (m) => keys.staticKey(m === a ? b : m === b ? a : m) };
    const { state, effects } = await observe(crypto, trace, swapped);
    expect(effects.some((e) => e.kind === 'warning' && e.code === 'bad-signature')).toBe(true);
    expect(effects.filter((e) => e.kind === 'subsession' && (e.subsession.members.includes(a) || e.subsession.members.includes(b)))).toEqual([]);
    expect(state.current === null || !(state.current.members.includes(a) || state.current.members.includes(b))).toBe(true);
  });
});
