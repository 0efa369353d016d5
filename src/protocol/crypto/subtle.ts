/**
 * The subset of the Web Crypto API (W3C Web Cryptography API, `SubtleCrypto`) that
 * `webcrypto.ts` uses, declared structurally: the protocol tsconfig has no DOM or Node types, so
 * the engine never names a global. The worker passes `crypto.subtle` and
 * `crypto.getRandomValues` in; tests pass Node's. Methods are declared with method syntax so the
 * platform's overloaded, wider signatures are assignable to these.
 */

/** WebCrypto takes no views of SharedArrayBuffers (its BufferSource has no [AllowShared]). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** An opaque platform key handle (CryptoKey). */
export interface WebCryptoKey {
  readonly type: string;
}

export type WebCryptoAlgorithm =
  | string
  | { readonly name: string; readonly [param: string]: unknown };

export type WebCryptoKeyUsage = 'sign' | 'verify' | 'encrypt' | 'decrypt' | 'deriveBits';

export interface SubtleCryptoSubset {
  importKey(
    format: 'raw' | 'pkcs8',
    keyData: Bytes,
    algorithm: WebCryptoAlgorithm,
    extractable: boolean,
    keyUsages: readonly WebCryptoKeyUsage[],
  ): Promise<WebCryptoKey>;
  exportKey(format: 'jwk', key: WebCryptoKey): Promise<{ x?: string }>;
  sign(algorithm: WebCryptoAlgorithm, key: WebCryptoKey, data: Bytes): Promise<ArrayBuffer>;
  verify(algorithm: WebCryptoAlgorithm, key: WebCryptoKey, signature: Bytes, data: Bytes): Promise<boolean>;
  deriveBits(algorithm: WebCryptoAlgorithm, baseKey: WebCryptoKey, length: number): Promise<ArrayBuffer>;
  encrypt(algorithm: WebCryptoAlgorithm, key: WebCryptoKey, data: Bytes): Promise<ArrayBuffer>;
  decrypt(algorithm: WebCryptoAlgorithm, key: WebCryptoKey, data: Bytes): Promise<ArrayBuffer>;
  digest(algorithm: WebCryptoAlgorithm, data: Bytes): Promise<ArrayBuffer>;
}

/** `crypto.getRandomValues` bound to its `crypto` object. */
export type GetRandomValues = (array: Uint8Array<ArrayBuffer>) => unknown;
