/**
 * A malicious member (insider) in the membership simulator (issue 9 §1). The insider holds real
 * keys: its static identity seed and its ephemeral signing seed, so it can sign whatever it
 * likes; where it needs the relay's help to show members different packets, the scenario says so.
 * One scenario per misbehaviour, each measured the same way:
 *
 *   ok  ⇔  the oracle finds nothing (oracle.ts: key secrecy, chain hash compared), and
 *          either every honest member in the channel ends in one agreed subsession (members,
 *          sid, group key, chain hash), or an honest member warned.
 *
 * A split without a warning (honest members holding different keys for one subsession, or
 * different subsessions, with nobody told) is the failure this looks for. The held proposals are
 * the exception: a relay that orders a packet late does nothing a slow network does not, so a
 * warning does not excuse a split there; the group must end in one state.
 */
import { hexEncode } from '../../src/protocol/bytes.js';
import { GreetType } from '../../src/protocol/codec/constants.js';
import type { GreetingPacket } from '../../src/protocol/codec/greeting.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { contributorText, finalKeyConfirmation, initialFinalBinding, metadataHash } from '../../src/protocol/greeting/wire.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { chainHash } from '../../src/protocol/ids.js';
import { OPERATION_TIMEOUT_MS } from '../../src/protocol/limits.js';
import { SimGroup, type SimMember } from './channel.js';
import { SecurityOracle } from './oracle.js';

/**
 * How long the relay holds a proposal back: longer than the 3 minutes after which the engine once
 * gave a proposal up (async-groups rule 8: it no longer does; the order decides).
 */
const HOLD_MS = 3 * 60_000;

export const INSIDER_ATTACKS = [
  /** Its refresh downflow gives one member a different INT_KEY: that member derives another key. */
  'split-int-key',
  /** The same with a small-order point: the victim's x25519 must refuse it. */
  'low-order-int-key',
  /** As a joiner, it shows one member (with the relay's help) a different ephemeral signing key. */
  'split-ephemeral',
  /** It never sends its confirmation of someone else's refresh. */
  'withhold-confirmation',
  /** Its refresh claims a chain hash it never held (a false history), signed by it. */
  'false-history',
  /**
   * A proposal signed but held back: the relay holds an honest member's refresh until the
   * proposer once gave it up (HOLD_MS), then orders it (issue 9 §2, first gap).
   */
  'held-proposal',
  /** The same with an exclude, whose initiator draws a fresh nonce. */
  'held-exclude',
] as const;
export type InsiderAttack = (typeof INSIDER_ATTACKS)[number];

/**
 * The insider scenarios today's engine fails, each with the fix it waits for. The insider test
 * asserts this is exactly the failing set, so a fix (or a new gap) forces an update here.
 * (Issue 8 closed the three there were: split-int-key by key confirmation (async-groups rule 4),
 * held-proposal and held-exclude by proposals that live until the order decides them (rule 8).)
 */
export const KNOWN_INSIDER_GAPS: readonly InsiderAttack[] = [];

export interface InsiderResult {
  readonly attack: InsiderAttack;
  readonly seed: number;
  readonly ok: boolean;
  /** What the honest members ended with, in a few words. */
  readonly verdict: string;
}

const INSIDER = 'mal' as MemberId;

function greetingOf(text: string): GreetingPacket | null {
  try {
    const p = decodePacket(text);
    return p.kind === 'greeting' ? p : null;
  } catch {
    return null;
  }
}

/** A small-order x25519 point (u = 1, order 4 on Curve25519): X25519 of it is all zero. */
const SMALL_ORDER_POINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));

