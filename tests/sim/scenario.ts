/**
 * One random membership scenario (issue 3 simulator): 2–maxMembers members start a group, then
 * run random operations with concurrent proposals, channel joins and leaves mid-operation,
 * lagging members, and at most one injected attack. Invariants, checked on every transition
 * and at the end:
 * - members of one subsession (same sid and final packet) agree on members, group key, chain hash;
 * - a failed operation leaves the member's subsession and contributions exactly as they were;
 * - without an attack, no warning fires, and all honest members in the channel end in one state;
 * - with an attack, some honest member warns (the attack is detected);
 * - the security oracle (oracle.ts) finds nothing: no member holds a key of a subsession it is
 *   not in (derived, or opened by its stored contributions on any downflow slot), and every
 *   operation was accepted on the chain hash its member held.
 */
import { bytesEqual, hexEncode } from '../../src/protocol/bytes.js';
import { GreetFlag } from '../../src/protocol/codec/constants.js';
import { decodePacket, encodePacket, encodePacketBytes } from '../../src/protocol/codec/packet.js';
import { frame } from '../../src/protocol/codec/framing.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import type { MembershipState, Subsession, OwnSecrets } from '../../src/protocol/greeting/types.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { OPERATION_TIMEOUT_MS } from '../../src/protocol/limits.js';
import { SimGroup, type SimMember } from './channel.js';
import { SecurityOracle } from './oracle.js';

export const ATTACKS = ['tamper', 'tamper-int-key', 'tamper-one', 'replay', 'inject', 'withhold', 'reorder'] as const;
export type Attack = (typeof ATTACKS)[number];

export interface ScenarioOptions {
  readonly crypto: CryptoProvider;
  readonly seed: number;
  readonly maxMembers: number;
  readonly steps: number;
  /** Probability that the scenario carries one attack. */
  readonly attackRate: number;
  /** Run the oracle's contribution trial (oracle.ts check 1, the expensive half). Default true. */
  readonly keyTrial?: boolean;
}

export interface ScenarioResult {
  readonly seed: number;
  readonly violations: string[];
  readonly attack: Attack | null;
  readonly detected: boolean;
  readonly falseWarnings: number;
  readonly operations: number;
  readonly succeeded: number;
  readonly failed: number;
}

