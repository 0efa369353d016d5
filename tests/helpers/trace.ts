/**
 * Loader for the mpenc_js traces (mpenc-wire.md "The trace file"): deterministic sessions of the
 * original implementation. The spec's own is ../shared/spec/vectors/mpenc_js-trace-seed1.json
 * (beside the repo; 37 packets); every other `mpenc_js-trace-*.json` in that folder, and every
 * file or folder named in COVEY_MPENC_TRACES (separated by the platform's path delimiter), is a
 * trace too, and the trace suites check each one with the same rules (tests/protocol/*trace*).
 * Binary values are base64 in the file and Uint8Array here.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { base64Decode } from '../../src/protocol/bytes.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VECTORS_DIR = 'shared/spec/vectors';
const SPEC_TRACE_NAME = 'mpenc_js-trace-seed1.json';
const TRACE_FILE_PATTERN = /^mpenc_js-trace-.*\.json$/;
/** Beside the repo (../shared), or beside the folder of git worktrees (../../shared). */
const VECTORS_PATH =
  ['..', '../..'].map((up) => resolve(REPO_ROOT, up, VECTORS_DIR)).find((p) => existsSync(p)) ?? resolve(REPO_ROOT, '..', VECTORS_DIR);
export const TRACE_PATH = join(VECTORS_PATH, SPEC_TRACE_NAME);

export interface TracePacket {
  readonly index: number;
  readonly sender: string;
  /** Channel members when the packet was received. */
  readonly channelMembers: readonly string[];
  readonly pubtxt: string;
  /** null when the packet was not accepted into the channel (sent after its author left). */
  readonly packetId: Uint8Array | null;
}

export interface TraceSubSession {
  readonly owner: string;
  readonly members: readonly string[];
  readonly sessionId: Uint8Array;
  readonly groupKey: Uint8Array;
  readonly ephemeralPubKeys: readonly Uint8Array[];
  readonly nonces: readonly Uint8Array[];
}

export interface Trace {
  readonly staticKeys: Readonly<Record<string, { readonly priv: Uint8Array; readonly pub: Uint8Array }>>;
  readonly packets: readonly TracePacket[];
  readonly subSessions: readonly TraceSubSession[];
  readonly serverOrder: Readonly<Record<string, { readonly packetId: readonly Uint8Array[]; readonly chainHash: readonly Uint8Array[] }>>;
}

interface RawTrace {
  staticKeys: Record<string, { priv: string; pub: string }>;
  packets: { sender: string; channelMembers: string[]; pubtxt: string; packetId: string | null }[];
  subSessions: { owner: string; members: string[]; sessionId: string; groupKey: string; ephemeralPubKeys: string[]; nonces: string[] }[];
  serverOrder: Record<string, { packetId: string[]; chainHash: string[] }>;
}

const b64 = base64Decode;
const mapValues = <A, B>(o: Record<string, A>, f: (a: A) => B): Record<string, B> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));

const cache = new Map<string, Trace>();

/** The spec's trace (seed 1), whose exact contents some tests also pin. */
export function loadTrace(): Trace {
  return readTrace(TRACE_PATH);
}

export interface NamedTrace {
  /** The file name, e.g. mpenc_js-trace-seed1.json. */
  readonly name: string;
  readonly path: string;
  readonly trace: Trace;
  /** True for the spec's own trace (seed 1). */
  readonly isSpecTrace: boolean;
}

/**
 * Every trace: the spec's first, then the other `mpenc_js-trace-*.json` beside it, then
 * COVEY_MPENC_TRACES (files, or folders whose `mpenc_js-trace-*.json` are read). A named path that
 * does not exist is an error, not a skip: a check asked for must run.
 */
export function loadTraces(env: Readonly<Record<string, string | undefined>> = process.env): NamedTrace[] {
  const paths = [TRACE_PATH, ...traceFilesIn(VECTORS_PATH)];
  for (const entry of (env['COVEY_MPENC_TRACES'] ?? '').split(delimiter).filter((e) => e !== '')) {
    const path = resolve(entry);
    if (!existsSync(path)) throw new Error(`COVEY_MPENC_TRACES names ${path}, which does not exist`);
    paths.push(...(statSync(path).isDirectory() ? traceFilesIn(path) : [path]));
  }
  const unique = [...new Set(paths)];
  return unique.map((path) => ({ name: basename(path), path, trace: readTrace(path), isSpecTrace: path === TRACE_PATH }));
}

function traceFilesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => TRACE_FILE_PATTERN.test(f))
    .sort()
    .map((f) => join(dir, f));
}

export function readTrace(path: string): Trace {
  const known = cache.get(path);
  if (known) return known;
  const raw = JSON.parse(readFileSync(path, 'utf8')) as RawTrace;
  const trace: Trace = {
    staticKeys: mapValues(raw.staticKeys, (k) => ({ priv: b64(k.priv), pub: b64(k.pub) })),
    packets: raw.packets.map((p, index) => ({
      index,
      sender: p.sender,
      channelMembers: p.channelMembers,
      pubtxt: p.pubtxt,
      packetId: p.packetId === null ? null : b64(p.packetId),
    })),
    subSessions: raw.subSessions.map((s) => ({
      owner: s.owner,
      members: s.members,
      sessionId: b64(s.sessionId),
      groupKey: b64(s.groupKey),
      ephemeralPubKeys: s.ephemeralPubKeys.map(b64),
      nonces: s.nonces.map(b64),
    })),
    serverOrder: mapValues(raw.serverOrder, (o) => ({ packetId: o.packetId.map(b64), chainHash: o.chainHash.map(b64) })),
  };
  cache.set(path, trace);
  return trace;
}
