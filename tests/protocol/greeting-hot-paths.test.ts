/**
 * The shortcuts of issue 8's greeting hot paths answer exactly as the plain computations they
 * replace: the replay memory (its last, growing chunk is scanned), the screened comparison of
 * public keys, and the per-list digest of a subsession's keys in member key confirmations.
 */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual, includesPublicBytes, latin1Encode } from '../../src/protocol/bytes.js';
import { hasSeen, remember, type SeenSignatures } from '../../src/protocol/greeting/helpers.js';
import { memberKeyConfirmation } from '../../src/protocol/greeting/wire.js';
import { chainHash, sessionId, type MemberId } from '../../src/protocol/ids.js';
import { MAX_REMEMBERED_GREETINGS } from '../../src/protocol/limits.js';
import { allProviders } from '../helpers/providers.js';

describe('replay memory (remember / hasSeen)', () => {
  it('finds every remembered key, in full chunks and in the growing last one, and nothing else', () => {
    let seen: SeenSignatures = [];
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `sig-${i}`;
      expect(hasSeen(seen, key), key).toBe(false);
      seen = remember(seen, key);
      keys.push(key);
      // The newest (last chunk, not full) and the oldest (a full chunk) are both found.
      expect(hasSeen(seen, key)).toBe(true);
      expect(hasSeen(seen, keys[0]!)).toBe(true);
      expect(hasSeen(seen, `sig-${i + 1}`)).toBe(false);
    }
    for (const key of keys) expect(hasSeen(seen, key), key).toBe(true);
  });

  it('forgets the oldest chunk once MAX_REMEMBERED_GREETINGS are exceeded, and only that one', () => {
    let seen: SeenSignatures = [];
    const total = MAX_REMEMBERED_GREETINGS + 200;
    for (let i = 0; i < total; i++) seen = remember(seen, `sig-${i}`);
    const kept = seen.flat();
    expect(kept.length).toBeGreaterThanOrEqual(MAX_REMEMBERED_GREETINGS);
    expect(kept[kept.length - 1]).toBe(`sig-${total - 1}`);
    for (let i = 0; i < total; i++) expect(hasSeen(seen, `sig-${i}`), `sig-${i}`).toBe(kept.includes(`sig-${i}`));
    expect(hasSeen(seen, 'sig-0')).toBe(false);
  });
});

describe('includesPublicBytes', () => {
  it('answers as a search with bytesEqual', () => {
    const bytes = fc.uint8Array({ minLength: 0, maxLength: 4 });
    fc.assert(
      fc.property(fc.array(bytes, { maxLength: 6 }), bytes, (list, x) => {
        expect(includesPublicBytes(list, x)).toBe(list.some((k) => bytesEqual(k, x)));
      }),
    );
    const key = new Uint8Array(32).fill(7);
    const sameFirst = key.slice();
    sameFirst[31] = 8;
    expect(includesPublicBytes([sameFirst], key)).toBe(false);
    expect(includesPublicBytes([sameFirst, key.slice()], key)).toBe(true);
    expect(includesPublicBytes([key.subarray(0, 31)], key)).toBe(false);
  });
});

describe('memberKeyConfirmation', () => {
  /** The definition (wire.ts): HMAC(K, "covey confirm v2" ‖ member ‖ sid ‖ chain hash ‖ SHA-256(keys) ‖ renewed). */
  function reference(confirmKey: Uint8Array, member: string, sid: Uint8Array, chainHash: Uint8Array, keys: readonly Uint8Array[], renewed?: Uint8Array): Uint8Array {
    const digest = createHash('sha256').update(Buffer.concat(keys.map((k) => Buffer.from(k)))).digest();
    const mac = createHmac('sha256', confirmKey);
    for (const part of [latin1Encode('covey confirm v2'), latin1Encode(member), sid, chainHash, digest, renewed ?? new Uint8Array(0)]) mac.update(part);
    return new Uint8Array(mac.digest());
  }

  it('matches its definition for each key list, however often a list is asked for', async () => {
    const bytes = (fill: number, n = 32) => new Uint8Array(n).fill(fill);
    const sid = sessionId(bytes(1));
    const chain = chainHash(bytes(2));
    const listA = [bytes(10), bytes(11), bytes(12)];
    const listB = [bytes(10), bytes(11), bytes(13)]; // differs in one key only
    for (const crypto of allProviders) {
      for (const [keys, member, renewed] of [
        [listA, 'alice', undefined],
        [listB, 'alice', undefined],
        [listA, 'bob', bytes(20)],
        [listA, 'alice', undefined],
        [[...listB], 'carol', bytes(21)],
      ] as const) {
        const got = await memberKeyConfirmation(crypto, bytes(3), member as MemberId, { sid, chainHash: chain, ephemeralPubKeys: keys }, renewed);
        expect(Buffer.from(got).toString('hex'), `${crypto.name} ${member}`).toBe(Buffer.from(reference(bytes(3), member, sid, chain, keys, renewed)).toString('hex'));
      }
    }
  });
});
