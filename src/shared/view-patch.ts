/**
 * Incremental conversation views (issue 10 "Benchmark"): after the first whole value, a watched
 * conversation travels as a patch naming only what changed: a message added, a delivery state
 * changed, a member's presence. The whole view (200 messages, ~60 KB) used to be rebuilt, compared
 * as JSON, structured-cloned to the UI and re-rendered at every engine step; a step changes one or
 * two items.
 *
 * The worker diffs the view it built against the one it last sent (`diffConversation`); the UI
 * side rebuilds the view (`applyConversationPatch`) keeping every unchanged item as the SAME
 * object, so a component memoised on its item re-renders only what changed. The diff is exact for
 * any change (the patch always rebuilds `next`); it is small when the timeline only grows at its
 * end, slides its window, or changes items in place, which is what steps do.
 */
import type { ConversationView, TimelineItem } from './worker-api.js';

export type ConversationFields = Omit<ConversationView, 'timeline'>;

export interface ConversationPatch {
  /** Fields other than the timeline whose value changed, whole. */
  readonly fields: Partial<ConversationFields>;
  /** The new timeline: `before`, then the previous timeline's items [keepFrom, keepTo), then `after`. */
  readonly before: readonly TimelineItem[];
  readonly keepFrom: number;
  readonly keepTo: number;
  readonly after: readonly TimelineItem[];
  /** Kept items whose content changed: [index in the new timeline, item]. */
  readonly changed: readonly (readonly [number, TimelineItem])[];
}

/** Structural equality of JSON-like view data (plain objects, arrays, strings, numbers, null). */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** What turns `prev` into `next`; null when nothing a person could see changed. */
export function diffConversation(prev: ConversationView, next: ConversationView): ConversationPatch | null {
  const fields: Record<string, unknown> = {};
  let fieldCount = 0;
  for (const key of Object.keys(next) as (keyof ConversationView)[]) {
    if (key === 'timeline') continue;
    if (!sameData(prev[key], next[key])) {
      fields[key] = next[key];
      fieldCount++;
    }
  }
  const old = prev.timeline;
  const now = next.timeline;
  const oldIndex = new Map<string, number>();
  for (let i = 0; i < old.length; i++) oldIndex.set(old[i]!.id, i);
  // The first new item that was there before anchors the kept run; it extends while both
  // timelines name the same items in the same order.
  let b = 0;
  while (b < now.length && !oldIndex.has(now[b]!.id)) b++;
  let keepFrom = 0;
  let kept = 0;
  if (b < now.length) {
    keepFrom = oldIndex.get(now[b]!.id)!;
    while (b + kept < now.length && keepFrom + kept < old.length && old[keepFrom + kept]!.id === now[b + kept]!.id) kept++;
  }
  const changed: [number, TimelineItem][] = [];
  for (let k = 0; k < kept; k++) if (!sameData(old[keepFrom + k], now[b + k])) changed.push([b + k, now[b + k]!]);
  const before = now.slice(0, b);
  const after = now.slice(b + kept);
  if (fieldCount === 0 && changed.length === 0 && before.length === 0 && after.length === 0 && keepFrom === 0 && kept === old.length) return null;
  return { fields: fields as Partial<ConversationFields>, before, keepFrom, keepTo: keepFrom + kept, after, changed };
}

/** `prev` with `patch` applied: a new view whose unchanged items are `prev`'s own objects. */
export function applyConversationPatch(prev: ConversationView, patch: ConversationPatch): ConversationView {
  if (!(patch.keepFrom >= 0 && patch.keepFrom <= patch.keepTo && patch.keepTo <= prev.timeline.length)) {
    throw new Error(`conversation patch keeps [${patch.keepFrom}, ${patch.keepTo}) of ${prev.timeline.length} items`);
  }
  const timeline = [...patch.before, ...prev.timeline.slice(patch.keepFrom, patch.keepTo), ...patch.after];
  for (const [index, item] of patch.changed) {
    if (!(index >= 0 && index < timeline.length)) throw new Error(`conversation patch changes item ${index} of ${timeline.length}`);
    timeline[index] = item;
  }
  return { ...prev, ...patch.fields, timeline };
}
