/**
 * The push hub's way onto the wire (issue 13 "Scale-out that keeps up", fan-out): every frame the
 * hub sends is framed here ONCE (RFC 6455 §5.2: a server's frames are not masked, so the same
 * bytes go to every subscriber of an event) and written straight to the connection's socket, which
 * stays corked until the end of the tick. A group commit (SQLite) or a chunk of pub/sub messages
 * (Redis) announces many events in one tick: each connection then gets all of its frames of that
 * tick in one write (one `writev`), and each frame costs one buffered chunk instead of the `ws`
 * library's header allocation, cork, two writes and uncork per subscriber.
 *
 * Order: `ws`'s own frames (pongs, the close frame) go to the same socket, so while it is corked
 * they queue behind the hub's frames in the order they were written. `ws`'s `bufferedAmount`
 * (the socket's queue) counts corked bytes too, so the hub's slow-reader cap still sees them.
 */
import type { Writable } from 'node:stream';

/** RFC 6455 §5.2: FIN set, opcode 0x1 (text). */
const FIN_TEXT = 0x81;
/** Payload lengths up to this fit the 7-bit field; up to 0xffff take 2 more bytes, beyond that 8. */
const MAX_7BIT_LENGTH = 125;
const MAX_16BIT_LENGTH = 0xffff;

/** A complete unmasked text frame (server to client) carrying `json`, UTF-8 encoded straight into it. */
export function textFrame(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const headerBytes = length <= MAX_7BIT_LENGTH ? 2 : length <= MAX_16BIT_LENGTH ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerBytes + length);
  frame[0] = FIN_TEXT;
  if (headerBytes === 2) frame[1] = length;
  else if (headerBytes === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    // 64-bit length, most significant bit 0 (§5.2); strings are far below 2^53 bytes.
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(json, headerBytes, length, 'utf8');
  return frame;
}

/** Writes frames to sockets, each socket corked from its first write of a tick to the tick's end. */
export interface TickWriter {
  write(socket: Writable, frame: Buffer): void;
  /** Sockets corked now (tests). */
  corked(): number;
}

export function makeTickWriter(): TickWriter {
  /** Insertion order: sockets are uncorked in the order they were first written to this tick. */
  const corked = new Set<Writable>();
  let flushQueued = false;
  const flush = (): void => {
    flushQueued = false;
    // Bounded by the sockets written to in one tick; a write made by an uncork's side effects
    // (none today) would cork its socket again and queue the next flush.
    const sockets = [...corked];
    corked.clear();
    for (const socket of sockets) socket.uncork();
  };
  return {
    write(socket, frame) {
      if (!corked.has(socket)) {
        socket.cork();
        corked.add(socket);
        if (!flushQueued) {
          flushQueued = true;
          process.nextTick(flush);
        }
      }
      socket.write(frame);
    },
    corked: () => corked.size,
  };
}
