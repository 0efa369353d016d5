import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { packetId, type PacketId } from '../../src/protocol/ids.js';
import { acceptFinal, acceptInitial, chainStep, EMPTY_ORDER, genesis, isFinishedOperation, lastEntry } from '../../src/protocol/order/server-order.js';
import { chainHashStep } from '../../src/protocol/packets/ids.js';
import { providers } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';

describe.each(providers)('ServerOrder ($name)', (crypto) => {
  const rng = seededRandom(5);
  const pid = (): PacketId => packetId(rng.bytes(32));

  it('a joiner adopts the parent of its first initial packet; the earliest child of a final wins', async () => {
    const g0 = await genesis(crypto, rng.bytes);
    const p1 = pid();
    const v1 = await acceptInitial(crypto, EMPTY_ORDER, p1, { prevPf: g0.packetId, chainHash: g0.chainHash }, false);
    expect(v1.accept).toBe(true);
    if (!v1.accept) return;
    expect(v1.order.chain.map((e) => e.packetId)).toEqual([g0.packetId, p1]);
    expect(bytesEqual(v1.opRef, await chainHashStep(crypto, g0.chainHash, p1, 'initial'))).toBe(true);
    // While it runs, nothing else starts.
    const busy = await acceptInitial(crypto, v1.order, pid(), { prevPf: p1, chainHash: v1.opRef }, false);
    expect(busy).toEqual({ accept: false, reason: 'ongoing' });
    const f1 = pid();
    const o1 = await acceptFinal(crypto, v1.order, f1, 'final');
    expect(o1.ongoing).toBeNull();
    expect(isFinishedOperation(o1, v1.opRef)).toBe(true);
    const head = lastEntry(o1)!;
    expect(bytesEqual(head.chainHash, await chainHashStep(crypto, v1.opRef, f1, 'final'))).toBe(true);
    // Two proposals on the same parent: the first in the order wins, the second is stale.
    const a = await acceptInitial(crypto, o1, pid(), { prevPf: f1, chainHash: head.chainHash }, false);
    expect(a.accept).toBe(true);
    if (!a.accept) return;
    const aDone = await acceptFinal(crypto, a.order, pid(), 'abort');
    const b = await acceptInitial(crypto, aDone, pid(), { prevPf: f1, chainHash: head.chainHash }, false);
    expect(b).toEqual({ accept: false, reason: 'stale' });
    // A parent we never saw is not "stale": it means a forked history.
    const c = await acceptInitial(crypto, aDone, pid(), { prevPf: pid(), chainHash: head.chainHash }, false);
    expect(c).toEqual({ accept: false, reason: 'unknown-parent' });
    // Right parent id with a wrong chain hash is refused too.
    const d = await acceptInitial(crypto, aDone, pid(), { prevPf: lastEntry(aDone)!.packetId, chainHash: head.chainHash }, false);
    expect(d.accept).toBe(false);
  });

  it('one-packet operations finish at once (ptype "3"); aborts chain with their own ptype', async () => {
    const g0 = await genesis(crypto, rng.bytes);
    const p = pid();
    const v = await acceptInitial(crypto, EMPTY_ORDER, p, { prevPf: g0.packetId, chainHash: g0.chainHash }, true);
    expect(v.accept && v.order.ongoing === null).toBe(true);
    if (!v.accept) return;
    expect(bytesEqual(v.opRef, await chainHashStep(crypto, g0.chainHash, p, 'initial-final'))).toBe(true);
    const abortStep = await chainStep(crypto, v.opRef, p, 'abort');
    const finalStep = await chainStep(crypto, v.opRef, p, 'final');
    expect(bytesEqual(abortStep, finalStep)).toBe(false);
  });
});
