/**
 * Sleeping-phone scenarios (issue 8; shared/spec/async-groups.md "What the simulator must check"):
 * members of a real v2 group (GreetingMembership, rule 10 automatic includes on) chat through a
 * relay that keeps an ordered log, and fall asleep for simulated hours or days: an asleep phone
 * processes nothing, sends nothing and fires no timer; when it wakes, it tells its session the
 * relay's head (`catchUp`), processes the backlog in order, and only then acts. Newcomers are
 * invited and join (sometimes two at once, sometimes falling asleep before their turn), members
 * are excluded and refresh while others sleep, apps restart from snapshots, and now and then a
 * phone sleeps longer than the relay keeps events (rule 11). No fault or attack is injected:
 * every warning is a false alarm.
 *
 * Checked on every call: nothing is sent while catching up (rule 6); no data packet is sealed
 * under a subsession an operation we processed has replaced (rule 7); catch-up work is linear
 * (signature checks per backlog event). Checked at the end, everyone awake and healed:
 *  - convergence: every member in the channel holds the same members, sid, group key and chain
 *    hash, and no operation is left running (every operation whose contributors woke completed);
 *  - the key oracle: every group key a member derived (its HKDF outputs, recorded by a wrapper
 *    around its crypto provider) belongs to a subsession it is a member of; an excluded member
 *    never derives a later key, a newcomer never an earlier one; in some runs, each member's
 *    stored contributions are also tried on every slot of every subsession it is not in;
 *  - signing keys (issue 9 §3, deniability): no member signs data in two subsessions with one
 *    ephemeral key (so none carried across a time out of the group), nor with a key it published;
 *  - transcripts: the same messages with the same parents in every subsession members share
 *    and that closed consistently; everything in the current one fully acked; nothing delivered
 *    twice, before its parents, or that nobody sent;
 *  - no warning at all.
 * Each scenario is a pure function of its seed.
 */
import { base64Decode, base64Encode, bytesEqual, concatBytes, hexDecode, hexEncode, latin1Encode, utf8Encode } from '../../src/protocol/bytes.js';
import type { ChannelEvent } from '../../src/protocol/channel.js';
import { DATA_SIGNATURE_CONTEXT, GreetType, GROUP_KEY_INFO } from '../../src/protocol/codec/constants.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import { createMembership } from '../../src/protocol/greeting/machine.js';
import type { Subsession as MachineSubsession } from '../../src/protocol/greeting/types.js';
import { memberId, type MemberId } from '../../src/protocol/ids.js';
import { deriveGroupKey } from '../../src/protocol/packets/group-key.js';
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from '../../src/protocol/session/config.js';
import type { DeliveredMessage, SessionEffect, SessionWarning } from '../../src/protocol/session/effects.js';
import { needsAck } from '../../src/protocol/session/effects.js';
import { GreetingMembership } from '../../src/protocol/session/greeting-membership.js';
import { Session } from '../../src/protocol/session/session.js';
import type { SessionSnapshot } from '../../src/protocol/session/snapshot.js';
import { seededRandom, type SeededRandom } from '../helpers/seeded-random.js';
import { restartState } from './restart-state.js';
import { stolenScalars, tryScalar } from '../helpers/stolen-key.js';
import { tracePacket } from './trace.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Events per relay read while catching up (small, so that pages end mid-operation too). */
const CATCH_UP_PAGE = 7;

/** The relay keeps events this long (rule 11 needs a phone to sleep longer now and then). */
export const ASLEEP_RETENTION_MS = 30 * DAY;

/** Heartbeats off (hours pass in jumps); presence follows traffic; otherwise the app's timings. */
export const ASLEEP_CONFIG: SessionConfig = { ...DEFAULT_SESSION_CONFIG, presence: { heartbeatIntervalMs: null, expiryMs: 4 * MINUTE } };

export class AsleepFailure extends Error {
  constructor(
    readonly seed: number,
    message: string,
  ) {
    super(`asleep scenario seed ${seed}: ${message}`);
  }
}

/** Totals of a batch of asleep scenarios (`npm run sim -- --sessions --asleep`). */
export interface AsleepBatch {
  readonly runs: number;
  readonly seed: number;
  readonly passed: number;
  readonly failures: readonly string[];
  readonly totals: Omit<AsleepScenarioResult, 'seed' | 'members'>;
  readonly ms: number;
}

