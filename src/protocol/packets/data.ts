/**
 * Sealing and opening data packets (mpENC §3.6, §5.3; mpenc-wire.md "Data packets").
 *
 * Seal: R = MESSAGE_PARENT × n ‖ MESSAGE_BODY → pad → AES-256-CTR with the group key and counter
 * block IV ‖ 00000000 → sign "datamsgsig" ‖ SHA-256(sid ‖ gk) ‖ S with the author's ephemeral key
 * → SIDKEY_HINT = SHA-256(sid ‖ gk)[0]. Open: verify first, then decrypt, unpad and parse.
 */
import { concatBytes, latin1Encode } from '../bytes.js';
import { DATA_SIGNATURE_CONTEXT, PROTOCOL_VERSION_1, PROTOCOL_VERSION_2, RecordType, type ProtocolVersion } from '../codec/constants.js';
import { DATA_IV_BYTES, encodeDataRegion, type DataFields, type DataPacket } from '../codec/data.js';
import { MAX_MESSAGE_PARENTS, MAX_RECORDS_PER_PACKET } from '../codec/limits.js';
import { decodeExactly, encodeRecord, recordList, RecordReader } from '../codec/records.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import { idKey, messageId, type MessageId, type SessionId } from '../ids.js';
import type { RandomSource } from '../random.js';
import { decodeMessageBody, encodeMessageBody, type MessageBody } from './body.js';
import { GROUP_KEY_BYTES } from './group-key.js';
import { MAX_UNPADDED_BYTES, pad, unpaddedView } from './padding.js';

const DATA_CONTEXT = latin1Encode(DATA_SIGNATURE_CONTEXT);

/** The keys of one subsession that data packets are bound to. */
export interface SubsessionKeys {
  readonly sessionId: SessionId;
  /** 32-byte AES-256-CTR key from the GKA. */
  readonly groupKey: Uint8Array;
}

/** What a data packet carries once decrypted. */
export interface DataContent {
  /** Latest messages the author had seen (mpENC §3.4): an anti-chain, so no duplicates. */
  readonly parents: readonly MessageId[];
  readonly body: MessageBody;
}

/** SHA-256(sid ‖ gk): signed into every data packet so it is bound to one subsession. */
export async function sidkeyHash(crypto: CryptoProvider, keys: SubsessionKeys): Promise<Uint8Array> {
  if (keys.groupKey.length !== GROUP_KEY_BYTES) throw new ProtocolError('bad-key', `group key of ${keys.groupKey.length} bytes`);
  return crypto.sha256(concatBytes(keys.sessionId, keys.groupKey));
}

/**
 * Subsession keys with their SHA-256(sid ‖ gk) computed once (issue 8: it was recomputed for
 * every data packet). Every seal and open of a subsession takes the same value.
 */
export interface BoundKeys extends SubsessionKeys {
  readonly sidkeyHash: Uint8Array;
}

export async function bindKeys(crypto: CryptoProvider, keys: SubsessionKeys): Promise<BoundKeys> {
  return { sessionId: keys.sessionId, groupKey: keys.groupKey, sidkeyHash: await sidkeyHash(crypto, keys) };
}

async function hashOf(crypto: CryptoProvider, keys: SubsessionKeys | BoundKeys): Promise<Uint8Array> {
  return 'sidkeyHash' in keys ? keys.sidkeyHash : sidkeyHash(crypto, keys);
}

/** SIDKEY_HINT = SHA-256(sid ‖ gk)[0]: lets a reader try the likely key first (§5.3). */
export async function sidkeyHint(crypto: CryptoProvider, keys: SubsessionKeys | BoundKeys): Promise<number> {
  return (await hashOf(crypto, keys))[0]!;
}

/** R: the plaintext records before padding. */
export function encodeDataContent(content: DataContent): Uint8Array {
  if (content.parents.length > MAX_MESSAGE_PARENTS) throw new ProtocolError('too-long', `${content.parents.length} parents`);
  if (new Set(content.parents.map(idKey)).size !== content.parents.length) throw new ProtocolError('bad-value', 'duplicate parent');
  return concatBytes(
    ...content.parents.map((id) => encodeRecord(RecordType.MESSAGE_PARENT, id)),
    encodeRecord(RecordType.MESSAGE_BODY, encodeMessageBody(content.body)),
  );
}

export function decodeDataContent(plaintext: Uint8Array): DataContent {
  const records = decodeExactly(recordList(MAX_RECORDS_PER_PACKET), plaintext, MAX_UNPADDED_BYTES);
  const r = new RecordReader(records, plaintext.length);
  // Copies: the records are views into the plaintext buffer, which the caller wipes.
  const parents = r.many(RecordType.MESSAGE_PARENT, MAX_MESSAGE_PARENTS, 'MESSAGE_PARENT').map((v) => messageId(v.slice()));
  if (hasDuplicate(parents)) throw new ProtocolError('bad-value', 'duplicate MESSAGE_PARENT');
  const body = decodeMessageBody(r.take(RecordType.MESSAGE_BODY, 'MESSAGE_BODY'));
  r.end('message body');
  return { parents, body };
}

/**
 * Whether two parents are equal. Pairwise for the usual few (one per author: no strings or Set
 * per message of a catch-up, issue 8); by hex key past that, so a packet with MAX_MESSAGE_PARENTS
 * parents costs O(n), not O(n²).
 */
function hasDuplicate(parents: readonly MessageId[]): boolean {
  if (parents.length > PAIRWISE_PARENTS) return new Set(parents.map(idKey)).size !== parents.length;
  for (let i = 0; i < parents.length; i++) {
    for (let j = i + 1; j < parents.length; j++) if (sameBytes(parents[i]!, parents[j]!)) return true;
  }
  return false;
}

