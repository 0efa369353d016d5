/**
 * Sealed inbox messages (issue 10 §5, §7; DESIGN.md §3 "inbox"): contact requests, their
 * acceptance and group invitations, deposited in a person's inbox on their relay.
 *
 * Layers, outside in:
 *   HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, to the
 *   recipient card's `hk`; info "covey-inbox-v1". Packet = enc (32 bytes) ‖ ciphertext.
 *   Inside: {"s": "<signed JSON text>", "sig": ed25519 by the sender's identity key over
 *   "covey-inbox-v1\n" + s}.
 *   The signed text: {v, type, mid, at, to, from, body}: `to` is the recipient's identity key
 *   (a message sealed to Bob cannot be re-sealed to Carol as if meant for her), `from` the sender's
 *   card (its own signature checked too, and its key must be the signer), `mid` a random id
 *   (a replayed deposit is recognised and refused), `at` the send time.
 *
 * The relay sees only a sealed blob in an inbox; it learns neither sender nor content.
 *
 * The KEM's X25519 (and its HKDF) run in JavaScript (@hpke/dhkem-x25519), not in the platform's
 * WebCrypto as @hpke/core's KEM does: WebKit (Safari's engine; probed in WebKitGTK MiniBrowser,
 * 2026-12-02) refuses with a DataError a PKCS#8 X25519 private key whose first byte is 0, so
 * 1 inbox seed in 256 had no key there (the profile could not be made or opened, and nothing was
 * ever sealed to that card), and 6 of 1,500 X25519 key generations failed with an OperationError
 * (a contact request or invitation that could not be sealed). Same keys and bytes (RFC 9180);
 * the AEAD and the key schedule stay in WebCrypto, which refuses none of their keys.
 * Tests: tests/worker/sealed-message.test.ts, tests/browser/sealed-message.test.ts.
 */
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { base64UrlDecode, base64UrlEncode, concatBytes, utf8Encode } from '../protocol/bytes.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import { WorkerError } from '../shared/worker-api.js';
import { checkKey, verifyCard, type Card } from './cards.js';

export type InboxMessageType = 'contact-request' | 'contact-accept' | 'invitation';
const TYPES: ReadonlySet<string> = new Set<InboxMessageType>(['contact-request', 'contact-accept', 'invitation']);

export interface InboxMessage {
  readonly v: 1;
  readonly type: InboxMessageType;
  /** Random 16 bytes, base64url: replay protection. */
  readonly mid: string;
  readonly at: number;
  readonly to: string;
  readonly from: Card;
  readonly body: unknown;
}

/** Largest sealed inbox packet we open: an invitation lists at most 128 bindings (~300 B each). */
export const MAX_SEALED_BYTES = 96 * 1024;
/** How old a message may be: the relay keeps inbox events at most 30 days. */
export const MAX_INBOX_MESSAGE_AGE_MS = 31 * 24 * 3600_000;
/** How far in the future a sender's clock may be. */
export const MAX_INBOX_CLOCK_SKEW_MS = 10 * 60_000;

const INFO = utf8Encode('covey-inbox-v1');
const ENC_BYTES = 32;

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

/** A refused inbox message: its `message` says why in plain words; nothing was changed. */
export class InboxRejected extends WorkerError {
  constructor(why: string) {
    super('refused', why);
  }
}

/** The HPKE key pair of an inbox, derived from a stored 32-byte seed. */
export async function inboxKeyPair(seed: Uint8Array): Promise<{ keyPair: CryptoKeyPair; publicKey: string }> {
  const keyPair = await suite.kem.deriveKeyPair(seed as Uint8Array<ArrayBuffer>);
  return { keyPair, publicKey: base64UrlEncode(new Uint8Array(await suite.kem.serializePublicKey(keyPair.publicKey))) };
}

/**
 * Seals `message` to the inbox key `recipientHk`, signed by the identity key. `ephemeralSeed`
 * (tests only) fixes the ephemeral key, RFC 9180 DeriveKeyPair(ikmE); otherwise it is random.
 */
