/**
 * Signature properties (fast-check), for every crypto provider: flipping any bit of a signed
 * region (or of the signature) makes verification fail, on real mpenc_js packets and on packets
 * we seal ourselves. SIDKEY_HINT is the one unsigned record, checked as the negative control.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import type { DataPacket } from '../../src/protocol/codec/data.js';
import { frame, unframe } from '../../src/protocol/codec/framing.js';
import type { GreetingPacket } from '../../src/protocol/codec/greeting.js';
import { decodePacketBytes, encodePacketBytes, type Packet } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import { memberId, messageId, sessionId } from '../../src/protocol/ids.js';
import { signSessionAck, verifySessionAck, type SessionAck } from '../../src/protocol/packets/aske.js';
import { openDataPacket, sealDataPacket, verifyDataPacket, type SubsessionKeys } from '../../src/protocol/packets/data.js';
import { signErrorPacket, signGreeting, verifyErrorPacket, verifyGreeting } from '../../src/protocol/packets/greeting-signature.js';
import { providers } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { loadTrace } from '../helpers/trace.js';
import { errorArb, greetingFieldsArb } from './codec-arbitraries.js';

const RUNS = Number(process.env.COVEY_FUZZ_RUNS ?? 300);
const trace = loadTrace();

/** Decodes, or returns undefined for a ProtocolError (a rejected packet is never accepted). */
function tryDecode(bytes: Uint8Array): Packet | undefined {
  try {
    return decodePacketBytes(bytes);
  } catch (e) {
    if (isProtocolError(e)) return undefined;
    throw e;
  }
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
  return out;
}

/** Byte offset where the signature record starts (after SIDKEY_HINT in data packets). */
const signatureStart = (p: Packet) => (p.kind === 'data' ? 5 : 0);

interface Signed {
  readonly bytes: Uint8Array;
  readonly packet: Packet;
  readonly verify: (p: Packet) => Promise<boolean>;
}

function traceGreetings(crypto: CryptoProvider): Signed[] {
  return trace.packets.flatMap((tp) => {
    const bytes = unframe(tp.pubtxt);
    const packet = decodePacketBytes(bytes);
    if (packet.kind !== 'greeting') return [];
    const key = packet.pubKeys[packet.members.indexOf(packet.source)]!;
    return [{ bytes, packet, verify: async (p: Packet) => p.kind === 'greeting' && verifyGreeting(crypto, p, key) }];
  });
}

function traceData(crypto: CryptoProvider): Signed[] {
  const subs = trace.subSessions.filter((s, i, all) => all.findIndex((t) => bytesEqual(t.sessionId, s.sessionId)) === i);
  return trace.packets.flatMap((tp) => {
    const bytes = unframe(tp.pubtxt);
    const packet = decodePacketBytes(bytes);
    if (packet.kind !== 'data') return [];
    return subs.flatMap((s) => {
      const keys: SubsessionKeys = { sessionId: sessionId(s.sessionId), groupKey: s.groupKey };
      const key = s.ephemeralPubKeys[s.members.indexOf(tp.sender)];
      if (key === undefined) return [];
      return [{ bytes, packet, verify: async (p: Packet) => p.kind === 'data' && verifyDataPacket(crypto, p, keys, key) }];
    });
  });
}

/** Flips one bit in [signature start, end) and checks the result is rejected or fails to verify. */
async function flippedFails(s: Signed, bit: number): Promise<boolean> {
  const from = signatureStart(s.packet) * 8;
  const mutated = flipBit(s.bytes, from + (bit % (s.bytes.length * 8 - from)));
  const packet = tryDecode(mutated);
  return packet === undefined || !(await s.verify(packet));
}

