/**
 * Group key derivation (mpenc-wire.md "CLIQUES"): HKDF-SHA256 of the shared x25519 value with an
 * empty salt and info "mpenc group key", 32 bytes. The CLIQUES exchange itself is the greeting
 * state machine's (src/protocol/greeting).
 */
import { latin1Encode } from '../bytes.js';
import { GROUP_KEY_INFO } from '../codec/constants.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { isAllZero } from '../crypto/checks.js';
import { ProtocolError } from '../errors.js';

/** AES-256-CTR key (mpenc-wire.md: the full 32 bytes are used, not AES-128 as §5.4 says). */
export const GROUP_KEY_BYTES = 32;
const X25519_BYTES = 32;

export async function deriveGroupKey(crypto: CryptoProvider, sharedSecret: Uint8Array): Promise<Uint8Array> {
  if (sharedSecret.length !== X25519_BYTES) throw new ProtocolError('bad-key', `shared secret of ${sharedSecret.length} bytes`);
  // RFC 7748 §6.1: an all-zero value means a small-order input; mpenc_js did not check, we do.
  if (isAllZero(sharedSecret)) throw new ProtocolError('low-order-point', 'all-zero shared secret');
  return crypto.hkdfSha256(sharedSecret, new Uint8Array(0), latin1Encode(GROUP_KEY_INFO), GROUP_KEY_BYTES);
}
