/**
 * The verifier thread's side (verify-thread-entry.ts runs it on its global scope; tests on a
 * MessagePort): answers each batch of signature checks with WebCrypto's first answer, i.e.
 * webcrypto.ts `ed25519Verify` itself (its strict prechecks, then the platform's verify), all of
 * a batch at once, in one message. Why a thread: verify-thread.ts.
 */
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import { unpackChecks, type VerifyAnswer, type VerifyRequest } from './verify-thread-wire.js';

/** What the server needs of its end of the channel (a DedicatedWorkerGlobalScope, a MessagePort). */
export interface VerifyServerPort {
  postMessage(message: VerifyAnswer, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  start?(): void;
}

/**
 * Serves batches on `port` with `provider.ed25519Verify` (a WebCrypto provider); with no provider
 * (no WebCrypto here) every request is answered `unavailable`, and the engine verifies itself.
 */
export function serveVerifyThread(port: VerifyServerPort, provider: CryptoProvider | undefined, unavailableReason = 'no WebCrypto in the verifier thread'): void {
  port.addEventListener('message', (event) => {
    const request = event.data as VerifyRequest;
    if (provider === undefined) {
      port.postMessage({ t: 'unavailable', reason: unavailableReason }, []);
      return;
    }
    void answer(port, provider, request);
  });
  port.start?.();
}

async function answer(port: VerifyServerPort, provider: CryptoProvider, request: VerifyRequest): Promise<void> {
  let checks;
  try {
    checks = unpackChecks(request.data, request.count);
  } catch (error) {
    // Our own engine sent it: a bug, which the engine hears (it then verifies itself).
    port.postMessage({ t: 'unavailable', reason: `malformed request: ${String(error)}` }, []);
    return;
  }
  // All started at once (Chromium verifies on this thread as each is issued), then collected.
  // ed25519Verify never throws (a refusal is `false`, which the engine checks again with noble);
  // if it did, the engine hears it now rather than after its timeout.
  let verdicts: boolean[];
  try {
    verdicts = await Promise.all(checks.map((c) => provider.ed25519Verify(c.publicKey, c.message, c.signature)));
  } catch (error) {
    port.postMessage({ t: 'unavailable', reason: `a check threw: ${String(error)}` }, []);
    return;
  }
  const ok = new Uint8Array(verdicts.length);
  for (let i = 0; i < verdicts.length; i++) ok[i] = verdicts[i] === true ? 1 : 0;
  port.postMessage({ t: 'verified', id: request.id, ok }, [ok.buffer]);
}
