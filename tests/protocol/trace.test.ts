/**
 * The mpenc_js traces (mpenc-wire.md "The trace file"), checked byte for byte with every crypto
 * provider: decoding, re-encoding, every signature, every packet id and chain hash, session ids,
 * message ids, and every data packet whose subsession key the trace holds. Every trace found
 * (tests/helpers/trace.ts: the spec's seed 1, any other `mpenc_js-trace-*.json` beside it, and
 * COVEY_MPENC_TRACES) gets the same checks, derived from the trace itself; the spec's trace also
 * has its known contents pinned at the end.
 *
 * What a trace does NOT allow: it lists each member's last two subsessions, so the group key of an
 * older one (in seed 1, the start with alice, bob, carol) is not there, and a group key cannot be
 * recomputed without the members' x25519 private keys. Data packets sealed under such a key are
 * checked for structure, ids and hint consistency only; their message ids are still checked
 * against the LATEST_PM references of the operations that follow.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, hexEncode } from '../../src/protocol/bytes.js';
import { GreetOperation, greetTypeFlags } from '../../src/protocol/codec/constants.js';
import { encodeDataRegion, type DataPacket } from '../../src/protocol/codec/data.js';
import { encodeGreetingRegion, type GreetingPacket } from '../../src/protocol/codec/greeting.js';
import { decodePacket, encodePacket, type Packet } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { idKey, memberId, packetId, sessionId, type ChainHash, type MessageId } from '../../src/protocol/ids.js';
import { makeSessionId, verifySessionAck } from '../../src/protocol/packets/aske.js';
import { encodeDataContent, openDataPacket, sidkeyHint, verifyDataPacket, type SubsessionKeys } from '../../src/protocol/packets/data.js';
import { verifyGreeting } from '../../src/protocol/packets/greeting-signature.js';
import { chainHashStep, genesisChainHash, makeMessageId, makePacketId, type ChainPacketType } from '../../src/protocol/packets/ids.js';
import { pad } from '../../src/protocol/packets/padding.js';
import { providers } from '../helpers/providers.js';
import { loadTraces, type NamedTrace, type Trace, type TraceSubSession } from '../helpers/trace.js';

interface Parsed {
  readonly trace: Trace;
  readonly decoded: readonly Packet[];
  readonly greetings: readonly (readonly [number, GreetingPacket])[];
  readonly dataPackets: readonly (readonly [number, DataPacket])[];
  /** The distinct subsessions of the trace (each member's view lists some of the same ones). */
  readonly subsessions: readonly TraceSubSession[];
}

function parse(trace: Trace): Parsed {
  const decoded = trace.packets.map((p) => decodePacket(p.pubtxt));
  const subsessions: TraceSubSession[] = [];
  for (const s of trace.subSessions) if (!subsessions.some((t) => bytesEqual(t.sessionId, s.sessionId))) subsessions.push(s);
  return {
    trace,
    decoded,
    greetings: decoded.flatMap((p, i) => (p.kind === 'greeting' ? [[i, p] as const] : [])),
    dataPackets: decoded.flatMap((p, i) => (p.kind === 'data' ? [[i, p] as const] : [])),
    subsessions,
  };
}

/** The operations of mpENC v1 that make a subsession (mpenc-wire.md GREET_TYPE bits 4–6). */
const OPERATIONS: ReadonlySet<number> = new Set([GreetOperation.START, GreetOperation.INCLUDE, GreetOperation.EXCLUDE, GreetOperation.REFRESH]);

/**
 * How a greeting enters the chain (mpenc-wire.md "Ids and the chain hash"): an initial packet "2",
 * a final one "1", and one that is both "3": a refresh, or an operation leaving one member.
 */
function chainRole(p: GreetingPacket): ChainPacketType {
  if (p.metadata === undefined) return 'final';
  return p.members.length === 1 || greetTypeFlags(p.greetType).operation === GreetOperation.REFRESH ? 'initial-final' : 'initial';
}

const keysOf = (s: TraceSubSession): SubsessionKeys => ({ sessionId: sessionId(s.sessionId), groupKey: s.groupKey });

/**
 * The subsession a data packet was sealed in, among those the trace holds: its SIDKEY_HINT is one
 * byte, so two subsessions may share one; the packet's signature decides (mpENC §5.3 "trial").
 */
async function sealedIn(crypto: CryptoProvider, t: Parsed, index: number, p: DataPacket): Promise<TraceSubSession | undefined> {
  const sender = t.trace.packets[index]!.sender;
  for (const sub of t.subsessions) {
    const slot = sub.members.indexOf(sender);
    if (slot < 0 || (await sidkeyHint(crypto, keysOf(sub))) !== p.sidkeyHint) continue;
    if (await verifyDataPacket(crypto, p, keysOf(sub), sub.ephemeralPubKeys[slot]!)) return sub;
  }
  return undefined;
}

