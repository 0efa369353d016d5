/**
 * The MLS baseline (RFC 9420, ts-mls 1.6 with its default WebCrypto provider) that the protocol
 * benchmarks put beside mpENC: start a group, add one, remove one, and application messages.
 *
 * Every figure is the work of ALL members summed (committer and every receiver), like the mpENC
 * side: the members run one after another in this process, so process CPU time is the total. Each
 * operation goes through the wire format (encodeMlsMessage / decodeMlsMessage), as it would between
 * devices; the Welcome carries the ratchet tree (ratchet_tree extension), so joiners need no
 * out-of-band tree. Key packages are what MLS clients publish in advance, so their generation is
 * reported apart (`keyPackages`) and not counted in `timing`.
 *
 * Each function also returns what a smoke test needs to see that the work really happened: the
 * final epoch and whether every member derived the same epoch authenticator.
 */
import { performance } from 'node:perf_hooks';
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processMessage,
  type CiphersuiteImpl,
  type CiphersuiteName,
  type ClientState,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  type Welcome,
} from 'ts-mls';
import { settleHeap } from './harness.js';

/** The standard mandatory-to-implement suite of RFC 9420 §17.1, closest to mpENC's primitives. */
export const MLS_CIPHERSUITE: CiphersuiteName = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';

/** CPU time (process-wide: includes WebCrypto's worker threads) and wall-clock time. */
export interface Timing {
  readonly cpuMs: number;
  readonly wallMs: number;
}

export const ZERO_TIMING: Timing = { cpuMs: 0, wallMs: 0 };

export function addTimings(a: Timing, b: Timing): Timing {
  return { cpuMs: a.cpuMs + b.cpuMs, wallMs: a.wallMs + b.wallMs };
}

/** Runs `work` and reports its CPU and wall time. */
export async function timed<T>(work: () => Promise<T>): Promise<{ readonly result: T; readonly timing: Timing }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await work();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { result, timing: { cpuMs: (used.user + used.system) / 1000, wallMs } };
}

/** Adds up the time spent inside `run` calls only (setup in between is not counted). */
export class Stopwatch {
  private total: Timing = ZERO_TIMING;

  async run<T>(work: () => Promise<T>): Promise<T> {
    const { result, timing } = await timed(work);
    this.total = addTimings(this.total, timing);
    return result;
  }

  get timing(): Timing {
    return this.total;
  }
}

let implPromise: Promise<CiphersuiteImpl> | undefined;

/** ts-mls's default provider (WebCrypto for Ed25519, X25519 via @hpke/core, AES-GCM, SHA-256). */
export function mlsCiphersuite(): Promise<CiphersuiteImpl> {
  implPromise ??= getCiphersuiteImpl(getCiphersuiteFromName(MLS_CIPHERSUITE));
  return implPromise;
}

/** One member: its (pre-published) key package and its current group state. */
export interface MlsClient {
  readonly name: string;
  readonly publicPackage: KeyPackage;
  readonly privatePackage: PrivateKeyPackage;
  state: ClientState | undefined;
}

/** One MLS group operation (start, add, remove), all members' work summed. */
export interface MlsGroupResult {
  /** Group size when the operation starts (start: the size it creates). */
  readonly n: number;
  /** Members after the operation. */
  readonly members: number;
  /** createGroup/commit, every existing member processing the commit, every joiner's Welcome. */
  readonly timing: Timing;
  /** Key packages of the joiners, generated before the operation (not in `timing`). */
  readonly keyPackages: Timing;
  readonly epoch: number;
  /** Every member ended with the same epoch authenticator (RFC 9420 §8.7). */
  readonly agreed: boolean;
}

const encoder = new TextEncoder();

async function newClient(name: string, impl: CiphersuiteImpl): Promise<MlsClient> {
  const credential = { credentialType: 'basic' as const, identity: encoder.encode(name) };
  const kp = await generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], impl);
  return { name, publicPackage: kp.publicPackage, privatePackage: kp.privatePackage, state: undefined };
}

async function newClients(prefix: string, count: number, impl: CiphersuiteImpl): Promise<MlsClient[]> {
  const clients: MlsClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await newClient(`${prefix}${i}`, impl));
  return clients;
}

function stateOf(client: MlsClient): ClientState {
  if (client.state === undefined) throw new Error(`MLS client ${client.name} has no group state`);
  return client.state;
}

function wire(message: MLSMessage): Uint8Array {
  return encodeMlsMessage(message);
}

function unwire(bytes: Uint8Array): MLSMessage {
  const decoded = decodeMlsMessage(bytes, 0);
  if (decoded === undefined) throw new Error('undecodable MLS message');
  return decoded[0];
}

/**
 * The committer (`members[committer]`) commits `proposals`; every other current member processes
 * the commit; every client in `joiners` joins from the Welcome. Returns the clients now in the group.
 */
