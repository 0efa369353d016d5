/**
 * mpENC v1 operations as mpenc_js runs them (mpENC §5.2.2; mpenc-wire.md): upflow, downflow and
 * every member's confirmation with its SESSION_SIGNATURE; the operation ends at the last
 * confirmation. Covey always sends v2 (flow-v2.ts); this keeps v1 traffic readable (the passive
 * observer of the mpenc_js trace) and lets a v1 peer include us.
 */
import { bytesEqual } from '../bytes.js';
import type { GreetingPacket } from '../codec/greeting.js';
import { ProtocolError } from '../errors.js';
import type { SessionId } from '../ids.js';
import { makeNonce, makeSessionId, type SessionAck } from '../packets/aske.js';
import { verifyGreeting } from '../packets/greeting-signature.js';
import { deriveGroupKey } from '../packets/group-key.js';
import { asList, downflow, hasContributed, recipientSecret, requireFull, upflow } from './cliques.js';
import { CONFIRM_TYPE, DOWNFLOW_TYPE, greeting, newSigningKey, sameKeys, sameMembers, UPFLOW_TYPE } from './helpers.js';
import { finish, type PacketIdOf, type StepCtx } from './outcome.js';
import type { MembershipEnv, MembershipState, Operation } from './types.js';
import { greetingText, signAck, verifyAck } from './wire.js';

/** Upflow, downflow and confirmation packets of the ongoing v1 operation. */
export async function onOperationPacketV1(s: MembershipState, g: GreetingPacket, ctx: StepCtx, idOf: PacketIdOf): Promise<MembershipState> {
  const op = s.op;
  if (op === null) return s; // v1 has no operation reference: nothing to match it to
  if (op.version !== 1) throw new ProtocolError('bad-value', 'protocol version changed within an operation');
  const { env } = ctx;
  const n = op.members.length;
  const index = op.members.indexOf(g.source);
  if (index < 0) throw new ProtocolError('unknown-member', `${g.source} is not in this operation`);
  if (!sameMembers(g.members, op.members)) throw new ProtocolError('bad-value', 'MEMBER list differs from the operation');

  if (g.greetType === UPFLOW_TYPE[op.kind] || g.greetType === DOWNFLOW_TYPE[op.kind]) {
    const last = index === n - 1;
    if (op.nextIndex !== index || last !== (g.greetType === DOWNFLOW_TYPE[op.kind])) throw new ProtocolError('unexpected-packet', `not ${g.source}'s turn`);
    if (g.nonces.length !== index + 1 || g.pubKeys.length !== index + 1) throw new ProtocolError('bad-value', 'upflow lists of the wrong length');
    if (!sameKeys(g.nonces.slice(0, index), op.nonces) || !sameKeys(g.pubKeys.slice(0, index), op.pubKeys)) {
      throw new ProtocolError('bad-value', 'earlier contributions altered');
    }
    // v1: an upflow packet is checked by the member it is addressed to, who builds on it; the
    // downflow by everyone (mpenc_js).
    const mustVerify = last || g.dest === s.self;
    if (mustVerify && !(await verifyGreeting(env.crypto, g, g.pubKeys[index]!))) {
      throw new ProtocolError('bad-signature', `${last ? 'downflow' : 'upflow'} of ${g.source} does not verify`);
    }
    if (!last) {
      if (g.intKeys.length !== index + 2 || g.dest !== op.members[index + 1]) throw new ProtocolError('bad-value', 'upflow INT_KEY count or DEST');
      requireFull(g.intKeys);
      const next: Operation = { ...op, nextIndex: index + 1, intKeys: g.intKeys, nonces: g.nonces, pubKeys: g.pubKeys };
      s = { ...s, op: next };
      return g.dest === s.self && op.role === 'participant' ? contributeV1(s, ctx) : s;
    }
    if (g.dest !== null || g.intKeys.length !== n) throw new ProtocolError('bad-value', 'downflow INT_KEY count or DEST');
    requireFull(g.intKeys);
    const sid = await makeSessionId(env.crypto, op.members, g.nonces);
    const withLists: Operation = { ...op, nextIndex: -1, intKeys: g.intKeys, nonces: g.nonces, pubKeys: g.pubKeys };
    await checkAckV1(env, withLists, g, sid, index);
    s = { ...s, op: { ...withLists, sid, confirmed: [g.source] } };
    if (op.role === 'participant' && g.source !== s.self) s = await receiveDownflowV1(s, env, ctx);
    return s;
  }

  if (g.greetType === CONFIRM_TYPE[op.kind]) {
    if (op.sid === null) throw new ProtocolError('unexpected-packet', 'confirmation before the downflow');
    if (op.confirmed.includes(g.source)) throw new ProtocolError('replay', `${g.source} confirmed twice`);
    if (!sameKeys(g.nonces, op.nonces) || !sameKeys(g.pubKeys, op.pubKeys) || g.intKeys.length !== 0) {
      throw new ProtocolError('bad-value', 'confirmation lists differ from the operation');
    }
    if (!(await verifyGreeting(env.crypto, g, op.pubKeys[index]!))) {
      throw new ProtocolError('bad-signature', `confirmation of ${g.source} does not verify`);
    }
    await checkAckV1(env, op, g, op.sid, index);
    const confirmed = [...op.confirmed, g.source];
    s = { ...s, op: { ...op, confirmed } };
    return confirmed.length === n ? finish(s, ctx, idOf, false) : s;
  }
  throw new ProtocolError('unexpected-packet', `greeting type 0x${g.greetType.toString(16)} in a ${op.kind}`);
}

