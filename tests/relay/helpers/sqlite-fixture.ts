/**
 * What the SQLite store tests that build files by hand share: temporary data directories removed
 * after each test, and channel ids, member keys and packets of the store's real sizes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChannelId, MemberKey } from '../../../src/shared/relay-api.js';
import type { RetentionPolicy } from '../../../src/relay/store/types.js';

export const NOW_MS = 1_700_000_000_000;
/** A 22-character channel id, distinct per `i` (< 1,000). */
export const channelId = (i: number): ChannelId => `c${String(i).padStart(3, '0')}`.padEnd(22, 'A') as ChannelId;
/** A 43-character member key made of one character. */
export const memberKey = (c: string): MemberKey => c.repeat(43) as MemberKey;
export const OWNER = memberKey('B');
export const OTHER = memberKey('C');
/** Retention that never trims. */
export const KEEP: RetentionPolicy = { maxEventAgeMs: 1e12, maxChannelBytes: 1e12 };
/** A packet of a typical message's size (344 base64url characters). */
export const packet = (i: number): string => `${i}`.padEnd(344, 'p');

/** Temporary directories named `<prefix>…`: `make` one; `removeAll` in afterEach. */
export function tempDirs(prefix: string): { make(): string; removeAll(): void } {
  const dirs: string[] = [];
  return {
    make() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
