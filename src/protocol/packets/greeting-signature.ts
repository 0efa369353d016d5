/**
 * MESSAGE_SIGNATURE of greeting and error packets (mpENC §5.2.3; mpenc-wire.md "Greeting
 * packets"): ed25519 with the sender's ephemeral key over "greetmsgsig" ‖ S (errors:
 * "errormsgsig" ‖ S), S being every byte after the signature record.
 */
import { concatBytes, latin1Encode } from '../bytes.js';
import { ERROR_SIGNATURE_CONTEXT, GREETING_SIGNATURE_CONTEXT } from '../codec/constants.js';
import { encodeErrorRegion, type ErrorFields, type ErrorPacket } from '../codec/error-packet.js';
import { encodeGreetingRegion, type GreetingFields, type GreetingPacket } from '../codec/greeting.js';
import type { CryptoProvider } from '../crypto/provider.js';

const GREETING_CONTEXT = latin1Encode(GREETING_SIGNATURE_CONTEXT);
const ERROR_CONTEXT = latin1Encode(ERROR_SIGNATURE_CONTEXT);

/** Builds and signs a greeting packet with the sender's ephemeral ed25519 seed. */
export async function signGreeting(crypto: CryptoProvider, ephemeralSeed: Uint8Array, fields: GreetingFields): Promise<GreetingPacket> {
  const signed = encodeGreetingRegion(fields);
  const signature = await crypto.ed25519Sign(ephemeralSeed, concatBytes(GREETING_CONTEXT, signed));
  return { ...fields, kind: 'greeting', signature, signed };
}

/** Checks a greeting's MESSAGE_SIGNATURE over its signed bytes; false on any mismatch. */
export async function verifyGreeting(crypto: CryptoProvider, packet: GreetingPacket, ephemeralPubKey: Uint8Array): Promise<boolean> {
  return crypto.ed25519Verify(ephemeralPubKey, concatBytes(GREETING_CONTEXT, packet.signed), packet.signature);
}

export async function signErrorPacket(crypto: CryptoProvider, ephemeralSeed: Uint8Array, fields: ErrorFields): Promise<ErrorPacket> {
  const signed = encodeErrorRegion(fields);
  const signature = await crypto.ed25519Sign(ephemeralSeed, concatBytes(ERROR_CONTEXT, signed));
  return { ...fields, kind: 'error', signature, signed };
}

/** An unsigned error packet, for a member that has no signing key yet (as mpenc_js allows). */
export function unsignedErrorPacket(fields: ErrorFields): ErrorPacket {
  return { ...fields, kind: 'error', signature: null, signed: encodeErrorRegion(fields) };
}

/** False for unsigned error packets: their content is unauthenticated and only informative. */
export async function verifyErrorPacket(crypto: CryptoProvider, packet: ErrorPacket, ephemeralPubKey: Uint8Array): Promise<boolean> {
  if (packet.signature === null) return false;
  return crypto.ed25519Verify(ephemeralPubKey, concatBytes(ERROR_CONTEXT, packet.signed), packet.signature);
}
