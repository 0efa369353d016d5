/**
 * The data key (issue 10 §4; DESIGN.md §4): one AES-256-GCM key encrypts every sealed record.
 * At rest it exists only wrapped:
 *
 *   without a passphrase:  wrapped = AES-GCM(deviceKey, dataKey)
 *   with a passphrase:     wrapped = AES-GCM(deviceKey, AES-GCM(PBKDF2-SHA-256(passphrase, salt, 600,000), dataKey))
 *
 * `deviceKey` is a non-extractable WebCrypto key stored in IndexedDB: script cannot read its bytes,
 * so the data key can only be unwrapped by this origin's code in this browser profile. The
 * passphrase adds a lock: without it the data key cannot be unwrapped at all. In memory the data
 * key is a non-extractable CryptoKey; its raw bytes live only for the moment of (re)wrapping.
 */
import type { KeysRecord, Sealed } from './schema.js';

/**
 * OWASP's 2023 minimum for PBKDF2-HMAC-SHA-256 (the issue asks for at least this). About 0.3 s
 * on a laptop and 1–2 s on an older phone: paid at unlock and when the passphrase changes.
 */
export const PBKDF2_ITERATIONS = 600_000;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const DATA_KEY_BYTES = 32;

export class WrongPassphraseError extends Error {
  constructor() {
    super('wrong passphrase');
    this.name = 'WrongPassphraseError';
  }
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;
const randomBytes = (length: number): Uint8Array<ArrayBuffer> => globalThis.crypto.getRandomValues(new Uint8Array(length));

export async function aesGcmSeal(key: CryptoKey, plaintext: Uint8Array, aad?: Uint8Array): Promise<Sealed> {
  const iv = randomBytes(IV_BYTES);
  const params: AesGcmParams = aad === undefined ? { name: 'AES-GCM', iv } : { name: 'AES-GCM', iv, additionalData: aad as Uint8Array<ArrayBuffer> };
  const ct = new Uint8Array(await subtle().encrypt(params, key, plaintext as Uint8Array<ArrayBuffer>));
  return { iv, ct };
}

/** Throws (DOMException OperationError) when the tag does not verify. */
export async function aesGcmOpen(key: CryptoKey, sealed: Sealed, aad?: Uint8Array): Promise<Uint8Array> {
  const iv = sealed.iv as Uint8Array<ArrayBuffer>;
  const params: AesGcmParams = aad === undefined ? { name: 'AES-GCM', iv } : { name: 'AES-GCM', iv, additionalData: aad as Uint8Array<ArrayBuffer> };
  return new Uint8Array(await subtle().decrypt(params, key, sealed.ct as Uint8Array<ArrayBuffer>));
}

function importDataKey(raw: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey('raw', raw as Uint8Array<ArrayBuffer>, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

async function passphraseKey(passphrase: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const material = await subtle().importKey('raw', new TextEncoder().encode(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return subtle().deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** Makes a fresh data key and its keys record. Returns the usable key too. */
export async function createKeys(): Promise<{ record: KeysRecord; dataKey: CryptoKey }> {
  const deviceKey = await subtle().generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const raw = randomBytes(DATA_KEY_BYTES);
  try {
    const wrapped = await aesGcmSeal(deviceKey, raw);
    return { record: { version: 1, deviceKey, wrapped, passphrase: null }, dataKey: await importDataKey(raw) };
  } finally {
    raw.fill(0);
  }
}

async function unwrapRaw(record: KeysRecord, passphrase: string | undefined): Promise<Uint8Array> {
  const inner = await aesGcmOpen(record.deviceKey, record.wrapped);
  if (record.passphrase === null) return inner;
  if (passphrase === undefined) throw new WrongPassphraseError();
  const key = await passphraseKey(passphrase, record.passphrase.salt, record.passphrase.iterations);
  const outer = { iv: inner.subarray(0, IV_BYTES), ct: inner.subarray(IV_BYTES) };
  try {
    return await aesGcmOpen(key, outer);
  } catch {
    throw new WrongPassphraseError();
  }
}

/** The data key, from the device key alone (no passphrase set) or with the passphrase. */
export async function unlockKeys(record: KeysRecord, passphrase?: string): Promise<CryptoKey> {
  const raw = await unwrapRaw(record, passphrase);
  try {
    return await importDataKey(raw);
  } finally {
    raw.fill(0);
  }
}

/**
 * A new keys record with the same data key, locked by `next` (or by the device key alone when
 * `next` is null). `current` is needed when a passphrase is set now.
 */
export async function rewrapKeys(record: KeysRecord, current: string | undefined, next: string | null, iterations = PBKDF2_ITERATIONS): Promise<KeysRecord> {
  const raw = await unwrapRaw(record, current);
  try {
    if (next === null) return { ...record, wrapped: await aesGcmSeal(record.deviceKey, raw), passphrase: null };
    const salt = randomBytes(SALT_BYTES);
    const outer = await aesGcmSeal(await passphraseKey(next, salt, iterations), raw);
    const inner = new Uint8Array(IV_BYTES + outer.ct.length);
    inner.set(outer.iv, 0);
    inner.set(outer.ct, IV_BYTES);
    return { ...record, wrapped: await aesGcmSeal(record.deviceKey, inner), passphrase: { salt, iterations } };
  } finally {
    raw.fill(0);
  }
}
