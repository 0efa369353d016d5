/**
 * Message ids, packet ids and the chain hash (mpenc-wire.md "Ids and the chain hash";
 * mpENC §3.3, §3.4). All hashes are SHA-256 through the injected CryptoProvider.
 */
import { concatBytes, latin1Decode, latin1Encode } from '../bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import { chainHash, messageId, MESSAGE_ID_BYTES, packetId, PACKET_ID_BYTES, type ChainHash, type MemberId, type MessageId, type PacketId } from '../ids.js';
import type { RandomSource } from '../random.js';

/** Message id = SHA-256(signature value ‖ S)[0..20] (the MESSAGE_PARENT / LATEST_PM value). */
export async function makeMessageId(
  crypto: CryptoProvider,
  packet: { readonly signature: Uint8Array; readonly signed: Uint8Array },
): Promise<MessageId> {
  const digest = await crypto.sha256(signatureAndSigned(packet.signature, packet.signed));
  return messageId(digest.slice(0, MESSAGE_ID_BYTES));
}

/**
 * signature ‖ S. A decoded packet holds them side by side in one buffer (the MESSAGE_SIGNATURE
 * value ends where S starts): then a view of that, with no copy (issue 8: the catch-up made one
 * per message); anything else is concatenated.
 */
function signatureAndSigned(signature: Uint8Array, signed: Uint8Array): Uint8Array {
  if (signature.buffer === signed.buffer && signature.byteOffset + signature.length === signed.byteOffset) {
    return new Uint8Array(signed.buffer, signature.byteOffset, signature.length + signed.length);
  }
  return concatBytes(signature, signed);
}

/**
 * Packet id = SHA-256(sender ‖ "\n" ‖ join("\n", sorted(channel members except sender)) ‖ "\n\n"
 * ‖ packet text), with the channel members as at receipt, sorted by UTF-16 code units.
 * Strings are byte strings (Latin-1), as in mpenc_js.
 */
export async function makePacketId(
  crypto: CryptoProvider,
  sender: string,
  channelMembers: Iterable<string>,
  packetText: string,
): Promise<PacketId> {
  const others = [...new Set(channelMembers)].filter((m) => m !== sender).sort();
  const text = sender + '\n' + others.join('\n') + '\n\n' + packetText;
  return packetId(await crypto.sha256(latin1Encode(text)));
}

/**
 * Which accepted greeting packet a chain-hash step covers: an operation's initial packet, its
 * final packet, a packet that is both (exclude leaving one member, refresh), or the pseudo packet
 * of members leaving mid-operation.
 */
export type ChainPacketType = 'initial' | 'final' | 'initial-final' | 'leave';

/** ptype bytes of mpenc_js ServerOrder: "2" initial, "1" final, "3" both, "\xFFleave". */
const PTYPE: Record<ChainPacketType, string> = { initial: '2', final: '1', 'initial-final': '3', leave: '\xffleave' };

/** CH = SHA-256(prevCH ‖ packetId ‖ ptype). */
export async function chainHashStep(
  crypto: CryptoProvider,
  prev: ChainHash,
  packet: PacketId,
  ptype: ChainPacketType,
): Promise<ChainHash> {
  return chainHash(await crypto.sha256(concatBytes(prev, packet, latin1Encode(PTYPE[ptype]))));
}

/** packetId0: 32 random bytes standing for "the final packet before anything" of a new chain. */
export function makeGenesisPacketId(random: RandomSource): PacketId {
  return packetId(random(PACKET_ID_BYTES));
}

/** CH0 = SHA-256(packetId0 ‖ 0xFF) (mpenc_js ServerOrder.syncNew). */
export async function genesisChainHash(crypto: CryptoProvider, packetId0: PacketId): Promise<ChainHash> {
  return chainHash(await crypto.sha256(concatBytes(packetId0, Uint8Array.of(0xff))));
}

/** Pseudo sender of leave pseudo packets. */
export const SERVER_PSEUDO_MEMBER = '__server__';

/**
 * Id of the pseudo packet chained when members leave the channel mid-operation:
 * makePacketId("\xFFleave " ‖ prevPi ‖ "\n" ‖ leavers joined by ",", "__server__",
 * channel members ∪ {"__server__"}). Leavers are joined in the order given: callers pass them
 * sorted so that every member computes the same id.
 */
export async function makeLeavePacketId(
  crypto: CryptoProvider,
  prevInitialPacketId: PacketId,
  leavers: readonly MemberId[],
  channelMembers: Iterable<string>,
): Promise<PacketId> {
  if (leavers.length === 0) throw new ProtocolError('bad-value', 'a leave pseudo packet needs at least one leaver');
  const text = '\xffleave ' + latin1Decode(prevInitialPacketId) + '\n' + leavers.join(',');
  return makePacketId(crypto, SERVER_PSEUDO_MEMBER, [...channelMembers, SERVER_PSEUDO_MEMBER], text);
}
