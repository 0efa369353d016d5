/**
 * `bench:protocol -- messages` (issue 4): the cost of one data message in mpENC, per crypto
 * provider, beside ts-mls application messages in the same run; and catch-up, one member
 * receiving a queue of messages from several authors.
 *
 *  - send: Session.send = encode the body and parents, pad, AES-CTR, Ed25519 sign, message id,
 *    accept into our own transcript and ack bookkeeping (mpENC §3.6, §5.3);
 *  - receive: Session.receive of the packet text = decode, message id, verify, decrypt, unpad,
 *    parse, accept into the transcript and MessageLog, ack bookkeeping;
 *  - ts-mls: createApplicationMessage + encode / decode + processMessage (bench/mls.ts).
 *
 * Messages go round robin in a group of 3, each read by the other two, so parents are real and
 * every receiver acks through its own next message. Figures are CPU time (process-wide, so
 * WebCrypto's threads count) and wall time; on a shared machine CPU time is the one to compare.
 *
 * `npx tsx bench/protocol-messages.ts` runs it alone: table, then one JSON line.
 * BENCH_MESSAGES and BENCH_CATCH_UP shrink or grow the run; BENCH_MLS_CATCH_UP=1 adds ts-mls to
 * the catch-up (off by default: it adds about a minute).
 */
import { pathToFileURL } from 'node:url';
import { nobleProvider } from '../src/protocol/crypto/noble.js';
import type { CryptoProvider } from '../src/protocol/crypto/provider.js';
import type { SessionEffect } from '../src/protocol/session/effects.js';
import { DEFAULT_SESSION_CONFIG, VERIFY_AHEAD } from '../src/protocol/session/config.js';
import { selectCryptoProvider } from '../src/protocol/crypto/select.js';
import { webCryptoProvider } from '../tests/helpers/providers.js';
import { formatOps, printJsonLine, printTable, round } from './harness.js';
import {
  agreedSessions,
  buildCatchUpQueue,
  deliveredTexts,
  names,
  sentTexts,
  warnings,
  type CatchUpQueue,
} from './messages-fixture.js';
import { mlsCatchUp, mlsMessages, perItem, Stopwatch, timed, type MlsCatchUpResult, type MlsMessagesResult, type Timing } from './mls.js';

export interface MessagesBenchOptions {
  /** Timed messages per implementation (default BENCH_MESSAGES or 300). */
  readonly messages?: number;
  /** Group size for send/receive (default 3). */
  readonly members?: number;
  /** Untimed messages first (default 20). */
  readonly warmup?: number;
  /** Queued messages for catch-up (default BENCH_CATCH_UP or 10,000); 0 skips catch-up. */
  readonly catchUpMessages?: number;
  readonly catchUpAuthors?: number;
  /**
   * Smaller queues (prefixes of the big one) caught up with receiveAll by the hybrid provider, to
   * show catch-up is linear in the queue (issue 8). Default BENCH_CATCH_UP_SCALE (comma list) or
   * a quarter and a half of catchUpMessages.
   */
  readonly catchUpScale?: readonly number[];
  /** Default: noble, webcrypto and the hybrid the worker selects (select.ts, measured routing). */
  readonly providers?: readonly CryptoProvider[];
  /** Run the ts-mls side (default true). */
  readonly mls?: boolean;
  /**
   * Also a ts-mls catch-up of the same size (default BENCH_MLS_CATCH_UP=1, else off: creating
   * the queue alone costs ts-mls ~25 s of CPU for 10,000 messages).
   */
  readonly mlsCatchUp?: boolean;
  readonly seed?: number;
}

export interface CoveyMessagesResult {
  readonly provider: string;
  readonly members: number;
  readonly count: number;
  readonly send: Timing;
  /** Summed over count × (members - 1) receipts. */
  readonly receive: Timing;
  readonly sendPerMessageMs: Timing;
  readonly receivePerMessageMs: Timing;
  /** Every receipt delivered exactly the text sent, and no warning was raised. */
  readonly allDelivered: boolean;
}

