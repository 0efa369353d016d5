/**
 * ServerOrder: the concurrency resolver (mpENC §3.3, §4.3). The relay's order is the one order
 * of the channel; we accept the EARLIEST initial packet whose parent reference (PREV_PF) is the
 * final packet of the last finished operation, reject every other, and chain a hash over the
 * accepted initial and final packets (mpenc-wire.md "Ids and the chain hash"):
 *   CH = SHA-256(prevCH ‖ packetId ‖ ptype), CH0 = SHA-256(packetId0 ‖ 0xFF).
 *
 * Covey (closing mpENC §6.1.1): an operation also ends at an accepted ABORT packet or when a
 * target member leaves the channel; both are chained like a final packet, so the next operation's
 * parent is the same for everyone. The chain hash right after an initial packet (the operation's
 * `opRef`) is bound into every v2 session signature and carried by every later v2 packet of the
 * operation, so members shown different orders cannot finish an operation together.
 *
 * Pure: values in, new values out; the ids are opaque here.
 */
import { bytesEqual, concatBytes, latin1Encode } from '../bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { assert } from '../errors.js';
import { chainHash, type ChainHash, type PacketId } from '../ids.js';
import { MAX_REMEMBERED_OPERATIONS, MAX_WITNESSED_INITIALS } from '../limits.js';
import { chainHashStep, genesisChainHash, makeGenesisPacketId, type ChainPacketType } from '../packets/ids.js';
import type { RandomSource } from '../random.js';

/**
 * How a chained packet took part in its operation. 'abort' is Covey's (an accepted ABORT packet
 * ends the operation with failure); its ptype is "\xFFabort", next to mpenc_js's "\xFFleave".
 */
export type ChainRole = ChainPacketType | 'abort';

const ABORT_PTYPE = latin1Encode('\xffabort');

/** Chain entries kept: an initial and a final packet per remembered operation, and the parent. */
const MAX_CHAIN_ENTRIES = 2 * MAX_REMEMBERED_OPERATIONS + 1;

/** One step of the chain: SHA-256(prevCH ‖ packetId ‖ ptype) (mpenc-wire.md). */
export async function chainStep(crypto: CryptoProvider, prev: ChainHash, id: PacketId, role: ChainRole): Promise<ChainHash> {
  if (role !== 'abort') return chainHashStep(crypto, prev, id, role);
  return chainHash(await crypto.sha256(concatBytes(prev, id, ABORT_PTYPE)));
}

/** Genesis of a new chain: a random packet id and CH0 = SHA-256(packetId0 ‖ 0xFF). */
export async function genesis(crypto: CryptoProvider, random: RandomSource): Promise<ChainEntry> {
  const id = makeGenesisPacketId(random);
  return { packetId: id, chainHash: await genesisChainHash(crypto, id) };
}

/** One accepted entry of the chain, as mpenc_js's serverOrder lists them. */
export interface ChainEntry {
  readonly packetId: PacketId;
  readonly chainHash: ChainHash;
}

export interface FinishedOperation {
  /** Chain hash right after the operation's initial packet: its id in v2 packets. */
  readonly opRef: ChainHash;
  readonly finalId: PacketId;
  readonly succeeded: boolean;
  /** It failed at a packet that failed our checks (others may have seen it succeed). */
  readonly failedOurChecks?: boolean;
}

export interface ServerOrder {
  /** Chain so far, oldest first (bounded: the oldest entries are dropped). Empty: no chain yet. */
  readonly chain: readonly ChainEntry[];
  /** The accepted operation not finished yet, if any. */
  readonly ongoing: { readonly initialId: PacketId; readonly opRef: ChainHash } | null;
  /** Recently finished operations, oldest first, to tell late packets from foreign ones. */
  readonly finished: readonly FinishedOperation[];
  /**
   * The OP_REFs that initial packets we refused (they lost a race) would have had: a member who
   * later names one of them accepted what we refused, so the group's order was forked.
   */
  readonly refused: readonly ChainHash[];
}

export const EMPTY_ORDER: ServerOrder = { chain: [], ongoing: null, finished: [], refused: [] };

export function lastEntry(order: ServerOrder): ChainEntry | null {
  return order.chain.length === 0 ? null : order.chain[order.chain.length - 1]!;
}

export type InitialVerdict =
  | { readonly accept: true; readonly order: ServerOrder; readonly opRef: ChainHash }
  /** 'ongoing': an operation is running; 'stale': parent is an older final we know (a normal
   * lost race); 'unknown-parent': parent is nothing we ever accepted. */
  | { readonly accept: false; readonly reason: 'ongoing' | 'stale' | 'unknown-parent' };

