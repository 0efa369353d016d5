/**
 * The engine worker's helper for signature checks (issue 12, bench:catchup): Ed25519 verifications
 * arrive in batches (`VerifyRequest`), are checked with the same provider the engine would use
 * (selectCryptoProvider: WebCrypto where its probe passes, else noble), and go back as booleans
 * (`VerifyResponse`). It holds no secret: public keys, signatures and signed packets only.
 *
 * Why a thread of its own: Chromium runs `crypto.subtle.verify` on the calling thread (10,000
 * calls block their caller as long as they take), so a catch-up's signature checks were the
 * largest part of the engine thread's time; here they run beside it (verify-pool.ts).
 */
/// <reference lib="webworker" />
import { selectCryptoProvider } from '../protocol/crypto/select.js';
import type { VerifyRequest, VerifyResponse } from './verify-pool.js';

declare const self: DedicatedWorkerGlobalScope;

const provider = selectCryptoProvider();
// Ready once the provider is chosen: until then the engine checks signatures itself.
void provider.then(() => self.postMessage({ ready: true } satisfies VerifyResponse));

self.addEventListener('message', (event: MessageEvent<VerifyRequest>) => {
  const { id, checks } = event.data;
  void (async () => {
    let results: boolean[] | null;
    try {
      const crypto = await provider;
      results = await Promise.all(checks.map(([publicKey, message, signature]) => crypto.ed25519Verify(publicKey, message, signature)));
    } catch {
      // Not checked here (the provider never rejects a verification; this is a helper that could
      // not start its crypto): the engine checks them itself.
      results = null;
    }
    self.postMessage({ id, results } satisfies VerifyResponse);
  })();
});
