/**
 * Offering a verified message to a transcript (mpENC §4.2 receive handler, step 3): accept it if
 * its parents are present, else park it; every acceptance may release parked messages, which are
 * accepted in turn (a bounded cascade: each parked item is taken out once per arrival).
 */
import { isProtocolError } from '../errors.js';
import type { ProtocolError } from '../errors.js';
import type { PendingItem, PendingMessages } from './pending.js';
import type { Transcript } from './transcript.js';

export interface IngestResult<Body, Extra> {
  /** Newly accepted items in acceptance order (the offered one and any it released). */
  readonly accepted: PendingItem<Body, Extra>[];
  /** Items that broke a transcript rule: dropped, the session goes on. */
  readonly rejected: { readonly item: PendingItem<Body, Extra>; readonly error: ProtocolError }[];
  readonly duplicate: boolean;
  /** The offered item now waits for missing parents. */
  readonly buffered: boolean;
}

export function ingest<Body, Extra>(
  transcript: Transcript<Body>,
  pending: PendingMessages<Body, Extra>,
  offered: PendingItem<Body, Extra>,
): IngestResult<Body, Extra> {
  const accepted: PendingItem<Body, Extra>[] = [];
  const rejected: { item: PendingItem<Body, Extra>; error: ProtocolError }[] = [];
  if (transcript.has(offered.message.id) || pending.has(offered.message.id)) {
    return { accepted, rejected, duplicate: true, buffered: false };
  }
  let buffered = false;
  const queue: PendingItem<Body, Extra>[] = [offered];
  while (queue.length > 0) {
    const item = queue.shift()!;
    try {
      const result = transcript.offer(item.message);
      if (result.kind === 'duplicate') continue;
      if (result.kind === 'missing-parents') {
        pending.add(item, result.missing);
        if (item === offered) buffered = true;
        continue;
      }
      accepted.push(item);
      queue.push(...pending.release(item.message.id));
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      rejected.push({ item, error: e });
    }
  }
  return { accepted, rejected, duplicate: false, buffered };
}