const traces = loadTraces();

describe('the traces found', () => {
  it('include the spec trace, and every one has packets, static keys and subsessions', () => {
    expect(traces.filter((t) => t.isSpecTrace)).toHaveLength(1);
    for (const { name, trace } of traces) {
      expect(trace.packets.length, name).toBeGreaterThan(0);
      expect(trace.subSessions.length, name).toBeGreaterThan(0);
      for (const p of trace.packets) expect(trace.staticKeys[p.sender], `${name}: ${p.sender}'s static key`).toBeDefined();
    }
  });
});

describe.each(traces.map((t) => [t.name, t] as const))('mpenc_js trace %s: codec', (_name, named: NamedTrace) => {
  const t = parse(named.trace);

  it('decodes every packet as a greeting or a data packet', () => {
    expect(t.greetings.length + t.dataPackets.length).toBe(t.decoded.length);
    expect(t.greetings.length).toBeGreaterThan(0);
  });

  it('re-encodes every packet to the identical text', () => {
    for (const [i, p] of t.decoded.entries()) expect(encodePacket(p), `packet ${i}`).toBe(t.trace.packets[i]!.pubtxt);
  });

  it('keeps the signed region S equal to the re-encoded region', () => {
    for (const [i, p] of t.greetings) expect(bytesEqual(p.signed, encodeGreetingRegion(p)), `packet ${i}`).toBe(true);
    for (const [i, p] of t.dataPackets) expect(bytesEqual(p.signed, encodeDataRegion(p)), `packet ${i}`).toBe(true);
  });

  it('has greeting flags that match the packets: DOWN ones are broadcasts, the INIT ones of an operation carry metadata', () => {
    for (const [i, p] of t.greetings) {
      const flags = greetTypeFlags(p.greetType);
      expect(flags.down, `packet ${i}`).toBe(p.dest === null);
      // (A QUIT_DOWN has the INIT bit too, but starts no operation: no chain metadata is implied.)
      if (OPERATIONS.has(flags.operation)) expect(flags.initiator, `packet ${i}`).toBe(p.metadata !== undefined);
    }
    // The session begins with an initial packet (the start's, which carries the genesis PREV_PF).
    expect(t.greetings[0]![1].metadata).toBeDefined();
  });
});

