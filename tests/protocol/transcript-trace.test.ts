/**
 * A passive observer of the mpenc_js trace: given each subsession's keys (sid, group key,
 * ephemeral signing keys), it picks the key by SIDKEY_HINT, verifies and decrypts every data
 * packet, and rebuilds each subsession's causal DAG with the transcript rules (mpENC §3.4).
 */
import { describe, expect, it } from 'vitest';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { DataPacket } from '../../src/protocol/codec/data.js';
import { idKey, memberId, sessionId, type MemberId } from '../../src/protocol/ids.js';
import { makeMessageId } from '../../src/protocol/packets/ids.js';
import { openDataPacket, sidkeyHint, type SubsessionKeys } from '../../src/protocol/packets/data.js';
import type { MessageBody } from '../../src/protocol/packets/body.js';
import { Transcript } from '../../src/protocol/transcript/transcript.js';
import { PendingMessages } from '../../src/protocol/transcript/pending.js';
import { ingest } from '../../src/protocol/transcript/ingest.js';
import { MessageLog } from '../../src/protocol/transcript/message-log.js';
import { providers } from '../helpers/providers.js';
import { loadTrace } from '../helpers/trace.js';

interface Observed {
  keys: SubsessionKeys;
  hint: number;
  members: MemberId[];
  pubKeys: Map<MemberId, Uint8Array>;
  transcript: Transcript<MessageBody>;
  pending: PendingMessages<MessageBody, null>;
  index: number;
}

describe.each(providers)('passive observer of the mpenc_js trace ($name)', (crypto) => {
  it('decrypts every data packet it has keys for and rebuilds a valid DAG per subsession', async () => {
    const trace = loadTrace();
    const log = new MessageLog<MessageBody>((b) => b.type === 'payload');
    const subsessions: Observed[] = [];
    for (const s of trace.subSessions) {
      if (subsessions.some((o) => idKey(o.keys.sessionId) === idKey(sessionId(s.sessionId)))) continue;
      const keys = { sessionId: sessionId(s.sessionId), groupKey: s.groupKey };
      const members = s.members.map((m) => memberId(m));
      const transcript = new Transcript<MessageBody>(members);
      subsessions.push({
        keys,
        hint: await sidkeyHint(crypto, keys),
        members,
        pubKeys: new Map(members.map((m, i) => [m, s.ephemeralPubKeys[i]!])),
        transcript,
        pending: new PendingMessages(),
        index: log.addSubsession(transcript),
      });
    }
    let undecryptable = 0;
    let accepted = 0;
    for (const p of trace.packets) {
      const packet = decodePacket(p.pubtxt);
      if (packet.kind !== 'data') continue;
      const sender = memberId(p.sender);
      const target = subsessions.find((o) => o.hint === packet.sidkeyHint && o.pubKeys.has(sender));
      if (target === undefined) {
        undecryptable++;
        continue;
      }
      const content = await openDataPacket(crypto, packet as DataPacket, target.keys, target.pubKeys.get(sender)!);
      const id = idKey(await makeMessageId(crypto, packet));
      const result = ingest(target.transcript, target.pending, {
        message: { id, author: sender, parents: content.parents.map(idKey), body: content.body },
        extra: null,
        receivedAtMs: p.index,
      });
      expect(result.rejected).toEqual([]);
      for (const item of result.accepted) {
        accepted++;
        log.accepted(target.index, item.message.id);
      }
    }
    // The file holds the keys of the last two subsessions (after excluding carol, and after
    // re-including her); the 15 data packets of the first one stay unreadable to the observer.
    expect(undecryptable).toBe(15);
    expect(accepted).toBe(11);
    for (const o of subsessions) {
      expect(o.pending.size).toBe(0);
      // every author's messages form a line, and the last ones ack each other as mpenc_js did
      for (const m of o.members) {
        const line = o.transcript.byAuthor(m);
        for (let i = 1; i < line.length; i++) expect(o.transcript.isAncestor(line[i - 1]!, line[i]!)).toBe(true);
      }
    }
    expect(subsessions.map((o) => o.transcript.size).sort()).toEqual([3, 8]);
    expect(log.size).toBeGreaterThan(0);
    for (const id of log.order()) for (const parent of log.parents(id)) expect(log.order().indexOf(parent)).toBeLessThan(log.order().indexOf(id));
  });
});
