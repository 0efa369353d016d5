/**
 * Finds the platform's WebCrypto and what it can do. Support differs by runtime (Ed25519 landed
 * in Firefox 129, Safari 17, Chrome 137; X25519 in Firefox 130, Safari 17, Chrome 133; Node has
 * both), and feature names say nothing about correctness, so each algorithm is probed by running
 * one known-answer vector through the real provider code.
 *
 * This is the one place in src/protocol that looks at a global; it only reads
 * `globalThis.crypto` and hands it to `createWebCryptoProvider`, which stays injectable, and
 * `navigator.userAgent`, to pick the thresholds measured for that browser engine (select.ts).
 */
import { bytesEqual, hexDecode } from '../bytes.js';
import type { CryptoProvider } from './provider.js';
import type { GetRandomValues, SubtleCryptoSubset } from './subtle.js';
import { createWebCryptoProvider, type WebCryptoProviderOptions } from './webcrypto.js';

export interface WebCryptoSupport {
  readonly provider: CryptoProvider;
  /** RFC 8032 TEST 1 signs and verifies to the published signature; verification is cofactorless. */
  readonly ed25519: boolean;
  /** RFC 7748 §6.1 Alice/Bob gives the published shared secret. */
  readonly x25519: boolean;
  /** SHA-256, HMAC, HKDF, AES-CTR and AES-GCM answer correctly (every WebCrypto has these). */
  readonly symmetric: boolean;
}

/** `globalThis.crypto` when it has `subtle` and `getRandomValues`, else undefined. */
export function findGlobalWebCrypto(): { subtle: SubtleCryptoSubset; getRandomValues: GetRandomValues } | undefined {
  const c = (globalThis as { crypto?: { subtle?: unknown; getRandomValues?: unknown } }).crypto;
  if (c === undefined || typeof c.subtle !== 'object' || c.subtle === null) return undefined;
  if (typeof c.getRandomValues !== 'function') return undefined;
  const getRandomValues = c.getRandomValues.bind(c) as GetRandomValues;
  return { subtle: c.subtle as SubtleCryptoSubset, getRandomValues };
}

/** Probes the global WebCrypto; undefined when there is none (or it is not a secure context). */
export async function detectWebCrypto(options: WebCryptoProviderOptions = {}): Promise<WebCryptoSupport | undefined> {
  const found = findGlobalWebCrypto();
  if (found === undefined) return undefined;
  return probeWebCrypto(createWebCryptoProvider(found.subtle, found.getRandomValues, options));
}

/**
 * Where the engine runs, as far as the hybrid's thresholds care (select.ts `thresholdsFor`): the
 * cost of a WebCrypto call is the browser engine's, so the crossovers with noble differ per engine.
 */
export type CryptoRuntime = 'chromium' | 'firefox' | 'webkit' | 'other';

/**
 * The browser engine named by a user-agent string (pure, so that it is testable; the one caller
 * reads the global in `detectCryptoRuntime`). Only speed depends on it: both providers give the
 * same answer on every input, so a spoofed or unknown user agent costs time at worst.
 *
 * - Firefox (Gecko) says `Firefox/`. Firefox on iOS is WebKit and says `FxiOS/` instead.
 * - Chromium and the browsers built on it (Chrome, Edge, Opera, Samsung Internet, headless
 *   Chromium's `HeadlessChrome/`) say `Chrome/`. Chrome on iOS is WebKit and says `CriOS/`.
 * - WebKit (Safari, every iOS browser, WebKitGTK) says `AppleWebKit/`; so does Chromium (as
 *   `AppleWebKit/537.36`), hence Chromium is recognised first.
 * - Anything else, Node included (no `navigator` before Node 21, then `Node.js/21`), is 'other'.
 */
export function cryptoRuntimeOf(userAgent: string | undefined): CryptoRuntime {
  if (userAgent === undefined) return 'other';
  if (/Firefox\/\d/.test(userAgent)) return 'firefox';
  if (/Chrome\/\d/.test(userAgent)) return 'chromium';
  if (/AppleWebKit\/\d/.test(userAgent)) return 'webkit';
  return 'other';
}