/** Seeds `seed` … `seed + runs - 1`; the key trial on every seed divisible by `keyTrialEvery`. */
export async function runAsleepBatch(crypto: CryptoProvider, runs: number, seed: number, keyTrialEvery = 4): Promise<AsleepBatch> {
  const started = performance.now();
  const failures: string[] = [];
  const totals = { messages: 0, operations: 0, completed: 0, sleeps: 0, catchUps: 0, retentionGaps: 0, restarts: 0, keysChecked: 0, warnings: 0 };
  let passed = 0;
  for (let s = seed; s < seed + runs; s++) {
    try {
      const r = await runAsleepScenario(crypto, s, { keyTrial: keyTrialEvery > 0 && s % keyTrialEvery === 0 });
      passed++;
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
    } catch (e) {
      failures.push(e instanceof AsleepFailure ? e.message : `asleep scenario seed ${s}: crashed: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
  return { runs, seed, passed, failures, totals, ms: performance.now() - started };
}

export interface AsleepScenarioResult {
  readonly seed: number;
  readonly members: number;
  readonly messages: number;
  /** Operations accepted (by the first member to see each), completed and aborted. */
  readonly operations: number;
  readonly completed: number;
  readonly sleeps: number;
  readonly catchUps: number;
  readonly retentionGaps: number;
  readonly restarts: number;
  readonly keysChecked: number;
  readonly warnings: number;
}

export interface AsleepScenarioOptions {
  readonly steps?: number;
  /** Try every member's contributions on every slot of every subsession it is not in. */
  readonly keyTrial?: boolean;
  readonly trace?: (line: string) => void;
}

interface LoggedEvent {
  readonly event: ChannelEvent;
  /** Channel members when the relay ordered it: they are shown it. */
  readonly audience: readonly MemberId[];
}

interface Phone {
  readonly id: MemberId;
  readonly rng: SeededRandom;
  readonly crypto: CryptoProvider;
  /** Counters of its crypto provider (catch-up work, key oracle). */
  readonly counts: { verifies: number };
  /** Every group key it derived (hex). */
  readonly derived: Set<string>;
  /** Seed (hex) of every signing key it signed data with → the subsessions (SHA-256(sid ‖ gk), hex) and the log length at its last use. */
  readonly dataSeeds: Map<string, { readonly subsessions: Set<string>; lastLogLength: number }>;
  session: Session;
  membership: GreetingMembership;
  /** Log index of the next event to show it. */
  cursor: number;
  awake: boolean;
  timerAtMs: number | undefined;
  /** Subsession indices an operation it processed replaced (rule 7 check). */
  readonly replaced: Set<number>;
  /** Sids (hex) of the subsessions it held whose SHA-256(sid ‖ gk) the world recorded. */
  readonly bound: Set<string>;
  /** Every scalar its stored keys ever gave a thief, by hex (helpers/stolen-key.ts; the key oracle tries them). */
  readonly contributionSets: Map<string, Uint8Array>;
  readonly warnings: SessionWarning[];
  readonly delivered: DeliveredMessage[];
  /** Messages it held when it learnt of a retention gap (none may be lost by its catch-up). */
  heldAtGap?: number | undefined;
}

const DATA_CONTEXT = latin1Encode(DATA_SIGNATURE_CONTEXT);

/** A provider that records the group keys it derives, the keys it signs data with, and counts signature checks. */
function recordingProvider(inner: CryptoProvider, counts: { verifies: number }, derived: Set<string>, signedData: (seed: Uint8Array, sidkeyHash: Uint8Array) => void): CryptoProvider {
  const info = hexEncode(latin1Encode(GROUP_KEY_INFO));
  return {
    ...inner,
    name: inner.name,
    forgetKeys: (keys) => inner.forgetKeys(keys),
    randomBytes: (n) => inner.randomBytes(n),
    sha256: (d) => inner.sha256(d),
    hmacSha256: (k, d) => inner.hmacSha256(k, d),
    async hkdfSha256(ikm, salt, i, length) {
      const out = await inner.hkdfSha256(ikm, salt, i, length);
      if (hexEncode(i) === info) derived.add(hexEncode(out));
      return out;
    },
    x25519PublicKey: (k) => inner.x25519PublicKey(k),
    x25519: (k, p) => inner.x25519(k, p),
    ed25519PublicKey: (s) => inner.ed25519PublicKey(s),
    ed25519Sign(s, m) {
      // A data packet signs DATA_SIGNATURE_CONTEXT ‖ SHA-256(sid ‖ gk) ‖ … (mpenc-wire.md "Data packets").
      if (m.length >= DATA_CONTEXT.length + 32 && bytesEqual(m.subarray(0, DATA_CONTEXT.length), DATA_CONTEXT)) signedData(s, m.subarray(DATA_CONTEXT.length, DATA_CONTEXT.length + 32));
      return inner.ed25519Sign(s, m);
    },
    async ed25519Verify(p, m, s) {
      counts.verifies += 1;
      return inner.ed25519Verify(p, m, s);
    },
    aesCtr: (k, c, d, once) => inner.aesCtr(k, c, d, once),
    aesGcmEncrypt: (k, n, p, a) => inner.aesGcmEncrypt(k, n, p, a),
    aesGcmDecrypt: (k, n, c, a) => inner.aesGcmDecrypt(k, n, c, a),
  };
}

class AsleepWorld {
  readonly log: LoggedEvent[] = [];
  channel: MemberId[] = [];
  nowMs = 1_000_000;
  /** Seq of the oldest event the relay still holds (retention drops older ones). */
  firstSeq = 1;
  readonly phones = new Map<MemberId, Phone>();
  readonly statics = new Map<string, { seed: Uint8Array; pub: Uint8Array }>();
  readonly sent = new Set<string>();
  /**
   * Subsessions members held, by sid (hex), with SHA-256(sid ‖ gk) from a member's session: the
   * membership drops the group key once the session took it (issue 9 §3), so the key oracle
   * finds each key among the recorded derivations (checkKeys).
   */
  readonly bound = new Map<string, { readonly sub: MachineSubsession; readonly sidkeyHash: string }>();
  catchUps = 0;
  retentionGaps = 0;
  private readonly keys = { staticKey: (m: MemberId) => this.statics.get(m)?.pub };

  constructor(
    readonly crypto: CryptoProvider,
    readonly rng: SeededRandom,
    readonly fail: (message: string) => never,
  ) {}

  async addPhone(name: string): Promise<Phone> {
    const id = memberId(name);
    const seed = await this.crypto.sha256(utf8Encode(`asleep-static:${name}`));
    this.statics.set(name, { seed, pub: await this.crypto.ed25519PublicKey(seed) });
    const rng = seededRandom(this.rng.int(2 ** 31));
    const counts = { verifies: 0 };
    const derived = new Set<string>();
    const dataSeeds: Phone['dataSeeds'] = new Map();
    const crypto = recordingProvider(this.crypto, counts, derived, (seed, sidkeyHash) => {
      const hex = hexEncode(seed);
      const used = dataSeeds.get(hex) ?? { subsessions: new Set<string>(), lastLogLength: 0 };
      used.subsessions.add(hexEncode(sidkeyHash));
      used.lastLogLength = this.log.length;
      dataSeeds.set(hex, used);
    });
    const membership = new GreetingMembership(createMembership({ self: id, staticSeed: seed, autoInclude: true }), { crypto, random: rng.bytes, keys: this.keys });
    const phone: Phone = {
      id,
      rng,
      crypto,
      counts,
      derived,
      dataSeeds,
      session: new Session(id, { crypto, random: rng.bytes }, membership, ASLEEP_CONFIG),
      membership,
      cursor: this.log.length,
      awake: true,
      timerAtMs: undefined,
      replaced: new Set(),
      bound: new Set(),
      contributionSets: new Map(),
      warnings: [],
      delivered: [],
    };
    this.phones.set(id, phone);
    return phone;
  }

  phone(name: string): Phone {
    const p = this.phones.get(name as MemberId);
    if (p === undefined) throw new Error(`no phone ${name}`);
    return p;
  }

  private append(event: ChannelEvent, audience: readonly MemberId[]): void {
    this.log.push({ event, audience });
  }

  join(id: MemberId): void {
    if (this.channel.includes(id)) return;
    this.channel = [...this.channel, id];
    const p = this.phones.get(id);
    if (p !== undefined) p.cursor = this.log.length;
    this.append({ kind: 'joined', seq: this.log.length + 1, atMs: this.nowMs, joined: [id], members: this.channel }, this.channel);
  }

  leave(id: MemberId): void {
    if (!this.channel.includes(id)) return;
    const audience = this.channel;
    this.channel = this.channel.filter((m) => m !== id);
    this.append({ kind: 'left', seq: this.log.length + 1, atMs: this.nowMs, left: [id], members: this.channel }, audience);
  }

  post(sender: MemberId, text: string): void {
    if (!this.channel.includes(sender)) return;
    this.append({ kind: 'packet', seq: this.log.length + 1, atMs: this.nowMs, sender, text }, this.channel);
    tracePacket(sender, text);
  }

  /** The channel's members just before `seq` (the relay knows its membership at any point). */
  membersBefore(seq: number): MemberId[] {
    for (let i = seq - 2; i >= 0; i--) {
      const e = this.log[i]!.event;
      if (e.kind !== 'packet') return [...e.members];
    }
    return [];
  }

  /** Retention: the relay drops events older than ASLEEP_RETENTION_MS. */
  private expire(): void {
    while (this.firstSeq <= this.log.length) {
      const e = this.log[this.firstSeq - 1]!.event;
      if ((e.atMs ?? this.nowMs) >= this.nowMs - ASLEEP_RETENTION_MS) break;
      this.firstSeq += 1;
    }
  }

  /** Runs one session call and checks what it did (rules 6 and 7), then applies its effects. */
  async call(p: Phone, action: (s: Session, nowMs: number) => Promise<SessionEffect[]>): Promise<readonly SessionEffect[]> {
    const wasCatchingUp = p.session.catchingUp();
    const effects = await action(p.session, this.nowMs);
    let catchingUp = wasCatchingUp;
    let current = p.session.currentSubsession();
    for (const e of effects) {
      if (e.kind === 'notice' && e.notice.kind === 'caught-up') catchingUp = false;
      if (e.kind === 'notice' && e.notice.kind === 'subsession-started') {
        for (const info of p.session.subsessionInfo()) if (info.index < e.notice.subsession) p.replaced.add(info.index);
        current = e.notice.subsession;
      }
      if (e.kind === 'send') {
        if (catchingUp) this.fail(`${p.id} sent while catching up (rule 6): ${e.text.slice(0, 24)}`);
        if (e.sealed !== undefined && p.replaced.has(e.sealed.subsession)) {
          this.fail(`${p.id} sealed under subsession ${e.sealed.subsession}, replaced (rule 7; current ${current})`);
        }
      }
    }
    this.recordContributions(p);
    this.recordSubsession(p);
    for (const e of effects) {
      switch (e.kind) {
        case 'send':
          this.post(p.id, e.text);
          break;
        case 'kick':
          for (const k of e.members) this.leave(k);
          break;
        case 'leave':
          this.leave(p.id);
          break;
        case 'setTimer':
          p.timerAtMs = e.atMs;
          break;
        case 'warn':
          p.warnings.push(e.warning);
          break;
        case 'deliver':
          p.delivered.push(e.message);
          break;
        default:
          break;
      }
    }
    return effects;
  }

  private recordSubsession(p: Phone): void {
    const m = p.membership.machine;
    const cur = m.current;
    if (cur === null || m.own === null) return;
    const hex = hexEncode(cur.sid);
    if (p.bound.has(hex)) return;
    const hash = boundHashOf(p, cur.sid);
    if (hash === undefined) return;
    p.bound.add(hex);
    if (!this.bound.has(hex)) this.bound.set(hex, { sub: cur, sidkeyHash: hash });
  }

  private recordContributions(p: Phone): void {
    const own = p.membership.machine.own;
    if (own === null) return;
    for (const x of stolenScalars(own.contributions)) p.contributionSets.set(hexEncode(x), x);
  }

  /** Shows one awake phone its next event; false when no awake phone has one. */
  async deliverOne(): Promise<boolean> {
    const ready = [...this.phones.values()].filter((p) => p.awake && p.cursor < this.log.length);
    if (ready.length === 0) return false;
    const p = this.rng.pick(ready);
    const { event, audience } = this.log[p.cursor++]!;
    if (audience.includes(p.id)) await this.call(p, (s, now) => s.receive(event, now));
    return true;
  }

  async settle(maxSteps = 200_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      this.nowMs += 5;
      if (!(await this.deliverOne())) return;
    }
    this.fail('the world did not settle');
  }

  /** Time passes (awake phones' timers fire, events flow), `ms` in all. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      await this.settle();
      const awake = [...this.phones.values()].filter((p) => p.awake && p.timerAtMs !== undefined);
      const next = Math.min(...awake.map((p) => p.timerAtMs!));
      if (!(next <= end)) break;
      this.nowMs = Math.max(this.nowMs, next);
      for (const p of awake) {
        if (p.timerAtMs !== undefined && p.timerAtMs <= this.nowMs) {
          p.timerAtMs = undefined;
          await this.call(p, (s, now) => s.tick(now));
        }
      }
    }
    this.nowMs = Math.max(this.nowMs, end);
    this.expire();
  }

  sleep(p: Phone): void {
    p.awake = false;
  }

  /**
   * The phone wakes: it learns the relay's head (and the oldest event the relay still holds),
   * catches up in order, silently, and then does what fell due (rule 6).
   */
  async wake(p: Phone): Promise<void> {
    p.awake = true;
    this.expire();
    if (p.session.state() === 'left') return;
    const backlog = this.log.length - p.cursor;
    const verifiesBefore = p.counts.verifies;
    if (p.cursor + 1 < this.firstSeq) {
      // Rule 11: events it never saw are gone; the relay says who was in the channel then.
      this.retentionGaps += 1;
      p.cursor = this.firstSeq - 1;
      const members = this.membersBefore(this.firstSeq);
      const inGroup = p.session.members().length > 1;
      const held = p.session.messages().size;
      const effects = await this.call(p, (s, now) => s.retention(this.firstSeq, now, members));
      // Issue 8 point 5: it finds out on return and says so in plain words; nothing it holds is lost.
      const told = effects.some((e) => e.kind === 'notice' && e.notice.kind === 'start-over' && e.notice.reason === 'retention' && /away longer than the relay keeps/.test(e.notice.text));
      if (inGroup && !told) this.fail(`${p.id} slept past the relay's retention and was not told so (rule 11)`);
      if (p.session.messages().size < held) this.fail(`${p.id} lost messages it held on learning of the retention gap (${held} → ${p.session.messages().size})`);
      p.heldAtGap = held;
    }
    if (backlog > 0) this.catchUps += 1;
    await this.call(p, (s, now) => s.catchUp(this.log.length, now));
    // It processes its backlog first (the worker drains it before anything else), in pages as
    // the relay returns them (Session.receiveAll, which checks signatures ahead).
    while (p.cursor < this.log.length) {
      const page: ChannelEvent[] = [];
      while (p.cursor < this.log.length && page.length < CATCH_UP_PAGE) {
        const { event, audience } = this.log[p.cursor++]!;
        if (audience.includes(p.id)) page.push(event);
      }
      if (page.length > 0) await this.call(p, (s, now) => s.receiveAll(page, now));
    }
    // Catch-up is linear: about one signature check per event (a data packet, a contribution or
    // a confirmation each need one), plus its own catch-up's few.
    const verifies = p.counts.verifies - verifiesBefore;
    if (verifies > 2 * backlog + 10) this.fail(`${p.id} checked ${verifies} signatures to catch up ${backlog} events`);
    if (p.heldAtGap !== undefined && p.session.messages().size < p.heldAtGap) this.fail(`${p.id} lost messages it held before the retention gap`);
    p.heldAtGap = undefined;
    if (p.timerAtMs !== undefined && p.timerAtMs <= this.nowMs) {
      p.timerAtMs = undefined;
      await this.call(p, (s, now) => s.tick(now));
    }
  }

  restart(p: Phone): boolean {
    const before = restartState(p.session);
    const snapshot = JSON.parse(JSON.stringify(p.session.snapshot())) as SessionSnapshot;
    p.membership = GreetingMembership.restore(snapshot.membership, { crypto: p.crypto, random: p.rng.bytes, keys: this.keys });
    p.session = Session.restore(snapshot, { crypto: p.crypto, random: p.rng.bytes }, p.membership, ASLEEP_CONFIG);
    return restartState(p.session) === before;
  }
}

export async function runAsleepScenario(crypto: CryptoProvider, seed: number, options: AsleepScenarioOptions = {}): Promise<AsleepScenarioResult> {
  const steps = options.steps ?? 24;
  const trace = options.trace ?? (() => {});
  const rng = seededRandom(seed ^ 0x51ee9);
  const fail = (message: string): never => {
    throw new AsleepFailure(seed, message);
  };
  const w = new AsleepWorld(crypto, rng, fail);
  let nextName = 0;
  const newName = () => `p${nextName++}`;

  // The creator invites; the first members join, online, and the creator starts the group
  // (rule 10: "starting a group is the creator alone, then an include").
  const count = 3 + rng.int(3);
  const creator = await w.addPhone(newName());
  w.join(creator.id);
  await w.settle();
  await w.call(creator, (s, now) => s.invited(now + DAY, now));
  for (let i = 1; i < count; i++) w.join((await w.addPhone(newName())).id);
  await w.advance(30_000);

  let messages = 0;
  let sleeps = 0;
  let restarts = 0;
  const awakeMembers = () => [...w.phones.values()].filter((p) => p.awake && p.session.state() === 'active' && p.session.currentSubsession() !== undefined && p.session.members().length > 1);

  for (let step = 0; step < steps; step++) {
    const r = rng.float();
    const talkers = awakeMembers().filter((p) => !p.session.catchingUp());
    if (r < 0.35 && talkers.length > 0) {
      const p = rng.pick(talkers);
      const text = `${p.id} says ${step}`;
      try {
        await w.call(p, (s, now) => s.send(text, now));
        w.sent.add(text);
        messages++;
        trace(`${w.nowMs} ${text}`);
      } catch (e) {
        if (!isProtocolError(e) || e.code !== 'invalid-state') throw e;
      }
    } else if (r < 0.5) {
      await w.advance(rng.int(3) === 0 ? rng.int(6) * HOUR : rng.int(3 * MINUTE));
    } else if (r < 0.62) {
      const candidates = [...w.phones.values()].filter((p) => p.awake && p.session.state() === 'active');
      if (candidates.length > 1) {
        const p = rng.pick(candidates);
        w.sleep(p);
        sleeps++;
        trace(`${w.nowMs} ${p.id} sleeps`);
      }
    } else if (r < 0.74) {
      const asleep = [...w.phones.values()].filter((p) => !p.awake);
      if (asleep.length > 0) {
        const p = rng.pick(asleep);
        trace(`${w.nowMs} ${p.id} wakes (backlog ${w.log.length - p.cursor})`);
        await w.wake(p);
      }
    } else if (r < 0.8 && talkers.length > 0 && w.channel.length < 7) {
      // A newcomer (sometimes two, close together) accepts an invitation while the inviter is
      // online; sometimes a newcomer's phone sleeps right after joining.
      const inviter = rng.pick(talkers);
      await w.call(inviter, (s, now) => s.invited(now + DAY, now));
      const joiners = 1 + (rng.int(4) === 0 ? 1 : 0);
      for (let k = 0; k < joiners; k++) {
        const p = await w.addPhone(newName());
        w.join(p.id);
        trace(`${w.nowMs} ${inviter.id} invites, ${p.id} joins`);
        if (rng.int(5) === 0) {
          await w.settle();
          w.sleep(p);
          sleeps++;
          trace(`${w.nowMs} ${p.id} sleeps right after joining`);
        }
      }
      await w.advance(rng.int(40_000));
    } else if (r < 0.84 && talkers.length > 0) {
      const p = rng.pick(talkers);
      const others = p.session.members().filter((m) => m !== p.id);
      if (others.length > 1) {
        const victim = rng.pick(others);
        trace(`${w.nowMs} ${p.id} excludes ${victim}`);
        await w.call(p, (s, now) => s.exclude([victim], now)).catch(ignoreRefused);
      }
    } else if (r < 0.87 && talkers.length > 0) {
      const p = rng.pick(talkers);
      trace(`${w.nowMs} ${p.id} refreshes`);
      await w.call(p, (s, now) => s.refresh(now)).catch(ignoreRefused);
    } else if (r < 0.92) {
      const candidates = [...w.phones.values()].filter((p) => p.session.state() !== 'left');
      if (candidates.length > 0) {
        const p = rng.pick(candidates);
        restarts++;
        trace(`${w.nowMs} restart ${p.id}`);
        if (!w.restart(p)) fail(`restoring ${p.id} changed its snapshot or the readers its tracked messages wait for`);
        // The app starts again: it subscribes and catches up before authoring (issue 9 §2).
        if (p.awake) await w.wake(p);
      }
    } else if (r < 0.94) {
      // A phone sleeps longer than the relay keeps events (rule 11).
      const candidates = [...w.phones.values()].filter((p) => p.awake && p.session.state() === 'active');
      if (candidates.length > 1) {
        const p = rng.pick(candidates);
        w.sleep(p);
        sleeps++;
        trace(`${w.nowMs} ${p.id} sleeps past the relay's retention`);
        await w.advance(ASLEEP_RETENTION_MS + DAY);
        // Someone awake writes meanwhile (an asleep phone, or one restarted while asleep and not
        // caught up yet, writes nothing: the app keeps a draft).
        const writers = awakeMembers().filter((m) => !m.session.catchingUp());
        if (rng.int(2) === 0 && writers.length > 0) await w.call(rng.pick(writers), (s, now) => s.send(`after a month ${step}`, now)).then(
          () => {
            w.sent.add(`after a month ${step}`);
            messages++;
          },
          ignoreRefused,
        );
      }
    } else {
      await w.settle();
    }
  }

  // Everyone wakes; the world heals (operations waiting for a contributor finish; automatic
  // includes of those who started over happen; acks flow).
  trace(`${w.nowMs} heal`);
  // (Phones that stayed awake come back to the foreground: the app checks the relay's head.)
  for (const p of w.phones.values()) await w.wake(p);
  await w.advance(5 * MINUTE);
  // If everyone was away longer than the relay keeps events, nobody is left to include the
  // others: the app offers "start the group again", and one of them does (the engine never
  // starts a group on its own; rule 10).
  const inGroup = w.channel.some((m) => (w.phones.get(m)?.session.members().length ?? 0) > 1);
  if (!inGroup && w.channel.length > 1) {
    const first = w.phone([...w.channel].sort()[0]!);
    trace(`${w.nowMs} nobody is left in the group: ${first.id} starts it again`);
    await w.call(first, (s, now) => s.invited(now + DAY, now));
  }
  await w.advance(5 * MINUTE);
  await w.advance(5 * MINUTE);

  const keysChecked = await checkKeys(w, options.keyTrial ?? false, fail);
  checkSigningKeys(w, fail);
  checkConvergence(w, fail);
  checkTranscripts(w, fail);
  const warnings = [...w.phones.values()].flatMap((p) => p.warnings);
  if (warnings.length > 0) fail(`warnings without a fault: ${JSON.stringify(warnings.slice(0, 3))}`);
  const ops = operationsOf(w);
  return {
    seed,
    members: w.phones.size,
    messages,
    operations: ops.accepted,
    completed: ops.completed,
    sleeps,
    catchUps: w.catchUps,
    retentionGaps: w.retentionGaps,
    restarts,
    keysChecked,
    warnings: warnings.length,
  };
}

function ignoreRefused(e: unknown): void {
  if (!isProtocolError(e) || e.code !== 'invalid-state') throw e;
}

/** SHA-256(sid ‖ gk) (hex) of a subsession in the phone's session, if it holds it (v2). */
function boundHashOf(p: Phone, sid: Uint8Array): string | undefined {
  const b64 = base64Encode(sid);
  const sub = p.session.snapshot().subsessions.find((x) => x.setup.sessionId === b64);
  return sub?.ratchet === undefined ? undefined : hexEncode(base64Decode(sub.ratchet.sidkeyHash));
}

/**
 * Subsessions members held, by sid (hex), each with its group key found among the keys the
 * phones were recorded deriving (the membership state no longer holds it, issue 9 §3).
 */
async function subsessionsBySid(w: AsleepWorld, fail: (m: string) => never): Promise<Map<string, MachineSubsession>> {
  const derived = [...new Set([...w.phones.values()].flatMap((p) => [...p.derived]))].map(hexDecode);
  const out = new Map<string, MachineSubsession>();
  for (const [sid, { sub, sidkeyHash }] of w.bound) {
    let key: Uint8Array | undefined;
    for (const k of derived) if (hexEncode(await w.crypto.sha256(concatBytes(sub.sid, k))) === sidkeyHash) key = k;
    if (key === undefined) fail(`oracle blind: no recorded derivation gives the key of subsession ${sid.slice(0, 8)} (update tests/sim/session-asleep.ts)`);
    out.set(sid, { ...sub, groupKey: key });
  }
  return out;
}

/**
 * The key oracle (async-groups "What the simulator must check" 1): a key a member derived must
 * be the key of a subsession it is a member of. With `trial`, each contribution list a member
 * ever held is also tried on every slot of every subsession it is not in.
 */
async function checkKeys(w: AsleepWorld, trial: boolean, fail: (m: string) => never): Promise<number> {
  const subs = [...(await subsessionsBySid(w, fail)).values()];
  if (subs.length === 0 && [...w.phones.values()].some((p) => p.derived.size > 0)) fail('oracle blind: keys were derived but no subsession was recorded');
  const byKey = new Map(subs.map((s) => [hexEncode(s.groupKey!), s]));
  let checked = 0;
  for (const p of w.phones.values()) {
    for (const key of p.derived) {
      const s = byKey.get(key);
      checked++;
      if (s !== undefined && !s.members.includes(p.id)) fail(`${p.id} derived the key of a subsession of ${s.members.join(',')}`);
    }
    if (!trial) continue;
    for (const s of subs) {
      if (s.members.includes(p.id)) continue;
      for (const x of p.contributionSets.values()) {
        for (let slot = 0; slot < s.intKeys.length; slot++) {
          checked++;
          const point = await tryScalar(w.crypto, x, s.intKeys[slot]!);
          if (point === null) continue;
          const guess = await deriveGroupKey(w.crypto, point);
          if (bytesEqual(guess, s.groupKey!)) fail(`${p.id}'s contributions open the key of a subsession of ${s.members.join(',')} (slot ${slot})`);
        }
      }
    }
  }
  return checked;
}

/**
 * Issue 9 §3 (deniability, mpENC §6.1.1): a member's key of a subsession is its own there (renewed
 * at each confirmation, fresh at each contribution, and fresh again once it was out of the group),
 * so no member signs data in two subsessions with one key; and none signs anything with a key it
 * published (QUIT_DOWN in the relay's log) after the publication.
 */
function checkSigningKeys(w: AsleepWorld, fail: (m: string) => never): void {
  const published = new Map<string, { readonly sender: MemberId; readonly logLength: number }>();
  w.log.forEach(({ event }, i) => {
    if (event.kind !== 'packet' || !event.text.startsWith('?mpENC')) return;
    let p;
    try {
      p = decodePacket(event.text);
    } catch {
      return;
    }
    if (p.kind === 'greeting' && p.greetType === GreetType.QUIT_DOWN && p.signingKey !== undefined) published.set(hexEncode(p.signingKey), { sender: event.sender, logLength: i + 1 });
  });
  for (const p of w.phones.values()) {
    for (const [seed, used] of p.dataSeeds) {
      if (used.subsessions.size > 1) fail(`${p.id} signed data in ${used.subsessions.size} subsessions with one signing key (${seed.slice(0, 8)})`);
      const pub = published.get(seed);
      if (pub !== undefined && used.lastLogLength >= pub.logLength) fail(`${p.id} signed data with a key ${pub.sender} published (${seed.slice(0, 8)})`);
    }
  }
}

/** Everyone in the channel and in a session holds the same state, with no operation left running. */
function checkConvergence(w: AsleepWorld, fail: (m: string) => never): void {
  const inChannel = [...w.phones.values()].filter((p) => w.channel.includes(p.id) && p.session.state() === 'active');
  for (const p of inChannel) {
    const m = p.membership.machine;
    if (m.op !== null) fail(`${p.id} still runs a ${m.op.kind} waiting for ${m.op.members.slice(Math.max(0, m.op.nextIndex)).join(',')}`);
    if (m.proposal !== null) fail(`${p.id} still has a ${m.proposal.kind} proposal the relay never decided`);
  }
  const holders = inChannel.filter((p) => p.membership.machine.current !== null);
  if (holders.length !== inChannel.length) {
    fail(`not included: ${inChannel.filter((p) => p.membership.machine.current === null).map((p) => p.id).join(',')}`);
  }
  const first = holders[0]?.membership.machine.current;
  if (first === undefined || first === null) return;
  for (const p of holders) {
    const cur = p.membership.machine.current!;
    if (
      cur.members.join() !== first.members.join() ||
      !bytesEqual(cur.sid, first.sid) ||
      boundHashOf(p, cur.sid) !== boundHashOf(holders[0]!, first.sid) ||
      !bytesEqual(cur.chainHash, first.chainHash)
    ) {
      fail(`${p.id} holds ${cur.members.join(',')} / ${hexEncode(cur.sid).slice(0, 8)}, ${holders[0]!.id} ${first.members.join(',')} / ${hexEncode(first.sid).slice(0, 8)}`);
    }
  }
  if ([...first.members].sort().join() !== holders.map((p) => p.id).sort().join()) fail(`the subsession lists ${first.members.join(',')} but the channel holds ${holders.map((p) => p.id).join(',')}`);
}

/** Same messages in shared subsessions; the current one fully acked; nothing twice, early or forged. */
function checkTranscripts(w: AsleepWorld, fail: (m: string) => never): void {
  const active = [...w.phones.values()].filter((p) => p.session.state() === 'active' && p.session.currentSubsession() !== undefined);
  const views = new Map<string, Map<MemberId, string>>();
  for (const p of active) {
    const transcripts = p.session.transcripts();
    for (const info of p.session.subsessionInfo()) {
      if (info.phase === 'pruned') continue;
      const t = transcripts[info.index]!;
      if (info.pending > 0) fail(`${p.id} has ${info.pending} messages waiting for parents in subsession ${info.index}`);
      if (info.index === p.session.currentSubsession()) {
        for (const id of t.ids()) {
          if (needsAck(t.get(id).body) && p.session.status(id) !== 'fully-acked') {
            fail(`${p.id}: message ${id.slice(0, 8)} is ${p.session.status(id)}, missing ${p.session.unacked(id)}`);
          }
        }
      }
      if (info.phase !== 'closed' || info.consistent !== true) continue;
      const digest = t
        .ids()
        .filter((id) => needsAck(t.get(id).body))
        .map((id) => `${id}<${[...t.get(id).parents].sort().join(',')}`)
        .sort()
        .join('|');
      let bySid = views.get(info.sessionId);
      if (bySid === undefined) views.set(info.sessionId, (bySid = new Map()));
      bySid.set(p.id, digest);
    }
  }
  for (const [sid, byMember] of views) {
    if (new Set(byMember.values()).size > 1) {
      const sizes = [...byMember].map(([m, d]) => `${m}:${d === '' ? 0 : d.split('|').length}`);
      fail(`members disagree on the transcript of subsession ${sid.slice(0, 8)}: ${sizes.join(' ')}`);
    }
  }
  for (const p of w.phones.values()) {
    const seen = new Set<string>();
    const log = p.session.messages();
    for (const d of p.delivered) {
      if (seen.has(d.id)) fail(`${p.id} got ${d.id.slice(0, 8)} twice`);
      if (!w.sent.has(d.text)) fail(`${p.id} got a message nobody sent: ${d.text}`);
      if (log.has(d.id)) for (const q of log.parents(d.id)) if (!seen.has(q)) fail(`${p.id} got ${d.id.slice(0, 8)} before its parent`);
      seen.add(d.id);
    }
  }
}

/** Operations accepted and completed, as the members' chains record them. */
function operationsOf(w: AsleepWorld): { accepted: number; completed: number } {
  let best = { accepted: 0, completed: 0 };
  for (const p of w.phones.values()) {
    const finished = p.membership.machine.order.finished;
    const r = { accepted: finished.length, completed: finished.filter((f) => f.succeeded).length };
    if (r.accepted > best.accepted) best = r;
  }
  return best;
}
