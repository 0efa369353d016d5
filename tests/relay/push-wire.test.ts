/**
 * push-wire.ts: the push hub's frames, framed once and written straight to each socket, corked
 * until the end of the tick (issue 13 "Scale-out that keeps up", fan-out).
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { makeTickWriter, textFrame } from '../../src/relay/push-wire.js';

// ws's framer and parser (exported by ws, not declared by @types/ws).
const wsInternals = createRequire(import.meta.url)('ws') as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable;
};
const { Sender, Receiver } = wsInternals;

/** ws's own framing of a server (unmasked) text frame, as one buffer. */
function wsFrame(payload: Buffer): Buffer {
  const parts = Sender.frame(payload, { fin: true, mask: false, opcode: 1, readOnly: false, rsv1: false });
  return Buffer.concat(parts);
}

/** Parses frames with ws's receiver (a client's view: server frames must be unmasked). */
function receive(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const messages: string[] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) reject(new Error('binary frame'));
      messages.push(data.toString('utf8'));
    });
    receiver.on('error', reject);
    receiver.write(bytes, (error?: Error | null) => (error ? reject(error) : resolve(messages)));
  });
}

/** A writable that records each write and writev the stream machinery makes (one per syscall on a socket). */
function recordingStream(): { stream: Writable; calls: Buffer[][] } {
  const calls: Buffer[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      calls.push([chunk]);
      callback();
    },
    writev(chunks, callback) {
      calls.push(chunks.map((c) => c.chunk as Buffer));
      callback();
    },
  });
  return { stream, calls };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('textFrame', () => {
  it('frames exactly as ws does, at every length boundary of RFC 6455 §5.2', async () => {
    for (const length of [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]) {
      const payload = Buffer.alloc(length, 'x');
      if (length > 0) payload.write('{"n":', 0);
      const frame = textFrame(payload.toString('utf8'));
      expect(frame.equals(wsFrame(payload)), `length ${length}`).toBe(true);
      expect(await receive(frame)).toEqual([payload.toString('utf8')]);
    }
  });

  it('carries multi-byte UTF-8 by its byte length', async () => {
    const text = JSON.stringify({ note: 'ünïcødé ✓ 𝄞'.repeat(20) });
    const frame = textFrame(text);
    expect(await receive(frame)).toEqual([text]);
  });
});

describe('makeTickWriter', () => {
  it("sends one tick's frames to a socket in one writev, in order, and the next tick's in another", async () => {
    const writer = makeTickWriter();
    const { stream, calls } = recordingStream();
    const frames = Array.from({ length: 5 }, (_, i) => textFrame(JSON.stringify({ seq: i + 1 })));
    for (const frame of frames.slice(0, 3)) writer.write(stream, frame);
    expect(calls).toHaveLength(0); // corked until the tick ends
    expect(writer.corked()).toBe(1);
    await tick();
    expect(calls).toEqual([frames.slice(0, 3)]);
    for (const frame of frames.slice(3)) writer.write(stream, frame);
    await tick();
    expect(calls).toEqual([frames.slice(0, 3), frames.slice(3)]);
    expect(writer.corked()).toBe(0);
    expect(await receive(Buffer.concat(calls.flat()))).toEqual(frames.map((_, i) => JSON.stringify({ seq: i + 1 })));
  });

  it('keeps writes made by others (ws control frames) in order behind the frames already corked', async () => {
    const writer = makeTickWriter();
    const { stream, calls } = recordingStream();
    const event = textFrame('{"type":"event"}');
    writer.write(stream, event);
    // What ws's sender does for a pong or a close frame: its own cork, write, uncork.
    const control = Buffer.from([0x8a, 0x00]);
    stream.cork();
    stream.write(control);
    stream.uncork();
    expect(calls).toHaveLength(0);
    await tick();
    expect(calls).toEqual([[event, control]]);
  });

  it('counts corked bytes in the socket queue (what the slow-reader cap reads), and flushes every socket', async () => {
    const writer = makeTickWriter();
    const a = recordingStream();
    const b = recordingStream();
    const frame = textFrame('y'.repeat(1000));
    writer.write(a.stream, frame);
    writer.write(b.stream, frame);
    writer.write(a.stream, frame);
    expect(a.stream.writableLength).toBe(2 * frame.length);
    expect(b.stream.writableLength).toBe(frame.length);
    await tick();
    expect(a.calls).toEqual([[frame, frame]]);
    expect(b.calls).toEqual([[frame]]);
  });

  it('leaves a socket destroyed while corked alone', async () => {
    const writer = makeTickWriter();
    const { stream, calls } = recordingStream();
    stream.on('error', () => undefined);
    writer.write(stream, textFrame('{}'));
    stream.destroy();
    await tick();
    expect(calls).toHaveLength(0);
    expect(writer.corked()).toBe(0);
  });
});
