/**
 * The one-line bugs `npm run mutants` (tests/tools/mutants.ts) puts into the engine, one at a time.
 * Each is (file, anchor, replacement): the anchor (text, or a regex when the line is not unique on
 * its own) must match exactly once, else the script stops with "anchor moved". Whoever refactors
 * the code an anchor names updates the anchor here, keeping the bug the same.
 *
 * Stages run in order and stop at the first failure; the cheapest, most relevant come first.
 */

export interface Stage {
  /** Shown in the table; defaults to the command. */
  readonly label?: string;
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface Mutant {
  readonly name: string;
  /** The bug it stands for, in a few words. */
  readonly bug: string;
  readonly file: string;
  readonly anchor: string | RegExp;
  readonly replacement: string;
  readonly stages: readonly Stage[];
}

const vitest = (label: string, ...files: string[]): Stage => ({ label, command: ['node_modules/.bin/vitest', 'run', ...files] });
const sim = (label: string, ...args: string[]): Stage => ({ label, command: ['node_modules/.bin/tsx', 'tests/sim/main.ts', ...args] });

/**
 * Short simulations: a few dozen scenarios each (full-size membership with attacks in most runs;
 * sessions in both modes; every insider scenario).
 */
const MEMBERSHIP_SIM = sim('sim membership', '--runs', '40', '--seed', '9', '--provider', 'webcrypto', '--attacks', '0.6');
const SESSION_SIM = sim('sim sessions', '--sessions', '--membership', 'mixed', '--runs', '40', '--seed', '1');
const INSIDER_SIM = sim('sim insider', '--insider', '--runs', '3', '--seed', '1');
const GREETING_SIM = sim('sim sessions greeting', '--sessions', '--greeting', '--runs', '30', '--seed', '1');

const GREETING_TESTS = vitest('greeting tests', 'tests/protocol/greeting-attacks.test.ts', 'tests/protocol/membership-insider.test.ts', 'tests/protocol/greeting-aka.test.ts', 'tests/protocol/greeting-cliques.test.ts', 'tests/protocol/membership-transport.test.ts', 'tests/protocol/order-server-order.test.ts', 'tests/protocol/session-greeting.test.ts');
const PACKET_TESTS = vitest('packet tests', 'tests/protocol/packets.test.ts', 'tests/protocol/packets-properties.test.ts');
const TRACE_TESTS = vitest('trace tests', 'tests/protocol/trace.test.ts', 'tests/protocol/greeting-trace.test.ts', 'tests/protocol/transcript-trace.test.ts');
const TRANSCRIPT_TESTS = vitest('transcript tests', 'tests/protocol/transcript.test.ts');
const SECURITY_TESTS = vitest('issue 9 security tests', 'tests/protocol/session-restore.test.ts', 'tests/protocol/random-source.test.ts', 'tests/protocol/session-ratchet.test.ts', 'tests/protocol/session-deniability.test.ts', 'tests/protocol/session-deniability-stay.test.ts', 'tests/protocol/session-deniability-forgery.test.ts', 'tests/protocol/stolen-state.test.ts');
const SCALAR_TESTS = vitest('scalar key tests', 'tests/protocol/greeting-scalar.test.ts');
const UNKNOWN_PARENT_TESTS = vitest('unknown-parent tests', 'tests/protocol/greeting-unknown-parent.test.ts');
const SID_TESTS = vitest('session id tests', 'tests/protocol/greeting-sid.test.ts');
const ORDER_TESTS = vitest('server order tests', 'tests/protocol/order-server-order.test.ts');
const REJOIN_TESTS = vitest('rejoin signing-key tests', 'tests/protocol/session-deniability-rejoin.test.ts');
const ACK_TESTS = vitest('ack monitor tests', 'tests/protocol/reliability.test.ts', 'tests/protocol/ack-monitor-restore.test.ts', 'tests/protocol/session-snapshot-reuse.test.ts');
const ASLEEP_SIM = sim('sim sessions asleep', '--sessions', '--asleep', '--runs', '40', '--seed', '11');
const CRYPTO_TESTS = vitest('crypto tests', 'tests/protocol/crypto-edge.test.ts', 'tests/protocol/crypto-wycheproof.test.ts', 'tests/protocol/crypto-rfc-vectors.test.ts');

/** The simulators first where the point is that they catch it (issue 9: these passed them all). */
const SIMS_FIRST = [MEMBERSHIP_SIM, INSIDER_SIM, GREETING_SIM, GREETING_TESTS];
const TESTS_FIRST = [GREETING_TESTS, MEMBERSHIP_SIM, INSIDER_SIM];

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'exclude-keeps-old-key',
    bug: 'an exclude reuses the old group key (the excluded member keeps reading)',
    file: 'src/protocol/greeting/outcome.ts',
    anchor: 'groupKey: participant ? op.groupKey : null,',
    replacement: "groupKey: participant ? (op.kind === 'exclude' && s.current !== null ? s.current.groupKey : op.groupKey) : null,",
    stages: SIMS_FIRST,
  },
  {
    name: 'zero-iv',
    bug: 'an all-zero IV on every data packet (one keystream per subsession)',
    file: 'src/protocol/packets/data.ts',
    anchor: 'const iv = random(DATA_IV_BYTES);',
    replacement: 'const iv = new Uint8Array(DATA_IV_BYTES);',
    // Under the v2 ratchet (issue 9 §3) every message key is used once, so a zero IV no longer
    // reuses a keystream and the oracle stays quiet; the IV-freshness test still sees it.
    stages: [SECURITY_TESTS, SESSION_SIM, PACKET_TESTS, TRACE_TESTS],
  },
  {
    name: 'skip-op-ref-compare',
    bug: 'a packet naming another operation (another chain hash) is taken as ours',
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'if (s.op === null || !bytesEqual(s.op.opRef, g.opRef)) return await foreignPacket(s, g, ctx);',
    replacement: 'if (s.op === null) return await foreignPacket(s, g, ctx);',
    stages: SIMS_FIRST,
  },
  {
    name: 'skip-chain-hash-compare',
    bug: "an initial packet's CHAIN_HASH is not compared with our chain",
    file: 'src/protocol/order/server-order.ts',
    anchor: '!bytesEqual(last.packetId, parent.prevPf) || !bytesEqual(last.chainHash, parent.chainHash)',
    replacement: '!bytesEqual(last.packetId, parent.prevPf)',
    stages: [INSIDER_SIM, MEMBERSHIP_SIM, GREETING_TESTS],
  },
  {
    name: 'skip-data-signature',
    bug: 'data packets are decrypted without verifying their signature',
    file: 'src/protocol/packets/data.ts',
    anchor: 'if (!(await verifyDataPacket(crypto, packet, keys, authorPubKey))) {',
    replacement: 'if (false && !(await verifyDataPacket(crypto, packet, keys, authorPubKey))) {',
    stages: [SESSION_SIM, PACKET_TESTS],
  },
  {
    name: 'data-signature-without-sid',
    bug: 'the data signature binds the group key but not the session id',
    file: 'src/protocol/packets/data.ts',
    anchor: 'return crypto.sha256(concatBytes(keys.sessionId, keys.groupKey));',
    replacement: 'return crypto.sha256(concatBytes(keys.groupKey));',
    stages: [PACKET_TESTS, TRACE_TESTS, SESSION_SIM],
  },
  {
    name: 'session-signature-without-sid',
    bug: 'the ASKE session signature does not bind the session id',
    file: 'src/protocol/packets/aske.ts',
    anchor: 'ack.ephemeralPubKey, ack.nonce, ack.sessionId),',
    replacement: 'ack.ephemeralPubKey, ack.nonce),',
    stages: [TRACE_TESTS, GREETING_TESTS, MEMBERSHIP_SIM],
  },
  {
    name: 'skip-session-signature-check',
    // v2 (issue 8, async-groups rule 2): the static key signs each contribution itself, and every
    // member checks it; this is the check a SESSION_SIGNATURE check was in v1.
    bug: "a contributor's static-key signature (its identity vouching for its nonce and keys) is not verified",
    file: 'src/protocol/greeting/flow-v2.ts',
    anchor: 'if (!(await verifyContributor(env.crypto, g, staticKey))) throw',
    replacement: 'if (false && !(await verifyContributor(env.crypto, g, staticKey))) throw',
    stages: TESTS_FIRST,
  },
  {
    name: 'skip-initial-signature-check',
    bug: "an initial greeting packet's MESSAGE_SIGNATURE is not verified",
    // v2: the initial packet's MESSAGE_SIGNATURE is its initiator's static-key signature (rule 2).
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'if (!(await verifyContributor(crypto, g, staticKey))) throw',
    replacement: 'if (false && !(await verifyContributor(crypto, g, staticKey))) throw',
    stages: SIMS_FIRST,
  },
  {
    name: 'skip-greeting-replay-check',
    bug: 'an exact repeat of a greeting packet is not recognised',
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'if (hasSeen(s0.seen, key)) {',
    replacement: 'if (false && hasSeen(s0.seen, key)) {',
    stages: SIMS_FIRST,
  },
  {
    name: 'skip-seq-gap-check',
    bug: 'a gap in the relay numbering (withheld events) goes unnoticed',
    file: 'src/protocol/greeting/machine.ts',
    anchor: 'if (ev.seq !== s.lastSeq + 1) {',
    replacement: 'if (false && ev.seq !== s.lastSeq + 1) {',
    stages: TESTS_FIRST,
  },
  {
    name: 'skip-source-check',
    bug: 'SOURCE is not compared with the channel sender',
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'if (g.source !== sender) {',
    replacement: 'if (false && g.source !== sender) {',
    stages: TESTS_FIRST,
  },
  {
    name: 'accept-missing-parents',
    bug: 'a message whose parents are missing is accepted at once',
    file: 'src/protocol/transcript/transcript.ts',
    anchor: "if (!parents.every((p) => this.entries.has(p))) return { kind: 'missing-parents', missing: parents.filter((p) => !this.entries.has(p)) };",
    replacement: '',
    stages: [TRANSCRIPT_TESTS, SESSION_SIM],
  },
  {
    name: 'skip-data-signature-v2',
    bug: 'v2 data packets are decrypted without verifying their signature (the session pipeline)',
    file: 'src/protocol/session/inbound.ts',
    anchor: 'if (!verified) continue;',
    replacement: 'if (false && !verified) continue;',
    stages: [SESSION_SIM],
  },
  {
    name: 'restore-authors-at-once',
    bug: 'a restored (possibly older) snapshot may author before catching up: it forks its own line',
    file: 'src/protocol/session/session.ts',
    anchor: 'session.restoredBehind = options.atHead !== true;',
    replacement: 'session.restoredBehind = false;',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'random-repeat-unchecked',
    bug: 'a random source that repeats is used (IVs, contributions drawn twice)',
    file: 'src/protocol/random.ts',
    anchor: 'if (seen.has(key)) throw',
    replacement: 'if (false) throw',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'ratchet-chain-stuck',
    bug: 'the sender chain does not move on (every later message key is the same, and a stolen state opens earlier messages)',
    file: 'src/protocol/packets/ratchet.ts',
    anchor: '    chain.key = next;',
    replacement: '    chain.key = next.fill(7);',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'leaver-not-counted',
    bug: "a member who left without acking what it was shown does not count for consistency",
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'if ((this.owed.get(member) ?? 0) > 0) this.incomplete = true;',
    replacement: '',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'restore-forgets-own-acks',
    bug: 'a restored ack monitor takes us for having acked every tracked message (snapshots leave us out of the readers still to ack): after a restart our ack never goes out',
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'if (derived && author !== self && !transcript.ackedBy(t.id, self)) remaining.add(self);',
    replacement: '',
    // The asleep simulation catches it too: its restarts compare what each tracked message still
    // waits for, not only snapshots, which leave us out (tests/sim/restart-state.ts).
    stages: [ASLEEP_SIM, ACK_TESTS],
  },
  {
    name: 'restore-scans-from-start',
    bug: "a restored ack monitor starts rule 3's scans over (ignores `scanned`): it stops at a message it had passed, now neither skipped nor overdue, and misses a late reader",
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'passed >= 0 && passed <= queue.ids.length) queue.checked = passed;',
    replacement: 'passed >= 0 && passed <= queue.ids.length) void passed;',
    stages: [ACK_TESTS],
  },
  {
    name: 'unechoed-ours-overdue',
    bug: 'rule 3 times our message the relay has not handed back from when we sealed it: written offline, it makes everyone who wrote meanwhile late (a false warning)',
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'const overdue = !(relayOrdered && order === undefined) && atMs',
    replacement: 'const overdue = atMs',
    stages: [ACK_TESTS],
  },
  {
    name: 'restore-rearms-dropped-resends',
    bug: 'a restored ack monitor arms every resend deadline again (ignores `resendFloorMs`): after a reload it resends what tick had left to rule 8, once a sleeper wakes',
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: '    monitor.resendFloorMs = snapshot.resendFloorMs;',
    replacement: '',
    stages: [ACK_TESTS],
  },
  {
    name: 'resend-floor-not-lowered',
    bug: 'a clock gone back arms a resend deadline at or before the floor, which stays: a restore loses that deadline',
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'if (needed && this.resendFloorMs !== undefined && nextResendMs <= this.resendFloorMs) this.resendFloorMs = nowMs;',
    replacement: '',
    stages: [ACK_TESTS],
  },
  {
    name: 'resend-ties-by-heap-history',
    bug: 'equal resend deadlines come out in the order the heap was filled: a restored monitor resends them in another order than the live one',
    file: 'src/protocol/reliability/ack-monitor.ts',
    anchor: 'new DeadlineHeap<MessageKey>((a, b) => (a < b ? -1 : a > b ? 1 : 0));',
    replacement: 'new DeadlineHeap<MessageKey>();',
    stages: [ACK_TESTS],
  },
  {
    name: 'published-key-accepted',
    bug: 'a data packet under a signing key its owner published is accepted (the published key forges messages)',
    file: 'src/protocol/session/inbound.ts',
    anchor: 'if (sub.published.has(author)) throw',
    replacement: 'if (false) throw',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'renewed-key-ignored',
    bug: 'a member\'s renewed signing key (its confirmation, issue 9 §3) is not used: its data is checked under the listed key, which it may publish',
    file: 'src/protocol/session/session.ts',
    anchor: 'signingKeys.set(member, signingKey);',
    replacement: '',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'published-key-confirms',
    bug: "a confirmation signed with a published signing key is accepted (its forger renews the member's key to one of its own: a key takeover)",
    file: 'src/protocol/greeting/flow-v2.ts',
    anchor: 'if (isRevoked(s, keys[index]!)) throw',
    replacement: 'if (false) throw',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'confirmation-signature-unchecked',
    bug: "a member's confirmation is taken without checking its ephemeral signature (an insider, who holds the key-confirmation key, confirms for another member and renews its key)",
    file: 'src/protocol/greeting/flow-v2.ts',
    anchor: 'if (!(await verifyGreeting(ctx.env.crypto, g, keys[index]!))) {',
    replacement: 'if (false) {',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'sid-without-lengths',
    bug: 'the v2 session id joins member ids without their lengths (["ab","c"] = ["a","bc"], as in v1)',
    file: 'src/protocol/greeting/wire.ts',
    anchor: 'parts.push(Uint8Array.of(id.length), id);',
    replacement: 'parts.push(id);',
    stages: [SID_TESTS],
  },
  {
    name: 'downflow-key-confirmation-unchecked',
    bug: "the KEY_CONFIRMATION of an include's or start's last downflow is not compared (a member handed another key uses it)",
    file: 'src/protocol/greeting/flow-v2.ts',
    anchor: 'if (secrets === null || !bytesEqual(await finalKeyConfirmation(env.crypto, secrets.confirmKey, sid), g.keyConfirmation)) {',
    replacement: 'if (secrets === null) {',
    stages: [GREETING_TESTS, INSIDER_SIM],
  },
  {
    name: 'initial-final-key-confirmation-unchecked',
    bug: "the KEY_CONFIRMATION of an exclude's or refresh's initial-and-final packet is not compared (a member handed another key uses it)",
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'if (secrets === null || !bytesEqual(await finalKeyConfirmation(crypto, secrets.confirmKey, binding), g.keyConfirmation!)) {',
    replacement: 'if (secrets === null) {',
    stages: [GREETING_TESTS, INSIDER_SIM],
  },
  {
    name: 'publish-while-listed',
    bug: 'a member who stays publishes its key of a subsession that is over while the current subsession still lists it (its confirmation there, or a proposal made before its renewal was seen, still needs it)',
    file: 'src/protocol/session/greeting-membership.ts',
    anchor: 'if (staying && s.current !== null && isKeyOf(s.current, s.self, ownPub)) return null;',
    replacement: '',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'publish-without-all-acks',
    bug: 'a member publishes its signing key although some member (asleep) never acked its FIN',
    file: 'src/protocol/session/session.ts',
    anchor: 'if (!others.every((m) => finDelivery.acked.includes(m))) return;',
    replacement: '',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'published-key-unchecked',
    bug: 'a key publication is believed without its static signature (anyone can silence a member)',
    file: 'src/protocol/packets/published-key.ts',
    anchor: 'if (!(await crypto.ed25519Verify(staticPub, concatBytes(CONTEXT, packet.signed), packet.signature))) {',
    replacement: 'if (false) {',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'membership-keeps-group-key',
    bug: 'the membership keeps every group key it handed to the session (a stolen state reads the current and recent subsessions)',
    file: 'src/protocol/session/greeting-membership.ts',
    anchor: '    this.dropHandedKeys();\n',
    replacement: '',
    stages: [SECURITY_TESTS],
  },
  {
    name: 'no-ratchet-across-subsessions',
    bug: 'a v2 member keeps its scalar as it was when a subsession completes (a stolen state and the relay log open every key since it joined)',
    file: 'src/protocol/greeting/cliques.ts',
    anchor: 'return { x: mulScalars(scalarOf(key), t), ratchet: t };',
    replacement: 'return { x: scalarOf(key), ratchet: t === t ? null : t };',
    stages: [SECURITY_TESTS, SCALAR_TESTS],
  },
  {
    name: 'unknown-parent-never-a-fork',
    bug: 'every initial packet whose parent a member never saw is taken for a race lost before its time (a fork goes unseen until the group acts on it)',
    file: 'src/protocol/greeting/receive.ts',
    anchor: 'return !holdsOurSlot && (await startsMidHistory(ctx.env.crypto, s.order));',
    replacement: 'return true;',
    stages: [UNKNOWN_PARENT_TESTS],
  },
  {
    name: 'unknown-parent-skips-signature',
    bug: "a race lost before our time is refused without checking its initiator's static signature (an altered packet goes unseen)",
    file: 'src/protocol/greeting/receive.ts',
    anchor: '    checkInitialShape(kind, g, null, version);\n    await checkInitiatorSignature(g, ctx);\n',
    replacement: '    checkInitialShape(kind, g, null, version);\n',
    stages: [UNKNOWN_PARENT_TESTS],
  },
  {
    name: 'void-ignored-once-built-on',
    bug: "a newcomer ignores the REFUSED abort of its include once it built on the include (asleep seed 8486: the group splits)",
    file: 'src/protocol/greeting/receive.ts',
    anchor: '[cur, ...s.recent].find(',
    replacement: '[cur].find(',
    stages: [UNKNOWN_PARENT_TESTS],
  },
  {
    name: 'stale-include-supersedes',
    bug: 'a provisional newcomer gives way to any include of it on a parent it never accepted, even one that lost a race before its own include (asleep seed 786: every member warns)',
    file: 'src/protocol/greeting/receive.ts',
    anchor: '!(await witnessedAncestor(crypto, s.order, s.witnessed ?? [], g.metadata))',
    replacement: 'true',
    stages: [UNKNOWN_PARENT_TESTS],
  },
  {
    name: 'newcomer-never-gives-way',
    bug: 'a provisional newcomer takes every include of it on a parent it never accepted for a lost race (its include was refused: it stays out of the group)',
    file: 'src/protocol/greeting/receive.ts',
    anchor: '!(await witnessedAncestor(crypto, s.order, s.witnessed ?? [], g.metadata))',
    replacement: 'false',
    stages: [UNKNOWN_PARENT_TESTS],
  },
  {
    name: 'witness-one-shot-unchecked',
    bug: "a newcomer's walk back through witnessed packets takes an exclude or refresh by its id alone, without recomputing the chain hash (a forged proposal makes any parent an ancestor)",
    file: 'src/protocol/order/server-order.ts',
    anchor: "if (bytesEqual(w.packetId, point.packetId) && bytesEqual(await chainStep(crypto, w.parent.chainHash, w.packetId, 'initial-final'), point.chainHash)) return w.parent;",
    replacement: 'if (bytesEqual(w.packetId, point.packetId)) return w.parent;',
    stages: [ORDER_TESTS],
  },
  {
    name: 'witness-include-unchecked',
    bug: "a newcomer's walk back through witnessed packets takes any start or include as the step to any point, without recomputing the chain hash",
    file: 'src/protocol/order/server-order.ts',
    anchor: 'if (bytesEqual(await chainStep(crypto, opRef, point.packetId, role), point.chainHash)) return w.parent;',
    replacement: 'return w.parent;',
    stages: [ORDER_TESTS],
  },
  {
    name: 'worker-random-from-provider',
    bug: "the worker gives the engine the injected crypto provider's randomBytes (a test double, a replayed generator) instead of crypto.getRandomValues",
    file: 'src/worker/conversation.ts',
    anchor: '      random: systemRandom,',
    replacement: '      random: (n: number) => deps.crypto.randomBytes(n),',
    stages: [vitest('worker random-source test', 'tests/worker/random-source.test.ts')],
  },
  {
    name: 'rejoin-keeps-signing-key',
    bug: 'a member excluded or starting over keeps its ephemeral signing key: included again, it signs the new subsession with its key of the old one (issue 9 §3)',
    file: 'src/protocol/greeting/outcome.ts',
    anchor: '  return { ...s, ephemeral: null };',
    replacement: '  return s;',
    stages: [REJOIN_TESTS, ASLEEP_SIM],
  },
  {
    name: 'leave-keeps-signing-key',
    bug: 'a member that left the channel keeps its ephemeral signing key: joining again, it is included with its old key (issue 9 §3)',
    file: 'src/protocol/greeting/machine.ts',
    anchor: '    return { ...fresh, seen: s.seen };',
    replacement: '    return { ...fresh, ephemeral: s.ephemeral, seen: s.seen };',
    stages: [REJOIN_TESTS],
  },
  {
    name: 'x25519-accepts-low-order',
    bug: 'noble x25519 returns zeros for a small-order point instead of refusing it',
    file: 'src/protocol/crypto/noble.ts',
    anchor: /(?<=small-order u\.\n)\s+throw new ProtocolError\('low-order-point', 'x25519 result is all zero'\);/,
    replacement: '      return new Uint8Array(32);',
    stages: [CRYPTO_TESTS],
  },
];
