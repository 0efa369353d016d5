/**
 * RFC 9180 DHKEM(X25519, HKDF-SHA256) DeriveKeyPair written out (§4 labels, §7.1.3), on noble:
 * what src/worker/sealed-message.ts is checked against, and a way to find seeds whose keys have
 * a given shape (a private or public key that begins with 0, which WebKit's WebCrypto refuses).
 */
import { base64UrlEncode, concatBytes, utf8Encode } from '../../src/protocol/bytes.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';

const SUITE_ID = concatBytes(utf8Encode('KEM'), new Uint8Array([0x00, 0x20]));

/** DeriveKeyPair(ikm)'s private key: LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32). */
export function hpkePrivateKey(ikm: Uint8Array): Promise<Uint8Array> {
  const labeledIkm = concatBytes(utf8Encode('HPKE-v1'), SUITE_ID, utf8Encode('dkp_prk'), ikm);
  const labeledInfo = concatBytes(new Uint8Array([0, 32]), utf8Encode('HPKE-v1'), SUITE_ID, utf8Encode('sk'));
  return nobleProvider.hkdfSha256(labeledIkm, new Uint8Array(0), labeledInfo, 32);
}

/** DeriveKeyPair(ikm)'s public key, base64url (a card's `hk`). */
export async function hpkePublicKey(ikm: Uint8Array): Promise<string> {
  return base64UrlEncode(await nobleProvider.x25519PublicKey(await hpkePrivateKey(ikm)));
}

/**
 * The first seed SHA-256("covey-test <label> <n>"), n = 0, 1, ..., whose key pair passes `wanted`.
 * A one-byte condition takes about 256 tries.
 */
export async function seedWhere(
  label: string,
  wanted: (privateKey: Uint8Array, publicKey: Uint8Array) => boolean | Promise<boolean>,
): Promise<Uint8Array> {
  for (let n = 0; n < 10_000; n++) {
    const seed = await nobleProvider.sha256(utf8Encode(`covey-test ${label} ${n}`));
    const privateKey = await hpkePrivateKey(seed);
    if (await wanted(privateKey, await nobleProvider.x25519PublicKey(privateKey))) return seed;
  }
  throw new Error(`no seed found for ${label}`);
}