export async function runInsiderScenario(crypto: CryptoProvider, seed: number, attack: InsiderAttack): Promise<InsiderResult> {
  const oracle = new SecurityOracle(crypto, { keyTrial: true });
  const g = new SimGroup({ crypto, seed, oracle });
  const rng = g.rng;
  const honestNames = Array.from({ length: 3 + rng.int(3) }, (_, i) => `h${i}`);
  for (const n of honestNames) {
    await g.addMember(n);
    g.join(n);
  }
  const mal = await g.addMember(INSIDER);
  const malCrypto = oracle.providerFor(INSIDER); // what the insider signs is recorded as its own
  g.join(INSIDER);
  await g.settle();
  const joinsLater = attack === 'split-ephemeral';
  const founders = joinsLater ? honestNames : [...honestNames, INSIDER];
  await g.input(g.member('h0'), { kind: 'start', others: founders.slice(1) as MemberId[] });
  await g.settle();
  // Some history first, so that the attack does not always meet a fresh group.
  if (rng.int(2) === 0) {
    await g.input(g.member(rng.pick(honestNames)), { kind: 'refresh' });
    await g.settle();
  }
  const honest = () => g.honestMembers().filter((m) => m.id !== INSIDER);
  const marks = new Map(honest().map((m) => [m.id, m.effects.length]));
  const victim = g.member(rng.pick(honestNames.filter((n) => n !== 'h0' || attack !== 'split-ephemeral')));

  switch (attack) {
    case 'split-int-key':
    case 'low-order-int-key':
    case 'false-history': {
      await g.input(mal, { kind: 'refresh' });
      const confirmKey = mal.state.proposal?.confirmKey ?? null;
      mal.honest = false; // from here on the attacker drives it
      // v2 (async-groups rules 1, 2, 4): the refresh is final at its initial packet, signed by
      // the insider's static key, with the key confirmation it computes; it re-signs whatever
      // it changes, and recomputes the confirmation where it can (it knows the key).
      g.transformOutgoingAsync = async (sender, text) => {
        const p = sender === INSIDER ? greetingOf(text) : null;
        if (p === null || p.greetType !== GreetType.REFRESH_AUX_INITIATOR_DOWN) return undefined;
        if (attack === 'false-history') {
          const metadata = { ...p.metadata!, chainHash: chainHash(rng.bytes(32)) };
          const binding = await initialFinalBinding(crypto, p.members, p.nonces, await metadataHash(crypto, metadata));
          const keyConfirmation = confirmKey === null ? p.keyConfirmation : await finalKeyConfirmation(crypto, confirmKey, binding);
          return contributorText(malCrypto, mal.staticSeed, { ...p, metadata, ...(keyConfirmation !== undefined && { keyConfirmation }) });
        }
        const v = p.members.indexOf(victim.id);
        const slot = attack === 'low-order-int-key' ? SMALL_ORDER_POINT : await crypto.x25519PublicKey(rng.bytes(32));
        return contributorText(malCrypto, mal.staticSeed, { ...p, intKeys: p.intKeys.map((k, j) => (j === v ? slot : k)) });
      };
      break;
    }
    case 'split-ephemeral': {
      // The insider joins; its downflow (it is the last joiner; v2: it carries its own nonce and
      // signing key, under its static key's signature) has another signing key of its own for
      // the victim's eyes: the relay shows the victim that copy.
      let variant: string | null = null;
      g.transformOutgoingAsync = async (sender, text) => {
        const p = sender === INSIDER ? greetingOf(text) : null;
        if (p === null || p.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN || variant !== null) return undefined;
        const altPub = await crypto.ed25519PublicKey(rng.bytes(32));
        variant = await contributorText(malCrypto, mal.staticSeed, { ...p, pubKeys: p.pubKeys.map(() => altPub) });
        return undefined;
      };
      g.onOrder = (_index, sender, text) => {
        if (sender !== INSIDER || variant === null || greetingOf(text)?.greetType !== GreetType.INCLUDE_AUX_PARTICIPANT_DOWN) return;
        return [{ kind: 'replace', member: victim.id, text: variant }];
      };
      await g.input(g.member('h0'), { kind: 'include', members: [INSIDER] });
      break;
    }
    case 'withhold-confirmation': {
      const confirmations = new Set<number>([GreetType.REFRESH_AUX_PARTICIPANT_CONFIRM_DOWN]);
      g.dropOutgoing = (sender, text) => sender === INSIDER && confirmations.has(greetingOf(text)?.greetType ?? -1);
      await g.input(victim, { kind: 'refresh' });
      break;
    }
    case 'held-proposal':
    case 'held-exclude': {
      let held: string | null = null;
      g.dropOutgoing = (sender, text) => {
        if (held !== null || sender !== victim.id || greetingOf(text) === null) return false;
        held = text;
        return true;
      };
      const others = honest().filter((m) => m !== victim).map((m) => m.id);
      await g.input(victim, attack === 'held-proposal' ? { kind: 'refresh' } : { kind: 'exclude', members: [rng.pick(others)] });
      await g.settle();
      await g.advance(HOLD_MS + 1); // the proposer once gave it up here
      await g.settle();
      g.dropOutgoing = null;
      if (held !== null) g.post(victim.id, held);
      break;
    }
  }
  await g.settle();
  await g.advance(OPERATION_TIMEOUT_MS + 1);
  await g.settle();
  await g.advance(OPERATION_TIMEOUT_MS + 1);
  await g.settle();

  await oracle.checkKeys(g.downflows(), [...g.members.keys()]);
  const warned = honest().some((m) => m.effects.slice(marks.get(m.id) ?? 0).some((e) => e.kind === 'warning'));
  const holders = honest().filter((m) => m.state.current !== null && g.channel.includes(m.id));
  const views = new Set(holders.map((m) => describe(m)));
  const agree = views.size <= 1 && holders.length === honest().filter((m) => g.channel.includes(m.id)).length;
  const slowNotMalicious = attack === 'held-proposal' || attack === 'held-exclude';
  const ok = oracle.violations.length === 0 && (agree || (warned && !slowNotMalicious));
  const verdict =
    oracle.violations.length > 0
      ? `oracle: ${oracle.violations[0]}`
      : agree
        ? `honest members agree${warned ? ' (with a warning)' : ''}`
        : `honest members split ${warned ? 'with' : 'WITHOUT'} a warning: ${[...views].join(' | ')}`;
  return { attack, seed, ok, verdict };
}

function describe(m: SimMember): string {
  const c = m.state.current!;
  return `${c.members.join(',')} sid ${hexEncode(c.sid).slice(0, 6)} key ${c.groupKey === null ? '-' : hexEncode(c.groupKey).slice(0, 6)} ch ${hexEncode(c.chainHash).slice(0, 6)}`;
}