export async function sealInboxMessage(
  crypto: CryptoProvider,
  identitySeed: Uint8Array,
  recipientHk: string,
  message: InboxMessage,
  options: { readonly ephemeralSeed?: Uint8Array } = {},
): Promise<Uint8Array> {
  const s = JSON.stringify(message);
  const sig = base64UrlEncode(await crypto.ed25519Sign(identitySeed, utf8Encode(`covey-inbox-v1\n${s}`)));
  const recipientPublicKey = await suite.kem.deserializePublicKey(base64UrlDecode(recipientHk) as Uint8Array<ArrayBuffer>);
  const sender = await suite.createSenderContext({
    recipientPublicKey,
    info: INFO as Uint8Array<ArrayBuffer>,
    ...(options.ephemeralSeed === undefined ? {} : { ekm: options.ephemeralSeed as Uint8Array<ArrayBuffer> }),
  });
  const ct = new Uint8Array(await sender.seal(utf8Encode(JSON.stringify({ s, sig })) as Uint8Array<ArrayBuffer>));
  return concatBytes(new Uint8Array(sender.enc), ct);
}

/**
 * Opens and checks a sealed inbox message. Throws InboxRejected with the reason for anything
 * that fails: undecryptable, malformed, bad signature, not for us, too old.
 */
export async function openInboxMessage(
  crypto: CryptoProvider,
  keyPair: CryptoKeyPair,
  ownIk: string,
  packet: Uint8Array,
  nowMs: number,
): Promise<InboxMessage> {
  if (packet.length > MAX_SEALED_BYTES) throw new InboxRejected('an inbox message is too large');
  if (packet.length <= ENC_BYTES + 16) throw new InboxRejected('an inbox message is too short');
  let plain: Uint8Array;
  try {
    const recipient = await suite.createRecipientContext({ recipientKey: keyPair, enc: packet.slice(0, ENC_BYTES).buffer, info: INFO as Uint8Array<ArrayBuffer> });
    plain = new Uint8Array(await recipient.open(packet.slice(ENC_BYTES) as Uint8Array<ArrayBuffer>));
  } catch {
    throw new InboxRejected('an inbox message does not decrypt: it was altered, or sealed to another key');
  }
  let outer: unknown;
  let inner: unknown;
  try {
    outer = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain));
    if (typeof outer !== 'object' || outer === null || typeof (outer as { s?: unknown }).s !== 'string') throw new Error('shape');
    inner = JSON.parse((outer as { s: string }).s);
  } catch {
    throw new InboxRejected('an inbox message is malformed');
  }
  const { s, sig } = outer as { s: string; sig: unknown };
  if (typeof inner !== 'object' || inner === null) throw new InboxRejected('an inbox message is malformed');
  const m = inner as Record<string, unknown>;
  if (m.v !== 1 || typeof m.type !== 'string' || !TYPES.has(m.type)) throw new InboxRejected('an inbox message is of an unknown kind');
  let from: Card;
  try {
    from = await verifyCard(crypto, m.from);
    checkKey(m.mid, 'message id', 16);
    checkKey(sig, 'signature', 64);
  } catch (e) {
    throw new InboxRejected(`an inbox message carries a bad card: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!(await crypto.ed25519Verify(base64UrlDecode(from.ik), utf8Encode(`covey-inbox-v1\n${s}`), base64UrlDecode(sig as string)))) {
    throw new InboxRejected(`a message claiming to be from ${from.name} has a signature that does not verify: it was forged or altered`);
  }
  if (m.to !== ownIk) throw new InboxRejected(`a message from ${from.name} was meant for someone else`);
  if (typeof m.at !== 'number' || !Number.isSafeInteger(m.at)) throw new InboxRejected('an inbox message is malformed');
  if (m.at < nowMs - MAX_INBOX_MESSAGE_AGE_MS) throw new InboxRejected(`a message from ${from.name} is too old`);
  if (m.at > nowMs + MAX_INBOX_CLOCK_SKEW_MS) throw new InboxRejected(`a message from ${from.name} is dated in the future`);
  return { v: 1, type: m.type as InboxMessageType, mid: m.mid as string, at: m.at, to: m.to, from, body: m.body };
}