const name = (i: number) => `u${i}` as MemberId;

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const oracle = new SecurityOracle(o.crypto, { keyTrial: o.keyTrial ?? true });
  const g = new SimGroup({ crypto: o.crypto, seed: o.seed, lag: 0, oracle });
  const rng = g.rng;
  const lag = rng.float() < 0.5 ? 0 : rng.float() * 0.6;
  (g as unknown as { lag: number }).lag = lag;
  const violations: string[] = [];
  let step = 0;
  let attackStarted = false;
  let warningsBeforeAttack = 0;
  let warningsAfterAttack = 0;
  let operations = 0;
  let succeeded = 0;
  let failed = 0;
  const atAccept = new Map<MemberId, { current: Subsession | null; own: OwnSecrets | null }>();
  const violate = (what: string) => violations.push(`seed ${o.seed} step ${step}: ${what}`);

  const initiating = new Set<MemberId>();
  g.onStep = (m, before, _input, effects) => {
    for (const e of effects) {
      if (e.kind === 'operation-accepted') {
        atAccept.set(m.id, { current: before.current, own: before.own });
        if (e.initiator === m.id) {
          operations++;
          initiating.add(m.id);
        }
      } else if (e.kind === 'operation-failed') {
        if (e.reason !== 'left-channel') {
          const prior = atAccept.get(m.id);
          if (prior !== undefined && (m.state.current !== prior.current || m.state.own !== prior.own)) {
            violate(`${m.id}: a failed ${e.operation} changed its subsession`);
          }
        }
        if (initiating.delete(m.id)) failed++;
      } else if (e.kind === 'subsession') {
        if (initiating.delete(m.id)) succeeded++;
      } else if (e.kind === 'warning') {
        if (attackStarted) warningsAfterAttack++;
        else warningsBeforeAttack++;
      }
    }
  };

  const total = 2 + rng.int(o.maxMembers - 1);
  for (let i = 0; i < total + 2; i++) await g.addMember(name(i));
  const eve = await g.addMember('eve', false);
  for (let i = 0; i < total; i++) g.join(name(i));
  g.join('eve');
  await g.settle();
  const starter = g.member(name(0));
  await g.input(starter, { kind: 'start', others: Array.from({ length: total - 1 }, (_, i) => name(i + 1)) });
  await g.settle();

  const planned: Attack | null = rng.float() < o.attackRate ? rng.pick(ATTACKS) : null;
  let fired = () => false;
  const attackStep = planned === null ? -1 : rng.int(o.steps);
  const greetings = () => g.log.flatMap((e) => (e.event.kind === 'packet' && isGreeting(e.event.text) ? [{ sender: e.event.sender, text: e.event.text }] : []));

  for (step = 0; step < o.steps; step++) {
    if (step === attackStep) {
      attackStarted = true;
      fired = armAttack(g, planned!, eve, greetings);
    }
    const inSession = g.honestMembers().filter((m) => m.state.current !== null && g.channel.includes(m.id));
    const outside = g.honestMembers().filter((m) => m.state.current === null);
    const roll = rng.float();
    if (inSession.length === 0) break;
    const actor = rng.pick(inSession);
    const others = actor.state.current!.members.filter((x) => x !== actor.id);
    if (roll < 0.3) {
      const candidates = outside.map((m) => m.id);
      if (candidates.length > 0 && actor.state.current!.members.length < o.maxMembers) {
        const joiners = candidates.slice(0, 1 + rng.int(Math.min(2, candidates.length)));
        for (const j of joiners) g.join(j);
        await g.run(1);
        await g.input(actor, { kind: 'include', members: joiners });
      } else await g.input(actor, { kind: 'refresh' });
    } else if (roll < 0.5 && others.length > 0) {
      await g.input(actor, { kind: 'exclude', members: [rng.pick(others)] });
    } else if (roll < 0.7) {
      await g.input(actor, { kind: 'refresh' });
    } else if (roll < 0.85 && inSession.length > 1) {
      // Concurrent proposals: two members propose at the same time; one wins.
      const second = rng.pick(inSession.filter((m) => m !== actor));
      await g.input(actor, { kind: 'refresh' });
      await g.input(second, { kind: rng.float() < 0.5 ? 'refresh' : 'exclude', members: [actor.id] } as never);
    } else {
      await g.input(actor, { kind: 'refresh' });
    }
    // Let it run a little, then maybe disturb the channel mid-operation.
    await g.run(1 + rng.int(6));
    const disturb = rng.float();
    if (disturb < 0.12 && inSession.length > 2) {
      const leaver = rng.pick(inSession.filter((m) => m !== actor));
      g.leave(leaver.id); // a member disconnects mid-operation
    } else if (disturb < 0.2) {
      const spare = g.honestMembers().find((m) => !g.channel.includes(m.id));
      if (spare !== undefined) g.join(spare.id); // someone joins the channel mid-operation
    }
    await g.settle();
    if (rng.float() < 0.3) {
      await g.advance(OPERATION_TIMEOUT_MS + 1);
      await g.settle();
    }
  }
  // Let stalled operations time out, and make sure every member sees at least one more event
  // (a withheld last event shows as a gap only when something follows it).
  await g.settle();
  await g.advance(OPERATION_TIMEOUT_MS + 1);
  await g.settle();
  await g.advance(OPERATION_TIMEOUT_MS + 1);
  await g.settle();
  g.onOrder = null;
  g.join(name(total + 1));
  g.leave(name(total + 1));
  await g.settle();

  // An attack that found nothing to act on (no greeting after it was armed) did not happen.
  const attack = planned !== null && fired() ? planned : null;
  checkAgreement(g, violate, attack === null);
  await oracle.checkKeys(g.downflows(), [...g.members.keys()]);
  for (const v of oracle.violations) violate(`oracle: ${v}`);
  if (attack === null && warningsBeforeAttack + warningsAfterAttack > 0) {
    violate(`${warningsBeforeAttack + warningsAfterAttack} warnings without an attack: ${firstWarning(g)}`);
  }
  return {
    seed: o.seed,
    violations,
    attack,
    detected: attack !== null && warningsAfterAttack > 0,
    falseWarnings: warningsBeforeAttack,
    operations,
    succeeded,
    failed,
  };
}

function isGreeting(text: string): boolean {
  try {
    return decodePacket(text).kind === 'greeting';
  } catch {
    return false;
  }
}

