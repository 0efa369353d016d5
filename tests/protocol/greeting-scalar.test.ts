/**
 * Issue 9 §3 "across subsessions": one scalar per v2 member instead of a list of clamped
 * contributions (crypto/scalar.ts, greeting/cliques.ts *V2). Properties checked on both
 * providers: a general scalar applied through two clamped X25519 calls composes like scalar
 * multiplication mod ℓ; clamping kills torsion; and the v2 CLIQUES steps with the ratchet give
 * every member the same secret while the stored scalar stops opening older ones.
 */
import { describe, expect, it } from 'vitest';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { bytesEqual, hexEncode } from '../../src/protocol/bytes.js';
import {
  applyScalar,
  clampScalar,
  divScalars,
  isClampedForm,
  mulScalars,
  productOfClamped,
  SCALAR_ORDER,
  scalarBytes,
  scalarValue,
  splitScalar,
} from '../../src/protocol/crypto/scalar.js';
import {
  downflow,
  downflowV2,
  raiseOf,
  ratchetKey,
  recipientSecretV2,
  upflow,
  upflowV2,
  type IntKey,
  type OwnKey,
  type ScalarKey,
} from '../../src/protocol/greeting/cliques.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { fromJsonSafe, toJsonSafe } from '../../src/protocol/session/json.js';
import type { MembershipState } from '../../src/protocol/greeting/types.js';
import { providers, webCryptoProvider } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { expectAgreement, makeGroup } from './membership-helpers.js';

const general = (rng: ReturnType<typeof seededRandom>) => scalarBytes(scalarValue(clampScalar(rng.bytes(32))) * 7919n + BigInt(rng.int(1 << 30)));

/** The Montgomery u of an Edwards point (noble's birational map). */
const montgomeryU = (p: InstanceType<typeof ed25519.Point>): Uint8Array => ed25519.utils.toMontgomery(p.toBytes());

describe('scalar splits (crypto/scalar.ts)', () => {
  it('splits any scalar into two clamped scalars whose product is ±x mod ℓ', () => {
    const rng = seededRandom(31);
    for (let i = 0; i < 300; i++) {
      const x = i % 3 === 0 ? scalarBytes(BigInt(i + 1)) : general(rng);
      const [c1, c2] = splitScalar(x);
      expect(isClampedForm(c1) && isClampedForm(c2)).toBe(true);
      const prod = (scalarValue(c1) * scalarValue(c2)) % SCALAR_ORDER;
      const v = scalarValue(x);
      expect(prod === v || prod === SCALAR_ORDER - v).toBe(true);
    }
  });

  it('tells the two stored forms apart and refuses a zero or non-canonical value', () => {
    const c = clampScalar(new Uint8Array(32).fill(0xff));
    expect(isClampedForm(c)).toBe(true);
    expect(isClampedForm(scalarBytes(SCALAR_ORDER - 1n))).toBe(false);
    expect(() => scalarValue(new Uint8Array(32))).toThrow();
    expect(() => scalarBytes(SCALAR_ORDER)).toThrow();
    expect(bytesEqual(divScalars(mulScalars(c, scalarBytes(5n)), scalarBytes(5n)), scalarBytes(scalarValue(c)))).toBe(true);
  });
});

