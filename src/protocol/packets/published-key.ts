/**
 * Deniability (mpENC §6.1.1 "Publish signature keys", §6.1; issue 9 §3): once a member's
 * shutdown (FIN) was acked by every other member, it publishes its ephemeral signing key, so
 * that anyone can sign "its" messages and a transcript no longer proves who wrote what.
 *
 * The packet is mpENC's QUIT_DOWN greeting (0xD3), on PROTOCOL_VERSION_2 only: SOURCE, DEST
 * empty (broadcast), one PUB_KEY (the ephemeral public key) and SIGNING_KEY (its 32-byte seed).
 * MESSAGE_SIGNATURE is ed25519 by the sender's STATIC key over "coveyquit2" ‖ S: only the member
 * itself can retire its key this way (a thief of the seed cannot make receivers drop the
 * member's messages), and the static key already proves participation, nothing more.
 */
import { bytesEqual, concatBytes, latin1Encode } from '../bytes.js';
import { GreetType, PROTOCOL_VERSION_2, PUBLISHED_KEY_SIGNATURE_CONTEXT } from '../codec/constants.js';
import { encodeGreetingRegion, type GreetingFields, type GreetingPacket } from '../codec/greeting.js';
import { encodePacket } from '../codec/packet.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import type { MemberId } from '../ids.js';

const CONTEXT = latin1Encode(PUBLISHED_KEY_SIGNATURE_CONTEXT);

/** Whether a decoded greeting is a key publication (decide before handing it to the greeting machine). */
export function isPublishedKeyPacket(packet: GreetingPacket): boolean {
  return packet.greetType === GreetType.QUIT_DOWN && packet.version === PROTOCOL_VERSION_2;
}

/** The QUIT_DOWN text that publishes `ephemeral` (seed and public key), signed with the static seed. */
export async function publishedKeyText(
  crypto: CryptoProvider,
  staticSeed: Uint8Array,
  source: MemberId,
  ephemeral: { readonly seed: Uint8Array; readonly pub: Uint8Array },
): Promise<string> {
  const fields: GreetingFields = {
    version: PROTOCOL_VERSION_2,
    greetType: GreetType.QUIT_DOWN,
    source,
    dest: null,
    members: [],
    intKeys: [],
    nonces: [],
    pubKeys: [ephemeral.pub],
    signingKey: ephemeral.seed,
  };
  const signed = encodeGreetingRegion(fields);
  const signature = await crypto.ed25519Sign(staticSeed, concatBytes(CONTEXT, signed));
  return encodePacket({ ...fields, kind: 'greeting', signature, signed });
}

/**
 * The ephemeral public key a publication retires, once checked: signed by `staticPub`, sent by
 * its SOURCE, of exactly the expected shape, and carrying the seed of that public key (so that
 * everyone can really sign with it). Throws a typed ProtocolError otherwise.
 */
export async function openPublishedKey(crypto: CryptoProvider, packet: GreetingPacket, sender: MemberId, staticPub: Uint8Array): Promise<Uint8Array> {
  if (!isPublishedKeyPacket(packet)) throw new ProtocolError('unexpected-packet', 'not a key publication');
  if (packet.source !== sender) throw new ProtocolError('unknown-member', `a key publication of ${packet.source} sent by ${sender}`);
  const pub = packet.pubKeys[0];
  const shaped = packet.dest === null && packet.members.length === 0 && packet.intKeys.length === 0 && packet.nonces.length === 0 && packet.pubKeys.length === 1;
  if (!shaped || pub === undefined || packet.signingKey === undefined || packet.metadata !== undefined || packet.opRef !== undefined || packet.sessionSignature !== undefined || packet.abortReason !== undefined || packet.keyConfirmation !== undefined || packet.finPms !== undefined) {
    throw new ProtocolError('bad-record', 'a key publication carries SOURCE, one PUB_KEY and SIGNING_KEY only');
  }
  if (!(await crypto.ed25519Verify(staticPub, concatBytes(CONTEXT, packet.signed), packet.signature))) {
    throw new ProtocolError('bad-signature', `key publication of ${sender}`);
  }
  if (!bytesEqual(await crypto.ed25519PublicKey(packet.signingKey), pub)) throw new ProtocolError('bad-key', 'the published seed is not that of the published key');
  return pub;
}
