/**
 * Every crypto provider the suites run against. Vector, trace and benchmark code iterates this
 * list so that both implementations are held to the same answers.
 */
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { createWebCryptoProvider } from '../../src/protocol/crypto/webcrypto.js';
import { createHybridProvider } from '../../src/protocol/crypto/select.js';

/** Node's WebCrypto (Node ≥ 20 has Ed25519 and X25519), with the default key cache. */
export const webCryptoProvider: CryptoProvider = createWebCryptoProvider(
  globalThis.crypto.subtle,
  (array) => globalThis.crypto.getRandomValues(array),
);

export const providers: readonly CryptoProvider[] = [nobleProvider, webCryptoProvider];

/**
 * Also the hybrid of select.ts, routed by size. Low thresholds here, so that the vectors, which
 * are mostly small, exercise both of its routes.
 */
export const hybridProvider: CryptoProvider = createHybridProvider(
  { provider: webCryptoProvider, ed25519: true, x25519: true, symmetric: true },
  { aesCtrMinBytes: 64, aesGcmMinBytes: 32, sha256MinBytes: 64 },
);

/** For the crypto suites: every provider, including the hybrid. */
export const allProviders: readonly CryptoProvider[] = [...providers, hybridProvider];
