/**
 * What proves a member's relay requests: its per-channel (or inbox owner) Ed25519 key, which
 * signs them and derives the request-MAC key the relay also accepts (src/shared/relay-mac.ts).
 * The seed stays here; RelayClient only sees the signer.
 */
import { sha512 } from '@noble/hashes/sha2.js';
import { base64UrlDecode } from '../protocol/bytes.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import { clampScalar } from '../protocol/crypto/scalar.js';
import type { MemberKey } from '../shared/relay-api.js';
import { relayMacKey } from '../shared/relay-mac.js';

/** Signs with one member's per-channel key. */
export interface RelaySigner {
  readonly publicKey: MemberKey;
  sign(message: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional: this member's HMAC key at the relay whose X25519 auth key (base64url) is
   * `relayAuthKey` (relay-mac.ts `relayMacKey`). Without it the client always signs. Rejects
   * when the auth key is unusable (a low-order point).
   */
  macKey?(relayAuthKey: string): Promise<Uint8Array>;
}

/** Bytes of an Ed25519 seed and of the X25519 secret taken from its hash. */
const SEED_BYTES = 32;

/**
 * The X25519 secret of an Ed25519 key: the clamped first half of SHA-512(seed), the scalar
 * Ed25519 signs with (RFC 8032 §5.1.5), so its X25519 public key is the Montgomery form of the
 * member key (relay-mac.ts), which is all the relay needs. (noble's
 * `ed25519.utils.toMontgomerySecret`, here with the whole digest wiped after.)
 */
export function x25519SecretOfSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== SEED_BYTES) throw new RangeError(`x25519SecretOfSeed: a ${SEED_BYTES}-byte seed, got ${seed.length}`);
  const digest = sha512(seed);
  try {
    return clampScalar(digest.subarray(0, SEED_BYTES)); // a copy
  } finally {
    digest.fill(0);
  }
}

/** The signer of the member key `publicKey` (the Ed25519 public key of `seed`). */
export function memberSigner(crypto: CryptoProvider, seed: Uint8Array, publicKey: MemberKey): RelaySigner {
  return {
    publicKey,
    sign: (message) => crypto.ed25519Sign(seed, message),
    macKey: async (relayAuthKey) => {
      const secret = x25519SecretOfSeed(seed);
      let shared: Uint8Array | undefined;
      try {
        // Through the provider: WebCrypto's X25519 where the platform has it (select.ts), ~10x noble.
        shared = await crypto.x25519(secret, base64UrlDecode(relayAuthKey));
        return relayMacKey(shared, publicKey, relayAuthKey);
      } finally {
        // Derived once per relay key (RelayMacKeys caches the result): keep no imported copy.
        crypto.forgetKeys([secret]);
        secret.fill(0);
        shared?.fill(0);
      }
    },
  };
}
