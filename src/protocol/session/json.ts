/**
 * A JSON-safe form of plain state values for snapshots (mpENC §6.3): byte arrays become
 * `{ "$bytes": base64 }`, Maps `{ "$map": [[k, v], ...] }`; everything else must already be plain
 * JSON data (objects, arrays, strings, finite numbers, booleans, null). Used for the membership
 * half, whose state is a tree of plain values.
 */
import { base64Decode, base64Encode } from '../bytes.js';
import { assert, ProtocolError } from '../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deepest nesting we write or read: state trees are shallow; this bounds a hostile snapshot. */
const MAX_DEPTH = 64;

export function toJsonSafe(value: unknown, depth = 0): JsonValue {
  assert(depth <= MAX_DEPTH, 'state nests too deep for a snapshot');
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    assert(Number.isFinite(value), 'snapshots hold finite numbers only');
    return value;
  }
  if (value instanceof Uint8Array) return { $bytes: base64Encode(value) };
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [toJsonSafe(k, depth + 1), toJsonSafe(v, depth + 1)]) };
  if (Array.isArray(value)) return value.map((v) => toJsonSafe(v, depth + 1));
  if (typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonSafe(v, depth + 1);
    return out;
  }
  assert(false, `cannot snapshot a ${typeof value}`);
}

export function fromJsonSafe(value: JsonValue, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new ProtocolError('limit-exceeded', 'snapshot nests too deep');
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => fromJsonSafe(v, depth + 1));
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === '$bytes' && typeof value.$bytes === 'string') return base64Decode(value.$bytes);
  if (keys.length === 1 && keys[0] === '$map' && Array.isArray(value.$map)) {
    return new Map(
      value.$map.map((pair) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new ProtocolError('bad-value', 'snapshot map entry');
        return [fromJsonSafe(pair[0]!, depth + 1), fromJsonSafe(pair[1]!, depth + 1)];
      }),
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromJsonSafe(v, depth + 1);
  return out;
}