/** Up to this many parents are compared pairwise (at most 28 comparisons of 20 bytes). */
const PAIRWISE_PARENTS = 8;

/** Plain equality of public values (ids): no need for bytesEqual's constant time. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface SealArgs {
  /** For the signature binding SHA-256(sid ‖ gk) (BoundKeys: computed once), and v1's cipher key. */
  readonly keys: SubsessionKeys | BoundKeys;
  /**
   * v2 (issue 9 §3): the packet's message key from the author's hash chain and its index there
   * (packets/ratchet.ts). The packet is then PROTOCOL_VERSION_2 with CHAIN_INDEX, encrypted
   * under this key instead of the group key.
   */
  readonly chain?: { readonly index: number; readonly messageKey: Uint8Array };
  /** The author's ephemeral ed25519 seed (its public key is in the subsession's PUB_KEYs). */
  readonly ephemeralSeed: Uint8Array;
  readonly content: DataContent;
  readonly version?: ProtocolVersion;
}

export async function sealDataPacket(crypto: CryptoProvider, random: RandomSource, args: SealArgs): Promise<DataPacket> {
  const hash = await hashOf(crypto, args.keys);
  const iv = random(DATA_IV_BYTES);
  const padded = pad(encodeDataContent(args.content));
  // A v2 message key seals this packet only (issue 9 §3): nothing is kept for it.
  const payload = args.chain === undefined ? await crypto.aesCtr(args.keys.groupKey, counterBlock(iv), padded) : await crypto.aesCtr(args.chain.messageKey, counterBlock(iv), padded, true);
  padded.fill(0); // STYLE.md §5: wipe plaintext temporaries
  const fields: DataFields = args.chain === undefined ? { version: args.version ?? PROTOCOL_VERSION_1, iv, payload } : { version: PROTOCOL_VERSION_2, iv, chainIndex: args.chain.index, payload };
  const signed = encodeDataRegion(fields);
  const signature = await crypto.ed25519Sign(args.ephemeralSeed, concatBytes(DATA_CONTEXT, hash, signed));
  return { ...fields, kind: 'data', sidkeyHint: hash[0]!, signature, signed };
}

/** Checks the MESSAGE_SIGNATURE against the author's ephemeral key and these subsession keys. */
export async function verifyDataPacket(
  crypto: CryptoProvider,
  packet: DataPacket,
  keys: SubsessionKeys | BoundKeys,
  authorPubKey: Uint8Array,
  /** The provider's first answer only (CryptoProvider.ed25519VerifyFirst): a `false` must be checked again. */
  firstAnswer = false,
): Promise<boolean> {
  // (Bound keys carry the hash: no await for it, this runs for every message of a catch-up.)
  const hash = 'sidkeyHash' in keys ? keys.sidkeyHash : await sidkeyHash(crypto, keys);
  const signed = concatBytes(DATA_CONTEXT, hash, packet.signed);
  if (firstAnswer && crypto.ed25519VerifyFirst !== undefined) return crypto.ed25519VerifyFirst(authorPubKey, signed, packet.signature);
  return crypto.ed25519Verify(authorPubKey, signed, packet.signature);
}

/**
 * Verifies, then decrypts, unpads and parses. Throws ProtocolError: 'bad-signature' (wrong key,
 * wrong subsession or tampered), 'bad-padding', 'bad-record' / 'bad-value' (bad plaintext).
 */
export async function openDataPacket(
  crypto: CryptoProvider,
  packet: DataPacket,
  keys: SubsessionKeys | BoundKeys,
  authorPubKey: Uint8Array,
): Promise<DataContent> {
  if (!(await verifyDataPacket(crypto, packet, keys, authorPubKey))) {
    throw new ProtocolError('bad-signature', 'data packet signature does not verify for this author and subsession');
  }
  return decryptDataPacket(crypto, packet, keys);
}

/**
 * `openDataPacket` with the signature checked beforehand (`verified`: verifyDataPacket's verdict
 * for these keys and this author; Session.receiveAll checks signatures ahead, issue 8).
 */
export async function openCheckedDataPacket(crypto: CryptoProvider, packet: DataPacket, keys: SubsessionKeys | BoundKeys, verified: boolean): Promise<DataContent> {
  if (!verified) throw new ProtocolError('bad-signature', 'data packet signature does not verify for this author and subsession');
  return decryptDataPacket(crypto, packet, keys);
}

/** Decrypts, unpads and parses a packet whose signature verified. */
async function decryptDataPacket(crypto: CryptoProvider, packet: DataPacket, keys: SubsessionKeys | BoundKeys): Promise<DataContent> {
  return decryptDataPacketWith(crypto, packet, keys.groupKey);
}

/**
 * Decrypts, unpads and parses a packet whose signature verified, under `key`: the group key
 * (v1), or the packet's message key from its author's chain (v2, packets/ratchet.ts; `oneUse`:
 * the provider keeps nothing for a key that opens one packet).
 */
export async function decryptDataPacketWith(crypto: CryptoProvider, packet: DataPacket, key: Uint8Array, oneUse = false): Promise<DataContent> {
  const padded = await crypto.aesCtr(key, counterBlock(packet.iv), packet.payload, oneUse);
  try {
    // A view, not a copy: decodeDataContent copies what it keeps, and the wipe below then covers
    // every plaintext byte (a copy would outlive it).
    return decodeDataContent(unpaddedView(padded));
  } finally {
    padded.fill(0); // STYLE.md §5: wipe plaintext temporaries (the result holds its own copies)
  }
}

/** mpenc-wire.md: the AES-CTR counter block is the 12-byte IV ‖ 00 00 00 00. */
function counterBlock(iv: Uint8Array): Uint8Array {
  const block = new Uint8Array(DATA_IV_BYTES + 4);
  block.set(iv);
  return block;
}
