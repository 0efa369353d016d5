import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket } from '../../src/protocol/codec/packet.js';
import { loadTrace } from '../helpers/trace.js';

describe('smoke', () => {
  it('decodes', () => {
    for (const p of loadTrace().packets) {
      const d = decodePacket(p.pubtxt);
      expect(encodePacket(d)).toBe(p.pubtxt);
    }
  });
});
