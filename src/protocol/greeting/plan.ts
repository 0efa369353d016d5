/**
 * Rule 10 (shared/spec/async-groups.md): newcomers are included by an online member: the one who
 * invited them after a short gathering delay (newcomers who join close together are included
 * together), any other after a backoff by rank; at most one proposal per event.
 */
import type { MemberId } from '../ids.js';
import { INCLUDE_BACKOFF_MS, INCLUDE_GATHER_MS } from '../limits.js';
import { relayTime } from './helpers.js';
import type { StepCtx } from './outcome.js';
import type { MembershipEnv, MembershipState } from './types.js';

/** Channel members outside our subsession (not asking to rejoin from inside it), shown online. */
export function onlineNewcomers(s: MembershipState, env: MembershipEnv, alsoOnline: MemberId | null = null): MemberId[] {
  const cur = s.current;
  return s.channel.filter((m) => m !== s.self && !(cur?.members.includes(m) ?? false) && (m === alsoOnline || (env.isOnline?.(m) ?? true)));
}

export function isInviter(s: MembershipState, env: MembershipEnv): boolean {
  return s.invitedUntilMs !== null && relayTime(env) <= s.invitedUntilMs;
}

/**
 * Plans the automatic include for the event `forSeq`. A solo member starts the group only if it
 * is the inviter. `alsoOnline`: a member that just announced itself (its presence is counted
 * only after this step).
 */
export function planInclude(s: MembershipState, ctx: StepCtx, forSeq: number, alsoOnline: MemberId | null = null): MembershipState {
  const { env } = ctx;
  if (!s.autoInclude || s.passive || s.staticSeed === null || !s.channel.includes(s.self)) return s;
  if (onlineNewcomers(s, env, alsoOnline).length === 0) return s;
  const inviter = isInviter(s, env);
  if (s.current === null && !inviter) return s;
  const ranked = [...(s.current?.members ?? [s.self])].sort();
  const delay = inviter ? INCLUDE_GATHER_MS : INCLUDE_BACKOFF_MS * (1 + ranked.indexOf(s.self));
  const atMs = env.nowMs + delay;
  if (s.plannedInclude !== null && s.plannedInclude.atMs <= atMs) return s;
  ctx.fx.push({ kind: 'set-timer', atMs });
  return { ...s, plannedInclude: { atMs, forSeq } };
}
