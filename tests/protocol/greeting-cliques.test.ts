/** CLIQUES on x25519 alone (mpENC §5.2.1): IKA and AKA math, without packets. */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { downflow, recipientSecret, upflow, type Contributions, type IntKey } from '../../src/protocol/greeting/cliques.js';
import { providers } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';

describe.each(providers)('CLIQUES ($name)', (crypto) => {
  it('IKA of 4 gives one secret; AKA include, exclude and refresh keep the slot invariant', async () => {
    const rng = seededRandom(9);
    const own: Contributions[] = [[], [], [], []];
    let keys: readonly IntKey[] = [null];
    for (let i = 0; i < 3; i++) {
      const up = await upflow(crypto, rng.bytes, keys, i, own[i]!);
      own[i] = up.contributions;
      keys = up.intKeys;
      expect(keys).toHaveLength(i + 2);
    }
    const down = await downflow(crypto, rng.bytes, keys, 3, own[3]!);
    own[3] = down.contributions;
    const secrets = await Promise.all([0, 1, 2].map((j) => recipientSecret(crypto, down.intKeys, j, own[j]!)));
    for (const s of secrets) expect(bytesEqual(s, down.secret)).toBe(true);

    // Include a fifth member, initiated by member 1 (old contributions must stay hidden).
    const inc = await upflow(crypto, rng.bytes, down.intKeys, 1, own[1]!);
    own[1] = inc.contributions;
    const last = await downflow(crypto, rng.bytes, inc.intKeys, 4, []);
    for (const j of [0, 1, 2, 3]) expect(bytesEqual(await recipientSecret(crypto, last.intKeys, j, own[j]!), last.secret)).toBe(true);
    expect(bytesEqual(last.secret, down.secret)).toBe(false);

    // Exclude member 2 (initiated by 0), then refresh by 3.
    const kept = [0, 1, 3, 4];
    const exc = await downflow(crypto, rng.bytes, kept.map((j) => last.intKeys[j]!), 0, own[0]!);
    own[0] = exc.contributions;
    own[4] = last.contributions;
    for (const [slot, j] of kept.entries()) expect(bytesEqual(await recipientSecret(crypto, exc.intKeys, slot, own[j]!), exc.secret)).toBe(true);
    // The excluded member's contributions on any slot do not give the new secret.
    for (let slot = 0; slot < exc.intKeys.length; slot++) {
      expect(bytesEqual(await recipientSecret(crypto, exc.intKeys, slot, own[2]!), exc.secret)).toBe(false);
    }
    const ref = await downflow(crypto, rng.bytes, exc.intKeys, 2, own[3]!);
    expect(bytesEqual(ref.secret, exc.secret)).toBe(false);
  });

  it('a small-order intermediate key is refused', async () => {
    const rng = seededRandom(10);
    const zero = new Uint8Array(32); // u = 0 is of small order
    await expect(upflow(crypto, rng.bytes, [zero, rng.bytes(32)], 1, [])).rejects.toMatchObject({ code: 'low-order-point' });
    await expect(recipientSecret(crypto, [zero], 0, [rng.bytes(32)])).rejects.toMatchObject({ code: 'low-order-point' });
  });
});