async function commitAndApply(
  members: readonly MlsClient[],
  committer: number,
  proposals: Proposal[],
  joiners: readonly MlsClient[],
  impl: CiphersuiteImpl,
): Promise<void> {
  const author = members[committer]!;
  const result = await createCommit({ state: stateOf(author), cipherSuite: impl }, { extraProposals: proposals, ratchetTreeExtension: true });
  author.state = result.newState;
  const commitBytes = wire(result.commit);
  for (const [i, member] of members.entries()) {
    if (i === committer) continue;
    const message = unwire(commitBytes);
    if (message.wireformat !== 'mls_private_message' && message.wireformat !== 'mls_public_message') {
      throw new Error(`commit arrived as ${message.wireformat}`);
    }
    const processed = await processMessage(message, stateOf(member), emptyPskIndex, acceptAll, impl);
    member.state = processed.newState;
  }
  if (joiners.length === 0) return;
  if (result.welcome === undefined) throw new Error('a commit with adds has no Welcome');
  const welcomeBytes = wire({ welcome: result.welcome, wireformat: 'mls_welcome', version: 'mls10' });
  for (const joiner of joiners) {
    const message = unwire(welcomeBytes);
    if (message.wireformat !== 'mls_welcome') throw new Error(`Welcome arrived as ${message.wireformat}`);
    joiner.state = await joinGroup(message.welcome as Welcome, joiner.publicPackage, joiner.privatePackage, emptyPskIndex, impl);
  }
}

function addProposal(client: MlsClient): Proposal {
  return { proposalType: 'add', add: { keyPackage: client.publicPackage } };
}

function summary(n: number, members: readonly MlsClient[], timing: Timing, keyPackages: Timing): MlsGroupResult {
  const states = members.map(stateOf);
  const first = states[0]!;
  const agreed = states.every(
    (s) => s.groupContext.epoch === first.groupContext.epoch && bytesEqual(s.keySchedule.epochAuthenticator, first.keySchedule.epochAuthenticator),
  );
  return { n, members: members.length, timing, keyPackages, epoch: Number(first.groupContext.epoch), agreed };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A group as some operation left it: every member's state (ts-mls states are immutable values). */
export interface MlsGroup {
  readonly clients: readonly MlsClient[];
}

/** Independent copies of the members, so that several operations can start from one group. */
function fork(group: MlsGroup): MlsClient[] {
  return group.clients.map((c) => ({ ...c }));
}

/** `mlsStartGroup`, also returning the group, so add/remove can start from it without rebuilding. */
export async function mlsStartGroupWithState(n: number): Promise<{ readonly result: MlsGroupResult; readonly group: MlsGroup }> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`group size ${n}`);
  const impl = await mlsCiphersuite();
  const prepared = await timed(() => newClients('member', n, impl));
  const clients = prepared.result;
  const creator = clients[0]!;
  settleHeap();
  const { timing } = await timed(async () => {
    creator.state = await createGroup(encoder.encode('covey-bench'), creator.publicPackage, creator.privatePackage, [], impl);
    if (n > 1) await commitAndApply([creator], 0, clients.slice(1).map(addProposal), clients.slice(1), impl);
  });
  return { result: summary(n, clients, timing, prepared.timing), group: { clients: fork({ clients }) } };
}

/** createGroup, add n-1 members in one commit, every member joins from the Welcome. */
export async function mlsStartGroup(n: number): Promise<MlsGroupResult> {
  return (await mlsStartGroupWithState(n)).result;
}

async function groupOf(n: number, from: MlsGroup | undefined): Promise<MlsClient[]> {
  if (from === undefined) return fork((await mlsStartGroupWithState(n)).group);
  if (from.clients.length !== n) throw new RangeError(`the group given has ${from.clients.length} members, not ${n}`);
  return fork(from);
}

/**
 * A group of n adds one: the commit, every existing member processes it, the new member joins.
 * `from`: a group of n to start from (left unchanged); by default one is built, untimed.
 */
export async function mlsAddOne(n: number, from?: MlsGroup): Promise<MlsGroupResult> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`group size ${n}`);
  const impl = await mlsCiphersuite();
  const members = await groupOf(n, from);
  const prepared = await timed(() => newClient('joiner', impl));
  const joiner = prepared.result;
  settleHeap();
  const { timing } = await timed(() => commitAndApply(members, 0, [addProposal(joiner)], [joiner], impl));
  return summary(n, [...members, joiner], timing, prepared.timing);
}

/** A group of n removes its last member: the commit and every remaining member processes it. */
export async function mlsRemoveOne(n: number, from?: MlsGroup): Promise<MlsGroupResult> {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`group size ${n} (need someone to remove)`);
  const impl = await mlsCiphersuite();
  const members = await groupOf(n, from);
  const remaining = members.slice(0, -1);
  const removed: Proposal = { proposalType: 'remove', remove: { removed: n - 1 } };
  settleHeap();
  const { timing } = await timed(() => commitAndApply(remaining, 0, [removed], [], impl));
  return summary(n, remaining, timing, ZERO_TIMING);
}

/** Application messages in a small group: each message is sent by one member, read by the rest. */
export interface MlsMessagesResult {
  readonly members: number;
  readonly count: number;
  /** createApplicationMessage + encode, summed over all messages. */
  readonly send: Timing;
  /** decode + processMessage, summed over all (count × (members - 1)) receipts. */
  readonly receive: Timing;
  readonly sendPerMessageMs: Timing;
  readonly receivePerMessageMs: Timing;
  /** Every receipt decrypted to exactly the text sent. */
  readonly allDelivered: boolean;
}