/**
 * Whether a parent we never accepted may be older than our whole chain, i.e. from before our
 * time rather than from another history: our chain starts where a joiner takes it, at the parent
 * of the include that added us (mpenc-wire.md "Joiners take PREV_PF and CHAIN_HASH"), not at a
 * genesis (CH0 = SHA-256(packetId0 ‖ 0xFF), which only the group's start builds on), and it still
 * holds that start. A chain trimmed to its last MAX_REMEMBERED_OPERATIONS operations counts as
 * whole: no honest proposal is that far behind (proposers catch up first, async-groups rule 6).
 */
export async function startsMidHistory(crypto: CryptoProvider, order: ServerOrder): Promise<boolean> {
  const first = order.chain[0];
  if (first === undefined || order.chain.length >= MAX_CHAIN_ENTRIES) return false;
  return !bytesEqual(first.chainHash, await genesisChainHash(crypto, first.packetId));
}

/**
 * An initial packet a newcomer saw ordered while it could not check the group's chain (it held
 * no subsession, or a provisional one): its id, its parent, and whether it is also final
 * (exclude, refresh). Nothing in it is trusted: it only lets `witnessedAncestor` recompute chain
 * hashes that a verified include commits to.
 */
export interface WitnessedInitial {
  readonly packetId: PacketId;
  readonly parent: ChainEntry;
  readonly oneShot: boolean;
}

/** Remembers one more witnessed initial packet (the last MAX_WITNESSED_INITIALS). */
export function witness(witnessed: readonly WitnessedInitial[], w: WitnessedInitial): readonly WitnessedInitial[] {
  const all = [...witnessed, w];
  return all.length > MAX_WITNESSED_INITIALS ? all.slice(all.length - MAX_WITNESSED_INITIALS) : all;
}

/**
 * Whether `parent` is an earlier point of the chain ours continues (README "A parent we never
 * saw"). A joiner's chain starts at the parent of the include that added it, whose initiator's
 * static signature covers that parent (rule 2). Walking back from there, a step is an initial
 * packet we saw whose chain step recomputes the point: CH = SHA-256(prevCH ‖ packetId ‖ ptype)
 * (mpenc-wire.md), so by collision resistance it is the step that initiator's chain took, through
 * `w.parent`, where it accepted `w`. ServerOrder accepts one initial packet per parent (the
 * earliest; the chain then moves on for good), so any other proposal on such a point lost a race.
 */
export async function witnessedAncestor(crypto: CryptoProvider, order: ServerOrder, witnessed: readonly WitnessedInitial[], parent: { readonly prevPf: PacketId; readonly chainHash: ChainHash }): Promise<boolean> {
  let point = order.chain[0];
  // Each step uses a different packet (chain hashes never repeat), so there are at most as many.
  for (let steps = 0; point !== undefined && steps < witnessed.length; steps++) {
    point = await stepBack(crypto, point, witnessed);
    if (point !== undefined && bytesEqual(point.packetId, parent.prevPf) && bytesEqual(point.chainHash, parent.chainHash)) return true;
  }
  return false;
}

/** The point before `point`, if a witnessed initial packet leads from it to `point`. */
async function stepBack(crypto: CryptoProvider, point: ChainEntry, witnessed: readonly WitnessedInitial[]): Promise<ChainEntry | undefined> {
  for (const w of witnessed) {
    if (w.oneShot) {
      // An exclude or refresh is chained once, as initial-final: it is the point itself.
      if (bytesEqual(w.packetId, point.packetId) && bytesEqual(await chainStep(crypto, w.parent.chainHash, w.packetId, 'initial-final'), point.chainHash)) return w.parent;
      continue;
    }
    // A start or include ended at the point's packet: its final packet, an abort, or a leave.
    const opRef = await chainStep(crypto, w.parent.chainHash, w.packetId, 'initial');
    for (const role of ['final', 'abort', 'leave'] as const) {
      if (bytesEqual(await chainStep(crypto, opRef, point.packetId, role), point.chainHash)) return w.parent;
    }
  }
  return undefined;
}

/** Whether an initial packet with this parent would be accepted now, without chaining it. */
export function parentVerdict(order: ServerOrder, parent: { readonly prevPf: PacketId; readonly chainHash: ChainHash }): 'ok' | 'ongoing' | 'stale' | 'unknown-parent' {
  if (order.ongoing !== null) return 'ongoing';
  const last = lastEntry(order);
  if (last === null || (bytesEqual(last.packetId, parent.prevPf) && bytesEqual(last.chainHash, parent.chainHash))) return 'ok';
  // Stale: it names an earlier point of OUR chain, packet and chain hash alike (a lost race). A
  // packet of ours with another chain hash is no race: the history differs (or was altered).
  return order.chain.some((e) => e !== last && bytesEqual(e.packetId, parent.prevPf) && bytesEqual(e.chainHash, parent.chainHash)) ? 'stale' : 'unknown-parent';
}

