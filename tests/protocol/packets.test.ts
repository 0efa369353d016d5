/** Unit tests of the packet functions, run with every crypto provider where crypto is involved. */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, hexEncode, latin1Encode, utf8Encode } from '../../src/protocol/bytes.js';
import { GreetType, PROTOCOL_VERSION_1, PROTOCOL_VERSION_2, RecordType, Severity } from '../../src/protocol/codec/constants.js';
import { encodeDataRegion } from '../../src/protocol/codec/data.js';
import type { GreetingFields } from '../../src/protocol/codec/greeting.js';
import { MAX_MESSAGE_PARENTS, MAX_PADDED_PLAINTEXT_BYTES } from '../../src/protocol/codec/limits.js';
import { decodePacket, encodePacket } from '../../src/protocol/codec/packet.js';
import { encodeRecord, encodeRecords } from '../../src/protocol/codec/records.js';
import { isProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { chainHash, memberId, messageId, packetId, sessionId } from '../../src/protocol/ids.js';
import { makeNonce, makeSessionId, sessionAckDigest, signSessionAck, verifySessionAck } from '../../src/protocol/packets/aske.js';
import { decodeMessageBody, encodeMessageBody, MAX_MESSAGE_BODY_BYTES, type MessageBody } from '../../src/protocol/packets/body.js';
import {
  decodeDataContent,
  decryptDataPacketWith,
  encodeDataContent,
  openDataPacket,
  sealDataPacket,
  sidkeyHash,
  sidkeyHint,
  verifyDataPacket,
  type DataContent,
} from '../../src/protocol/packets/data.js';
import { deriveGroupKey } from '../../src/protocol/packets/group-key.js';
import { signErrorPacket, signGreeting, unsignedErrorPacket, verifyErrorPacket, verifyGreeting } from '../../src/protocol/packets/greeting-signature.js';
import {
  chainHashStep,
  genesisChainHash,
  makeGenesisPacketId,
  makeLeavePacketId,
  makeMessageId,
  makePacketId,
} from '../../src/protocol/packets/ids.js';
import { MAX_UNPADDED_BYTES, pad, paddedLength, unpad } from '../../src/protocol/packets/padding.js';
import { providers } from '../helpers/providers.js';
import { seededRandom } from '../helpers/seeded-random.js';

async function codeOf(f: () => unknown): Promise<ProtocolErrorCode | 'no error'> {
  try {
    await f();
    return 'no error';
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    throw e;
  }
}

const b = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const ALICE = memberId('alice');
const BOB = memberId('bob');
const CAROL = memberId('carol');

describe('padding (mpENC §5.3)', () => {
  it('pads to 128 × 2^k including the 2-byte length', () => {
    const cases: [number, number][] = [
      [0, 128], [1, 128], [126, 128], [127, 256], [128, 256], [254, 256], [255, 512],
      [510, 512], [511, 1024], [MAX_UNPADDED_BYTES, MAX_PADDED_PLAINTEXT_BYTES],
    ];
    for (const [content, padded] of cases) {
      expect(paddedLength(content), `${content}`).toBe(padded);
      const out = pad(b(content, 0xaa));
      expect(out.length).toBe(padded);
      expect((out[0]! << 8) | out[1]!).toBe(content);
      expect(bytesEqual(unpad(out), b(content, 0xaa))).toBe(true); // toEqual is slow on 32 KiB
    }
  });

  it('rejects content that cannot fit one payload record', async () => {
    expect(await codeOf(() => pad(b(MAX_UNPADDED_BYTES + 1)))).toBe('too-long');
  });

  it('rejects every non-canonical padded form', async () => {
    const good = pad(b(10, 5));
    expect(await codeOf(() => unpad(good.subarray(0, 127)))).toBe('bad-padding'); // not a padded size
    expect(await codeOf(() => unpad(new Uint8Array(129)))).toBe('bad-padding');
    expect(await codeOf(() => unpad(new Uint8Array(MAX_PADDED_PLAINTEXT_BYTES * 2)))).toBe('bad-padding');
    const lengthTooBig = good.slice();
    lengthTooBig[1] = 127; // 127 + 2 > 128
    expect(await codeOf(() => unpad(lengthTooBig))).toBe('bad-padding');
    const nonZero = good.slice();
    nonZero[127] = 1;
    expect(await codeOf(() => unpad(nonZero))).toBe('bad-padding');
    // 10 bytes of content padded to 256 instead of 128.
    const oversized = concatBytes(good, new Uint8Array(128));
    expect(await codeOf(() => unpad(oversized))).toBe('bad-padding');
    expect(await codeOf(() => unpad(new Uint8Array(128)))).toBe('no error'); // empty content
  });
});

describe('message bodies', () => {
  it('encodes as a type byte and a JSON array, like mpenc_js', () => {
    const cases: [MessageBody, string][] = [
      [{ type: 'payload', text: 'hi "you"' }, '\x00["hi \\"you\\""]'],
      [{ type: 'explicit-ack', manual: false }, '\x01[false]'],
      [{ type: 'heartbeat' }, '\x02[]'],
      [{ type: 'consistency', close: true }, '\x03[true]'],
    ];
    for (const [body, text] of cases) {
      expect(encodeMessageBody(body)).toEqual(utf8Encode(text));
      expect(decodeMessageBody(utf8Encode(text))).toEqual(body);
    }
    const unicode: MessageBody = { type: 'payload', text: 'héllo 👋' };
    expect(decodeMessageBody(encodeMessageBody(unicode))).toEqual(unicode);
  });

  it('rejects anything else', async () => {
    const bad = ['\x04[]', '\x00[]', '\x00[""]', '\x00[1]', '\x00["a","b"]', '\x01[0]', '\x01[]', '\x02[1]', '\x03["x"]',
      '\x00{"a":1}', '\x00["a"', '\x00 ["a"]', '\x01[ true]', '\x00["\\u0061"]', '\x00', '\x00["\\/"]', '\x00["h\\u00e9"]', '\x00["a"] ', '\x03[true,]'];
    for (const text of bad) expect(await codeOf(() => decodeMessageBody(utf8Encode(text))), JSON.stringify(text)).toBe('bad-value');
    expect(await codeOf(() => decodeMessageBody(Uint8Array.of(0, 0x5b, 0x22, 0xff, 0x22, 0x5d)))).toBe('bad-value');
    expect(await codeOf(() => encodeMessageBody({ type: 'payload', text: '' }))).toBe('bad-value');
    const long: MessageBody = { type: 'payload', text: 'x'.repeat(MAX_MESSAGE_BODY_BYTES) };
    expect(await codeOf(() => encodeMessageBody(long))).toBe('too-long');
    expect(await codeOf(() => decodeMessageBody(new Uint8Array(MAX_MESSAGE_BODY_BYTES + 1)))).toBe('too-long');
  });
});

describe('data plaintext records', () => {
  it('round-trips parents and body, and rejects bad plaintexts', async () => {
    const content: DataContent = { parents: [messageId(b(20, 1)), messageId(b(20, 2))], body: { type: 'heartbeat' } };
    expect(decodeDataContent(encodeDataContent(content))).toEqual(content);
    const body = encodeRecord(RecordType.MESSAGE_BODY, encodeMessageBody({ type: 'heartbeat' }));
    const parent = (fill: number, n = 20) => encodeRecord(RecordType.MESSAGE_PARENT, b(n, fill));
    expect(await codeOf(() => decodeDataContent(concatBytes(parent(1), parent(1), body)))).toBe('bad-value'); // duplicate
    // Apart, among few parents (compared pairwise) and among many (by key); distinct ones pass.
    const many = (n: number, dup: [number, number] | null) => concatBytes(...Array.from({ length: n }, (_, i) => parent(dup !== null && i === dup[1] ? dup[0] + 10 : i + 10)), body);
    expect(await codeOf(() => decodeDataContent(many(4, [0, 3])))).toBe('bad-value');
    expect(await codeOf(() => decodeDataContent(many(12, [2, 11])))).toBe('bad-value');
    expect(decodeDataContent(many(4, null)).parents).toHaveLength(4);
    expect(decodeDataContent(many(12, null)).parents).toHaveLength(12);
    const almost = concatBytes(parent(5), encodeRecord(RecordType.MESSAGE_PARENT, b(20, 5).map((x, i) => (i === 19 ? 6 : x))), body);
    expect(decodeDataContent(almost).parents).toHaveLength(2);
    expect(await codeOf(() => decodeDataContent(concatBytes(parent(1, 32), body)))).toBe('bad-value');
    expect(await codeOf(() => decodeDataContent(parent(1)))).toBe('bad-record');
    expect(await codeOf(() => decodeDataContent(concatBytes(body, parent(1))))).toBe('trailing-bytes');
    expect(await codeOf(() => decodeDataContent(concatBytes(body, body)))).toBe('trailing-bytes');
    expect(await codeOf(() => decodeDataContent(body.subarray(0, body.length - 1)))).toBe('truncated');
    const tooMany = Array.from({ length: MAX_MESSAGE_PARENTS + 1 }, (_, i) => messageId(b(20, i)));
    expect(await codeOf(() => encodeDataContent({ parents: tooMany, body: { type: 'heartbeat' } }))).toBe('too-long');
    expect(await codeOf(() => decodeDataContent(concatBytes(...tooMany.map((id) => encodeRecord(RecordType.MESSAGE_PARENT, id)), body)))).toBe('too-long');
    expect(await codeOf(() => encodeDataContent({ parents: [messageId(b(20)), messageId(b(20))], body: { type: 'heartbeat' } }))).toBe('bad-value');
  });
});

describe('ids', () => {
  it('brands check their sizes', async () => {
    expect(await codeOf(() => messageId(b(19)))).toBe('bad-value');
    expect(await codeOf(() => packetId(b(33)))).toBe('bad-value');
    expect(await codeOf(() => sessionId(b(0)))).toBe('bad-value');
    expect(await codeOf(() => chainHash(b(31)))).toBe('bad-value');
    for (const bad of ['', 'a b', 'a\nb', 'é', 'x'.repeat(129)]) expect(await codeOf(() => memberId(bad)), bad).toBe('bad-value');
    expect(memberId('_-AZaz09~!')).toBe('_-AZaz09~!');
  });
});

for (const crypto of providers) {
  describe(`packet functions with ${crypto.name}`, () => {
    const random = seededRandom(7).bytes;

    it('message id = SHA-256(signature ‖ S)[0..20]', async () => {
      const id = await makeMessageId(crypto, { signature: b(64, 1), signed: b(10, 2) });
      expect(id).toEqual((await crypto.sha256(concatBytes(b(64, 1), b(10, 2)))).slice(0, 20));
      // A decoded packet's signature and S are neighbours in one buffer (hashed as one view);
      // views with a byte between them, or out of order, are hashed as the two parts only.
      const whole = concatBytes(b(64, 1), b(10, 2));
      expect(await makeMessageId(crypto, { signature: whole.subarray(0, 64), signed: whole.subarray(64) })).toEqual(id);
      const gap = concatBytes(b(64, 1), Uint8Array.of(9), b(10, 2));
      expect(await makeMessageId(crypto, { signature: gap.subarray(0, 64), signed: gap.subarray(65) })).toEqual(id);
      const swapped = concatBytes(b(10, 2), b(64, 1));
      expect(await makeMessageId(crypto, { signature: swapped.subarray(10), signed: swapped.subarray(0, 10) })).toEqual(id);
    });

    it('packet id: sender, sorted other members, blank line, text', async () => {
      const id = await makePacketId(crypto, 'bob', ['carol', 'bob', 'alice', 'carol'], '?mpENC:x.');
      expect(id).toEqual(await crypto.sha256(latin1Encode('bob\nalice\ncarol\n\n?mpENC:x.')));
      // Sorted by UTF-16 code units: upper case before lower case.
      const id2 = await makePacketId(crypto, 'a', ['b', 'B'], 't');
      expect(id2).toEqual(await crypto.sha256(latin1Encode('a\nB\nb\n\nt')));
    });

    it('chain hash steps differ by packet type; genesis hashes 0xFF', async () => {
      const prev = chainHash(b(32, 9));
      const pid = packetId(b(32, 8));
      const steps = await Promise.all((['initial', 'final', 'initial-final', 'leave'] as const).map((t) => chainHashStep(crypto, prev, pid, t)));
      expect(new Set(steps.map(hexEncode)).size).toBe(4);
      expect(steps[0]).toEqual(await crypto.sha256(concatBytes(prev, pid, latin1Encode('2'))));
      expect(steps[2]).toEqual(await crypto.sha256(concatBytes(prev, pid, latin1Encode('3'))));
      expect(hexEncode(steps[3]!)).toBe('39f736671c1c7b654ffd463bc6f9aa92ffd8331119332ef25fcd7c783ff6dc19');
      expect(await genesisChainHash(crypto, pid)).toEqual(await crypto.sha256(concatBytes(pid, Uint8Array.of(0xff))));
      expect(makeGenesisPacketId(seededRandom(1).bytes)).toEqual(seededRandom(1).bytes(32));
    });

    it('leave pseudo packet id (known answer)', async () => {
      const id = await makeLeavePacketId(crypto, packetId(b(32, 7)), [BOB, CAROL], ['alice', 'dave']);
      expect(hexEncode(id)).toBe('147ce1ab8d117e8cdc63461fbfb3f6289b801847a4ec0f450f77a2692181e724');
      expect(await codeOf(() => makeLeavePacketId(crypto, packetId(b(32)), [], ['alice']))).toBe('bad-value');
    });

    it('session id is independent of member order and binds every nonce', async () => {
      const nonces = [b(32, 1), b(32, 2), b(32, 3)];
      const sid = await makeSessionId(crypto, [ALICE, BOB, CAROL], nonces);
      expect(sid).toEqual(await crypto.sha256(concatBytes(latin1Encode('alicebobcarol'), ...nonces)));
      expect(await makeSessionId(crypto, [CAROL, ALICE, BOB], [nonces[2]!, nonces[0]!, nonces[1]!])).toEqual(sid);
      expect(await makeSessionId(crypto, [ALICE, BOB, CAROL], [nonces[1]!, nonces[0]!, nonces[2]!])).not.toEqual(sid);
      expect(await codeOf(() => makeSessionId(crypto, [ALICE, BOB], nonces))).toBe('bad-value');
      expect(await codeOf(() => makeSessionId(crypto, [ALICE, ALICE], [b(32), b(32)]))).toBe('bad-value');
      expect(await codeOf(() => makeSessionId(crypto, [ALICE], [b(31)]))).toBe('bad-value');
      expect(await codeOf(() => makeSessionId(crypto, [], []))).toBe('bad-value');
      expect(makeNonce(seededRandom(2).bytes)).toHaveLength(32);
    });

    it('session signatures sign SHA-256("acksig" ‖ id ‖ ephemeral key ‖ nonce ‖ sid)', async () => {
      const staticSeed = b(32, 4);
      const staticPub = await crypto.ed25519PublicKey(staticSeed);
      const ack = { member: ALICE, ephemeralPubKey: b(32, 5), nonce: b(32, 6), sessionId: sessionId(b(32, 7)) };
      expect(await sessionAckDigest(crypto, ack)).toEqual(
        await crypto.sha256(concatBytes(latin1Encode('acksigalice'), b(32, 5), b(32, 6), b(32, 7))),
      );
      const sig = await signSessionAck(crypto, staticSeed, ack);
      expect(await verifySessionAck(crypto, staticPub, sig, ack)).toBe(true);
      for (const changed of [{ member: BOB }, { ephemeralPubKey: b(32, 0) }, { nonce: b(32, 0) }, { sessionId: sessionId(b(32, 0)) }]) {
        expect(await verifySessionAck(crypto, staticPub, sig, { ...ack, ...changed })).toBe(false);
      }
      expect(await verifySessionAck(crypto, staticPub, sig.subarray(0, 63), ack)).toBe(false);
    });

    it('group key = HKDF-SHA256(shared, salt empty, "mpenc group key") (known answer)', async () => {
      const ikm = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
      expect(hexEncode(await deriveGroupKey(crypto, ikm))).toBe('99b676e50b1d45d47b6669e605708e37156c76d270d85d656fd6ffedfc2777f4');
      expect(await codeOf(() => deriveGroupKey(crypto, new Uint8Array(32)))).toBe('low-order-point');
      expect(await codeOf(() => deriveGroupKey(crypto, b(31)))).toBe('bad-key');
    });

    it('seals and opens a data packet; it travels through the codec', async () => {
      const keys = { sessionId: sessionId(b(32, 1)), groupKey: b(32, 2) };
      const seed = b(32, 3);
      const pub = await crypto.ed25519PublicKey(seed);
      const content: DataContent = { parents: [messageId(b(20, 4))], body: { type: 'payload', text: 'hello' } };
      const packet = await sealDataPacket(crypto, random, { keys, ephemeralSeed: seed, content });
      expect(packet.sidkeyHint).toBe(await sidkeyHint(crypto, keys));
      expect(packet.sidkeyHint).toBe((await sidkeyHash(crypto, keys))[0]);
      expect(packet.payload).toHaveLength(128);
      expect(packet.version).toBe(PROTOCOL_VERSION_1);
      const received = decodePacket(encodePacket(packet));
      expect(received).toEqual(packet);
      expect(await openDataPacket(crypto, packet, keys, pub)).toEqual(content);
      // AES-256-CTR with IV ‖ 0^4: the payload decrypts to the padded plaintext.
      const plain = await crypto.aesCtr(keys.groupKey, concatBytes(packet.iv, new Uint8Array(4)), packet.payload);
      expect(plain).toEqual(pad(encodeDataContent(content)));
      // v2 (issue 9 §3): under the message key of its author's chain, its index on the wire.
      const messageKey = b(32, 7);
      const v2 = await sealDataPacket(crypto, random, { keys, ephemeralSeed: seed, content, chain: { index: 3, messageKey } });
      expect(v2.version).toBe(PROTOCOL_VERSION_2);
      expect(decodePacket(encodePacket(v2))).toEqual(v2);
      expect(await verifyDataPacket(crypto, v2, keys, pub)).toBe(true);
      expect(await decryptDataPacketWith(crypto, v2, messageKey)).toEqual(content);
      expect(await decryptDataPacketWith(crypto, v2, messageKey, true)).toEqual(content);
      expect(await codeOf(() => decryptDataPacketWith(crypto, v2, keys.groupKey))).not.toBe('no error');
    });

    it('refuses to open with a wrong key, subsession or author', async () => {
      const keys = { sessionId: sessionId(b(32, 1)), groupKey: b(32, 2) };
      const seed = b(32, 3);
      const pub = await crypto.ed25519PublicKey(seed);
      const packet = await sealDataPacket(crypto, random, { keys, ephemeralSeed: seed, content: { parents: [], body: { type: 'heartbeat' } } });
      const otherPub = await crypto.ed25519PublicKey(b(32, 9));
      expect(await codeOf(() => openDataPacket(crypto, packet, keys, otherPub))).toBe('bad-signature');
      expect(await codeOf(() => openDataPacket(crypto, packet, { ...keys, groupKey: b(32, 8) }, pub))).toBe('bad-signature');
      expect(await codeOf(() => openDataPacket(crypto, packet, { ...keys, sessionId: sessionId(b(32, 8)) }, pub))).toBe('bad-signature');
      expect(await codeOf(() => openDataPacket(crypto, packet, { ...keys, groupKey: b(31) }, pub))).toBe('bad-key');
      expect(await verifyDataPacket(crypto, packet, keys, pub)).toBe(true);
    });

    it('rejects a validly signed packet whose plaintext is malformed', async () => {
      // An insider can sign garbage: opening must still end in a ProtocolError.
      const keys = { sessionId: sessionId(b(32, 1)), groupKey: b(32, 2) };
      const seed = b(32, 3);
      const pub = await crypto.ed25519PublicKey(seed);
      const iv = b(12, 4);
      const sealRaw = async (plain: Uint8Array) => {
        const payload = await crypto.aesCtr(keys.groupKey, concatBytes(iv, new Uint8Array(4)), plain);
        const signed = encodeDataRegion({ version: 1, iv, payload });
        const hash = await sidkeyHash(crypto, keys);
        const signature = await crypto.ed25519Sign(seed, concatBytes(latin1Encode('datamsgsig'), hash, signed));
        return { kind: 'data' as const, version: 1 as const, iv, payload, signed, signature, sidkeyHint: hash[0]! };
      };
      expect(await codeOf(async () => openDataPacket(crypto, await sealRaw(b(128, 7)), keys, pub))).toBe('bad-padding');
      const noBody = pad(encodeRecords([{ type: RecordType.MESSAGE_PARENT, value: b(20) }]));
      expect(await codeOf(async () => openDataPacket(crypto, await sealRaw(noBody), keys, pub))).toBe('bad-record');
      const badBody = pad(encodeRecord(RecordType.MESSAGE_BODY, utf8Encode('\x07[]')));
      expect(await codeOf(async () => openDataPacket(crypto, await sealRaw(badBody), keys, pub))).toBe('bad-value');
    });

    it('seals the largest content that fits, and refuses one byte more', async () => {
      const keys = { sessionId: sessionId(b(32, 1)), groupKey: b(32, 2) };
      const seed = b(32, 3);
      // R = MESSAGE_BODY header (4) + type byte + '["' + text + '"]' (5 bytes of framing).
      const maxText = MAX_UNPADDED_BYTES - 4 - 5;
      const fits: DataContent = { parents: [], body: { type: 'payload', text: 'x'.repeat(maxText) } };
      const packet = await sealDataPacket(crypto, random, { keys, ephemeralSeed: seed, content: fits });
      expect(packet.payload).toHaveLength(MAX_PADDED_PLAINTEXT_BYTES);
      expect(decodePacket(encodePacket(packet))).toEqual(packet);
      const tooBig: DataContent = { parents: [], body: { type: 'payload', text: 'x'.repeat(maxText + 1) } };
      expect(await codeOf(() => sealDataPacket(crypto, random, { keys, ephemeralSeed: seed, content: tooBig }))).toBe('too-long');
    });

    it('signs and verifies greetings over "greetmsgsig" ‖ S', async () => {
      const seed = b(32, 3);
      const pub = await crypto.ed25519PublicKey(seed);
      const fields: GreetingFields = {
        version: PROTOCOL_VERSION_1,
        greetType: GreetType.INIT_INITIATOR_UP,
        source: ALICE,
        dest: BOB,
        members: [ALICE, BOB],
        intKeys: [null, b(32, 1)],
        nonces: [b(32, 2)],
        pubKeys: [pub],
      };
      const packet = await signGreeting(crypto, seed, fields);
      expect(packet.signature).toEqual(await crypto.ed25519Sign(seed, concatBytes(latin1Encode('greetmsgsig'), packet.signed)));
      const received = decodePacket(encodePacket(packet));
      expect(received).toEqual(packet);
      expect(await verifyGreeting(crypto, packet, pub)).toBe(true);
      expect(await verifyGreeting(crypto, packet, await crypto.ed25519PublicKey(b(32, 4)))).toBe(false);
      const forged = await signGreeting(crypto, seed, { ...fields, dest: CAROL });
      expect(await verifyGreeting(crypto, { ...forged, signature: packet.signature }, pub)).toBe(false);
    });

    it('signs and verifies error packets over "errormsgsig" ‖ S; unsigned ones never verify', async () => {
      const seed = b(32, 3);
      const pub = await crypto.ed25519PublicKey(seed);
      const fields = { version: PROTOCOL_VERSION_1, source: ALICE, severity: Severity.WARNING, message: 'chain hash mismatch' } as const;
      const packet = await signErrorPacket(crypto, seed, fields);
      expect(decodePacket(encodePacket(packet))).toEqual(packet);
      expect(await verifyErrorPacket(crypto, packet, pub)).toBe(true);
      const asGreeting = { ...packet, kind: 'greeting' } as never;
      expect(await verifyGreeting(crypto, asGreeting, pub)).toBe(false); // contexts differ
      const unsigned = unsignedErrorPacket(fields);
      expect(decodePacket(encodePacket(unsigned))).toEqual(unsigned);
      expect(await verifyErrorPacket(crypto, unsigned, pub)).toBe(false);
    });
  });
}