/** A queue of the first `count` packets of `queue` (a queue in relay order, so any prefix is one). */
export function catchUpPrefix(queue: CatchUpQueue, count: number): CatchUpQueue {
  return { ...queue, packets: queue.packets.slice(0, count), texts: queue.texts.slice(0, count) };
}

export interface CatchUpResult {
  readonly provider: string;
  /** 0: Session.receive one event at a time; else Session.receiveAll pages of this many events. */
  readonly page: number;
  /** receiveAll's look-ahead (SessionConfig.verifyAhead): signature checks in flight at once. */
  readonly verifyAhead: number;
  readonly messages: number;
  readonly authors: number;
  readonly timing: Timing;
  /** Messages accepted per wall-clock second (and per CPU second). */
  readonly msgsPerSec: number;
  readonly msgsPerCpuSec: number;
  /** All were accepted and delivered in queue order, with no warning. */
  readonly allAccepted: boolean;
}

/** One printed table row: operation, implementation, per-message CPU µs, wall µs, rate, ratio. */
export type MessagesRow = readonly string[];

export const MESSAGES_TABLE_HEADERS = ['operation', 'impl', 'CPU µs/msg', 'wall µs/msg', 'msgs/CPU-s', 'CPU vs ts-mls'] as const;

export interface MessagesBenchReport {
  readonly covey: readonly CoveyMessagesResult[];
  readonly mls: MlsMessagesResult | undefined;
  readonly catchUp: readonly CatchUpResult[];
  readonly mlsCatchUp: MlsCatchUpResult | undefined;
  readonly rows: readonly MessagesRow[];
  readonly catchUpRows: readonly MessagesRow[];
  /** JSON-safe summary for the benchmark's JSON line. */
  readonly json: Record<string, unknown>;
}

const BASE_MS = 1_700_000_000_000;

/** Round-robin messages between Sessions; each packet is received by every other member. */
export async function coveyMessages(
  crypto: CryptoProvider,
  count: number,
  options: { readonly members?: number; readonly warmup?: number } = {},
): Promise<CoveyMessagesResult> {
  const size = options.members ?? 3;
  const warmup = options.warmup ?? 20;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`message count ${count}`);
  if (!Number.isInteger(size) || size < 2) throw new RangeError(`group size ${size}`);
  const members = names('member', size);
  const sessions = await agreedSessions(crypto, members, `messages:${crypto.name}`, BASE_MS);
  const sending = new Stopwatch();
  const receiving = new Stopwatch();
  let allDelivered = true;
  for (let i = -warmup; i < count; i++) {
    const untimed = <T>(work: () => Promise<T>) => work();
    const send = i < 0 ? untimed : <T>(work: () => Promise<T>) => sending.run(work);
    const receive = i < 0 ? untimed : <T>(work: () => Promise<T>) => receiving.run(work);
    const nowMs = BASE_MS + (i + warmup) * 10;
    const s = (i + warmup) % size;
    const text = `message ${i}: a chat message of a typical length, around a hundred characters or so.`;
    const effects = await send(() => sessions[s]!.send(text, nowMs));
    const packets = sentTexts(effects);
    if (packets.length !== 1 || warnings(effects).length > 0) allDelivered = false;
    for (const [r, reader] of sessions.entries()) {
      if (r === s) continue;
      for (const packet of packets) {
        const event = { kind: 'packet', seq: i + warmup + 1, sender: members[s]!, text: packet } as const;
        const got = await receive(() => reader.receive(event, nowMs));
        const delivered = deliveredTexts(got);
        if (delivered.length !== 1 || delivered[0] !== text || warnings(got).length > 0) allDelivered = false;
      }
    }
  }
  return {
    provider: crypto.name,
    members: size,
    count,
    send: sending.timing,
    receive: receiving.timing,
    sendPerMessageMs: perItem(sending.timing, count),
    receivePerMessageMs: perItem(receiving.timing, count * (size - 1)),
    allDelivered,
  };
}

/**
 * Signature checks per second of `crypto`, one at a time (each awaited before the next), on a
 * message the size of a data packet's signed bytes: the yardstick of issue 8's catch-up target.
 */
