/**
 * Random valid message DAGs for transcript tests: each new message of author A takes a random set
 * of earlier messages that A "saw" (always including A's previous message), and its parents are
 * the maximal elements of that set's down-closure, as an honest member would compute.
 */
import { Transcript } from '../../src/protocol/transcript/transcript.js';
import type { MemberId } from '../../src/protocol/ids.js';
import type { TranscriptMessage } from '../../src/protocol/transcript/message.js';

export type Body = { kind: 'payload'; text: string } | { kind: 'ack' };

export function randomDag(
  members: readonly MemberId[],
  count: number,
  int: (n: number) => number,
): TranscriptMessage<Body>[] {
  const reference = new Transcript<Body>(members);
  const out: TranscriptMessage<Body>[] = [];
  for (let i = 0; i < count; i++) {
    const author = members[int(members.length)]!;
    const ids = reference.ids();
    const seen = new Set<string>();
    const last = reference.lastBy(author);
    if (last !== undefined) seen.add(last);
    const extra = ids.length === 0 ? 0 : int(3);
    for (let k = 0; k < extra; k++) seen.add(ids[int(ids.length)]!);
    const chosen = [...seen];
    const parents = chosen.filter((c) => !chosen.some((d) => d !== c && reference.isAncestorOrSelf(c, d)));
    const body: Body = int(3) === 0 ? { kind: 'ack' } : { kind: 'payload', text: `m${i}` };
    const message = { id: `id${String(i).padStart(5, '0')}-${int(1000)}`, author, parents, body };
    reference.add(message);
    out.push(message);
  }
  return out;
}
