/**
 * Codec properties (fast-check): every packet kind round-trips, and no input whatsoever makes
 * the decoder throw anything but a ProtocolError. Accepted inputs are canonical: re-encoding an
 * accepted packet gives back the exact input. COVEY_FUZZ_RUNS scales the run count (CI default).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/protocol/bytes.js';
import { RecordType } from '../../src/protocol/codec/constants.js';
import { frame, unframe } from '../../src/protocol/codec/framing.js';
import { decodePacket, decodePacketBytes, encodePacket, encodePacketBytes, type Packet } from '../../src/protocol/codec/packet.js';
import { encodeRecords } from '../../src/protocol/codec/records.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import { loadTraces } from '../helpers/trace.js';
import { dataArb, errorArb, greetingArb, packetArb, queryArb } from './codec-arbitraries.js';

const RUNS = Number(process.env.COVEY_FUZZ_RUNS ?? 300);
const traceTexts = loadTraces().flatMap((t) => t.trace.packets.map((p) => p.pubtxt));

/** Runs `decode`; a ProtocolError is a fine answer, anything else fails the property. */
function decodeOrProtocolError<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (e) {
    if (isProtocolError(e)) return undefined;
    throw e;
  }
}

/** An accepted input must be canonical: encoding the result gives the input back. */
function checkBytes(bytes: Uint8Array): void {
  const packet = decodeOrProtocolError(() => decodePacketBytes(bytes));
  // bytesEqual first: vitest's deep equality is slow on the ~20k calls below.
  if (packet !== undefined && !bytesEqual(encodePacketBytes(packet), bytes)) expect(encodePacketBytes(packet)).toEqual(bytes);
}

function checkText(text: string): void {
  const packet = decodeOrProtocolError(() => decodePacket(text));
  if (packet !== undefined) expect(encodePacket(packet)).toBe(text);
}

describe('codec round trip: decode(encode(x)) = x', () => {
  const kinds: [string, fc.Arbitrary<Packet>][] = [
    ['greeting', greetingArb],
    ['data', dataArb],
    ['error', errorArb],
    ['query', queryArb],
  ];
  for (const [name, arb] of kinds) {
    it(name, () => {
      fc.assert(
        fc.property(arb, (packet) => {
          const text = encodePacket(packet);
          const decoded = decodePacket(text);
          expect(decoded).toEqual(packet);
          expect(encodePacket(decoded)).toBe(text);
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('codec robustness: only ProtocolError, for any input', () => {
  it('random text', () => {
    const textArb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }).map((s) => '?mpENC:' + s),
      fc.string({ maxLength: 200 }).map((s) => '?mpENC:' + s + '.'),
      fc.base64String({ maxLength: 400 }).map((s) => '?mpENC:' + s + '.'),
    );
    fc.assert(fc.property(textArb, checkText), { numRuns: RUNS });
  });

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), checkBytes), { numRuns: RUNS });
  });

  it('random sequences of real record types with plausible value sizes', () => {
    const types = Object.values(RecordType) as number[];
    const valueArb = fc.oneof(
      fc.uint8Array({ maxLength: 8 }),
      fc.constantFrom(1, 2, 12, 20, 32, 64, 128).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
      fc.constantFrom(1, 2, 3, 4).map((v) => Uint8Array.of(v)),
    );
    const recordArb = fc.record({ type: fc.oneof(fc.constantFrom(...types), fc.integer({ min: 0, max: 0xffff })), value: valueArb });
    fc.assert(fc.property(fc.array(recordArb, { maxLength: 24 }), (records) => checkBytes(encodeRecords(records))), { numRuns: RUNS });
  });

  it('mutations of real mpenc_js packets (bit flips, truncation, insertion, deletion)', () => {
    const mutationArb = fc.record({
      packet: fc.integer({ min: 0, max: traceTexts.length - 1 }),
      op: fc.constantFrom('flip', 'truncate', 'insert', 'delete', 'duplicate'),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
      insert: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      length: fc.integer({ min: 1, max: 40 }),
    });
    fc.assert(
      fc.property(mutationArb, (m) => {
        const bytes = unframe(traceTexts[m.packet]!);
        const at = m.at % (bytes.length + 1);
        let mutated: Uint8Array;
        switch (m.op) {
          case 'flip':
            mutated = bytes.slice();
            mutated[at % bytes.length] = mutated[at % bytes.length]! ^ (1 << m.bit);
            break;
          case 'truncate':
            mutated = bytes.slice(0, at);
            break;
          case 'insert':
            mutated = Uint8Array.from([...bytes.subarray(0, at), ...m.insert, ...bytes.subarray(at)]);
            break;
          case 'delete':
            mutated = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + m.length)]);
            break;
          default:
            mutated = Uint8Array.from([...bytes.subarray(0, at + m.length), ...bytes.subarray(at)]);
        }
        checkBytes(mutated);
        if (mutated.length > 0) checkText(frame(mutated));
      }),
      { numRuns: RUNS * 4 },
    );
  });

  it('mutations of real packet text (character edits)', () => {
    const editArb = fc.record({
      packet: fc.integer({ min: 0, max: traceTexts.length - 1 }),
      at: fc.nat(),
      length: fc.integer({ min: 0, max: 6 }),
      insert: fc.string({ maxLength: 4 }),
    });
    fc.assert(
      fc.property(editArb, (e) => {
        const text = traceTexts[e.packet]!;
        const at = e.at % (text.length + 1);
        checkText(text.slice(0, at) + e.insert + text.slice(at + e.length));
      }),
      { numRuns: RUNS },
    );
  });

  it('single-bit flips anywhere in every trace packet', () => {
    // Exhaustive over 37 packets would be ~100k decodes; one flip per byte keeps it quick.
    for (const text of traceTexts) {
      const bytes = unframe(text);
      for (let i = 0; i < bytes.length; i++) {
        const mutated = bytes.slice();
        mutated[i] = mutated[i]! ^ (1 << (i % 8));
        checkBytes(mutated);
      }
    }
  });

  it('any packet from the arbitraries survives truncation at every length', () => {
    fc.assert(
      fc.property(packetArb, (packet) => {
        const bytes = encodePacketBytes(packet);
        for (let n = 0; n < bytes.length; n++) checkBytes(bytes.subarray(0, n));
      }),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  });
});
