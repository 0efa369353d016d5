/**
 * Shared by the deniability tests (issue 9 §3, mpENC §6.1.1): the key publications in a
 * simulated relay log, and what an insider can do with a published signing key.
 */
import { base64Decode } from '../../src/protocol/bytes.js';
import { GreetType } from '../../src/protocol/codec/constants.js';
import { decodePacket, encodePacket } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import type { MemberId, SessionId } from '../../src/protocol/ids.js';
import { messageId } from '../../src/protocol/ids.js';
import { sealDataPacket, verifyDataPacket } from '../../src/protocol/packets/data.js';
import { SenderChains } from '../../src/protocol/packets/ratchet.js';
import type { SessionSnapshot, SubsessionSnapshot } from '../../src/protocol/session/snapshot.js';
import type { SessionSim } from '../sim/session-harness.js';
import { seededRandom } from './seeded-random.js';

/** Key publications (QUIT_DOWN v2) in the relay's log: who, where, the seed and its public key. */
export function publications(sim: SessionSim): { sender: MemberId; seq: number; seed: Uint8Array; pub: Uint8Array }[] {
  return sim.posted.flatMap((e) => {
    try {
      const p = decodePacket(e.text);
      return p.kind === 'greeting' && p.greetType === GreetType.QUIT_DOWN ? [{ sender: e.sender, seq: e.seq, seed: p.signingKey!, pub: p.pubKeys[0]! }] : [];
    } catch {
      return [];
    }
  });
}

/** The subsession of `snapshot` that holds a message with this text. */
export function subsessionOf(snapshot: SessionSnapshot, text: string): SubsessionSnapshot {
  const sub = snapshot.subsessions.find((s) => s.messages.some((m) => m.body.type === 'payload' && m.body.text === text));
  if (sub === undefined) throw new Error(`no subsession holds "${text}"`);
  return sub;
}

/** `member`'s signing key (base64) as the subsession lists it. */
export const signingKeyOf = (sub: SubsessionSnapshot, member: MemberId): string => sub.setup.signingKeys.find(([m]) => m === member)![1];

/**
 * What an insider (its saved state) can do with a signing seed: a correctly encrypted v2 packet
 * "by `author`" under the author's next free message key, in the subsession that holds `where`,
 * signed with `seed`; and whether it verifies under the author's key listed there.
 */
export async function forgeAs(
  crypto: CryptoProvider,
  insider: SessionSnapshot,
  author: MemberId,
  where: string,
  seed: Uint8Array,
  text: string,
): Promise<{ packet: string; sub: SubsessionSnapshot; validUnderAuthorsKey: boolean }> {
  const sub = subsessionOf(insider, where);
  const chains = SenderChains.restore(sub.ratchet!.chains);
  const keys = { sessionId: base64Decode(sub.setup.sessionId) as SessionId, groupKey: new Uint8Array(0), sidkeyHash: base64Decode(sub.ratchet!.sidkeyHash) };
  for (let index = 0; index < 64; index++) {
    const messageKey = await chains.key(crypto, author, index);
    if (messageKey === undefined) continue;
    const parents = sub.messages.slice(-1).map((m) => messageId(Uint8Array.from(Buffer.from(m.id, 'hex'))));
    const packet = await sealDataPacket(crypto, seededRandom(index + 7).bytes, { keys, ephemeralSeed: seed, content: { parents, body: { type: 'payload', text } }, chain: { index, messageKey } });
    const validUnderAuthorsKey = await verifyDataPacket(crypto, packet, keys, base64Decode(signingKeyOf(sub, author)));
    return { packet: encodePacket(packet), sub, validUnderAuthorsKey };
  }
  throw new Error(`no free message key of ${author}`);
}
