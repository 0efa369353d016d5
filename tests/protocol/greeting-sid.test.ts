/**
 * Issue 9 §2 "session id ambiguity" (async-groups rule 3): v1 (mpenc_js) hashes the member ids
 * joined without lengths, so ["ab", "c"] and ["a", "bc"] with the same nonces have one session
 * id. v2 length-prefixes each id (and the count) and binds the operation (OP_REF).
 * Mutant `sid-without-lengths`.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { sessionIdInput, sessionIdV2 } from '../../src/protocol/greeting/wire.js';
import { chainHash, type MemberId } from '../../src/protocol/ids.js';
import { makeSessionId } from '../../src/protocol/packets/aske.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';

const crypto = nobleProvider;
const ids = (...xs: string[]) => xs as MemberId[];
const n1 = new Uint8Array(32).fill(1);
const n2 = new Uint8Array(32).fill(2);
const opRef = chainHash(new Uint8Array(32).fill(9));

describe('session id v2: no two member lists give one id (issue 9 §2)', () => {
  it('v1 gives ["ab","c"] and ["a","bc"] one id (why v2 exists); v2 gives them two', async () => {
    // mpenc_js compatibility keeps v1 as it is: the ambiguity is real there.
    expect(bytesEqual(await makeSessionId(crypto, ids('ab', 'c'), [n1, n2]), await makeSessionId(crypto, ids('a', 'bc'), [n1, n2]))).toBe(true);
    expect(bytesEqual(sessionIdInput(ids('ab', 'c'), [n1, n2]), sessionIdInput(ids('a', 'bc'), [n1, n2]))).toBe(false);
    expect(bytesEqual(await sessionIdV2(crypto, ids('ab', 'c'), [n1, n2], opRef), await sessionIdV2(crypto, ids('a', 'bc'), [n1, n2], opRef))).toBe(false);
    // Other splits of the same characters, and of one id into three.
    const lists = [ids('abc', 'd'), ids('ab', 'cd'), ids('a', 'bcd')];
    const sids = await Promise.all(lists.map((l) => sessionIdV2(crypto, l, [n1, n2], opRef)));
    expect(new Set(sids.map((s) => Buffer.from(s).toString('hex'))).size).toBe(3);
  });

  it('binds the operation and every nonce, and the ids whatever order they come in', async () => {
    const base = await sessionIdV2(crypto, ids('alice', 'bob'), [n1, n2], opRef);
    expect(bytesEqual(base, await sessionIdV2(crypto, ids('bob', 'alice'), [n2, n1], opRef))).toBe(true);
    expect(bytesEqual(base, await sessionIdV2(crypto, ids('alice', 'bob'), [n1, n2], chainHash(new Uint8Array(32).fill(8))))).toBe(false);
    expect(bytesEqual(base, await sessionIdV2(crypto, ids('alice', 'bob'), [n1, new Uint8Array(32).fill(3)], opRef))).toBe(false);
    expect(bytesEqual(base, await sessionIdV2(crypto, ids('alice', 'bob'), [n2, n1], opRef))).toBe(false);
  });
});
