/**
 * Sealed inbox messages (contact requests, acceptances, invitations) in each engine's own
 * WebCrypto: the app's src/worker/sealed-message.ts and crypto provider, bundled into a probe page
 * (fixtures/sealed-message), derive the RFC 9180 inbox key of seeds whose private or public key
 * begins with 0 (WebKit's WebCrypto refuses a PKCS#8 X25519 key whose first byte is 0: 1 seed in
 * 256), open packets sealed in Node whose ephemeral key or shared secret begins with 0, and seal
 * and open round trips, with the keys and messages that Node computes.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { base64UrlDecode, base64UrlEncode } from '../../src/protocol/bytes.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';
import type { CapabilityToken, ChannelId } from '../../src/shared/relay-api.js';
import { makeCard } from '../../src/worker/cards.js';
import { sealInboxMessage, type InboxMessage } from '../../src/worker/sealed-message.js';
import { canonical, type SealedProbeInput, type SealedProbeOutput } from './fixtures/sealed-message/probe.js';
import { hpkePrivateKey, hpkePublicKey, seedWhere } from '../helpers/hpke-keys.js';
import { startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun, openEngine } from './harness/engines.js';
import type { Engine, Tab } from './harness/types.js';

const FIXTURE_DIR = join(import.meta.dirname, 'fixtures', 'sealed-message');
const ROUND_TRIPS = 20;

/** The probe page, built once per run (Vite, like the app). */
async function buildProbe(): Promise<string> {
  const outDir = join(browserRun().runDir, 'sealed-message-probe');
  const { build } = await import('vite');
  await build({ root: FIXTURE_DIR, configFile: false, logLevel: 'warn', publicDir: false, build: { outDir, emptyOutDir: true, minify: false } });
  return outDir;
}

interface Case {
  readonly input: SealedProbeInput;
  readonly publicKeys: readonly string[];
  readonly opened: readonly string[];
}

/** Seeds, packets and the answers Node expects. */
async function makeCase(): Promise<Case> {
  const seeds = [
    await seedWhere('sk0', (sk) => sk[0] === 0),
    await seedWhere('pk0', (_, pk) => pk[0] === 0),
    await seedWhere('plain', (sk, pk) => sk[0] !== 0 && pk[0] !== 0),
  ];
  const identitySeed = nobleProvider.randomBytes(32);
  const at = Date.now();
  const publicKeys = await Promise.all(seeds.map(hpkePublicKey));
  const card = await makeCard(nobleProvider, identitySeed, {
    name: 'Ada',
    hk: publicKeys[2]!,
    relay: 'https://relay.example',
    inbox: 'A'.repeat(22) as ChannelId,
    deposit: 'B'.repeat(43) as CapabilityToken,
    exp: at + 3_600_000,
  });
  const message: InboxMessage = { v: 1, type: 'invitation', mid: base64UrlEncode(new Uint8Array(16).fill(1)), at, to: card.ik, from: card, body: { group: 'probe' } };
  const plain = base64UrlDecode(publicKeys[2]!);
  // Ephemeral seeds whose public key (the packet's first 32 bytes) or shared secret begins with 0.
  const ephemerals = [
    await seedWhere('enc0', (_, pk) => pk[0] === 0),
    await seedWhere('dh0', async (sk) => (await nobleProvider.x25519(sk, plain))[0] === 0),
  ];
  const sealed = [
    { seed: 0, ephemeralSeed: undefined },
    { seed: 1, ephemeralSeed: undefined },
    { seed: 2, ephemeralSeed: ephemerals[0] },
    { seed: 2, ephemeralSeed: ephemerals[1] },
  ];
  const packets = [];
  for (const [i, s] of sealed.entries()) {
    const m = { ...message, mid: base64UrlEncode(new Uint8Array(16).fill(i + 2)) };
    const packet = await sealInboxMessage(nobleProvider, identitySeed, publicKeys[s.seed]!, m, s.ephemeralSeed === undefined ? {} : { ephemeralSeed: s.ephemeralSeed });
    packets.push({ seed: s.seed, packet: base64UrlEncode(packet), to: m.to, at, expected: canonical(m) });
  }
  // The shapes this case is about (a seed search that drifted would test nothing).
  expect((await hpkePrivateKey(seeds[0]!))[0]).toBe(0);
  expect(base64UrlDecode(publicKeys[1]!)[0]).toBe(0);
  expect(base64UrlDecode(packets[2]!.packet)[0]).toBe(0);
  return {
    input: { seeds: seeds.map(base64UrlEncode), packets: packets.map(({ expected: _, ...p }) => p), message, identitySeed: base64UrlEncode(identitySeed), roundTrips: ROUND_TRIPS },
    publicKeys,
    opened: packets.map((p) => p.expected),
  };
}

describe.each(browserRun().engines)('%s', (name) => {
  let engine: Engine;
  let relay: TestRelay;
  let tab: Tab;
  let probeCase: Case;

  beforeAll(async () => {
    [relay, probeCase] = await Promise.all([buildProbe().then((dir) => startTestRelay({ staticDir: dir })), makeCase()]);
    engine = await openEngine(name);
    tab = await (await engine.newProfile({ name: 'sealed-message' })).open(relay.url);
    await tab.waitUntil(() => 'sealedProbe' in globalThis, undefined);
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.dispose();
  });

  test('inbox keys, opens and seals as in Node, whatever the keys begin with', async () => {
    const out = (await tab.evaluate(
      (input) => (globalThis as unknown as { sealedProbe: (i: unknown) => Promise<unknown> }).sealedProbe(input),
      probeCase.input,
    )) as SealedProbeOutput;
    expect(out.errors).toEqual([]);
    expect(out.publicKeys).toEqual(probeCase.publicKeys);
    expect(out.opened).toEqual(probeCase.opened);
    expect(out.roundTrips).toBe(probeCase.input.seeds.length * ROUND_TRIPS);
  });
});
