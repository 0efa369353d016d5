/**
 * Entry of the verifier thread, a module worker that the engine's worker starts in Chromium
 * (verify-thread.ts says why): WebCrypto Ed25519 checks for the engine, answered in batches.
 */
/// <reference lib="webworker" />
import { findGlobalWebCrypto } from '../protocol/crypto/detect.js';
import { createWebCryptoProvider } from '../protocol/crypto/webcrypto.js';
import { serveVerifyThread } from './verify-thread-server.js';

declare const self: DedicatedWorkerGlobalScope;

const found = findGlobalWebCrypto();
serveVerifyThread(self, found === undefined ? undefined : createWebCryptoProvider(found.subtle, found.getRandomValues));
