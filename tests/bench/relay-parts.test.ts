/**
 * bench/relay-cpu-parts.ts and bench/relay-targets.ts's naming: the MAC check is a part of its own
 * (with the node:crypto and noble work under it), and the load's proof is chosen per target;
 * bench/relay-post-path.ts's redis-server CPU per post.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cpuByPart, CPU_PARTS, type CpuProfile } from '../../bench/relay-cpu-parts.js';
import { storeUsPerPost } from '../../bench/relay-post-path.js';
import { makeTarget, withProofs } from '../../bench/relay-targets.js';

/** A profile of one sample per stack, each stack leaf-last as [functionName, url] frames, 10 µs each. */
function profileOf(stacks: ReadonlyArray<ReadonlyArray<readonly [string, string]>>): CpuProfile {
  const nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children: number[] }> = [
    { id: 1, callFrame: { functionName: '(root)', url: '' }, children: [] },
  ];
  const samples: number[] = [];
  for (const stack of stacks) {
    let parent = nodes[0]!;
    for (const [functionName, url] of stack) {
      const node = { id: nodes.length + 1, callFrame: { functionName, url }, children: [] };
      nodes.push(node);
      parent.children.push(node.id);
      parent = node;
    }
    samples.push(parent.id);
  }
  return { nodes, samples, timeDeltas: samples.map(() => 10) };
}

const relay = (file: string): string => `file:///repo/src/relay/${file}`;

describe('relay CPU parts', () => {
  it('charges the MAC check and the crypto under it to mac, other crypto to signature', () => {
    const totals = cpuByPart(
      profileOf([
        [['verifySigned', relay('auth.ts')], ['verify', relay('mac-keys.ts')], ['digest', 'node:internal/crypto/hash']],
        [['verify', relay('mac-keys.ts')], ['derive', relay('mac-keys.ts')], ['div', 'file:///repo/node_modules/@noble/curves/abstract/modular.js']],
        [['relayMacKey', 'file:///repo/src/shared/relay-mac.ts'], ['hkdf', 'file:///repo/node_modules/@noble/hashes/hkdf.js']],
        [['verifySigned', relay('auth.ts')], ['verifyEd25519', relay('auth.ts')], ['verify', 'node:internal/crypto/sig']],
        [['verifySigned', relay('auth.ts')], ['sha256Base64Url', relay('ids.ts')], ['hash', 'node:crypto']],
        [['postPacket', relay('routes/channels.ts')], ['hashToken', relay('ids.ts')], ['digest', 'node:internal/crypto/hash']],
        [['postPacket', relay('routes/channels.ts')]],
      ]),
    );
    expect(CPU_PARTS).toContain('mac');
    expect(totals.mac).toBe(30);
    expect(totals.signature).toBe(30);
    expect(totals.routing).toBe(10);
  });
});

describe('relay bench targets and proofs', () => {
  const saved = { proof: process.env.BENCH_RELAY_PROOF, proofs: process.env.BENCH_RELAY_PROOFS };
  afterEach(() => {
    for (const [name, value] of [['BENCH_RELAY_PROOF', saved.proof], ['BENCH_RELAY_PROOFS', saved.proofs]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('proves with MACs by default, signatures on request, per target with @proof', () => {
    delete process.env.BENCH_RELAY_PROOF;
    expect([makeTarget('sqlite').key, makeTarget('sqlite').label]).toEqual(['sqlite', 'relay, SQLite (MACs)']);
    expect([makeTarget('redis@signature').key, makeTarget('redis@signature').label]).toEqual(['redisSignature', 'relay, Redis (signatures)']);
    expect(makeTarget('sqlite@mac').key).toBe('sqliteMac');
    process.env.BENCH_RELAY_PROOF = 'signature';
    expect(makeTarget('sqlite').label).toBe('relay, SQLite (signatures)');
    expect(() => makeTarget('sqlite@hmac')).toThrow();
    expect(() => makeTarget('baseline@mac')).toThrow();
    process.env.BENCH_RELAY_PROOF = 'hmac';
    expect(() => makeTarget('sqlite')).toThrow(/BENCH_RELAY_PROOF/);
  });

  it('BENCH_RELAY_PROOFS runs every relay target once per proof, side by side', () => {
    delete process.env.BENCH_RELAY_PROOFS;
    expect(withProofs(['baseline', 'sqlite'])).toEqual(['baseline', 'sqlite']);
    process.env.BENCH_RELAY_PROOFS = 'mac,signature';
    expect(withProofs(['baseline', 'sqlite', 'redis', 'sqlite-vt@signature'])).toEqual([
      'baseline',
      'sqlite@mac',
      'sqlite@signature',
      'redis@mac',
      'redis@signature',
      'sqlite-vt@signature',
    ]);
    process.env.BENCH_RELAY_PROOFS = 'mac,ed25519';
    expect(() => withProofs(['sqlite'])).toThrow(/ed25519/);
  });
});

describe('redis-server CPU per post', () => {
  it('is the store reading\'s difference per accepted post, and absent without a store reading', () => {
    expect(storeUsPerPost({ user: 0, system: 0, store: 1_000_000 }, { user: 5, system: 5, store: 1_300_000 }, 3_000)).toBe(100);
    expect(storeUsPerPost({ user: 0, system: 0 }, { user: 5, system: 5 }, 3_000)).toBeUndefined();
    expect(storeUsPerPost({ user: 0, system: 0, store: 1 }, { user: 5, system: 5 }, 3_000)).toBeUndefined();
  });
});
