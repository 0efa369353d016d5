/**
 * The mpenc_js trace (mpenc-wire.md "The trace file"), checked byte for byte with every crypto
 * provider: decoding, re-encoding, every signature, every packet id and chain hash, session ids,
 * message ids, and every data packet whose subsession key the trace holds.
 *
 * What the trace does NOT allow: the first subsession's group key (start with alice, bob, carol)
 * is not in `subSessions`, and a group key cannot be recomputed without the members' x25519
 * private keys. The 15 data packets sealed under it (hint 253) are therefore checked for
 * structure, ids and hint consistency only; their message ids are still checked against the
 * LATEST_PM references of the exclude that follows.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, hexEncode } from '../../src/protocol/bytes.js';
import { greetTypeFlags } from '../../src/protocol/codec/constants.js';
import { encodeDataRegion, type DataPacket } from '../../src/protocol/codec/data.js';
import { encodeGreetingRegion, type GreetingPacket } from '../../src/protocol/codec/greeting.js';
import { decodePacket, encodePacket, type Packet } from '../../src/protocol/codec/packet.js';
import { idKey, memberId, packetId, sessionId, type ChainHash, type MessageId } from '../../src/protocol/ids.js';
import { makeSessionId, verifySessionAck } from '../../src/protocol/packets/aske.js';
import { encodeDataContent, openDataPacket, sidkeyHint, verifyDataPacket, type SubsessionKeys } from '../../src/protocol/packets/data.js';
import { verifyGreeting } from '../../src/protocol/packets/greeting-signature.js';
import { chainHashStep, genesisChainHash, makeMessageId, makePacketId } from '../../src/protocol/packets/ids.js';
import { pad } from '../../src/protocol/packets/padding.js';
import { providers } from '../helpers/providers.js';
import { loadTrace, type TraceSubSession } from '../helpers/trace.js';

const trace = loadTrace();
const decoded: Packet[] = trace.packets.map((p) => decodePacket(p.pubtxt));
const greetings = decoded.flatMap((p, i) => (p.kind === 'greeting' ? [[i, p] as const] : []));
const dataPackets = decoded.flatMap((p, i) => (p.kind === 'data' ? [[i, p] as const] : []));

/** The distinct subsessions of the trace (each member's view lists the same ones). */
const subsessions: TraceSubSession[] = [];
for (const s of trace.subSessions) {
  if (!subsessions.some((t) => bytesEqual(t.sessionId, s.sessionId))) subsessions.push(s);
}

/** Data packets of the first subsession, whose group key the trace does not hold. */
const FIRST_SESSION_DATA = [5, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21];

describe('mpenc_js trace: codec', () => {
  it('has 37 packets: 11 greetings and 26 data packets', () => {
    expect(decoded).toHaveLength(37);
    expect(greetings.map(([i]) => i)).toEqual([0, 1, 2, 3, 4, 11, 14, 24, 27, 28, 29]);
    expect(dataPackets).toHaveLength(26);
  });

  it('re-encodes every packet to the identical text', () => {
    for (const [i, p] of decoded.entries()) expect(encodePacket(p), `packet ${i}`).toBe(trace.packets[i]!.pubtxt);
  });

  it('keeps the signed region S equal to the re-encoded region', () => {
    for (const [i, p] of greetings) expect(bytesEqual(p.signed, encodeGreetingRegion(p)), `packet ${i}`).toBe(true);
    for (const [i, p] of dataPackets) expect(bytesEqual(p.signed, encodeDataRegion(p)), `packet ${i}`).toBe(true);
  });

  it('sees the greeting flows of mpenc-wire.md', () => {
    const types = greetings.map(([, p]) => p.greetType);
    // start: 9C → 1C → 1E → 1A 1A; exclude carol: BF → 3B; include carol: AD → 2F → 2B 2B.
    expect(types).toEqual([0x9c, 0x1c, 0x1e, 0x1a, 0x1a, 0xbf, 0x3b, 0xad, 0x2f, 0x2b, 0x2b]);
    const initial = greetings.filter(([, p]) => p.metadata !== undefined).map(([i]) => i);
    expect(initial).toEqual([0, 11, 24]);
    // The flag layout matches the packets: DOWN packets are broadcasts, INIT ones come first.
    for (const [i, p] of greetings) {
      const flags = greetTypeFlags(p.greetType);
      expect(flags.down, `packet ${i}`).toBe(p.dest === null);
      expect(flags.initiator, `packet ${i}`).toBe(p.metadata !== undefined);
    }
  });
});

