/**
 * Issue 9 §3 inside a subsession (mpENC §6.2.1): one hash chain per sender from the group key,
 * each message key used once and deleted, a bounded store of skipped keys. A member's session
 * state taken after it read message i opens no message before i.
 */
import { describe, expect, it } from 'vitest';
import { base64Decode } from '../../src/protocol/bytes.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { MemberId, SessionId } from '../../src/protocol/ids.js';
import { decryptDataPacketWith, sealDataPacket } from '../../src/protocol/packets/data.js';
import { encodePacket } from '../../src/protocol/codec/packet.js';
import { MAX_CHAIN_JUMP, MAX_SKIPPED_MESSAGE_KEYS, SenderChains } from '../../src/protocol/packets/ratchet.js';
import { chat3 } from '../helpers/three-members.js';

const crypto = nobleProvider;
const MEMBERS = ['alice', 'bob', 'carol'] as MemberId[];


/** Every 32-byte value in a JSON state (base64 strings), as an attacker would list them. */
function secretsIn(state: unknown): Uint8Array[] {
  const out: Uint8Array[] = [];
  const visit = (v: unknown) => {
    if (typeof v === 'string' && /^[A-Za-z0-9+/]{43}=$/.test(v)) out.push(base64Decode(v));
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(state);
  return out;
}

/**
 * The attacker's candidate message keys from a stolen value: the value itself, and the message
 * keys of up to `steps` chain steps from it read as a chain key, and read as a group key (every
 * member's chain). Reading forward is all a hash chain allows.
 */
async function candidateKeys(value: Uint8Array, sid: SessionId, steps: number): Promise<Uint8Array[]> {
  const keys = [value];
  const fromChains = async (chains: SenderChains, members: readonly MemberId[]) => {
    for (const m of members) for (let i = 0; i < steps; i++) keys.push((await chains.take(crypto, m, i))!);
  };
  await fromChains(await SenderChains.derive(crypto, value, sid, MEMBERS), MEMBERS);
  // As a chain key: a one-member "chain" seeded with it directly.
  const asChain = SenderChains.restore({ chains: [['x' as MemberId, Buffer.from(value).toString('base64'), 0]], skipped: [] });
  await fromChains(asChain, ['x' as MemberId]);
  return keys;
}

async function opens(packetText: string, keys: readonly Uint8Array[], text: string): Promise<boolean> {
  const packet = decodePacket(packetText);
  if (packet.kind !== 'data') return false;
  for (const key of keys) {
    try {
      const content = await decryptDataPacketWith(crypto, packet, key);
      if (content.body.type === 'payload' && content.body.text === text) return true;
    } catch {
      // not this key
    }
  }
  return false;
}

describe('sender chains inside a subsession (issue 9 §3, mpENC §6.2.1)', () => {
  it("a member's state after message i opens no earlier message, and does open the next (the test can find keys)", async () => {
    const sim = await chat3(71);
    const texts = ['m0', 'm1', 'm2', 'm3', 'm4'];
    for (const t of texts) {
      await sim.act('alice', (s, now) => s.send(t, now));
      await sim.settle();
    }
    await sim.advance(3_000);
    const bob = sim.member('bob');
    expect(bob.delivered.map((d) => d.text)).toEqual(texts);
    const { membership: _membership, ...stolen } = JSON.parse(JSON.stringify(bob.session.snapshot())) as ReturnType<typeof bob.session.snapshot>;
    const sub = stolen.subsessions.at(-1)!;
    expect(sub.setup.groupKey).toBe(''); // the group key is not kept
    expect(sub.ratchet).toBeDefined();
    const sid = base64Decode(sub.setup.sessionId) as SessionId;
    const keys = (await Promise.all(secretsIn(stolen).map((v) => candidateKeys(v, sid, 12)))).flat();
    const alicePackets = () => sim.dataPackets().filter((p) => p.sender === 'alice');
    const sent = new Map<string, string>();
    for (const p of alicePackets()) {
      const packet = decodePacket(p.text);
      if (packet.kind === 'data') sent.set(p.text, String(packet.chainIndex));
    }
    const payloads = alicePackets().filter((p) => sent.has(p.text));
    let earlierOpened = 0;
    for (const p of payloads) for (const t of texts) if (await opens(p.text, keys, t)) earlierOpened++;
    expect(earlierOpened).toBe(0);

    // Positive control: what alice sends after the theft is open to the stolen state.
    await sim.act('alice', (s, now) => s.send('after the theft', now));
    const later = alicePackets().at(-1)!;
    expect(await opens(later.text, keys, 'after the theft')).toBe(true);
  });

  it('uses each message key once, keeps bounded skipped keys for out-of-order packets, refuses far jumps', async () => {
    const sid = new Uint8Array(32).fill(1) as unknown as SessionId;
    const gk = new Uint8Array(32).fill(2);
    const a = await SenderChains.derive(crypto, gk, sid, MEMBERS);
    const b = await SenderChains.derive(crypto, gk, sid, MEMBERS);
    const k0 = (await a.take(crypto, 'alice' as MemberId, 0))!;
    const k1 = (await a.take(crypto, 'alice' as MemberId, 1))!;
    const k2 = (await a.take(crypto, 'alice' as MemberId, 2))!;
    // Out of order: 2 first, then 0 and 1 from the skipped store; each only once.
    expect(await b.take(crypto, 'alice' as MemberId, 2)).toEqual(k2);
    expect(await b.take(crypto, 'alice' as MemberId, 0)).toEqual(k0);
    expect(await b.take(crypto, 'alice' as MemberId, 1)).toEqual(k1);
    expect(await b.take(crypto, 'alice' as MemberId, 1)).toBeUndefined();
    expect(await b.take(crypto, 'alice' as MemberId, 2)).toBeUndefined();
    // Chains differ per sender.
    expect(await b.take(crypto, 'bob' as MemberId, 0)).not.toEqual(k0);
    expect(await b.take(crypto, 'mallory' as MemberId, 0)).toBeUndefined();
    // Far jumps are refused; skipped keys are bounded (the oldest go).
    expect(await b.take(crypto, 'carol' as MemberId, MAX_CHAIN_JUMP + 1)).toBeUndefined();
    expect(await b.take(crypto, 'carol' as MemberId, MAX_CHAIN_JUMP)).toBeDefined();
    expect(await b.take(crypto, 'bob' as MemberId, 5)).toBeDefined();
    expect(b.snapshot().skipped.length).toBeLessThanOrEqual(MAX_SKIPPED_MESSAGE_KEYS);
    expect(b.snapshot().skipped.length).toBeGreaterThan(MAX_SKIPPED_MESSAGE_KEYS - 8);
    expect(await b.take(crypto, 'carol' as MemberId, 0)).toBeUndefined(); // dropped as the oldest
    expect(await b.take(crypto, 'carol' as MemberId, 10)).toBeDefined();
  });

  it('a packet re-using an index its author already used is refused, not read', async () => {
    const sim = await chat3(72);
    await sim.act('alice', (s, now) => s.send('first', now));
    await sim.settle();
    // alice signs a second packet with index 0 (a replayed device, or a malicious member).
    const sub = sim.member('alice').session.snapshot().subsessions.at(-1)!;
    const keys = { sessionId: base64Decode(sub.setup.sessionId) as SessionId, groupKey: new Uint8Array(0), sidkeyHash: base64Decode(sub.ratchet!.sidkeyHash) };
    const again = await sealDataPacket(crypto, (n) => crypto.randomBytes(n), {
      keys,
      ephemeralSeed: base64Decode(sub.setup.ownSigningSeed),
      content: { parents: [], body: { type: 'payload', text: 'second with index 0' } },
      chain: { index: 0, messageKey: crypto.randomBytes(32) },
    });
    sim.post('alice' as MemberId, encodePacket(again));
    await sim.settle();
    const bob = sim.member('bob');
    expect(bob.delivered.map((d) => d.text)).toEqual(['first']);
    expect(bob.warnings).toContainEqual(expect.objectContaining({ kind: 'rejected', code: 'replay' }));
  });
});