/**
 * mpENC §3.3: accept the initial packet `id` iff no operation is ongoing and its parent is the
 * last finished operation's final packet. A member with no chain yet (a joiner) starts from the
 * packet's own PREV_PF and CHAIN_HASH (mpenc-wire.md "Joiners take PREV_PF and CHAIN_HASH").
 */
export async function acceptInitial(
  crypto: CryptoProvider,
  order: ServerOrder,
  id: PacketId,
  parent: { readonly prevPf: PacketId; readonly chainHash: ChainHash },
  oneShot: boolean,
): Promise<InitialVerdict> {
  if (order.ongoing !== null) return { accept: false, reason: 'ongoing' };
  let base = order;
  const last = lastEntry(order);
  if (last === null) {
    base = { ...order, chain: [{ packetId: parent.prevPf, chainHash: parent.chainHash }] };
  } else if (!bytesEqual(last.packetId, parent.prevPf) || !bytesEqual(last.chainHash, parent.chainHash)) {
    const verdict = parentVerdict(order, parent);
    return { accept: false, reason: verdict === 'stale' ? 'stale' : 'unknown-parent' };
  }
  const prev = lastEntry(base)!;
  const role: ChainRole = oneShot ? 'initial-final' : 'initial';
  const opRef = await chainStep(crypto, prev.chainHash, id, role);
  let next: ServerOrder = { ...base, chain: bounded([...base.chain, { packetId: id, chainHash: opRef }]), ongoing: { initialId: id, opRef } };
  if (oneShot) next = { ...next, ongoing: null, finished: remember(next.finished, { opRef, finalId: id, succeeded: true }) };
  return { accept: true, order: next, opRef };
}

/**
 * Ends the ongoing operation at packet `id` (a final packet, an abort, or a leave pseudo packet).
 * `failedOurChecks`: an abort that is our own verdict on a bad packet (outcome.failAt).
 */
export async function acceptFinal(crypto: CryptoProvider, order: ServerOrder, id: PacketId, role: 'final' | 'leave' | 'abort', failedOurChecks = false): Promise<ServerOrder> {
  assert(order.ongoing !== null, 'acceptFinal without an ongoing operation');
  const prev = lastEntry(order)!;
  const ch = await chainStep(crypto, prev.chainHash, id, role);
  const done: FinishedOperation = { opRef: order.ongoing.opRef, finalId: id, succeeded: role === 'final', ...(failedOurChecks && { failedOurChecks }) };
  return { ...order, chain: bounded([...order.chain, { packetId: id, chainHash: ch }]), ongoing: null, finished: remember(order.finished, done) };
}

/** Remembers the OP_REF a refused initial packet would have had (see ServerOrder.refused). */
export function rememberRefused(order: ServerOrder, opRef: ChainHash): ServerOrder {
  const all = [...order.refused, opRef];
  return { ...order, refused: all.length > MAX_REMEMBERED_OPERATIONS ? all.slice(all.length - MAX_REMEMBERED_OPERATIONS) : all };
}

export function wasRefused(order: ServerOrder, opRef: ChainHash): boolean {
  return order.refused.some((r) => bytesEqual(r, opRef));
}

/** The finished operation named `opRef`, if we saw it finish. */
export function finishedOperation(order: ServerOrder, opRef: ChainHash): FinishedOperation | undefined {
  return order.finished.find((f) => bytesEqual(f.opRef, opRef));
}

/** Whether `opRef` names an operation we accepted and saw finish (a late packet is benign). */
export function isFinishedOperation(order: ServerOrder, opRef: ChainHash): boolean {
  return order.finished.some((f) => bytesEqual(f.opRef, opRef));
}

/** How an operation we saw finish ended (true: succeeded), or undefined when we never saw it. */
export function finishedOutcome(order: ServerOrder, opRef: ChainHash): boolean | undefined {
  return order.finished.find((f) => bytesEqual(f.opRef, opRef))?.succeeded;
}

export function isOngoingOperation(order: ServerOrder, opRef: ChainHash): boolean {
  return order.ongoing !== null && bytesEqual(order.ongoing.opRef, opRef);
}

/** Chain hash at the last accepted packet (what the next initial packet must carry). */
export function head(order: ServerOrder): ChainEntry | null {
  return lastEntry(order);
}

function bounded(chain: readonly ChainEntry[]): readonly ChainEntry[] {
  return chain.length > MAX_CHAIN_ENTRIES ? chain.slice(chain.length - MAX_CHAIN_ENTRIES) : chain;
}

function remember(finished: readonly FinishedOperation[], op: FinishedOperation): readonly FinishedOperation[] {
  const all = [...finished, op];
  return all.length > MAX_REMEMBERED_OPERATIONS ? all.slice(all.length - MAX_REMEMBERED_OPERATIONS) : all;
}

