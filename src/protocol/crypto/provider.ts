/**
 * The one crypto interface of the engine (DESIGN.md §1, "Crypto").
 *
 * Two implementations: `noble.ts` (reference, pure JS, runs everywhere) and `webcrypto.ts`
 * (fast path where the platform has Ed25519/X25519/AES/HKDF). Both must give identical results
 * on every vector in tests/vectors. Every method is async because WebCrypto is; the noble
 * provider simply resolves at once.
 *
 * Keys are raw bytes: x25519 private keys and ed25519 seeds are 32 bytes, public keys 32 bytes,
 * signatures 64 bytes. Inputs of the wrong size throw `ProtocolError('bad-key' | 'bad-value')`.
 * Edge-case policies (strict Ed25519, masked X25519 u, GCM nonce sizes) are in checks.ts.
 */

export interface CryptoProvider {
  /** 'hybrid' routes each primitive to the faster of the two (select.ts). */
  readonly name: 'noble' | 'webcrypto' | 'hybrid';

  /** Cryptographically secure random bytes (the system source; tests inject their own RNG). */
  randomBytes(length: number): Uint8Array;

  sha256(data: Uint8Array): Promise<Uint8Array>;
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /** RFC 5869. `length` ≤ 255 × 32. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;

  /** RFC 7748 public key for a 32-byte private scalar. */
  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array>;
  /**
   * RFC 7748 X25519(k, u); the top bit of u is masked and non-canonical u accepted (§5). Throws ProtocolError('low-order-point') when the result is all zero
   * (u of small order), as RFC 7748 §6.1 permits and mpenc-wire.md requires.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;

  /** RFC 8032 public key for a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Promise<Uint8Array>;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  /** Strict RFC 8032 verification (canonical S < L); false on any invalid input, never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /**
   * Optional: `ed25519Verify`'s first answer alone, where the provider would check a `false` again
   * another way (the hybrid: WebCrypto, then noble for what the platform refused). The same `true`
   * answers; a `false` may be a refusal, so it is for checks whose `false` is checked again anyway:
   * the receive look-ahead (Inbound.checkAhead), whose checks under a signing key that is renewed
   * before the packet's turn are moot and, with the hybrid, each cost a noble verification.
   */
  ed25519VerifyFirst?(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;

  /**
   * AES-256-CTR; `counterBlock` is the full 16-byte initial counter, incremented big-endian.
   * `oneUse`: the caller uses this key for this call only (a v2 message key, issue 9 §3), so no
   * key schedule or imported key is kept for it (keeping one costs more than it saves, and a
   * copy of the key would outlive the caller's wipe until forgetKeys). Same result either way.
   */
  aesCtr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array, oneUse?: boolean): Promise<Uint8Array>;
  /** AES-GCM (128-bit tag appended). Key 16/24/32 bytes, nonce 12..128 bytes (checks.ts). */
  aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  /** Throws ProtocolError('decrypt-failed') when the tag does not verify. */
  aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;

  /**
   * Drops any state the provider keeps for these keys (WebCrypto's cache of imported keys), so
   * a closed subsession's group key and signing seed do not outlive it in memory. A provider
   * without such state does nothing.
   */
  forgetKeys(keys: readonly Uint8Array[]): void;
}
