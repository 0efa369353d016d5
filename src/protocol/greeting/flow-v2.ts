/**
 * Covey v2 operations for groups whose phones sleep (shared/spec/async-groups.md; the argument
 * is in src/protocol/README.md):
 *
 * - Only contributors act (rule 1): the initiator, then each newcomer in turn. Every contributor
 *   packet is signed with its sender's static key (rule 2) and checked by every member before
 *   anyone builds on it. The last contributor's downflow is final; it carries the key
 *   confirmation (rule 4), which every member checks against the key it derives.
 * - Everyone else derives the key from the downflow and its own stored contributions whenever
 *   it processes it, and confirms later (rule 5), by reference: a small packet naming the
 *   operation, with its own key confirmation and its last messages in the subsession it leaves.
 *   Those confirmations are checked against the stored subsession whenever they arrive.
 */
import { bytesEqual, includesPublicBytes } from '../bytes.js';
import type { GreetingPacket } from '../codec/greeting.js';
import { assert, isProtocolError, ProtocolError } from '../errors.js';
import type { MemberId } from '../ids.js';
import { OPERATION_TIMEOUT_MS } from '../limits.js';
import { makeNonce } from '../packets/aske.js';
import { verifyGreeting } from '../packets/greeting-signature.js';
import { downflowV2, hasContributed, recipientSecretV2, requireFull, upflowV2, type OwnKey } from './cliques.js';
import { CONFIRM_TYPE, DOWNFLOW_TYPE, greeting, isRevoked, newSigningKey, ownKeyPair, pruneKeys, signingKeysOf, UPFLOW_TYPE, warn } from './helpers.js';
import { finish, startOver, type PacketIdOf, type StepCtx } from './outcome.js';
import type { MembershipState, Operation, Subsession } from './types.js';
import {
  contributorText,
  deriveSubsessionSecrets,
  finalKeyConfirmation,
  greetingText,
  memberKeyConfirmation,
  sessionIdV2,
  verifyContributor,
  type SubsessionSecrets,
} from './wire.js';

/** An upflow or the downflow of the ongoing v2 start or include (the caller matched OP_REF). */
export async function onContributionV2(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf): Promise<MembershipState> {
  const op = s.op!;
  const { env, fx } = ctx;
  const n = op.members.length;
  const index = op.members.indexOf(g.source);
  if (index < 0) throw new ProtocolError('unknown-member', `${g.source} is not in this operation`);
  const last = index === n - 1;
  if (op.nextIndex !== index || last !== (g.greetType === DOWNFLOW_TYPE[op.kind])) throw new ProtocolError('unexpected-packet', `not ${g.source}'s turn`);
  // By reference (issue 8: no n³ bytes): the member list and the earlier contributors' nonces
  // and keys are the operation's (OP_REF names it); the packet adds its sender's own.
  if (g.members.length !== 0 || g.nonces.length !== 1 || g.pubKeys.length !== 1) throw new ProtocolError('bad-value', 'a contribution carries its own nonce and key only');
  const nonces = [...op.nonces, g.nonces[0]!];
  const pubKeys = [...op.pubKeys, g.pubKeys[0]!];
  // No proof of possession of the ephemeral key is needed as long as no one can claim another
  // member's: a data packet is attributed by the key that verifies it.
  if (op.pubKeys.some((k) => bytesEqual(k, g.pubKeys[0]!))) throw new ProtocolError('bad-value', 'a signing key of another member');
  // Rule 2: every member checks every contribution before anyone builds on it or uses the key.
  const staticKey = env.keys.staticKey(g.source);
  if (staticKey === undefined) throw new ProtocolError('unknown-member', `no static key for ${g.source}`);
  if (!(await verifyContributor(env.crypto, g, staticKey))) throw new ProtocolError('bad-signature', `contribution of ${g.source} does not verify with its identity key`);
  fx.push({ kind: 'seen', member: g.source });

  if (!last) {
    if (g.intKeys.length !== index + 2 || g.dest !== op.members[index + 1]) throw new ProtocolError('bad-value', 'upflow INT_KEY count or DEST');
    requireFull(g.intKeys);
    const nextMember = op.members[index + 1]!;
    const next: Operation = {
      ...op,
      nextIndex: index + 1,
      intKeys: g.intKeys,
      nonces,
      pubKeys,
      turnSinceMs: env.nowMs,
      turnOnline: env.isOnline?.(nextMember) ?? true,
    };
    s = { ...s, op: next };
    if (next.initiator === s.self && next.turnOnline) fx.push({ kind: 'set-timer', atMs: env.nowMs + OPERATION_TIMEOUT_MS });
    return nextMember === s.self && op.role === 'participant' ? contributeV2(s, ctx) : s;
  }

  if (g.dest !== null || g.intKeys.length !== n) throw new ProtocolError('bad-value', 'downflow INT_KEY count or DEST');
  if (g.keyConfirmation === undefined) throw new ProtocolError('bad-record', 'final packet without KEY_CONFIRMATION');
  const intKeys = requireFull(g.intKeys);
  const sid = await sessionIdV2(env.crypto, op.members, nonces, op.opRef);
  let done: Operation = { ...op, nextIndex: -1, intKeys, nonces, pubKeys, sid };
  if (op.role === 'participant' && g.source !== s.self) {
    const j = op.members.indexOf(s.self);
    if (!hasContributed(op.contributions)) throw new ProtocolError('unexpected-packet', 'a downflow for a slot we never contributed to');
    const secrets = await ownSecrets(intKeys, j, op.contributions, ctx);
    // Rule 4: an insider cannot hand us a different key unnoticed. The packet is final for
    // everyone else, so we cannot fail it: we cannot use this subsession, and start over.
    if (secrets === null || !bytesEqual(await finalKeyConfirmation(env.crypto, secrets.confirmKey, sid), g.keyConfirmation)) {
      return startOver({ ...s, op: done }, ctx, 'key-mismatch');
    }
    done = { ...done, groupKey: secrets.groupKey, confirmKey: secrets.confirmKey };
  }
  return finish({ ...s, op: done }, ctx, idOf, false);
}