export async function verifyRate(crypto: CryptoProvider, count = 2_000): Promise<{ readonly perCpuSec: number; readonly perSec: number }> {
  const seed = await crypto.sha256(new Uint8Array([1, 2, 3]));
  const pub = await crypto.ed25519PublicKey(seed);
  const message = new Uint8Array(320).map((_, i) => i & 0xff);
  const signature = await crypto.ed25519Sign(seed, message);
  for (let i = 0; i < 100; i++) await crypto.ed25519Verify(pub, message, signature);
  const { result, timing } = await timed(async () => {
    let ok = true;
    for (let i = 0; i < count; i++) ok = (await crypto.ed25519Verify(pub, message, signature)) && ok;
    return ok;
  });
  if (!result) throw new Error(`${crypto.name}: a good signature did not verify`);
  return { perCpuSec: (count * 1000) / timing.cpuMs, perSec: (count * 1000) / timing.wallMs };
}

/**
 * noble's catch-up runs on this prefix of the queue: its verify (~700/CPU-s) made 10,000
 * messages twice about 35 s of CPU, a fifth of the whole `bench:protocol`, for a provider the
 * target is not about (its rate per message does not depend on the queue length: see the
 * hybrid's scaling rows). The row says how many messages it read.
 */
export const NOBLE_CATCH_UP_MESSAGES = 2_000;

/** Events per Session.receiveAll call in the paged catch-up (a relay read's page). */
export const CATCH_UP_PAGE = 200;

/**
 * The member who was away receives the whole queue, in relay order: through Session.receive one
 * event at a time (`page` 0), or Session.receiveAll pages of `page` events (what a worker
 * catching up from the relay's pages does).
 */
export async function coveyCatchUp(crypto: CryptoProvider, queue: CatchUpQueue, page = 0, verifyAhead = VERIFY_AHEAD): Promise<CatchUpResult> {
  // Sessions for everyone (so keys and channel agree); only the reader's is used.
  const config = verifyAhead === DEFAULT_SESSION_CONFIG.verifyAhead ? DEFAULT_SESSION_CONFIG : { ...DEFAULT_SESSION_CONFIG, verifyAhead };
  const sessions = await agreedSessions(crypto, queue.members, queue.label, BASE_MS, config);
  const session = sessions[queue.members.indexOf(queue.reader)]!;
  let delivered = 0;
  let inOrder = true;
  let warned = false;
  const nowMs = BASE_MS + 60_000;
  const check = (effects: readonly SessionEffect[]) => {
    for (const text of deliveredTexts(effects)) {
      if (text !== queue.texts[delivered]) inOrder = false;
      delivered += 1;
    }
    if (warnings(effects).length > 0) warned = true;
  };
  const { timing } = await timed(async () => {
    if (page === 0) for (const packet of queue.packets) check(await session.receive(packet, nowMs));
    else for (let i = 0; i < queue.packets.length; i += page) check(await session.receiveAll(queue.packets.slice(i, i + page), nowMs));
  });
  const n = queue.packets.length;
  const authors = queue.members.length - 1;
  return {
    provider: crypto.name,
    page,
    verifyAhead,
    messages: n,
    authors,
    timing,
    msgsPerSec: (n * 1000) / timing.wallMs,
    msgsPerCpuSec: (n * 1000) / timing.cpuMs,
    allAccepted: delivered === n && inOrder && !warned && session.transcripts()[0]?.size === n,
  };
}


const envNumber = (name: string, fallback: number) => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
};

export const CATCH_UP_TABLE_HEADERS = ['catch-up', 'impl', 'CPU s', 'wall s', 'msgs/s', 'msgs/CPU-s', '÷ verify/s', '÷ verify/CPU-s'] as const;

/** The providers of the default run: both implementations and the hybrid the worker would pick. */
export async function defaultBenchProviders(): Promise<CryptoProvider[]> {
  return [nobleProvider, webCryptoProvider, await selectCryptoProvider()];
}

const us = (ms: number) => formatOps(ms * 1000);

/**
 * Runs every part and returns the results, the table rows and the JSON summary (printing
 * nothing). Default run: 300 messages per implementation and 10,000 catch-up messages, about a
 * minute of CPU, most of it noble's catch-up.
 */