/** Verifies the SESSION_SIGNATURE of op.members[index] in `g` over `sid` (mpENC §5.2.2 phase 3). */
export async function checkAckV1(env: MembershipEnv, op: Operation, g: GreetingPacket, sid: SessionId, index: number): Promise<void> {
  const member = op.members[index]!;
  if (g.sessionSignature === undefined) throw new ProtocolError('bad-record', `no SESSION_SIGNATURE from ${member}`);
  const staticKey = env.keys.staticKey(member);
  if (staticKey === undefined) throw new ProtocolError('unknown-member', `no static key for ${member}`);
  const ack: SessionAck = { member, ephemeralPubKey: g.pubKeys[index]!, nonce: g.nonces[index]!, sessionId: sid };
  if (!(await verifyAck(env.crypto, staticKey, g.sessionSignature, ack, null))) {
    throw new ProtocolError('bad-signature', `session signature of ${member} does not verify`);
  }
}

/** Our v1 upflow turn (mpENC §5.2.1 "Upflow"; §5.2.2 phase 1), or the downflow if we are last. */
export async function contributeV1(s: MembershipState, ctx: StepCtx): Promise<MembershipState> {
  const { env } = ctx;
  const op = s.op!;
  if (op.abortSent || s.staticSeed === null) return s;
  const { crypto, random } = env;
  const i = op.nextIndex;
  const n = op.members.length;
  const eph = s.ephemeral ?? (await newSigningKey(env));
  const nonce = makeNonce(random);
  const nonces = [...op.nonces, nonce];
  const pubKeys = [...op.pubKeys, eph.pub];
  if (i < n - 1) {
    const up = await upflow(crypto, random, op.intKeys, i, asList(op.contributions!));
    const fields = greeting(UPFLOW_TYPE[op.kind]!, s.self, op.members[i + 1]!, op.members, up.intKeys, nonces, pubKeys, {}, 1);
    ctx.fx.push({ kind: 'send', text: await greetingText(crypto, eph.seed, fields) });
    return { ...s, ephemeral: eph, op: { ...op, contributions: up.contributions, nonce } };
  }
  const down = await downflow(crypto, random, op.intKeys, i, asList(op.contributions!));
  const groupKey = await deriveGroupKey(crypto, down.secret);
  const sid = await makeSessionId(crypto, op.members, nonces);
  const sessionSignature = await signAck(crypto, s.staticSeed, { member: s.self, ephemeralPubKey: eph.pub, nonce, sessionId: sid }, null);
  const fields = greeting(DOWNFLOW_TYPE[op.kind]!, s.self, null, op.members, down.intKeys, nonces, pubKeys, { sessionSignature }, 1);
  ctx.fx.push({ kind: 'send', text: await greetingText(crypto, eph.seed, fields) });
  return { ...s, ephemeral: eph, op: { ...op, contributions: down.contributions, nonce, groupKey } };
}

/** A v1 downflow reached us: derive the key and send our confirmation (mpENC §5.2.2 phase 2). */
export async function receiveDownflowV1(s: MembershipState, env: MembershipEnv, ctx: StepCtx): Promise<MembershipState> {
  const op = s.op!;
  if (op.abortSent || s.staticSeed === null) return s;
  const j = op.members.indexOf(s.self);
  const eph = s.ephemeral;
  // "checking that the values supposedly contributed by them actually match what they output"
  if (eph === null || !bytesEqual(op.pubKeys[j]!, eph.pub) || (op.nonce !== null && !bytesEqual(op.nonces[j]!, op.nonce))) {
    throw new ProtocolError('bad-signature', 'our own contribution was altered in the downflow');
  }
  if (!hasContributed(op.contributions)) {
    throw new ProtocolError('unexpected-packet', 'a downflow for a slot we never contributed to');
  }
  const secret = await recipientSecret(env.crypto, op.intKeys, j, asList(op.contributions));
  const groupKey = await deriveGroupKey(env.crypto, secret);
  const nonce = op.nonces[j]!;
  const sessionSignature = await signAck(env.crypto, s.staticSeed, { member: s.self, ephemeralPubKey: eph.pub, nonce, sessionId: op.sid! }, null);
  const fields = greeting(CONFIRM_TYPE[op.kind], s.self, null, op.members, [], op.nonces, op.pubKeys, { sessionSignature }, 1);
  ctx.fx.push({ kind: 'send', text: await greetingText(env.crypto, eph.seed, fields) });
  return { ...s, op: { ...op, groupKey, nonce } };
}
