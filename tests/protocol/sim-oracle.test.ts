/**
 * The simulators' security oracle (tests/sim/oracle.ts) and attack measure
 * (tests/sim/session-scenarios.ts judgeAttacks): each check finds what it is there to find, and
 * nothing in an honest run. (`npm run mutants` shows the same against bugs put into the engine.)
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, hexEncode, latin1Encode } from '../../src/protocol/bytes.js';
import { DATA_SIGNATURE_CONTEXT, GREETING_SIGNATURE_CONTEXT } from '../../src/protocol/codec/constants.js';
import { recipientSecretV2 } from '../../src/protocol/greeting/cliques.js';
import type { MemberId } from '../../src/protocol/ids.js';
import { deriveGroupKey } from '../../src/protocol/packets/group-key.js';
import { webCryptoProvider } from '../helpers/providers.js';
import { SimGroup } from '../sim/channel.js';
import { SecurityOracle } from '../sim/oracle.js';
import { SessionSim, SIM_CONFIG } from '../sim/session-harness.js';
import { judgeAttacks } from '../sim/session-scenarios.js';

const crypto = webCryptoProvider;
const ids = (names: readonly string[]) => names as MemberId[];

/** A started group of `names` whose first member then excludes the last, watched by an oracle. */
async function startThenExclude(names: readonly string[], seed: number): Promise<{ g: SimGroup; oracle: SecurityOracle }> {
  const oracle = new SecurityOracle(crypto, { keyTrial: true });
  const g = new SimGroup({ crypto, seed, oracle });
  for (const n of names) {
    await g.addMember(n);
    g.join(n);
  }
  await g.settle();
  await g.input(g.member(names[0]!), { kind: 'start', others: ids(names.slice(1)) });
  await g.settle();
  await g.input(g.member(names[0]!), { kind: 'exclude', members: ids([names[names.length - 1]!]) });
  await g.settle();
  return { g, oracle };
}

