/**
 * The verifier thread's messages (verify-thread.ts asks, verify-thread-server.ts answers): one
 * message per batch each way, the batch packed into one transferred ArrayBuffer. Packing, not a
 * structured clone of three Uint8Arrays per check: a clone copies each view's whole buffer (a
 * signature is often a view into its packet) and costs per object; a catch-up makes 10,000 checks.
 *
 * A request's buffer holds, per check: the 32-byte public key, the 64-byte signature, the
 * message's length (4 bytes, little-endian) and the message. Only checks of that shape travel:
 * anything else fails webcrypto.ts's strict prechecks, and the engine answers it itself.
 * An answer holds one byte per check, in order: 1 verifies, 0 does not (WebCrypto's first answer).
 */

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
const LENGTH_BYTES = 4;
const HEADER_BYTES = ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES + LENGTH_BYTES;

/** One signature check. */
export interface VerifyCheck {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

/** Engine → verifier. */
export interface VerifyRequest {
  readonly t: 'verify';
  readonly id: number;
  readonly count: number;
  readonly data: ArrayBuffer;
}

/** Verifier → engine: the answers of request `id`, or that the verifier cannot verify at all. */
export type VerifyAnswer =
  | { readonly t: 'verified'; readonly id: number; readonly ok: Uint8Array }
  | { readonly t: 'unavailable'; readonly reason: string };

/** Whether a check has the shape that travels (the rest the engine answers itself). */
export function travels(check: VerifyCheck): boolean {
  return (
    check.publicKey instanceof Uint8Array &&
    check.publicKey.length === ED25519_PUBLIC_KEY_BYTES &&
    check.signature instanceof Uint8Array &&
    check.signature.length === ED25519_SIGNATURE_BYTES &&
    check.message instanceof Uint8Array
  );
}

/** The bytes one check takes in a request. */
export function packedBytes(check: VerifyCheck): number {
  return HEADER_BYTES + check.message.length;
}

/** Packs checks (each `travels`) into one buffer. */
export function packChecks(checks: readonly VerifyCheck[]): ArrayBuffer {
  let total = 0;
  for (const c of checks) total += packedBytes(c);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of checks) {
    out.set(c.publicKey, at);
    out.set(c.signature, at + ED25519_PUBLIC_KEY_BYTES);
    view.setUint32(at + ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES, c.message.length, true);
    out.set(c.message, at + HEADER_BYTES);
    at += HEADER_BYTES + c.message.length;
  }
  return out.buffer;
}

/** The checks of a request, as views into its buffer; throws RangeError on a malformed one. */
export function unpackChecks(data: ArrayBuffer, count: number): VerifyCheck[] {
  const bytes = new Uint8Array(data);
  const view = new DataView(data);
  const out: VerifyCheck[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + HEADER_BYTES > bytes.length) throw new RangeError('verify request: truncated');
    const length = view.getUint32(at + ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES, true);
    if (at + HEADER_BYTES + length > bytes.length) throw new RangeError('verify request: truncated message');
    out.push({
      publicKey: bytes.subarray(at, at + ED25519_PUBLIC_KEY_BYTES),
      signature: bytes.subarray(at + ED25519_PUBLIC_KEY_BYTES, at + ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES),
      message: bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length),
    });
    at += HEADER_BYTES + length;
  }
  if (at !== bytes.length) throw new RangeError('verify request: trailing bytes');
  return out;
}