for (const crypto of providers) {
  describe.each(traces.map((tr) => [tr.name, tr] as const))(`mpenc_js trace %s with ${crypto.name}`, (_name, named: NamedTrace) => {
    const t = parse(named.trace);
    const { trace } = t;

    it('recomputes every packet id from sender, channel members and text', async () => {
      let checked = 0;
      for (const p of trace.packets) {
        if (p.packetId === null) {
          // A packet the channel did not accept: its author was no longer a member.
          expect(p.channelMembers, `packet ${p.index}`).not.toContain(p.sender);
          continue;
        }
        const id = await makePacketId(crypto, p.sender, p.channelMembers, p.pubtxt);
        expect(hexEncode(id), `packet ${p.index}`).toBe(hexEncode(p.packetId));
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    });

    it('verifies every greeting MESSAGE_SIGNATURE with the sender ephemeral key, and no other', async () => {
      const sentKeys = new Map<string, Set<string>>();
      for (const [i, p] of t.greetings) {
        const slot = p.members.indexOf(p.source);
        const key = p.pubKeys[slot];
        expect(key, `packet ${i} carries its sender's key`).toBeDefined();
        expect(await verifyGreeting(crypto, p, key!), `packet ${i}`).toBe(true);
        const other = p.pubKeys.find((k) => !bytesEqual(k, key!));
        if (other) expect(await verifyGreeting(crypto, p, other)).toBe(false);
        if (!sentKeys.has(p.source)) sentKeys.set(p.source, new Set());
        sentKeys.get(p.source)!.add(hexEncode(key!));
      }
      // Every ephemeral key a subsession lists is one its member sent in a greeting.
      for (const sub of t.subsessions) {
        sub.members.forEach((m, slot) => expect(sentKeys.get(m)?.has(hexEncode(sub.ephemeralPubKeys[slot]!)), `${m}'s key`).toBe(true));
      }
    });

    it('verifies every SESSION_SIGNATURE with the static keys and recomputes session ids', async () => {
      const sessionIds = new Set<string>();
      for (const [i, p] of t.greetings) {
        if (p.sessionSignature === undefined) continue;
        const sid = await makeSessionId(crypto, p.members, p.nonces);
        sessionIds.add(idKey(sid));
        const slot = p.members.indexOf(p.source);
        const ack = { member: p.source, ephemeralPubKey: p.pubKeys[slot]!, nonce: p.nonces[slot]!, sessionId: sid };
        expect(await verifySessionAck(crypto, trace.staticKeys[p.source]!.pub, p.sessionSignature, ack), `packet ${i}`).toBe(true);
        const wrongMember = p.members.find((m) => m !== p.source)!;
        expect(await verifySessionAck(crypto, trace.staticKeys[wrongMember]!.pub, p.sessionSignature, ack)).toBe(false);
      }
      for (const s of trace.subSessions) {
        const sid = await makeSessionId(crypto, s.members.map(memberId), s.nonces);
        expect(hexEncode(sid)).toBe(hexEncode(s.sessionId));
        expect(sessionIds.has(idKey(sid)), `subsession of ${s.members.join(', ')} was signed for`).toBe(true);
      }
    });

    it('recomputes every chain hash in serverOrder, from the genesis packet id or the joining packet on', async () => {
      const byId = new Map<string, GreetingPacket>();
      for (const [i, p] of t.greetings) {
        const id = trace.packets[i]!.packetId;
        if (id !== null) byId.set(hexEncode(id), p);
      }
      const first = t.greetings[0]![1];
      expect(Object.keys(trace.serverOrder).length).toBeGreaterThan(0);
      for (const [member, order] of Object.entries(trace.serverOrder)) {
        const ids = order.packetId;
        const hashes = order.chainHash;
        expect(ids).toHaveLength(hashes.length);
        expect(ids.length, member).toBeGreaterThan(0);
        let ch: ChainHash;
        if (bytesEqual(first.metadata!.prevPf, ids[0]!)) {
          // Genesis: packetId0 is random, CH0 = SHA-256(packetId0 ‖ 0xFF); both travel in the
          // first initial packet as PREV_PF and CHAIN_HASH.
          ch = await genesisChainHash(crypto, first.metadata!.prevPf);
          expect(hexEncode(ch)).toBe(hexEncode(hashes[0]!));
          expect(hexEncode(first.metadata!.chainHash)).toBe(hexEncode(ch));
        } else {
          // A joiner syncs from the initial packet that includes it (mpenc-wire.md "chain hash").
          const joining = t.greetings.find(([, p]) => p.metadata !== undefined && bytesEqual(p.metadata.prevPf, ids[0]!));
          expect(joining, `${member}'s order starts at an initial packet's PREV_PF`).toBeDefined();
          expect(joining![1].members).toContain(member);
          expect(hexEncode(joining![1].metadata!.chainHash)).toBe(hexEncode(hashes[0]!));
          ch = joining![1].metadata!.chainHash;
        }
        for (let k = 1; k < ids.length; k++) {
          // An entry that is no trace greeting is mpenc_js's pseudo packet for members who left
          // the channel mid-operation: its id is the relay's, its step still recomputes.
          const packet = byId.get(hexEncode(ids[k]!));
          ch = await chainHashStep(crypto, ch, packetId(ids[k]!), packet === undefined ? 'leave' : chainRole(packet));
          expect(hexEncode(ch), `${member}: chain hash ${k}`).toBe(hexEncode(hashes[k]!));
        }
      }
      // Each later initial packet's PREV_PF / CHAIN_HASH is its sender's view of the last final packet.
      for (const [i, p] of t.greetings.slice(1)) {
        if (p.metadata === undefined) continue;
        const view = trace.serverOrder[p.source];
        if (view === undefined) continue;
        const at = view.packetId.findIndex((id) => bytesEqual(id, p.metadata!.prevPf));
        expect(at, `packet ${i} PREV_PF`).toBeGreaterThan(0);
        expect(hexEncode(view.chainHash[at]!)).toBe(hexEncode(p.metadata.chainHash));
      }
    });

    it('opens every data packet whose subsession key the trace holds, and only with the right keys', async () => {
      let opened = 0;
      for (const [i, p] of t.dataPackets) {
        const sub = await sealedIn(crypto, t, i, p);
        if (sub === undefined) continue;
        const authorKey = sub.ephemeralPubKeys[sub.members.indexOf(trace.packets[i]!.sender)]!;
        const content = await openDataPacket(crypto, p, keysOf(sub), authorKey);
        opened++;
        // The plaintext is canonical: re-encoding and re-padding gives the decrypted bytes.
        const counter = concatBytes(p.iv, new Uint8Array(4));
        const padded = await crypto.aesCtr(sub.groupKey, counter, p.payload);
        expect(hexEncode(pad(encodeDataContent(content)))).toBe(hexEncode(padded));
        // Wrong author or wrong subsession: the signature does not verify.
        const otherKey = sub.ephemeralPubKeys.find((k) => !bytesEqual(k, authorKey));
        if (otherKey) expect(await verifyDataPacket(crypto, p, keysOf(sub), otherKey)).toBe(false);
        for (const otherSub of t.subsessions.filter((s) => s !== sub)) {
          expect(await verifyDataPacket(crypto, p, keysOf(otherSub), authorKey), `packet ${i} in another subsession`).toBe(false);
        }
      }
      // The trace holds the keys of the last subsessions; data is sent in them (mpenc_js's traces do).
      if (t.dataPackets.length > 0) expect(opened).toBeGreaterThan(0);
    });

    it('recomputes message ids: every MESSAGE_PARENT and LATEST_PM names an earlier data packet', async () => {
      const ids: MessageId[] = [];
      for (const p of t.decoded) ids.push(await makeMessageId(crypto, p as GreetingPacket | DataPacket));
      const indexOf = new Map<string, number>();
      ids.forEach((id, i) => indexOf.set(idKey(id), i));
      expect(indexOf.size, 'message ids are distinct').toBe(t.decoded.length);

      const references: [from: number, to: MessageId][] = [];
      for (const [i, p] of t.greetings) for (const pm of p.metadata?.latestPms ?? []) references.push([i, pm]);
      for (const [i, p] of t.dataPackets) {
        const sub = await sealedIn(crypto, t, i, p);
        if (sub === undefined) continue;
        const key = sub.ephemeralPubKeys[sub.members.indexOf(trace.packets[i]!.sender)]!;
        const content = await openDataPacket(crypto, p, keysOf(sub), key);
        for (const parent of content.parents) references.push([i, parent]);
      }
      for (const [from, to] of references) {
        const target = indexOf.get(idKey(to));
        expect(target, `packet ${from} refers to a trace packet`).toBeDefined();
        expect(target!).toBeLessThan(from);
        expect(t.decoded[target!]!.kind).toBe('data');
      }
    });
  });
}

/** The spec's trace, whose contents mpenc-wire.md describes: pinned, so a loader or codec change cannot quietly skip part of it. */
describe('the spec trace (seed 1): its known contents', () => {
  const spec = traces.find((tr) => tr.isSpecTrace)!;
  const t = parse(spec.trace);
  /** Data packets of the first subsession, whose group key the trace does not hold. */
  const FIRST_SESSION_DATA = [5, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21];

  it('has 37 packets: 11 greetings and 26 data packets, in the flows of mpenc-wire.md', () => {
    expect(t.decoded).toHaveLength(37);
    expect(t.greetings.map(([i]) => i)).toEqual([0, 1, 2, 3, 4, 11, 14, 24, 27, 28, 29]);
    expect(t.dataPackets).toHaveLength(26);
    // start: 9C → 1C → 1E → 1A 1A; exclude carol: BF → 3B; include carol: AD → 2F → 2B 2B.
    expect(t.greetings.map(([, p]) => p.greetType)).toEqual([0x9c, 0x1c, 0x1e, 0x1a, 0x1a, 0xbf, 0x3b, 0xad, 0x2f, 0x2b, 0x2b]);
    expect(t.greetings.filter(([, p]) => p.metadata !== undefined).map(([i]) => i)).toEqual([0, 11, 24]);
    expect(t.greetings.filter(([, p]) => p.sessionSignature !== undefined).map(([i]) => i)).toEqual([2, 3, 4, 11, 14, 27, 28, 29]);
  });

  it('has one packet the channel refused (carol, after she left) and three subsessions', async () => {
    expect(spec.trace.packets.filter((p) => p.packetId === null).map((p) => p.index)).toEqual([19]);
    expect(t.subsessions.map((s) => s.members.length).sort()).toEqual([2, 3]);
    const crypto = providers[0]!;
    const signed = new Set<string>();
    for (const [, p] of t.greetings) if (p.sessionSignature !== undefined) signed.add(idKey(await makeSessionId(crypto, p.members, p.nonces)));
    expect(signed.size).toBe(3);
  });

  it('opens exactly the data packets after the exclude, and pins its first body', async () => {
    const crypto = providers[0]!;
    const opened: number[] = [];
    const unknown: number[] = [];
    for (const [i, p] of t.dataPackets) ((await sealedIn(crypto, t, i, p)) === undefined ? unknown : opened).push(i);
    expect(opened).toEqual([22, 23, 25, 26, 30, 31, 32, 33, 34, 35, 36]);
    expect(unknown).toEqual(FIRST_SESSION_DATA);
    // All of those share one hint: one subsession, the first one.
    expect(new Set(FIRST_SESSION_DATA.map((i) => (t.decoded[i] as DataPacket).sidkeyHint)).size).toBe(1);
    const sub = t.subsessions.find((s) => s.members.length === 2)!;
    const key = sub.ephemeralPubKeys[sub.members.indexOf('bob')]!;
    const content = await openDataPacket(crypto, t.decoded[22] as DataPacket, keysOf(sub), key);
    expect(content).toEqual({ parents: [], body: { type: 'payload', text: 'after exclude' } });
  });
});
