/**
 * What the messages benchmark runs on: real Sessions whose subsession is already agreed (a fixed
 * membership stands in for the greeting, which `bench:protocol -- greet` measures), and a queue of
 * data packets with a realistic DAG for the catch-up figure.
 *
 * Setup work (keys, the queue) happens here, outside any timing.
 */
import { utf8Encode } from '../src/protocol/bytes.js';
import type { ChannelPacket } from '../src/protocol/channel.js';
import { encodePacket } from '../src/protocol/codec/packet.js';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import { hexDecode } from '../src/protocol/bytes.js';
import { idKey, memberId, messageId, sessionId, type MemberId } from '../src/protocol/ids.js';
import { sealDataPacket } from '../src/protocol/packets/data.js';
import { SenderChains } from '../src/protocol/packets/ratchet.js';
import { makeMessageId } from '../src/protocol/packets/ids.js';
import type { RandomSource } from '../src/protocol/random.js';
import type { SessionEffect } from '../src/protocol/session/effects.js';
import type { Membership, MembershipOutput, SubsessionSetup } from '../src/protocol/session/membership.js';
import { Session } from '../src/protocol/session/session.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from '../src/protocol/session/config.js';
import { Transcript } from '../src/protocol/transcript/transcript.js';
import { seededRandom } from '../tests/helpers/seeded-random.js';

/** Fresh randomness for IVs (the engine's own source in production). */
export const systemRandom: RandomSource = (length) => globalThis.crypto.getRandomValues(new Uint8Array(length));

/** Every member's view of one agreed subsession; keys derived from `label` (bench only). */
export async function benchSetups(members: readonly MemberId[], label: string): Promise<Map<MemberId, SubsessionSetup>> {
  const crypto = nobleProvider;
  const seeds = new Map<MemberId, Uint8Array>();
  const signingKeys = new Map<MemberId, Uint8Array>();
  for (const m of members) {
    const seed = await crypto.sha256(utf8Encode(`bench-seed:${label}:${m}`));
    seeds.set(m, seed);
    signingKeys.set(m, await crypto.ed25519PublicKey(seed));
  }
  const keys = {
    sessionId: sessionId(await crypto.sha256(utf8Encode(`bench-sid:${label}`))),
    groupKey: await crypto.sha256(utf8Encode(`bench-gk:${label}`)),
  };
  return new Map(members.map((m) => [m, { members: [...members], keys, signingKeys, ownSigningSeed: seeds.get(m)! }]));
}

/** The membership half after an agreed start: it installs `setup` once everyone is in the channel. */
class AgreedMembership implements Membership {
  private done = false;

  constructor(private readonly setup: SubsessionSetup) {}

  async channelChanged(event: { readonly members: readonly MemberId[] }): Promise<MembershipOutput[]> {
    if (this.done || !this.setup.members.every((m) => event.members.includes(m))) return [];
    this.done = true;
    return [{ kind: 'completed', subsession: this.setup }];
  }

  async receivePacket(): Promise<MembershipOutput[]> {
    return [{ kind: 'warn', text: 'the benchmark sends no greeting packets' }];
  }

  async propose(): Promise<MembershipOutput[]> {
    return [{ kind: 'failed', reason: 'the benchmark runs no membership operations' }];
  }

  async tick(): Promise<MembershipOutput[]> {
    return [];
  }

  nextDeadlineMs(): number | undefined {
    return undefined;
  }

  snapshot(): unknown {
    return null;
  }
}

/** Sessions of `members`, all in one active subsession (keys from `label`). */
export async function agreedSessions(
  crypto: CryptoProvider,
  members: readonly MemberId[],
  label: string,
  nowMs: number,
  config: SessionConfig = DEFAULT_SESSION_CONFIG,
): Promise<Session[]> {
  const setups = await benchSetups(members, label);
  const sessions: Session[] = [];
  for (const m of members) {
    const session = new Session(m, { crypto, random: systemRandom }, new AgreedMembership(setups.get(m)!), config);
    const effects = await session.receive({ kind: 'joined', seq: 0, joined: [...members], members: [...members] }, nowMs);
    if (!effects.some((e) => e.kind === 'notice' && e.notice.kind === 'subsession-started')) {
      throw new Error(`${m}: the agreed subsession did not start`);
    }
    sessions.push(session);
  }
  return sessions;
}