export async function runMessagesBench(options: MessagesBenchOptions = {}): Promise<MessagesBenchReport> {
  const count = options.messages ?? envNumber('BENCH_MESSAGES', 300);
  const members = options.members ?? 3;
  const warmup = options.warmup ?? 20;
  const catchUpMessages = options.catchUpMessages ?? envNumber('BENCH_CATCH_UP', 10_000);
  const catchUpAuthors = options.catchUpAuthors ?? 5;
  const providers = options.providers ?? (await defaultBenchProviders());

  const mls = options.mls === false ? undefined : await mlsMessages(count, { members, warmup });
  const covey: CoveyMessagesResult[] = [];
  for (const p of providers) covey.push(await coveyMessages(p, count, { members, warmup }));

  let queue: CatchUpQueue | undefined;
  const catchUp: CatchUpResult[] = [];
  const scaled: CatchUpResult[] = [];
  /** The full queue with no look-ahead (checks one at a time): wall time before issue 8's overlap. */
  let sequential: CatchUpResult | undefined;
  /** Mean wall time of the two look-ahead runs of the full queue around it. */
  let overlappedWallMs = 0;
  const scaleEnv = process.env['BENCH_CATCH_UP_SCALE'];
  const scale = options.catchUpScale ?? (scaleEnv !== undefined && scaleEnv !== '' ? scaleEnv.split(',').map(Number) : [Math.round(catchUpMessages / 4), Math.round(catchUpMessages / 2)]);
  const verify = new Map<string, { readonly perCpuSec: number; readonly perSec: number }>();
  if (catchUpMessages > 0) {
    // Sealing does not depend on the provider; WebCrypto builds the queue fastest.
    const full = await buildCatchUpQueue(webCryptoProvider, catchUpMessages, catchUpAuthors, options.seed ?? 1);
    queue = full;
    for (const p of providers) {
      // Issue 8's yardstick, measured in the same run: the provider's own signature checks.
      verify.set(p.name, await verifyRate(p, p.name === 'noble' ? 300 : 2_000));
      const own = p.name === 'noble' ? catchUpPrefix(full, Math.min(NOBLE_CATCH_UP_MESSAGES, full.packets.length)) : full;
      catchUp.push(await coveyCatchUp(p, own, 0));
      catchUp.push(await coveyCatchUp(p, own, CATCH_UP_PAGE));
    }
    // Linear in the queue: the same rate at a quarter, a half and all of it (the hybrid the app
    // uses), each the better of two runs (the JIT warm, a shared machine's noise halved).
    const hybrid = providers.find((p) => p.name === 'hybrid');
    if (hybrid !== undefined) {
      for (const size of [...scale.filter((n) => n > 0 && n < full.packets.length), full.packets.length]) {
        const a = await coveyCatchUp(hybrid, catchUpPrefix(full, size), CATCH_UP_PAGE);
        // Between the two runs of the full queue (interleaved, same heap state): the same pages
        // with every signature check awaited in order, for the wall-time row.
        if (size === full.packets.length) sequential = await coveyCatchUp(hybrid, full, CATCH_UP_PAGE, 0);
        const b = await coveyCatchUp(hybrid, catchUpPrefix(full, size), CATCH_UP_PAGE);
        if (size === full.packets.length) overlappedWallMs = (a.timing.wallMs + b.timing.wallMs) / 2;
        scaled.push(a.msgsPerCpuSec >= b.msgsPerCpuSec ? { ...a, allAccepted: a.allAccepted && b.allAccepted } : { ...b, allAccepted: a.allAccepted && b.allAccepted });
      }
    }
  }
  const runMlsCatchUp = options.mlsCatchUp ?? process.env['BENCH_MLS_CATCH_UP'] === '1';
  const mlsCatch = catchUpMessages > 0 && runMlsCatchUp ? await mlsCatchUp(catchUpMessages, catchUpAuthors) : undefined;

  const rows: MessagesRow[] = [];
  const ratio = (covey: Timing, base: Timing | undefined) => (base === undefined ? '-' : (covey.cpuMs / base.cpuMs).toFixed(2) + '×');
  for (const [label, pick, pickMls] of [
    ['send (encode, encrypt, sign)', (r: CoveyMessagesResult) => r.sendPerMessageMs, (m: MlsMessagesResult) => m.sendPerMessageMs],
    ['receive (verify, decrypt, accept)', (r: CoveyMessagesResult) => r.receivePerMessageMs, (m: MlsMessagesResult) => m.receivePerMessageMs],
  ] as const) {
    const base = mls === undefined ? undefined : pickMls(mls);
    for (const r of covey) {
      const t = pick(r);
      rows.push([label, `covey/${r.provider}`, us(t.cpuMs), us(t.wallMs), formatOps(1000 / t.cpuMs), ratio(t, base)]);
    }
    if (base !== undefined) rows.push([label, 'ts-mls', us(base.cpuMs), us(base.wallMs), formatOps(1000 / base.cpuMs), '1.00×']);
  }
  const catchUpRow = (label: string, impl: string, c: { messages: number; authors: number; timing: Timing; msgsPerSec: number; msgsPerCpuSec: number }, v?: { perSec: number; perCpuSec: number }) => [
    label,
    impl,
    (c.timing.cpuMs / 1000).toFixed(2),
    (c.timing.wallMs / 1000).toFixed(2),
    formatOps(c.msgsPerSec),
    formatOps(c.msgsPerCpuSec),
    v === undefined ? '-' : (c.msgsPerSec / v.perSec).toFixed(2) + '×',
    v === undefined ? '-' : (c.msgsPerCpuSec / v.perCpuSec).toFixed(2) + '×',
  ];
  const catchUpRows: MessagesRow[] = [];
  for (const [name, v] of verify) {
    catchUpRows.push(['signature checks, one at a time', `covey/${name}`, '-', '-', formatOps(v.perSec), formatOps(v.perCpuSec), '1.00×', '1.00×']);
    for (const c of catchUp.filter((r) => r.provider === name)) {
      const how = c.page === 0 ? 'receive one by one' : `receiveAll, pages of ${c.page}`;
      catchUpRows.push(catchUpRow(`${formatOps(c.messages)} msgs, ${c.authors} authors, ${how}`, `covey/${name}`, c, v));
    }
    for (const c of scaled.filter((r) => r.provider === name)) {
      const how = `receiveAll, pages of ${c.page}, best of 2`;
      catchUpRows.push(catchUpRow(`${formatOps(c.messages)} msgs, ${c.authors} authors, ${how}`, `covey/${name}`, c, v));
    }
    if (sequential !== undefined && sequential.provider === name) {
      // The wall time with the look-ahead (the mean of the two runs above) over this one's.
      const how = `pages of ${sequential.page}, no look-ahead (wall with ${VERIFY_AHEAD} ahead: ${(overlappedWallMs / sequential.timing.wallMs).toFixed(2)}×)`;
      catchUpRows.push(catchUpRow(`${formatOps(sequential.messages)} msgs, ${sequential.authors} authors, ${how}`, `covey/${name}`, sequential, v));
    }
  }
  if (mlsCatch !== undefined) catchUpRows.push(catchUpRow(`${formatOps(mlsCatch.messages)} msgs, ${mlsCatch.authors} authors`, 'ts-mls', mlsCatch));
  const catchUpJson = (c: { timing: Timing; msgsPerSec: number; msgsPerCpuSec: number }, ok: boolean) => ({
    cpuSeconds: round(c.timing.cpuMs / 1000),
    wallSeconds: round(c.timing.wallMs / 1000),
    msgsPerSec: round(c.msgsPerSec),
    msgsPerCpuSec: round(c.msgsPerCpuSec),
    ok,
  });

  const perMessage = (send: Timing, receive: Timing, ok: boolean) => ({
    sendCpuUs: round(send.cpuMs * 1000),
    sendWallUs: round(send.wallMs * 1000),
    receiveCpuUs: round(receive.cpuMs * 1000),
    receiveWallUs: round(receive.wallMs * 1000),
    ok,
  });
  const json = {
    messages: {
      count,
      members,
      covey: Object.fromEntries(covey.map((r) => [r.provider, perMessage(r.sendPerMessageMs, r.receivePerMessageMs, r.allDelivered)])),
      mls: mls === undefined ? null : { ciphersuite: 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519', ...perMessage(mls.sendPerMessageMs, mls.receivePerMessageMs, mls.allDelivered) },
      /** Covey CPU per message ÷ ts-mls CPU per message: below 1, Covey is cheaper. */
      coveyOverMls:
        mls === undefined
          ? null
          : Object.fromEntries(
              covey.map((r) => [
                r.provider,
                {
                  send: round(r.sendPerMessageMs.cpuMs / mls.sendPerMessageMs.cpuMs),
                  receive: round(r.receivePerMessageMs.cpuMs / mls.receivePerMessageMs.cpuMs),
                },
              ]),
            ),
    },
    catchUp:
      queue === undefined
        ? null
        : {
            messages: queue.packets.length,
            authors: catchUpAuthors,
            maxParents: queue.maxParents,
            page: CATCH_UP_PAGE,
            results: Object.fromEntries([
              ...[...verify].map(([name, v]) => {
                const one = catchUp.find((c) => c.provider === name && c.page === 0)!;
                const paged = catchUp.find((c) => c.provider === name && c.page !== 0)!;
                return [
                  name,
                  {
                    /** Messages this provider read (noble: the first NOBLE_CATCH_UP_MESSAGES). */
                    messages: paged.messages,
                    verifyPerSec: round(v.perSec),
                    verifyPerCpuSec: round(v.perCpuSec),
                    oneByOne: catchUpJson(one, one.allAccepted),
                    paged: catchUpJson(paged, paged.allAccepted),
                    /** Issue 8 target: paged catch-up ≥ 0.7 × the provider's verify rate (wall; CPU beside it). */
                    pagedOverVerify: round(paged.msgsPerSec / v.perSec),
                    pagedOverVerifyCpu: round(paged.msgsPerCpuSec / v.perCpuSec),
                    /**
                     * The full queue in pages with every check awaited in order (verifyAhead 0),
                     * run between the two look-ahead runs of it: the wall time the overlap saves.
                     */
                    ...(sequential !== undefined && sequential.provider === name && {
                      sequential: {
                        ...catchUpJson(sequential, sequential.allAccepted),
                        overlappedWallSeconds: round(overlappedWallMs / 1000),
                        overlappedOverSequentialWall: round(overlappedWallMs / sequential.timing.wallMs),
                      },
                    }),
                    /** Linear in the queue: paged catch-up of smaller prefixes (msgs/CPU-s ÷ verify/CPU-s each). */
                    scaling: Object.fromEntries(
                      scaled.filter((c) => c.provider === name).map((c) => [
                        String(c.messages),
                        { ...catchUpJson(c, c.allAccepted), overVerifyCpu: round(c.msgsPerCpuSec / v.perCpuSec) },
                      ]),
                    ),
                  },
                ] as const;
              }),
              ...(mlsCatch === undefined ? [] : [['ts-mls', catchUpJson(mlsCatch, mlsCatch.allDelivered)] as const]),
            ]),
          },
  };
  return { covey, mls, catchUp: [...scaled, ...(sequential === undefined ? [] : [sequential]), ...catchUp], mlsCatchUp: mlsCatch, rows, catchUpRows, json };
}

/** Prints both tables (bench/protocol.ts may call this, then printJsonLine with `report.json`). */
export function printMessagesReport(report: MessagesBenchReport): void {
  printTable(MESSAGES_TABLE_HEADERS, report.rows);
  if (report.catchUpRows.length > 0) {
    console.log('');
    printTable(CATCH_UP_TABLE_HEADERS, report.catchUpRows);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runMessagesBench();
  printMessagesReport(report);
  printJsonLine('protocol-messages', report.json);
  const ok =
    report.covey.every((r) => r.allDelivered) &&
    report.catchUp.every((c) => c.allAccepted) &&
    (report.mls?.allDelivered ?? true) &&
    (report.mlsCatchUp?.allDelivered ?? true);
  if (!ok) {
    console.error('some message was not delivered as sent (see "ok": false above)');
    process.exitCode = 1;
  }
}