export interface MlsMessagesOptions {
  /** Group size (default 3). */
  readonly members?: number;
  /** Untimed messages first, so that the JIT and key caches are warm (default 10). */
  readonly warmup?: number;
}

/**
 * `count` application messages in a group of `members`, senders in turn (round robin), each
 * message processed by every other member. Per-message figures divide the send time by `count`
 * and the receive time by the number of receipts.
 */
export async function mlsMessages(count: number, options: MlsMessagesOptions = {}): Promise<MlsMessagesResult> {
  const members = options.members ?? 3;
  const warmup = options.warmup ?? 10;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`message count ${count}`);
  if (!Number.isInteger(members) || members < 2) throw new RangeError(`group size ${members}`);
  const impl = await mlsCiphersuite();
  const clients = fork((await mlsStartGroupWithState(members)).group);
  const sending = new Stopwatch();
  const receiving = new Stopwatch();
  const decoder = new TextDecoder();
  let allDelivered = true;
  for (let i = -warmup; i < count; i++) {
    const untimed = <T>(work: () => Promise<T>) => work();
    const send = i < 0 ? untimed : <T>(work: () => Promise<T>) => sending.run(work);
    const receive = i < 0 ? untimed : <T>(work: () => Promise<T>) => receiving.run(work);
    const text = `message ${i}: a chat message of a typical length, around a hundred characters or so.`;
    const sender = clients[(i + warmup) % members]!;
    const bytes = await send(async () => {
      const sent = await createApplicationMessage(stateOf(sender), encoder.encode(text), impl);
      sender.state = sent.newState;
      return wire({ privateMessage: sent.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
    });
    for (const reader of clients) {
      if (reader === sender) continue;
      const received = await receive(async () => {
        const message = unwire(bytes);
        if (message.wireformat !== 'mls_private_message') throw new Error(`message arrived as ${message.wireformat}`);
        const processed = await processMessage(message, stateOf(reader), emptyPskIndex, acceptAll, impl);
        reader.state = processed.newState;
        return processed.kind === 'applicationMessage' ? decoder.decode(processed.message) : undefined;
      });
      if (received !== text) allDelivered = false;
    }
  }
  const receipts = count * (members - 1);
  return {
    members,
    count,
    send: sending.timing,
    receive: receiving.timing,
    sendPerMessageMs: perItem(sending.timing, count),
    receivePerMessageMs: perItem(receiving.timing, receipts),
    allDelivered,
  };
}

export function perItem(total: Timing, items: number): Timing {
  return { cpuMs: total.cpuMs / items, wallMs: total.wallMs / items };
}

/** One member, back from being away, processes the application messages queued meanwhile. */
export interface MlsCatchUpResult {
  readonly messages: number;
  readonly authors: number;
  /** decode + processMessage of every queued message by the one reader. */
  readonly timing: Timing;
  readonly msgsPerSec: number;
  readonly msgsPerCpuSec: number;
  /** Every message decrypted to exactly the text sent, in order. */
  readonly allDelivered: boolean;
}

/**
 * `count` application messages from `authors` authors (chosen by a fixed pseudo-random sequence,
 * like the mpENC catch-up queue), created untimed, then processed in order by one more member.
 */
export async function mlsCatchUp(count: number, authors: number): Promise<MlsCatchUpResult> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`message count ${count}`);
  if (!Number.isInteger(authors) || authors < 1) throw new RangeError(`author count ${authors}`);
  const impl = await mlsCiphersuite();
  const clients = fork((await mlsStartGroupWithState(authors + 1)).group);
  const reader = clients[authors]!;
  const queue: { bytes: Uint8Array; text: string }[] = [];
  let x = 12345;
  for (let k = 0; k < count; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const author = clients[(x >>> 16) % authors]!;
    const text = `message ${k} from ${author.name}: a chat line of ordinary length, some sixty to ninety characters.`;
    const sent = await createApplicationMessage(stateOf(author), encoder.encode(text), impl);
    author.state = sent.newState;
    queue.push({ bytes: wire({ privateMessage: sent.privateMessage, wireformat: 'mls_private_message', version: 'mls10' }), text });
  }
  const decoder = new TextDecoder();
  let allDelivered = true;
  const { timing } = await timed(async () => {
    for (const { bytes, text } of queue) {
      const message = unwire(bytes);
      if (message.wireformat !== 'mls_private_message') throw new Error(`message arrived as ${message.wireformat}`);
      const processed = await processMessage(message, stateOf(reader), emptyPskIndex, acceptAll, impl);
      reader.state = processed.newState;
      if (processed.kind !== 'applicationMessage' || decoder.decode(processed.message) !== text) allDelivered = false;
    }
  });
  return {
    messages: count,
    authors,
    timing,
    msgsPerSec: (count * 1000) / timing.wallMs,
    msgsPerCpuSec: (count * 1000) / timing.cpuMs,
    allDelivered,
  };
}
