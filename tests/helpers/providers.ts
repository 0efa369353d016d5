/**
 * Every crypto provider the suites run against. Vector, trace and benchmark code iterates this
 * list so that both implementations are held to the same answers.
 */
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import { createWebCryptoProvider } from '../../src/protocol/crypto/webcrypto.js';

/** Node's WebCrypto (Node ≥ 20 has Ed25519 and X25519), with the default key cache. */
export const webCryptoProvider: CryptoProvider = createWebCryptoProvider(
  globalThis.crypto.subtle,
  (array) => globalThis.crypto.getRandomValues(array),
);

export const providers: readonly CryptoProvider[] = [nobleProvider, webCryptoProvider];
