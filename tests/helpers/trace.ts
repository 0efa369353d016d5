/**
 * Loader for the mpenc_js trace (../shared/spec/vectors/mpenc_js-trace-seed1.json, beside the
 * repo): a deterministic 37-packet session of the original implementation (mpenc-wire.md
 * "The trace file"). Binary values are base64 in the file and Uint8Array here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { base64Decode } from '../../src/protocol/bytes.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TRACE_FILE = 'shared/spec/vectors/mpenc_js-trace-seed1.json';
/** Beside the repo (../shared), or beside the folder of git worktrees (../../shared). */
export const TRACE_PATH =
  ['..', '../..'].map((up) => resolve(REPO_ROOT, up, TRACE_FILE)).find((p) => existsSync(p)) ?? resolve(REPO_ROOT, '..', TRACE_FILE);

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

let cached: Trace | undefined;

export function loadTrace(): Trace {
  if (cached) return cached;
  const raw = JSON.parse(readFileSync(TRACE_PATH, 'utf8')) as RawTrace;
  cached = {
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
  return cached;
}