/**
 * Our secret from our slot of a final packet, or null when our slot is unusable (a small-order
 * point: only a malicious contributor puts one there, and only in our slot: warned here).
 */
export async function ownSecrets(intKeys: readonly Uint8Array[], index: number, key: OwnKey, ctx: StepCtx): Promise<SubsessionSecrets | null> {
  try {
    return await deriveSubsessionSecrets(ctx.env.crypto, await recipientSecretV2(ctx.env.crypto, intKeys, index, key));
  } catch (e) {
    if (!isProtocolError(e) || e.code !== 'low-order-point') throw e;
    warn(ctx.fx, 'low-order-point', null, 'our slot of the final packet is a small-order point');
    return null;
  }
}

/** Our turn in a v2 start or include (rule 1), or kept due while we catch up (rule 6). */
export async function contributeV2(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op!;
  if (op.abortSent || s.staticSeed === null) return s;
  if (ctx.env.quiet === true) return { ...s, due: { ...s.due, contribute: true } };
  const { crypto, random } = ctx.env;
  const i = op.nextIndex;
  assert(op.members[i] === s.self, 'contributeV2 on our turn only');
  const n = op.members.length;
  const eph = s.ephemeral ?? (await newSigningKey(ctx.env));
  const nonce = makeNonce(random);
  const nonces = [...op.nonces, nonce]; // our own packet carries only ours (by reference)
  const due = { ...s.due, contribute: false };
  if (i < n - 1) {
    const up = await upflowV2(crypto, random, op.intKeys, i, op.contributions);
    const fields = greeting(UPFLOW_TYPE[op.kind]!, s.self, op.members[i + 1]!, [], up.intKeys, [nonce], [eph.pub], { opRef: op.opRef });
    ctx.fx.push({ kind: 'send', text: await contributorText(crypto, s.staticSeed, fields) });
    return { ...s, ephemeral: eph, due, op: { ...op, contributions: up.key, nonce } };
  }
  const down = await downflowV2(crypto, random, op.intKeys, i, op.contributions);
  const secrets = await deriveSubsessionSecrets(crypto, down.own);
  const sid = await sessionIdV2(crypto, op.members, nonces, op.opRef);
  const keyConfirmation = await finalKeyConfirmation(crypto, secrets.confirmKey, sid);
  const fields = greeting(DOWNFLOW_TYPE[op.kind]!, s.self, null, [], down.intKeys, [nonce], [eph.pub], { opRef: op.opRef, keyConfirmation });
  ctx.fx.push({ kind: 'send', text: await contributorText(crypto, s.staticSeed, fields) });
  return { ...s, ephemeral: eph, due, op: { ...op, contributions: down.key, nonce, groupKey: secrets.groupKey, confirmKey: secrets.confirmKey } };
}

/**
 * Rule 5: our confirmation of the head subsession (only the head: a member catching up confirms
 * once, at the end), with our last messages in the subsession we confirmed before (FIN_PM).
 * Kept due while we catch up (rule 6).
 */
