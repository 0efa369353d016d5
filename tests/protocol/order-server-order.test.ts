import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { chainHash, packetId, type PacketId } from '../../src/protocol/ids.js';
import { acceptFinal, acceptInitial, chainStep, EMPTY_ORDER, genesis, isFinishedOperation, lastEntry, witnessedAncestor, type ChainEntry, type WitnessedInitial } from '../../src/protocol/order/server-order.js';
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

  /**
   * README "A provisional newcomer and a concurrent include of it" (asleep seed 786): a newcomer
   * walks back from the start of its chain through the initial packets it saw, each step only if
   * its chain hash recomputes. History: genesis g0, include W (final fW: point P), refresh R on P
   * (point R), then the newcomer's include A on R: its chain starts at R.
   */
  it('a newcomer recognises earlier points of its chain only through witnessed packets whose chain step recomputes', async () => {
    const g0 = await genesis(crypto, rng.bytes);
    const w = pid();
    const wOrder = await acceptInitial(crypto, { ...EMPTY_ORDER, chain: [g0] }, w, { prevPf: g0.packetId, chainHash: g0.chainHash }, false);
    if (!wOrder.accept) throw new Error('W refused');
    const p: ChainEntry = lastEntry(await acceptFinal(crypto, wOrder.order, pid(), 'final'))!;
    const r = pid();
    const rOrder = await acceptInitial(crypto, { ...EMPTY_ORDER, chain: [p] }, r, { prevPf: p.packetId, chainHash: p.chainHash }, true);
    if (!rOrder.accept) throw new Error('R refused');
    const rPoint = lastEntry(rOrder.order)!;
    const a = pid();
    const newcomer = await acceptInitial(crypto, EMPTY_ORDER, a, { prevPf: rPoint.packetId, chainHash: rPoint.chainHash }, false);
    if (!newcomer.accept) throw new Error('A refused');
    const order = newcomer.order;
    const at = (e: ChainEntry) => ({ prevPf: e.packetId, chainHash: e.chainHash });
    const seen: WitnessedInitial[] = [
      { packetId: w, parent: g0, oneShot: false },
      { packetId: r, parent: p, oneShot: true },
      { packetId: a, parent: rPoint, oneShot: false },
    ];
    // One step back (through R, a one-shot), and two (through W and its final packet).
    expect(await witnessedAncestor(crypto, order, seen, at(p))).toBe(true);
    expect(await witnessedAncestor(crypto, order, seen, at(g0))).toBe(true);
    // Without R's packet the walk cannot start: the newcomer cannot tell (it gives way, as before).
    expect(await witnessedAncestor(crypto, order, seen.filter((x) => x.packetId !== r), at(p))).toBe(false);
    // A parent nobody built on, or P's packet with another chain hash, is no ancestor.
    expect(await witnessedAncestor(crypto, order, seen, at({ packetId: pid(), chainHash: p.chainHash }))).toBe(false);
    expect(await witnessedAncestor(crypto, order, seen, at({ packetId: p.packetId, chainHash: chainHash(rng.bytes(32)) }))).toBe(false);
    // Forged records (a relay or a member posting made-up proposals) lead nowhere: R's id with a
    // made-up parent, or a made-up final point, does not recompute R's committed chain hash.
    const fake: ChainEntry = { packetId: pid(), chainHash: chainHash(rng.bytes(32)) };
    const forged: WitnessedInitial[] = [{ packetId: r, parent: fake, oneShot: true }, { packetId: r, parent: fake, oneShot: false }, { packetId: pid(), parent: fake, oneShot: false }];
    expect(await witnessedAncestor(crypto, order, forged, at(fake))).toBe(false);
    // ... and do not hide the real walk.
    expect(await witnessedAncestor(crypto, order, [...forged, ...seen], at(p))).toBe(true);
    expect(await witnessedAncestor(crypto, order, [...forged, ...seen], at(fake))).toBe(false);
  });
});
