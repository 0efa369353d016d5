/**
 * Every crypto provider the suites run against. Vector, trace and benchmark code iterates this
 * list so that both implementations are held to the same answers.
 */
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';

export const providers: readonly CryptoProvider[] = [nobleProvider];
