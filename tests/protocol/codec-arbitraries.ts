/**
 * fast-check arbitraries for every packet kind, shaped exactly as the decoder returns them
 * (optional fields absent rather than undefined), so `decode(encode(x))` can be compared to `x`.
 * A Covey extension record adds its optional field to `greetingFieldsArb` here.
 */
import fc from 'fast-check';
import { GreetType, PROTOCOL_VERSION_1, PROTOCOL_VERSION_2, Severity, V2_ONLY_GREET_TYPES, type GreetType as GreetTypeByte } from '../../src/protocol/codec/constants.js';
import { encodeDataRegion, type DataPacket } from '../../src/protocol/codec/data.js';
import { encodeErrorRegion, type ErrorPacket } from '../../src/protocol/codec/error-packet.js';
import { encodeGreetingRegion, type GreetingFields, type GreetingPacket } from '../../src/protocol/codec/greeting.js';
import type { Packet } from '../../src/protocol/codec/packet.js';
import type { QueryPacket } from '../../src/protocol/codec/query.js';
import { chainHash, memberId, messageId, packetId, type MemberId } from '../../src/protocol/ids.js';

export const bytesArb = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
export const versionArb = fc.constantFrom(PROTOCOL_VERSION_1, PROTOCOL_VERSION_2);
export const memberIdArb: fc.Arbitrary<MemberId> = fc
  .string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 16 })
  .map(memberId);
export const greetTypeArb = fc.constantFrom(...(Object.values(GreetType) as GreetTypeByte[]));

/** Covey v2 extensions: only on v2 packets (the decoder rejects them in v1). */
const v2OnlyArb = fc.record(
  {
    opRef: bytesArb(32).map(chainHash),
    abortReason: fc.integer({ min: 0, max: 255 }),
    keyConfirmation: bytesArb(32),
    finPms: fc.array(bytesArb(20).map(messageId), { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: [] },
);

export const greetingFieldsArb: fc.Arbitrary<GreetingFields> = fc
  .tuple(fc.uniqueArray(memberIdArb, { maxLength: 6 }), versionArb, v2OnlyArb)
  .chain(([members, version, v2Only]) =>
    fc.record(
      {
        version: fc.constant(version),
        greetType: version === PROTOCOL_VERSION_2 ? greetTypeArb : greetTypeArb.filter((t) => !V2_ONLY_GREET_TYPES.has(t)),
        source: memberIdArb,
        dest: fc.option(memberIdArb, { nil: null }),
        members: fc.constant(members),
        intKeys: fc.array(fc.option(bytesArb(32), { nil: null }), { maxLength: members.length }),
        nonces: fc.array(bytesArb(32), { maxLength: members.length }),
        pubKeys: fc.array(bytesArb(32), { maxLength: members.length }),
        metadata: fc.record({
          prevPf: bytesArb(32).map(packetId),
          chainHash: bytesArb(32).map(chainHash),
          latestPms: fc.array(bytesArb(20).map(messageId), { maxLength: 4 }),
        }),
        sessionSignature: bytesArb(64),
        signingKey: bytesArb(32),
      },
      { requiredKeys: ['version', 'greetType', 'source', 'dest', 'members', 'intKeys', 'nonces', 'pubKeys'] },
    ).map((fields) => (version === PROTOCOL_VERSION_2 ? { ...fields, ...v2Only } : fields)),
  );

export const greetingArb: fc.Arbitrary<GreetingPacket> = fc
  .tuple(greetingFieldsArb, bytesArb(64))
  .map(([fields, signature]) => ({ ...fields, kind: 'greeting', signature, signed: encodeGreetingRegion(fields) }));

export const dataArb: fc.Arbitrary<DataPacket> = fc
  .record({
    version: versionArb,
    sidkeyHint: fc.integer({ min: 0, max: 255 }),
    signature: bytesArb(64),
    iv: bytesArb(12),
    chainIndex: fc.integer({ min: 0, max: 0xffff_ffff }),
    payload: fc.uint8Array({ maxLength: 300 }),
  })
  // CHAIN_INDEX is on v2 data packets only (issue 9 §3).
  .map(({ chainIndex, ...f }) => (f.version === 2 ? { ...f, chainIndex } : f))
  .map((f) => ({ ...f, kind: 'data', signed: encodeDataRegion(f) }));

export const errorArb: fc.Arbitrary<ErrorPacket> = fc
  .record({
    version: versionArb,
    signature: fc.option(bytesArb(64), { nil: null }),
    source: memberIdArb,
    severity: fc.constantFrom(Severity.INFO, Severity.WARNING, Severity.TERMINAL),
    // Well-formed text only: lone surrogates are not representable in UTF-8.
    message: fc.string({ unit: 'binary', maxLength: 40 }),
  })
  .map((f) => ({ ...f, kind: 'error', signed: encodeErrorRegion(f) }));

export const queryArb: fc.Arbitrary<QueryPacket> = versionArb.map((version) => ({ kind: 'query', version }));

export const packetArb: fc.Arbitrary<Packet> = fc.oneof(greetingArb, dataArb, errorArb, queryArb);
