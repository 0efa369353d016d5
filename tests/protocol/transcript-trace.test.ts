/**
 * A passive observer of each mpenc_js trace (tests/helpers/trace.ts): given each subsession's keys (sid, group key,
 * ephemeral signing keys), it picks the key by SIDKEY_HINT, verifies and decrypts every data
 * packet, and rebuilds each subsession's causal DAG with the transcript rules (mpENC §3.4).
 */
import { describe, expect, it } from 'vitest';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { DataPacket } from '../../src/protocol/codec/data.js';
import { idKey, memberId, sessionId, type MemberId } from '../../src/protocol/ids.js';
import { makeMessageId } from '../../src/protocol/packets/ids.js';
import { openDataPacket, sidkeyHint, verifyDataPacket, type SubsessionKeys } from '../../src/protocol/packets/data.js';
import type { MessageBody } from '../../src/protocol/packets/body.js';
import { Transcript } from '../../src/protocol/transcript/transcript.js';
import { PendingMessages } from '../../src/protocol/transcript/pending.js';
import { ingest } from '../../src/protocol/transcript/ingest.js';
import { MessageLog } from '../../src/protocol/transcript/message-log.js';
import { providers } from '../helpers/providers.js';
import { loadTraces, type NamedTrace } from '../helpers/trace.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';

interface Observed {
  keys: SubsessionKeys;
  hint: number;
  members: MemberId[];
  pubKeys: Map<MemberId, Uint8Array>;
  transcript: Transcript<MessageBody>;
  pending: PendingMessages<MessageBody, null>;
  index: number;
}

const cases = providers.flatMap((crypto) => loadTraces().map((named) => [crypto.name, named.name, crypto, named] as const));

describe.each(cases)('passive observer of the mpenc_js trace (%s, %s)', (_provider, _name, crypto: CryptoProvider, named: NamedTrace) => {
  it('decrypts every data packet it has keys for and rebuilds a valid DAG per subsession', async () => {
    const { trace } = named;
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
      // SIDKEY_HINT is one byte: of the subsessions sharing it, the signature picks (mpENC §5.3).
      let target: Observed | undefined;
      for (const o of subsessions) {
        const key = o.pubKeys.get(sender);
        if (o.hint === packet.sidkeyHint && key !== undefined && (await verifyDataPacket(crypto, packet as DataPacket, o.keys, key))) target = o;
      }
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
    // The file holds the keys of each member's last two subsessions; data sealed in an older one
    // (seed 1: the 15 data packets of the start) stays unreadable to the observer.
    expect(accepted + undecryptable).toBe(trace.packets.filter((p) => decodePacket(p.pubtxt).kind === 'data').length);
    if (named.isSpecTrace) {
      expect(undecryptable).toBe(15);
      expect(accepted).toBe(11);
      expect(subsessions.map((o) => o.transcript.size).sort()).toEqual([3, 8]);
    }
    for (const o of subsessions) {
      expect(o.pending.size).toBe(0);
      // every author's messages form a line, and the last ones ack each other as mpenc_js did
      for (const m of o.members) {
        const line = o.transcript.byAuthor(m);
        for (let i = 1; i < line.length; i++) expect(o.transcript.isAncestor(line[i - 1]!, line[i]!)).toBe(true);
      }
    }
    expect(subsessions.reduce((n, o) => n + o.transcript.size, 0)).toBe(accepted);
    expect(log.size).toBeGreaterThan(0);
    for (const id of log.order()) for (const parent of log.parents(id)) expect(log.order().indexOf(parent)).toBeLessThan(log.order().indexOf(id));
  });
});