describe.each(providers)('scalar application ($name)', (crypto) => {
  it('composes: [a]([b]P) = [ab mod ℓ]P, and a clamped key gives what X25519 gives', async () => {
    const rng = seededRandom(5);
    for (let i = 0; i < 25; i++) {
      const p = await crypto.x25519PublicKey(rng.bytes(32));
      const a = general(rng);
      const b = i % 2 === 0 ? general(rng) : clampScalar(rng.bytes(32));
      const both = await applyScalar(crypto, a, await applyScalar(crypto, b, p));
      expect(hexEncode(await applyScalar(crypto, mulScalars(a, b), p))).toBe(hexEncode(both));
      const k = rng.bytes(32);
      expect(hexEncode(await applyScalar(crypto, clampScalar(k), p))).toBe(hexEncode(await crypto.x25519(k, p)));
      expect(hexEncode(await applyScalar(crypto, scalarBytes(scalarValue(clampScalar(k))), p))).toBe(hexEncode(await crypto.x25519(k, p)));
      // A list of clamped contributions and its product mod ℓ do the same to a point.
      const list = [rng.bytes(32), rng.bytes(32), rng.bytes(32)];
      let step = p;
      for (const c of list) step = await crypto.x25519(c, step);
      expect(hexEncode(await applyScalar(crypto, productOfClamped(list), p))).toBe(hexEncode(step));
    }
  });

  it('kills torsion: P plus any small-order point gives [x]P; a small-order point alone is refused', async () => {
    const rng = seededRandom(6);
    const base = ed25519.Point.BASE;
    let checked = 0;
    for (let i = 0; i < 4; i++) {
      const r = scalarValue(general(rng));
      const p = base.multiply(r);
      const x = general(rng);
      const clean = await applyScalar(crypto, x, montgomeryU(p));
      for (const t of ED25519_TORSION_SUBGROUP.slice(1)) {
        const torsion = ed25519.Point.fromHex(t);
        if (torsion.equals(ed25519.Point.ZERO) || torsion.add(p).equals(p)) continue;
        const u = montgomeryU(p.add(torsion));
        if (bytesEqual(u, montgomeryU(p))) continue; // −P's u: not a torsion test
        expect(hexEncode(await applyScalar(crypto, x, u))).toBe(hexEncode(clean));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4 * 6); // the 7 non-zero torsion points, less −P's twin
    await expect(applyScalar(crypto, general(rng), new Uint8Array(32))).rejects.toThrow(/low-order|small/i);
  });
});

describe.each(providers)('v2 CLIQUES with one scalar and the ratchet ($name)', (crypto) => {
  it('every member derives the same secret through IKA, include, exclude and refresh, with ratchets between', async () => {
    const rng = seededRandom(11);
    const random = rng.bytes;
    const keys: (OwnKey | null)[] = [null, null, null, null, null];
    const agree = async (list: readonly Uint8Array[], members: readonly number[], secret: Uint8Array, skip: number) => {
      for (const [slot, m] of members.entries()) {
        if (m === skip) continue;
        expect(hexEncode(await recipientSecretV2(crypto, list, slot, keys[m]!))).toBe(hexEncode(secret));
      }
    };
    const ratchetAll = async (members: readonly number[], secret: Uint8Array) => {
      for (const m of members) keys[m] = await ratchetKey(crypto, keys[m]!, secret);
    };

    // IKA of 4: members 0..3.
    let list: readonly IntKey[] = [null];
    for (let i = 0; i < 3; i++) {
      const up = await upflowV2(crypto, random, list, i, keys[i]!);
      keys[i] = up.key;
      list = up.intKeys;
    }
    const ika = await downflowV2(crypto, random, list, 3, null);
    keys[3] = ika.key;
    await agree(ika.intKeys, [0, 1, 2, 3], ika.own, 3);
    expect(isClampedForm((keys[0] as ScalarKey).x)).toBe(true); // a newcomer's single contribution
    await ratchetAll([0, 1, 2, 3], ika.own);

    // Include member 4, initiated by member 1, which raises the stored list first.
    const raise = raiseOf(keys[1]!, 4);
    expect(raise).not.toBeNull();
    const inc = await upflowV2(crypto, random, ika.intKeys, 1, keys[1]!, raise);
    keys[1] = inc.key;
    const incDown = await downflowV2(crypto, random, inc.intKeys, 4, null);
    keys[4] = incDown.key;
    await agree(incDown.intKeys, [0, 1, 2, 3, 4], incDown.own, 4);
    // A member that missed the ratchet (its scalar before it) derives another key.
    const k2 = keys[2] as ScalarKey;
    const missed = await recipientSecretV2(crypto, incDown.intKeys, 2, { x: divScalars(k2.x, k2.ratchet!), ratchet: null });
    expect(bytesEqual(missed, incDown.own)).toBe(false);
    // The raise only re-expresses the initiator's own slot (slot·e with x·e⁻¹): with the same
    // fresh c, the step without it gives the same cardinal and the same other slots.
    const seed = seededRandom(99);
    const again = seededRandom(99);
    const raised = await upflowV2(crypto, seed.bytes, ika.intKeys, 1, keys[0]!, raiseOf(keys[0]!, 4));
    const plain = await upflowV2(crypto, again.bytes, ika.intKeys, 1, keys[0]!, null);
    expect(hexEncode(raised.own)).toBe(hexEncode(plain.own));
    expect(raised.intKeys.filter((_, j) => j !== 1).map((k) => hexEncode(k!))).toEqual(plain.intKeys.filter((_, j) => j !== 1).map((k) => hexEncode(k!)));
    await ratchetAll([0, 1, 2, 3, 4], incDown.own);

    // Exclude member 2, initiated by member 0.
    const kept = [0, 1, 3, 4];
    const exc = await downflowV2(crypto, random, kept.map((j) => incDown.intKeys[j]!), 0, keys[0]!, raiseOf(keys[0]!, 5));
    keys[0] = exc.key;
    await agree(exc.intKeys, kept, exc.own, 0);
    // The excluded member's key on any slot does not give the new secret.
    for (let slot = 0; slot < exc.intKeys.length; slot++) {
      expect(bytesEqual(await recipientSecretV2(crypto, exc.intKeys, slot, keys[2]!), exc.own)).toBe(false);
    }
    await ratchetAll(kept, exc.own);

    // Refresh by member 3.
    const ref = await downflowV2(crypto, random, exc.intKeys, 2, keys[3]!, raiseOf(keys[3]!, 4));
    keys[3] = ref.key;
    await agree(ref.intKeys, kept, ref.own, 3);
    expect(new Set([ika.own, incDown.own, exc.own, ref.own].map(hexEncode)).size).toBe(4);
  });

  it('a v2 state saved with a list of contributions goes on as its product', async () => {
    const rng = seededRandom(12);
    const random = rng.bytes;
    // A group of 3 made with lists (the old v2 format), then a refresh in scalar mode.
    const a = await upflow(crypto, random, [null], 0, []);
    const b = await upflow(crypto, random, a.intKeys, 1, []);
    const c = await downflow(crypto, random, b.intKeys, 2, []);
    const bIncl = await upflow(crypto, random, c.intKeys, 1, b.contributions); // b now holds two
    const d = await downflow(crypto, random, bIncl.intKeys, 3, []);
    const lists: OwnKey[] = [a.contributions, bIncl.contributions, c.contributions, d.contributions];
    expect(lists[1]).toHaveLength(2);
    const ref = await downflowV2(crypto, random, d.intKeys, 1, lists[1]!);
    for (const j of [0, 2, 3]) expect(hexEncode(await recipientSecretV2(crypto, ref.intKeys, j, lists[j]!))).toBe(hexEncode(ref.own));
  });

  it('erases: after the ratchet, the stored scalar (and x/t) open only the current secret, never an older one', async () => {
    const rng = seededRandom(13);
    const random = rng.bytes;
    const keys: OwnKey[] = [];
    let list: readonly IntKey[] = [null];
    for (let i = 0; i < 2; i++) {
      const up = await upflowV2(crypto, random, list, i, null);
      keys.push(up.key);
      list = up.intKeys;
    }
    let down = await downflowV2(crypto, random, list, 2, null);
    keys.push(down.key);
    const history: { list: readonly Uint8Array[]; secret: Uint8Array }[] = [{ list: down.intKeys, secret: down.own }];
    for (let k = 0; k < 4; k++) {
      for (let m = 0; m < 3; m++) keys[m] = await ratchetKey(crypto, keys[m]!, down.own);
      const who = k % 3;
      down = await downflowV2(crypto, random, down.intKeys, who, keys[who]!, raiseOf(keys[who]!, 3));
      keys[who] = down.key;
      history.push({ list: down.intKeys, secret: down.own });
    }
    for (let m = 0; m < 3; m++) keys[m] = await ratchetKey(crypto, keys[m]!, down.own);
    // A thief of member 2's state after the last subsession: x and t.
    const stolen = keys[2] as ScalarKey;
    const candidates = [stolen.x, divScalars(stolen.x, stolen.ratchet!)];
    const opened = new Set<number>();
    for (const [k, h] of history.entries()) {
      for (const x of candidates) {
        for (let slot = 0; slot < h.list.length; slot++) {
          if (bytesEqual(await applyScalar(crypto, x, h.list[slot]!), h.secret)) opened.add(k);
        }
      }
    }
    expect([...opened]).toEqual([history.length - 1]);
  });
});

describe('a v2 state saved before the scalar key (list of contributions)', () => {
  it('restores and goes on: refresh, exclude and include agree, and the keys become scalars', async () => {
    const crypto = webCryptoProvider;
    const g = await makeGroup(crypto, 4, 41);
    const members = () => [...g.members.values()].filter((m) => m.state.current !== null);
    // What the list engine saved for this subsession: a list of clamped contributions whose
    // product is the scalar before the ratchet (x·t⁻¹), and no ratchet pending. Two clamped
    // factors of it (splitScalar) are such a list. Through the snapshot's JSON, as a restore.
    for (const m of members()) {
      const own = m.state.own!.contributions as ScalarKey;
      expect(own.ratchet).not.toBeNull();
      const [c1, c2] = splitScalar(divScalars(own.x, own.ratchet!));
      const legacy: MembershipState = { ...m.state, own: { ...m.state.own!, contributions: [c2, c1] } };
      m.state = fromJsonSafe(toJsonSafe(legacy)) as MembershipState;
      expect(Array.isArray(m.state.own!.contributions)).toBe(true);
    }
    await g.input(g.member('m01'), { kind: 'refresh' });
    await g.settle();
    expectAgreement(g, members());
    for (const m of members()) expect(Array.isArray(m.state.own!.contributions)).toBe(false);
    await g.input(g.member('m02'), { kind: 'exclude', members: ['m03' as MemberId] });
    await g.settle();
    g.join('m03');
    await g.settle();
    await g.input(g.member('m00'), { kind: 'include', members: ['m03' as MemberId] });
    await g.settle();
    expect(members()).toHaveLength(4);
    expectAgreement(g, members());
    expect(g.warnings()).toEqual([]);
  });
});