/** Arms one attack; it takes effect on the next greeting packets. Returns whether it fired yet. */
function armAttack(g: SimGroup, attack: Attack, eve: SimMember, greetings: () => { sender: MemberId; text: string }[]): () => boolean {
  const rng = g.rng;
  const flip = (text: string): string => {
    // Flip one bit inside the signed records (after MESSAGE_SIGNATURE: 4 + 64 bytes).
    const bytes = encodePacketBytes(decodePacket(text));
    const at = 68 + rng.int(bytes.length - 68);
    const copy = Uint8Array.from(bytes);
    copy[at]! ^= 1 << rng.int(8);
    return frame(copy);
  };
  switch (attack) {
    case 'tamper': {
      let done = false;
      g.transformOutgoing = (_sender, text) => {
        if (done || !isGreeting(text)) return undefined;
        done = true;
        return flip(text);
      };
      return () => done;
    }
    case 'tamper-int-key': {
      // One INT_KEY of the next complete list (a downflow, or an exclude/refresh initial packet)
      // changed on the way, for everyone: its owner would derive another key than the others.
      let done = false;
      g.transformOutgoing = (_sender, text) => {
        if (done || !isGreeting(text)) return undefined;
        const p = decodePacket(text);
        // (A v2 downflow names its operation by reference, without a member list; a v2
        // confirmation is a down packet with no INT_KEY at all, so there is nothing to change.)
        if (p.kind !== 'greeting' || (p.greetType & GreetFlag.DOWN) === 0) return undefined;
        const complete = p.intKeys.length > 0 && (p.members.length === 0 || p.intKeys.length === p.members.length) && p.intKeys.every((k) => k !== null);
        if (!complete) return undefined;
        done = true;
        const slot = rng.int(p.intKeys.length);
        const intKeys = p.intKeys.map((k, j) => {
          if (j !== slot) return k;
          const copy = Uint8Array.from(k!);
          copy[rng.int(31)]! ^= 1 << rng.int(8); // byte 31's top bit is masked by x25519 (RFC 7748 §5)
          return copy;
        });
        return encodePacket({ ...p, intKeys });
      };
      return () => done;
    }
    case 'tamper-one':
    case 'withhold':
    case 'reorder': {
      let done = false;
      g.onOrder = (_index, _sender, text) => {
        if (done || !isGreeting(text)) return;
        const victims = g.honestMembers().filter((m) => g.channel.includes(m.id) && m.state.current !== null);
        if (victims.length === 0) return;
        done = true;
        const member = rng.pick(victims).id;
        if (attack === 'tamper-one') return [{ kind: 'replace', member, text: flip(text) }];
        if (attack === 'withhold') return [{ kind: 'withhold', member }];
        return [{ kind: 'swap-with-next', member }];
      };
      // Fired once the relay really showed the victim something else (see appliedManipulations).
      return () => done && g.appliedManipulations > 0;
    }
    case 'replay': {
      const old = rng.pick(greetings());
      g.post(old.sender, old.text);
      return () => true;
    }
    case 'inject': {
      if (rng.float() < 0.5) {
        // eve re-posts a member's greeting, altered, under her own channel identity
        const old = rng.pick(greetings());
        g.post(eve.id, flip(old.text));
      } else g.post(eve.id, '?mpENC:AAEAAQIAAgABAg==.');
      return () => true;
    }
  }
}

function checkAgreement(g: SimGroup, violate: (what: string) => void, noAttack: boolean): void {
  const bySession = new Map<string, SimMember[]>();
  for (const m of g.honestMembers()) {
    const cur = m.state.current;
    if (cur === null) continue;
    const key = hexEncode(cur.sid) + hexEncode(cur.finalPacketId);
    bySession.set(key, [...(bySession.get(key) ?? []), m]);
  }
  for (const group of bySession.values()) {
    const a = group[0]!.state.current!;
    for (const m of group.slice(1)) {
      const b = m.state.current!;
      if (!sameSubsession(a, b)) violate(`${group[0]!.id} and ${m.id} disagree within one subsession`);
    }
  }
  if (noAttack) {
    // One agreed state: every honest channel member in a session holds the same one, and it
    // lists exactly those members.
    const holders = g.honestMembers().filter((m) => m.state.current !== null && g.channel.includes(m.id) && m.state.current.members.length > 1);
    const states = new Set(holders.map((m) => hexEncode(m.state.current!.sid) + hexEncode(m.state.current!.chainHash)));
    if (states.size > 1) violate(`members hold ${states.size} different subsessions: ${describe(holders.map((m) => m.state))}`);
    for (const m of holders) {
      for (const other of m.state.current!.members) {
        const o = g.members.get(other)!;
        if (o.state.current === null || !bytesEqual(o.state.current.sid, m.state.current!.sid)) {
          if (g.channel.includes(other)) violate(`${m.id} lists ${other}, who is not in that subsession`);
        }
      }
    }
  }
}

function sameSubsession(a: Subsession, b: Subsession): boolean {
  return (
    a.members.length === b.members.length &&
    a.members.every((x, i) => x === b.members[i]) &&
    bytesEqual(a.groupKey!, b.groupKey!) &&
    bytesEqual(a.chainHash, b.chainHash)
  );
}

function describe(states: MembershipState[]): string {
  return states.map((s) => `${s.self}:${s.current ? hexEncode(s.current.sid).slice(0, 8) + '/' + s.current.members.join(',') : '-'}`).join(' ');
}

function firstWarning(g: SimGroup): string {
  for (const m of g.honestMembers()) {
    const w = m.effects.find((e) => e.kind === 'warning');
    if (w !== undefined && w.kind === 'warning') return `${m.id}: ${w.code} ${w.message}`;
  }
  return '';
}
