/**
 * Encrypted backups (DESIGN.md §4: "let users export an encrypted backup"; recovery after a
 * browser evicted the site's storage or a device was lost).
 *
 * A backup holds the profile (identity, inbox keys), contacts with their verification, and every
 * conversation's history to read. It holds NO session state: restoring an older snapshot could
 * make the device sign a second, different "next" message (DESIGN.md §1), and a lost device's
 * group keys are the group's business to replace. After an import the conversations are
 * read-only ('left', with a notice): ask a member to invite you again (re-inclusion by the group).
 *
 * Format: "covey-backup-v1\n" + base64url(salt ‖ iv ‖ AES-256-GCM(PBKDF2-SHA-256(passphrase, salt,
 * 600,000), JSON)), AAD "covey-backup-v1". Text, so it survives any file transfer.
 */
import { base64UrlDecode, base64UrlEncode, concatBytes, utf8Decode, utf8Encode } from '../protocol/bytes.js';
import { WorkerError } from '../shared/worker-api.js';
import { PBKDF2_ITERATIONS } from '../store/vault.js';
import type { ContactRecord, ConversationRecord, ProfileRecord, TimelineRecord } from './records.js';

export const BACKUP_MAGIC = 'covey-backup-v1';
const SALT_BYTES = 16;
const IV_BYTES = 12;
/** A backup larger than this is not ours (a profile of 100,000 messages is ~30 MB). */
export const MAX_BACKUP_BYTES = 64 * 1024 * 1024;

export interface BackupContent {
  readonly version: 1;
  readonly createdAtMs: number;
  readonly profile: ProfileRecord;
  readonly contacts: readonly ContactRecord[];
  readonly conversations: readonly { readonly record: ConversationRecord; readonly timeline: readonly [number, TimelineRecord][] }[];
}

async function keyFor(passphrase: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', utf8Encode(passphrase.normalize('NFC')) as Uint8Array<ArrayBuffer>, 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations }, material, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

export async function sealBackup(content: BackupContent, passphrase: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const key = await keyFor(passphrase, salt, iterations);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8Encode(BACKUP_MAGIC) as Uint8Array<ArrayBuffer> }, key, utf8Encode(JSON.stringify(content)) as Uint8Array<ArrayBuffer>),
  );
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, iterations);
  return `${BACKUP_MAGIC}\n${base64UrlEncode(concatBytes(header, salt, iv, ct))}`;
}

export async function openBackup(text: string, passphrase: string): Promise<BackupContent> {
  if (text.length > MAX_BACKUP_BYTES * 2) throw new WorkerError('bad-request', 'That file is far too large to be a Covey backup.');
  const [magic, body] = text.trim().split('\n');
  if (magic !== BACKUP_MAGIC || body === undefined) throw new WorkerError('bad-request', 'That is not a Covey backup.');
  let bytes: Uint8Array;
  try {
    bytes = base64UrlDecode(body);
  } catch {
    throw new WorkerError('bad-request', 'The backup is damaged.');
  }
  if (bytes.length < 4 + SALT_BYTES + IV_BYTES + 16) throw new WorkerError('bad-request', 'The backup is damaged.');
  const iterations = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  if (iterations < PBKDF2_ITERATIONS / 1000 || iterations > 10 * PBKDF2_ITERATIONS) throw new WorkerError('bad-request', 'The backup is damaged.');
  const salt = bytes.slice(4, 4 + SALT_BYTES);
  const iv = bytes.slice(4 + SALT_BYTES, 4 + SALT_BYTES + IV_BYTES);
  let plain: Uint8Array;
  try {
    const key = await keyFor(passphrase, salt, iterations);
    plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: utf8Encode(BACKUP_MAGIC) as Uint8Array<ArrayBuffer> }, key, bytes.slice(4 + SALT_BYTES + IV_BYTES)),
    );
  } catch {
    throw new WorkerError('wrong-passphrase', 'That passphrase does not open this backup (or the file was altered).');
  }
  const content = JSON.parse(utf8Decode(plain)) as BackupContent;
  if (content.version !== 1 || typeof content.profile?.identitySeed !== 'string' || !Array.isArray(content.contacts) || !Array.isArray(content.conversations)) {
    throw new WorkerError('bad-request', 'The backup is of an unknown kind.');
  }
  return content;
}
