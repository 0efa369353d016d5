/**
 * Splits a V8 CPU profile of the relay (main thread) into the parts of the post path that issue 13
 * asks about: signature check, MAC check, JSON, store, fan-out, and the rest (HTTP, routing, runtime).
 * 'signature' also holds the SHA-256 of the body in the signed text, which a MAC'd request needs
 * as much as a signed one (it is called from verifySigned either way, so the stack cannot tell).
 *
 * Each sample is charged to the first frame, walking from the leaf towards the root, that a rule
 * claims: `JSON.parse` inside the fan-out counts as JSON, the store's code inside a route counts as
 * store, and so on. So a part's time is the time spent in that kind of work wherever it was called
 * from. Idle samples are dropped; `(program)` (native time V8 cannot attribute to a JS frame) and
 * `(garbage collector)` are parts of their own.
 */

export type CpuPart = 'signature' | 'mac' | 'json' | 'store' | 'fan-out' | 'web-push' | 'http' | 'routing' | 'gc' | 'native' | 'other';

/** The order parts are printed in. */
export const CPU_PARTS: readonly CpuPart[] = ['signature', 'mac', 'json', 'store', 'fan-out', 'web-push', 'http', 'routing', 'gc', 'native', 'other'];

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * The part a single frame belongs to; 'io' for Node's own HTTP, socket and stream code, which is
 * charged to whatever relay code called it (a `ws` send is fan-out, `res.end` is HTTP) and only
 * counts as 'http' when no relay, store or `ws` frame is on the stack (parsing a request); 'crypto'
 * for node:crypto and noble, charged to the MAC check when mac-keys.ts or relay-mac.ts is on the
 * stack and to the signature check otherwise (as all of node:crypto was before MACs); undefined
 * when the frame says nothing (look at its caller).
 */
function partOfFrame(frame: CallFrame): CpuPart | 'idle' | 'io' | 'crypto' | undefined {
  const { functionName: name, url } = frame;
  // The profiler's own start-up is not the relay's work.
  if (name === '(idle)' || url === 'node:inspector') return 'idle';
  if (name === '(garbage collector)') return 'gc';
  if (name === '(program)') return 'native';
  // V8 builtins have no url.
  if (url === '' && (name === 'parse' || name === 'stringify')) return 'json';
  if (url.includes('/src/relay/mac-keys.ts') || url.includes('/src/shared/relay-mac.ts')) return 'mac';
  if (url.includes('/src/relay/auth.ts') && (name === 'verifyEd25519' || name === 'publicKeyObject')) return 'signature';
  if (url.includes('/src/relay/signature')) return 'signature';
  if (url.includes('/src/relay/ids.ts') && name === 'sha256Base64Url') return 'signature';
  if (url === 'node:crypto' || url.startsWith('node:internal/crypto/') || url.includes('/node_modules/@noble/')) return 'crypto';
  if (
    url.includes('/src/relay/store/') ||
    url.includes('/node_modules/better-sqlite3/') ||
    url.includes('/node_modules/ioredis/') ||
    url.includes('/node_modules/@ioredis/') ||
    url.includes('/node_modules/redis-parser/') ||
    url.includes('/node_modules/denque/')
  ) {
    return 'store';
  }
  // push.ts and push-wire.ts (the frames written to the sockets, flushed at the end of the tick).
  if (url.includes('/src/relay/push') || url.includes('/node_modules/ws/')) return 'fan-out';
  if (url.includes('/src/relay/web-push/')) return 'web-push';
  if (url.includes('/src/relay/http/')) return 'http';
  if (url.includes('/src/relay/')) return 'routing';
  if (url.startsWith('node:_http') || url.startsWith('node:net') || url.startsWith('node:stream') || url.startsWith('node:internal/stream') ||
      url.startsWith('node:internal/http') || url.startsWith('node:internal/streams') || url.startsWith('node:internal/net')) {
    return 'io';
  }
  return undefined;
}

/** Microseconds of main-thread CPU per part (idle excluded). */
export function cpuByPart(profile: CpuProfile): Record<CpuPart, number> {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // Each node's part, resolved once: the first frame from the leaf up that names a part; failing
  // that 'http' if Node's socket or HTTP code is on the stack, else 'other'.
  const resolved = new Map<number, CpuPart | 'idle'>();
  const resolve = (id: number): CpuPart | 'idle' => {
    const known = resolved.get(id);
    if (known !== undefined) return known;
    const path: number[] = [];
    let part: CpuPart | 'idle' | undefined;
    let sawIo = false;
    let sawCrypto = false;
    // Bounded by the tree's depth: every step goes to a parent.
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const cached = resolved.get(current);
      if (cached !== undefined && !(cached === 'other' && sawIo) && !sawCrypto) {
        part = cached;
        break;
      }
      path.push(current);
      const node = byId.get(current);
      const own = node === undefined ? undefined : partOfFrame(node.callFrame);
      if (own === 'io') sawIo = true;
      else if (own === 'crypto') sawCrypto = true;
      else if (own !== undefined) {
        part = own;
        break;
      }
    }
    // Crypto under the MAC check is the MAC's; any other crypto is the signature check's.
    const result = sawCrypto && part !== 'mac' ? 'signature' : (part ?? (sawIo ? 'http' : 'other'));
    // Cached only when no 'io' or 'crypto' frame was passed: above such a frame the answer can differ.
    if (!sawIo && !sawCrypto) for (const step of path) resolved.set(step, result);
    return result;
  };
  const totals = Object.fromEntries(CPU_PARTS.map((part) => [part, 0])) as Record<CpuPart, number>;
  profile.samples.forEach((id, i) => {
    const part = resolve(id);
    if (part !== 'idle') totals[part] += profile.timeDeltas[i] ?? 0;
  });
  return totals;
}