for (const provider of providers) {
  describe(`signature properties with ${provider.name}`, () => {
    it('real greetings: every flipped bit breaks MESSAGE_SIGNATURE', async () => {
      const greetings = traceGreetings(provider);
      for (const g of greetings) expect(await g.verify(g.packet)).toBe(true);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: greetings.length - 1 }), fc.nat(), async (i, bit) => {
          expect(await flippedFails(greetings[i]!, bit)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    });

    it('real data packets: every flipped bit breaks MESSAGE_SIGNATURE; the hint is not signed', async () => {
      const valid: Signed[] = [];
      for (const d of traceData(provider)) if (await d.verify(d.packet)) valid.push(d);
      expect(valid).toHaveLength(11);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: valid.length - 1 }), fc.nat(), async (i, bit) => {
          expect(await flippedFails(valid[i]!, bit)).toBe(true);
        }),
        { numRuns: RUNS },
      );
      // Negative control: SIDKEY_HINT (value at byte 4) is outside the signed region.
      const d = valid[0]!;
      const hinted = tryDecode(flipBit(d.bytes, 4 * 8));
      expect(hinted).toBeDefined();
      expect(await d.verify(hinted!)).toBe(true);
    });

    it('one real data packet, exhaustively: each bit of signature and S', async () => {
      const d = (await Promise.all(traceData(provider).map(async (s) => ((await s.verify(s.packet)) ? s : undefined)))).find((s) => s)!;
      const bits = (d.bytes.length - signatureStart(d.packet)) * 8;
      for (let bit = 0; bit < bits; bit++) expect(await flippedFails(d, bit), `bit ${bit}`).toBe(true);
    });

    it('sealed data packets: any flipped bit fails to open', async () => {
      const rng = seededRandom(11);
      const keys: SubsessionKeys = { sessionId: sessionId(rng.bytes(32)), groupKey: rng.bytes(32) };
      const seed = rng.bytes(32);
      const pub = await provider.ed25519PublicKey(seed);
      const contentArb = fc.record({
        parents: fc.uniqueArray(fc.uint8Array({ minLength: 20, maxLength: 20 }), { maxLength: 3, selector: (b) => b.join() }).map((ps) => ps.map(messageId)),
        body: fc.oneof(
          fc.string({ minLength: 1, maxLength: 300 }).map((text) => ({ type: 'payload' as const, text })),
          fc.boolean().map((manual) => ({ type: 'explicit-ack' as const, manual })),
        ),
      });
      await fc.assert(
        fc.asyncProperty(contentArb, fc.nat(), async (content, bit) => {
          const sealed = await sealDataPacket(provider, rng.bytes, { keys, ephemeralSeed: seed, content });
          const bytes = encodePacketBytes(sealed);
          const opened = await openDataPacket(provider, sealed, keys, pub);
          expect(opened.parents).toEqual(content.parents);
          const s: Signed = { bytes, packet: sealed, verify: async (p) => p.kind === 'data' && verifyDataPacket(provider, p, keys, pub) };
          expect(await flippedFails(s, bit)).toBe(true);
          const mutated = tryDecode(flipBit(bytes, 5 * 8 + (bit % ((bytes.length - 5) * 8)))) as DataPacket | undefined;
          if (mutated !== undefined) {
            await expect(openDataPacket(provider, mutated, keys, pub)).rejects.toMatchObject({ code: 'bad-signature' });
          }
        }),
        { numRuns: Math.ceil(RUNS / 3) },
      );
    });

    it('signed greetings and error packets: any flipped bit breaks the signature', async () => {
      const seed = seededRandom(12).bytes(32);
      const pub = await provider.ed25519PublicKey(seed);
      await fc.assert(
        fc.asyncProperty(greetingFieldsArb, fc.nat(), async (fields, bit) => {
          const packet: GreetingPacket = await signGreeting(provider, seed, fields);
          expect(await verifyGreeting(provider, packet, pub)).toBe(true);
          const s: Signed = { bytes: encodePacketBytes(packet), packet, verify: async (p) => p.kind === 'greeting' && verifyGreeting(provider, p, pub) };
          expect(await flippedFails(s, bit)).toBe(true);
        }),
        { numRuns: Math.ceil(RUNS / 3) },
      );
      await fc.assert(
        fc.asyncProperty(errorArb, fc.nat(), async (fields, bit) => {
          const packet = await signErrorPacket(provider, seed, fields);
          expect(await verifyErrorPacket(provider, packet, pub)).toBe(true);
          const s: Signed = { bytes: encodePacketBytes(packet), packet, verify: async (p) => p.kind === 'error' && verifyErrorPacket(provider, p, pub) };
          expect(await flippedFails(s, bit)).toBe(true);
        }),
        { numRuns: Math.ceil(RUNS / 3) },
      );
    });

    it('session signatures: any flipped bit of what they confirm breaks them', async () => {
      const rng = seededRandom(13);
      const staticSeed = rng.bytes(32);
      const staticPub = await provider.ed25519PublicKey(staticSeed);
      const ack: SessionAck = { member: memberId('alice'), ephemeralPubKey: rng.bytes(32), nonce: rng.bytes(32), sessionId: sessionId(rng.bytes(32)) };
      const signature = await signSessionAck(provider, staticSeed, ack);
      expect(await verifySessionAck(provider, staticPub, signature, ack)).toBe(true);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('ephemeralPubKey', 'nonce', 'sessionId', 'signature'), fc.integer({ min: 0, max: 255 }), async (field, bit) => {
          if (field === 'signature') {
            expect(await verifySessionAck(provider, staticPub, flipBit(signature, bit % 512), ack)).toBe(false);
          } else {
            const changed = { ...ack, [field]: flipBit(ack[field], bit) };
            expect(await verifySessionAck(provider, staticPub, signature, changed)).toBe(false);
          }
        }),
        { numRuns: Math.ceil(RUNS / 3) },
      );
      expect(await verifySessionAck(provider, staticPub, signature, { ...ack, member: memberId('alicf') })).toBe(false);
    });

    it('frames what it verifies: the text of a decoded packet re-encodes to the same bytes', () => {
      for (const tp of trace.packets) expect(frame(encodePacketBytes(decodePacketBytes(unframe(tp.pubtxt))))).toBe(tp.pubtxt);
    });
  });
}