export async function sendConfirmation(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  if (ctx.env.quiet === true) return s;
  const cur = s.current;
  const done = { ...s, due: { ...s.due, confirm: false } };
  if (cur === null || cur.version !== 2 || cur.confirmKey === null || s.staticSeed === null) return done;
  const j = cur.members.indexOf(s.self);
  // Signed with our key as this subsession lists it (it may be an older one of ours).
  const signer = j < 0 ? undefined : ownKeyPair(s, signingKeysOf(cur)[j]!);
  if (signer === undefined || isRevoked(s, signer.pub)) return done;
  // Issue 9 §3: a fresh signing key for this subsession (the same one if we confirm it again),
  // so that the one we signed with before can be published once its subsessions are over.
  const renewed = s.renewal != null && bytesEqual(s.renewal.sid, cur.sid) ? s.renewal.pair : await newSigningKey(ctx.env);
  const keyConfirmation = await memberKeyConfirmation(ctx.env.crypto, cur.confirmKey, s.self, cur, renewed.pub);
  const finPms = ctx.env.lastWord?.(cur.sid) ?? [];
  const fields = greeting(CONFIRM_TYPE[cur.kind], s.self, null, [], [], [], [renewed.pub], { opRef: cur.opRef, keyConfirmation, ...(finPms.length > 0 && { finPms }) });
  const text = await greetingText(ctx.env.crypto, signer.seed, fields);
  ctx.fx.push({ kind: 'own-signing-key', sid: cur.sid, pair: renewed }, { kind: 'send', text });
  const older = s.ephemeral === null || bytesEqual(s.ephemeral.pub, renewed.pub) ? (s.ownKeys ?? []) : [...(s.ownKeys ?? []), s.ephemeral];
  return pruneKeys({ ...done, ephemeral: renewed, ownKeys: older, renewal: { sid: cur.sid, pair: renewed } });
}

/**
 * A member's confirmation of a subsession we hold (the current one or a recent one), checked
 * whenever it arrives (rule 5). Returns undefined when we hold no subsession of that OP_REF
 * (the caller decides whether that is old or foreign). Throws ProtocolError for a bad one.
 */
export async function onConfirmationV2(s: MembershipState, g: GreetingPacket, ctx: StepCtx): Promise<MembershipState | undefined> {
  const opRef = g.opRef!;
  const all = s.current === null ? s.recent : [...s.recent, s.current];
  const at = all.findIndex((sub) => bytesEqual(sub.opRef, opRef));
  if (at < 0) return undefined;
  const target = all[at]!;
  const member = g.source;
  const index = target.members.indexOf(member);
  if (index < 0) throw new ProtocolError('unknown-member', `${member} is not in the subsession it confirms`);
  if (g.greetType !== CONFIRM_TYPE[target.kind] || g.dest !== null || g.members.length + g.intKeys.length + g.nonces.length > 0 || g.pubKeys.length > 1) {
    throw new ProtocolError('bad-value', 'a confirmation names the operation and carries no lists but its new signing key');
  }
  if (target.finned.includes(member)) throw new ProtocolError('replay', `${member} confirmed twice`);
  const keys = signingKeysOf(target);
  // Deniability (issue 9 §3): a published key signs nothing any more, not even a confirmation
  // (it would hand its forger the member's next key).
  if (isRevoked(s, keys[index]!)) throw new ProtocolError('key-published', `a confirmation under ${member}'s published signing key`);
  // Issue 9: a confirmation's ephemeral signature is checked (its key was authenticated by the
  // member's static key when it was contributed, or by its confirmation before).
  if (!(await verifyGreeting(ctx.env.crypto, g, keys[index]!))) {
    throw new ProtocolError('bad-signature', `confirmation of ${member} does not verify`);
  }
  if (g.keyConfirmation === undefined) throw new ProtocolError('bad-record', 'confirmation without KEY_CONFIRMATION');
  const renewed = g.pubKeys[0];
  // (Public keys: a screened comparison; issue 8, n checks per confirmation per member.)
  if (renewed !== undefined && (includesPublicBytes(target.ephemeralPubKeys, renewed) || includesPublicBytes(keys, renewed))) {
    throw new ProtocolError('bad-value', 'a renewed signing key must be fresh');
  }
  ctx.fx.push({ kind: 'seen', member });
  if (target.confirmKey !== null) {
    const expected = await memberKeyConfirmation(ctx.env.crypto, target.confirmKey, member, target, renewed);
    if (!bytesEqual(expected, g.keyConfirmation)) {
      warn(ctx.fx, 'key-mismatch', member, `${member} holds another key or another copy of the operation that made this subsession`);
      return s;
    }
  }
  ctx.fx.push({ kind: 'confirmed', sid: target.sid, member, finPms: g.finPms ?? [], ...(renewed !== undefined && { signingKey: renewed }) });
  const updated: Subsession = {
    ...target,
    confirmed: target.confirmed.includes(member) ? target.confirmed : [...target.confirmed, member],
    finned: [...target.finned, member],
    ...(renewed !== undefined && { signingKeys: keys.map((k, i) => (i === index ? renewed : k)) }),
  };
  const next = target === s.current ? { ...s, current: updated } : { ...s, recent: s.recent.map((r) => (r === target ? updated : r)) };
  return renewed !== undefined && member === s.self ? pruneKeys(next) : next;
}

/** Members of `op` who must still contribute, and whether they are all shown online. */
export function awaitedOnline(op: Operation, isOnline: ((m: MemberId) => boolean) | undefined): boolean {
  if (op.nextIndex < 0) return false;
  return op.members.slice(op.nextIndex).every((m) => isOnline?.(m) ?? true);
}
