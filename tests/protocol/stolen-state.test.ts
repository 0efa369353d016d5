/**
 * Issue 9 §3 "what a stolen device state reveals" (src/protocol/README.md): a member's whole
 * saved state (session and membership snapshot) after several subsessions, against every group
 * key the members derived (recorded by the security oracle's provider wrapper).
 *
 * 1. No group key is stored, current or past (the membership drops its copy once the session
 *    took it; the session keeps sender chains only).
 * 2. Across subsessions: with the relay's whole greeting log, the member's stored key (one
 *    ratcheted scalar, greeting/cliques.ts) opens the current subsession's key and no older one.
 *    (Before the scalar ratchet, its list of contributions opened every key since it joined.)
 */
import { describe, expect, it } from 'vitest';
import { base64Decode, hexEncode } from '../../src/protocol/bytes.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import { clampScalar } from '../../src/protocol/crypto/scalar.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { deriveGroupKey } from '../../src/protocol/packets/group-key.js';
import { fromJsonSafe, type JsonValue } from '../../src/protocol/session/json.js';
import type { MembershipState } from '../../src/protocol/greeting/types.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { stolenScalars, tryScalar } from '../helpers/stolen-key.js';
import { SecurityOracle } from '../sim/oracle.js';
import { SIM_CONFIG, SessionSim } from '../sim/session-harness.js';
import { greetingMembershipKind } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;

/** Every 32-byte value in a JSON state (base64 strings, and `$bytes` values), as a thief lists them. */
function secretsIn(state: unknown): Uint8Array[] {
  const out: Uint8Array[] = [];
  const visit = (v: unknown) => {
    if (typeof v === 'string' && /^[A-Za-z0-9+/]{43}=$/.test(v)) out.push(base64Decode(v));
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(state);
  return out;
}

/** Alice, Bob, Carol, then Dave included, a refresh, Bob excluded: five subsessions' keys. */
async function history(seed: number) {
  const names = ['alice', 'bob', 'carol', 'dave'];
  const oracle = new SecurityOracle(crypto, { keyTrial: false });
  const sim = new SessionSim(crypto, seed, SIM_CONFIG, await greetingMembershipKind(crypto, names), oracle);
  for (const n of names.slice(0, 3)) {
    sim.addMember(n);
    sim.join(n);
  }
  await sim.settle();
  // The keys each subsession brought (every derivation first seen in its step, message keys included).
  const steps: string[][] = [];
  const seen = new Set<string>();
  const step = async (who: string, action: Parameters<SessionSim['act']>[1]) => {
    await sim.act(who, action);
    await sim.advance(3_000);
    await sim.act(who, (s, now) => s.send(`after a step by ${who}`, now));
    await sim.advance(3_000);
    const fresh = oracle.derivedKeys().filter((k) => !seen.has(k));
    for (const k of fresh) seen.add(k);
    steps.push(fresh);
  };
  await step('alice', (s, now) => s.include(['bob', 'carol'] as MemberId[], now));
  sim.addMember('dave');
  sim.join('dave');
  await sim.settle();
  await step('carol', (s, now) => s.include(['dave'] as MemberId[], now));
  await step('bob', (s, now) => s.refresh(now));
  await step('alice', (s, now) => s.exclude(['bob'] as MemberId[], now));
  await step('dave', (s, now) => s.refresh(now));
  // Every group key any member derived (the oracle's recorded derivations).
  const keys = [...new Set(oracle.derivedKeys())];
  return { sim, oracle, keys, steps };
}

describe('what a stolen device state reveals (issue 9 §3)', () => {
  it('no group key, current or past, is in a member\'s saved state (session and membership)', async () => {
    const { sim, keys } = await history(21);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    for (const n of ['alice', 'carol', 'dave']) {
      const stolen = secretsIn(sim.member(n).session.snapshot());
      expect(stolen.length).toBeGreaterThan(0);
      const found = keys.filter((k) => stolen.some((v) => hexEncode(v) === k));
      expect(found, `${n}'s state holds a group key`).toEqual([]);
    }
  });

  it('across subsessions: its state after subsession k and the relay log open no key of k−1 or earlier', async () => {
    const { sim, steps } = await history(22);
    const snapshot = sim.member('alice').session.snapshot();
    const state = fromJsonSafe((snapshot.membership as { state: JsonValue }).state) as MembershipState;
    // The thief's scalars: the structured ones (helpers/stolen-key.ts: a list's every prefix; a
    // scalar x and x·t⁻¹), and every 32-byte value of the membership state used as an X25519 key.
    const scalars = [...stolenScalars(state.own!.contributions), ...secretsIn(fromJsonSafe(snapshot.membership as JsonValue)).map(clampScalar)];
    // Every complete INT_KEY list in the relay's log, every slot (v2 downflows name no members).
    const opened = new Set<string>();
    for (const event of sim.posted) {
      let packet;
      try {
        packet = decodePacket(event.text);
      } catch {
        continue;
      }
      if (packet.kind !== 'greeting' || packet.intKeys.length < 2 || packet.intKeys.some((k) => k === null)) continue;
      for (const slot of packet.intKeys) {
        for (const x of scalars) {
          const point = await tryScalar(crypto, x, slot!);
          if (point !== null) opened.add(hexEncode(await deriveGroupKey(crypto, point)));
        }
      }
    }
    // Which subsession each opened key belongs to: the step in which it was first derived.
    const openedSteps = steps.flatMap((keys, k) => (keys.some((key) => opened.has(key)) ? [k] : []));
    // The thief model is real: it opens the current subsession's key (which the session's
    // chains expose anyway), and nothing older: not k−1, not k−2 or earlier.
    expect(openedSteps).toEqual([steps.length - 1]);
  });
});