/** The runtime this code runs in, from `navigator.userAgent` (a dedicated worker has one too). */
export function detectCryptoRuntime(): CryptoRuntime {
  const userAgent = (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent;
  return cryptoRuntimeOf(typeof userAgent === 'string' ? userAgent : undefined);
}

export async function probeWebCrypto(provider: CryptoProvider): Promise<WebCryptoSupport> {
  const [ed25519, x25519, symmetric] = await Promise.all([
    passes(probeEd25519(provider)),
    passes(probeX25519(provider)),
    passes(probeSymmetric(provider)),
  ]);
  return { provider, ed25519, x25519, symmetric };
}

async function passes(probe: Promise<boolean>): Promise<boolean> {
  try {
    return await probe;
  } catch {
    return false;
  }
}

// RFC 8032 §7.1 TEST 1 (empty message).
const ED_SEED = hexDecode('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const ED_PUBLIC = hexDecode('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
const ED_SIGNATURE = hexDecode(
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
);

/**
 * A signature whose R has an order-8 component (tests/vectors/covey/ed25519-edge.json): it holds
 * only under the cofactored equation. noble.ts checks cofactorless, as OpenSSL and BoringSSL do;
 * a platform that accepts this would disagree with it, so its Ed25519 is not used.
 */
const ED_TORSION_MESSAGE = hexDecode('6d697865642d6f72646572');
const ED_TORSION_SIGNATURE = hexDecode(
  'c2ecc2af9bfefd06ee0f9cbb9adf4abda71f6a01db3f1a78458754856f6bd5c4cf015870750d9501ef4cef0ac6cfe4b2b9877123f0aa33540f25a5fba4bad00c',
);

async function probeEd25519(p: CryptoProvider): Promise<boolean> {
  const empty = new Uint8Array(0);
  const [publicKey, signature, verifies, torsionVerifies] = await Promise.all([
    p.ed25519PublicKey(ED_SEED),
    p.ed25519Sign(ED_SEED, empty),
    p.ed25519Verify(ED_PUBLIC, empty, ED_SIGNATURE),
    p.ed25519Verify(ED_PUBLIC, ED_TORSION_MESSAGE, ED_TORSION_SIGNATURE),
  ]);
  return bytesEqual(publicKey, ED_PUBLIC) && bytesEqual(signature, ED_SIGNATURE) && verifies && !torsionVerifies;
}

// RFC 7748 §6.1.
const X_ALICE_PRIVATE = hexDecode('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const X_ALICE_PUBLIC = hexDecode('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const X_BOB_PUBLIC = hexDecode('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const X_SHARED = hexDecode('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');

async function probeX25519(p: CryptoProvider): Promise<boolean> {
  const [publicKey, shared] = await Promise.all([
    p.x25519PublicKey(X_ALICE_PRIVATE),
    p.x25519(X_ALICE_PRIVATE, X_BOB_PUBLIC),
  ]);
  return bytesEqual(publicKey, X_ALICE_PUBLIC) && bytesEqual(shared, X_SHARED);
}

// SHA-256("abc") (FIPS 180-2 B.1); the rest must round-trip (their vectors are in tests/vectors).
const SHA256_ABC = hexDecode('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');

async function probeSymmetric(p: CryptoProvider): Promise<boolean> {
  const abc = new Uint8Array([0x61, 0x62, 0x63]);
  const key = new Uint8Array(32).fill(7);
  const iv = new Uint8Array(12).fill(9);
  const [digest, mac, okm, ctr, sealed] = await Promise.all([
    p.sha256(abc),
    p.hmacSha256(key, abc),
    p.hkdfSha256(key, abc, abc, 32),
    p.aesCtr(key, new Uint8Array(16), abc),
    p.aesGcmEncrypt(key, iv, abc),
  ]);
  const opened = await p.aesGcmDecrypt(key, iv, sealed);
  const back = await p.aesCtr(key, new Uint8Array(16), ctr);
  return (
    bytesEqual(digest, SHA256_ABC) && mac.length === 32 && okm.length === 32 && bytesEqual(back, abc) && bytesEqual(opened, abc)
  );
}