describe('security oracle', () => {
  it('finds nothing in an honest start and exclude, having tried the excluded member on every slot', async () => {
    const { g, oracle } = await startThenExclude(['a', 'b', 'c'], 1);
    await oracle.checkKeys(g.downflows(), [...g.members.keys()]);
    expect(oracle.violations).toEqual([]);
    expect(oracle.counts.keysDerived).toBeGreaterThanOrEqual(5); // 3 for the start, 2 for the exclude
    expect(oracle.counts.trials).toBeGreaterThan(0);
  });

  it('finds a subsession key that a non-member derived, or that its stored contributions open', async () => {
    const { g, oracle } = await startThenExclude(['a', 'b', 'c'], 2);
    const c = g.member('c');
    const downflow = g.downflows().find((d) => !d.members.includes('c'))!;
    // c holds a's stored contributions (a stolen copy, say), and some subsession's key is what
    // they give on a slot of the exclude's downflow. a derived it, so only the trial can find it.
    const chain = g.member('a').state.own!.contributions;
    expect(c.state.own).toBeNull(); // c's own list went when it was excluded
    oracle.noteState('c', { ...c.state, own: { contributions: chain, contributedAtMs: 0 } });
    const point = await recipientSecretV2(crypto, downflow.intKeys, 1, chain);
    const key = await deriveGroupKey(oracle.providerFor('a'), point);
    oracle.noteHolding('a', { sid: g.member('a').state.current!.sid, groupKey: key, members: ['a', 'b'] });
    await oracle.checkKeys(g.downflows(), [...g.members.keys()]);
    expect(oracle.violations.some((v) => v.startsWith("c's stored contributions open the key"))).toBe(true);

    // The cheap half: c derived the key of a subsession it is not in.
    const other = new SecurityOracle(crypto, { keyTrial: false });
    const stolen = await deriveGroupKey(other.providerFor('c'), point);
    other.noteHolding('a', { sid: g.member('a').state.current!.sid, groupKey: stolen, members: ['a', 'b'] });
    await other.checkKeys([], ['a', 'b', 'c']);
    expect(other.violations).toEqual([expect.stringContaining('c derived the key of subsession')]);
  });

  it('says it is blind when a subsession key was never seen derived', async () => {
    const oracle = new SecurityOracle(crypto);
    oracle.noteHolding('a', { sid: new Uint8Array(32), groupKey: new Uint8Array(32).fill(1), members: ['a'] });
    await oracle.checkKeys([], ['a']);
    expect(oracle.violations).toEqual([expect.stringContaining('oracle blind')]);
  });

  it('finds a (key, IV) pair that encrypts two plaintexts, not one message decrypted again', async () => {
    const oracle = new SecurityOracle(crypto);
    const a = oracle.providerFor('a');
    const key = new Uint8Array(32).fill(7);
    const block = new Uint8Array(16);
    const first = await a.aesCtr(key, block, latin1Encode('first message'));
    expect(bytesEqual(await oracle.providerFor('b').aesCtr(key, block, first), latin1Encode('first message'))).toBe(true);
    expect(oracle.violations).toEqual([]);
    await a.aesCtr(key, block, latin1Encode('other message'));
    expect(oracle.violations).toEqual([expect.stringContaining('keystream reuse')]);
    // The same rule for AES-GCM nonces.
    const nonce = new Uint8Array(12).fill(9);
    await a.aesGcmEncrypt(key, nonce, latin1Encode('sealed once'));
    await a.aesGcmEncrypt(key, nonce, latin1Encode('sealed once'));
    expect(oracle.violations).toHaveLength(1);
    await a.aesGcmEncrypt(key, nonce, latin1Encode('sealed twice'));
    expect(oracle.violations[1]).toContain('nonce reuse');
  });

  it('knows who signed each data packet, and flags a message shown under another author', async () => {
    const oracle = new SecurityOracle(crypto);
    const seed = new Uint8Array(32).fill(3);
    const signed = latin1Encode('the signed region');
    const message = new Uint8Array([...latin1Encode(DATA_SIGNATURE_CONTEXT), ...new Uint8Array(32), ...signed]);
    const signature = await oracle.providerFor('a').ed25519Sign(seed, message);
    const id = hexEncode((await crypto.sha256(new Uint8Array([...signature, ...signed]))).subarray(0, 20));
    oracle.checkAuthor('b', id, 'a');
    expect(oracle.violations).toEqual([]);
    oracle.checkAuthor('b', id, 'c');
    expect(oracle.violations).toEqual([expect.stringContaining('but a signed it')]);
  });

  it('flags an operation accepted on an initial packet its initiator did not sign as it stands', async () => {
    const oracle = new SecurityOracle(crypto);
    const seed = new Uint8Array(32).fill(4);
    const signed = latin1Encode('an initial packet');
    const signature = await oracle.providerFor('a').ed25519Sign(seed, new Uint8Array([...latin1Encode(GREETING_SIGNATURE_CONTEXT), ...signed]));
    oracle.checkInitialSigned('b', 'a', signature, signed);
    expect(oracle.violations).toEqual([]);
    oracle.checkInitialSigned('b', 'c', signature, signed);
    oracle.checkInitialSigned('b', 'a', signature, latin1Encode('an altered packet'));
    expect(oracle.violations).toHaveLength(2);
  });

  it('flags an operation accepted on a chain hash the member does not hold (a joiner adopts one)', () => {
    const oracle = new SecurityOracle(crypto);
    oracle.checkChainAccepted('j', new Uint8Array(32).fill(1), null);
    oracle.checkChainAccepted('m', new Uint8Array(32).fill(1), new Uint8Array(32).fill(1));
    expect(oracle.violations).toEqual([]);
    oracle.checkChainAccepted('m', new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    expect(oracle.violations).toEqual([expect.stringContaining('m accepted an operation built on chain hash')]);
  });
});

describe('attack measure', () => {
  async function chat(seed: number): Promise<SessionSim> {
    const sim = new SessionSim(crypto, seed, SIM_CONFIG, undefined, new SecurityOracle(crypto));
    for (const n of ['alice', 'bob', 'carol']) {
      sim.addMember(n);
      sim.join(n);
    }
    await sim.settle();
    await sim.act('alice', (s, now) => s.include(ids(['bob', 'carol']), now));
    await sim.advance(1_000);
    await sim.act('bob', (s, now) => s.send('hello', now));
    await sim.advance(2_000);
    return sim;
  }

  it('counts a refused forgery as detected', async () => {
    const sim = await chat(1);
    const genuine = sim.dataPackets()[0]!.text;
    const chars = [...genuine];
    chars[20] = chars[20] === 'A' ? 'B' : 'A';
    sim.inject('tamper', 'carol' as MemberId, chars.join(''), undefined);
    await sim.advance(60_000);
    expect(judgeAttacks(sim)).toEqual({ attacks: 1, attacksDetected: 1, undetected: [] });
  });

  it('does not count a packet its victims accept as detected', async () => {
    const sim = await chat(2);
    // A real message of alice's that the relay never showed anyone, "injected" later: the others
    // accept it, so their states differ from a run without it.
    const effects = await sim.member('alice').session.send('held back', sim.nowMs);
    const text = effects.flatMap((e) => (e.kind === 'send' ? [e.text] : []))[0]!;
    sim.inject('not-an-attack', 'alice' as MemberId, text, undefined);
    await sim.advance(5_000);
    const judged = judgeAttacks(sim);
    expect(judged.attacks).toBe(1);
    expect(judged.attacksDetected).toBe(0);
    expect(judged.undetected[0]).toContain("state differs from a run without it");
  });
});