export function sentTexts(effects: readonly SessionEffect[]): string[] {
  return effects.flatMap((e) => (e.kind === 'send' ? [e.text] : []));
}

export function deliveredTexts(effects: readonly SessionEffect[]): string[] {
  return effects.flatMap((e) => (e.kind === 'deliver' ? [e.message.text] : []));
}

export function warnings(effects: readonly SessionEffect[]): string[] {
  return effects.flatMap((e) => (e.kind === 'warn' ? [JSON.stringify(e.warning)] : []));
}

export function names(prefix: string, count: number): MemberId[] {
  return Array.from({ length: count }, (_, i) => memberId(`${prefix}${i}`));
}

/** Messages written while one member was away, in the relay's order, for that member to catch up. */
export interface CatchUpQueue {
  /** The authors, the member catching up (who wrote nothing), then any members asleep. */
  readonly members: readonly MemberId[];
  readonly reader: MemberId;
  /** Keys label for `agreedSessions`. */
  readonly label: string;
  readonly packets: readonly ChannelPacket[];
  /** The payload texts in queue order. */
  readonly texts: readonly string[];
  /** Most parents any message has (a check that the DAG is not a single line). */
  readonly maxParents: number;
}

/** An author has seen all but up to this many of the latest messages (relay and network lag). */
const MAX_LAG = 4;

/**
 * `count` payloads from `authors` authors, each author chosen at random per message. Each author
 * writes with parents = the heads of what it has seen: everything but the last 0..MAX_LAG
 * messages of others (their own always), so authors' lines chain and concurrent messages merge.
 * Sealed with `crypto` (any provider: packets do not depend on it). `asleep` more members read
 * nothing (bench:catchup's second reader): every message then waits for their acks.
 */
export async function buildCatchUpQueue(crypto: CryptoProvider, count: number, authors: number, seed = 1, asleep = 0): Promise<CatchUpQueue> {
  const writers = names('author', authors);
  const reader = memberId('reader');
  const members = [...writers, reader, ...names('asleep', asleep)];
  const label = asleep === 0 ? `catch-up:${seed}` : `catch-up:${seed}:${asleep}`;
  const setups = await benchSetups(members, label);
  // Issue 9 §3: v2 packets are under each author's hash chain (every member derives the same).
  const anySetup = setups.get(reader)!;
  const chains = await SenderChains.derive(crypto, anySetup.keys.groupKey, anySetup.keys.sessionId, members);
  const rng = seededRandom(seed);
  const views = writers.map(() => new Transcript<null>(members));
  const seen = writers.map(() => 0);
  const all: { id: string; author: MemberId; parents: readonly string[]; body: null }[] = [];
  const packets: ChannelPacket[] = [];
  const texts: string[] = [];
  let maxParents = 0;
  for (let k = 0; k < count; k++) {
    const a = rng.int(authors);
    const author = writers[a]!;
    const view = views[a]!;
    // A prefix of the relay order (plus the author's own messages) is causally closed.
    const upTo = Math.max(seen[a]!, all.length - rng.int(MAX_LAG + 1));
    for (let j = seen[a]!; j < upTo; j++) if (!view.has(all[j]!.id)) view.add(all[j]!);
    seen[a] = upTo;
    const parents = view.frontier();
    maxParents = Math.max(maxParents, parents.length);
    const text = `message ${k} from ${author}: a chat line of ordinary length, some sixty to ninety characters.`;
    const setup = setups.get(author)!;
    const index = chains.nextIndex(author)!;
    const messageKey = (await chains.take(crypto, author, index))!;
    const packet = await sealDataPacket(crypto, systemRandom, {
      keys: setup.keys,
      ephemeralSeed: setup.ownSigningSeed,
      content: { parents: parents.map((p) => messageId(hexDecode(p))), body: { type: 'payload', text } },
      chain: { index, messageKey },
    });
    const message = { id: idKey(await makeMessageId(crypto, packet)), author, parents, body: null };
    view.add(message);
    all.push(message);
    packets.push({ kind: 'packet', seq: k + 1, sender: author, text: encodePacket(packet) });
    texts.push(text);
  }
  return { members, reader, label, packets, texts, maxParents };
}