for (const crypto of providers) {
  describe(`mpenc_js trace with ${crypto.name}`, () => {
    it('recomputes every packet id from sender, channel members and text', async () => {
      let checked = 0;
      for (const p of trace.packets) {
        if (p.packetId === null) continue;
        const id = await makePacketId(crypto, p.sender, p.channelMembers, p.pubtxt);
        expect(hexEncode(id), `packet ${p.index}`).toBe(hexEncode(p.packetId));
        checked++;
      }
      expect(checked).toBe(36);
      // The one packet without an id: carol's, sent after she had left the channel.
      const unaccepted = trace.packets.filter((p) => p.packetId === null);
      expect(unaccepted.map((p) => p.index)).toEqual([19]);
      expect(unaccepted[0]!.channelMembers).not.toContain(unaccepted[0]!.sender);
    });

    it('verifies every greeting MESSAGE_SIGNATURE with the sender ephemeral key', async () => {
      for (const [i, p] of greetings) {
        const slot = p.members.indexOf(p.source);
        const key = p.pubKeys[slot];
        expect(key, `packet ${i} carries its sender's key`).toBeDefined();
        expect(await verifyGreeting(crypto, p, key!), `packet ${i}`).toBe(true);
        // A member reuses its ephemeral key across subsessions, so it is the one the final
        // subsessions record; except carol's first key, dropped when she was excluded.
        if (!(p.source === 'carol' && i < 11)) {
          const sub = subsessions.find((s) => s.members.includes(p.source))!;
          expect(hexEncode(sub.ephemeralPubKeys[sub.members.indexOf(p.source)]!)).toBe(hexEncode(key!));
        }
        // Another member's key does not verify.
        const other = p.pubKeys.find((k) => !bytesEqual(k, key!));
        if (other) expect(await verifyGreeting(crypto, p, other)).toBe(false);
      }
    });

    it('verifies every SESSION_SIGNATURE with the static keys and recomputes session ids', async () => {
      const signedIndices: number[] = [];
      const sessionIds = new Set<string>();
      for (const [i, p] of greetings) {
        if (p.sessionSignature === undefined) continue;
        signedIndices.push(i);
        const sid = await makeSessionId(crypto, p.members, p.nonces);
        sessionIds.add(idKey(sid));
        const slot = p.members.indexOf(p.source);
        const ack = { member: p.source, ephemeralPubKey: p.pubKeys[slot]!, nonce: p.nonces[slot]!, sessionId: sid };
        expect(await verifySessionAck(crypto, trace.staticKeys[p.source]!.pub, p.sessionSignature, ack), `packet ${i}`).toBe(true);
        const wrongMember = p.members.find((m) => m !== p.source)!;
        expect(await verifySessionAck(crypto, trace.staticKeys[wrongMember]!.pub, p.sessionSignature, ack)).toBe(false);
      }
      expect(signedIndices).toEqual([2, 3, 4, 11, 14, 27, 28, 29]);
      // Three subsessions: the start, after excluding carol, after including her again.
      expect(sessionIds.size).toBe(3);
      for (const s of trace.subSessions) {
        const sid = await makeSessionId(crypto, s.members.map(memberId), s.nonces);
        expect(hexEncode(sid)).toBe(hexEncode(s.sessionId));
        expect(sessionIds.has(idKey(sid))).toBe(true);
      }
    });

    it('recomputes every chain hash in serverOrder, from the genesis packet id on', async () => {
      const byId = new Map<string, GreetingPacket>();
      for (const [i, p] of greetings) {
        const id = trace.packets[i]!.packetId!;
        byId.set(hexEncode(id), p);
      }
      const first = greetings[0]![1];
      for (const [member, order] of Object.entries(trace.serverOrder)) {
        const ids = order.packetId;
        const hashes = order.chainHash;
        expect(ids).toHaveLength(hashes.length);
        let ch: ChainHash;
        if (member === 'carol') {
          // A joiner syncs from the initial packet that includes her (mpenc-wire.md "chain hash").
          const include = greetings.find(([i]) => i === 24)![1];
          expect(hexEncode(include.metadata!.prevPf)).toBe(hexEncode(ids[0]!));
          expect(hexEncode(include.metadata!.chainHash)).toBe(hexEncode(hashes[0]!));
          ch = include.metadata!.chainHash;
        } else {
          // Genesis: packetId0 is random, CH0 = SHA-256(packetId0 ‖ 0xFF); both travel in the
          // first initial packet as PREV_PF and CHAIN_HASH.
          expect(hexEncode(first.metadata!.prevPf)).toBe(hexEncode(ids[0]!));
          ch = await genesisChainHash(crypto, first.metadata!.prevPf);
          expect(hexEncode(ch)).toBe(hexEncode(hashes[0]!));
          expect(hexEncode(first.metadata!.chainHash)).toBe(hexEncode(ch));
        }
        for (let k = 1; k < ids.length; k++) {
          const packet = byId.get(hexEncode(ids[k]!));
          expect(packet, `${member}: entry ${k} is a trace greeting`).toBeDefined();
          const ptype = packet!.metadata !== undefined ? 'initial' : 'final';
          ch = await chainHashStep(crypto, ch, packetId(ids[k]!), ptype);
          expect(hexEncode(ch), `${member}: chain hash ${k}`).toBe(hexEncode(hashes[k]!));
        }
      }
      // Each initial packet's PREV_PF / CHAIN_HASH is its sender's view of the last final packet.
      for (const [i, p] of greetings) {
        if (p.metadata === undefined || i === 0) continue;
        const view = trace.serverOrder[p.source]!;
        const at = view.packetId.findIndex((id) => bytesEqual(id, p.metadata!.prevPf));
        expect(at, `packet ${i} PREV_PF`).toBeGreaterThan(0);
        expect(hexEncode(view.chainHash[at]!)).toBe(hexEncode(p.metadata.chainHash));
      }
    });

    it('opens every data packet whose subsession key the trace holds', async () => {
      const keysOf = (s: TraceSubSession): SubsessionKeys => ({ sessionId: sessionId(s.sessionId), groupKey: s.groupKey });
      const hints = new Map<number, TraceSubSession>();
      for (const s of subsessions) hints.set(await sidkeyHint(crypto, keysOf(s)), s);
      expect(hints.size).toBe(subsessions.length);

      const opened: number[] = [];
      const unknown: number[] = [];
      for (const [i, p] of dataPackets) {
        const sub = hints.get(p.sidkeyHint);
        if (sub === undefined) {
          unknown.push(i);
          continue;
        }
        const sender = trace.packets[i]!.sender;
        const authorKey = sub.ephemeralPubKeys[sub.members.indexOf(sender)]!;
        const content = await openDataPacket(crypto, p, keysOf(sub), authorKey);
        opened.push(i);
        // The plaintext is canonical: re-encoding and re-padding gives the decrypted bytes.
        const counter = concatBytes(p.iv, new Uint8Array(4));
        const padded = await crypto.aesCtr(sub.groupKey, counter, p.payload);
        expect(hexEncode(pad(encodeDataContent(content)))).toBe(hexEncode(padded));
        // Wrong author or wrong subsession: the signature does not verify.
        const otherKey = sub.ephemeralPubKeys.find((k) => !bytesEqual(k, authorKey))!;
        expect(await verifyDataPacket(crypto, p, keysOf(sub), otherKey)).toBe(false);
        const otherSub = subsessions.find((s) => s !== sub)!;
        expect(await verifyDataPacket(crypto, p, keysOf(otherSub), authorKey)).toBe(false);
      }
      expect(opened).toEqual([22, 23, 25, 26, 30, 31, 32, 33, 34, 35, 36]);
      expect(unknown).toEqual(FIRST_SESSION_DATA);
      // All of those share one hint: one subsession, the first one.
      expect(new Set(FIRST_SESSION_DATA.map((i) => (decoded[i] as DataPacket).sidkeyHint)).size).toBe(1);
    });

    it('decrypts the bodies mpenc_js wrote', async () => {
      const sub = subsessions.find((s) => s.members.length === 2)!;
      const p22 = decoded[22] as DataPacket;
      const key = sub.ephemeralPubKeys[sub.members.indexOf('bob')]!;
      const content = await openDataPacket(crypto, p22, { sessionId: sessionId(sub.sessionId), groupKey: sub.groupKey }, key);
      expect(content).toEqual({ parents: [], body: { type: 'payload', text: 'after exclude' } });
    });

    it('recomputes message ids: every MESSAGE_PARENT and LATEST_PM names an earlier packet', async () => {
      const ids: MessageId[] = [];
      for (const p of decoded) {
        if (p.kind === 'greeting' || p.kind === 'data') ids.push(await makeMessageId(crypto, p));
      }
      const indexOf = new Map<string, number>();
      decoded.forEach((p, i) => {
        if (p.kind === 'greeting' || p.kind === 'data') indexOf.set(idKey(ids[indexOf.size]!), i);
      });
      expect(indexOf.size).toBe(37);

      const references: [from: number, to: MessageId][] = [];
      for (const [i, p] of greetings) for (const pm of p.metadata?.latestPms ?? []) references.push([i, pm]);
      const hintToSub = new Map<number, TraceSubSession>();
      for (const s of subsessions) hintToSub.set(await sidkeyHint(crypto, { sessionId: sessionId(s.sessionId), groupKey: s.groupKey }), s);
      for (const [i, p] of dataPackets) {
        const s = hintToSub.get(p.sidkeyHint);
        if (s === undefined) continue;
        const key = s.ephemeralPubKeys[s.members.indexOf(trace.packets[i]!.sender)]!;
        const content = await openDataPacket(crypto, p, { sessionId: sessionId(s.sessionId), groupKey: s.groupKey }, key);
        for (const parent of content.parents) references.push([i, parent]);
      }
      // 3 LATEST_PM (packets 11, 24) and 13 MESSAGE_PARENT references in the readable packets.
      expect(references).toHaveLength(16);
      for (const [from, to] of references) {
        const target = indexOf.get(idKey(to));
        expect(target, `packet ${from} refers to a trace packet`).toBeDefined();
        expect(target!).toBeLessThan(from);
        expect(decoded[target!]!.kind).toBe('data');
      }
    });
  });
}
