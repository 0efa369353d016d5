/**
 * An incremental parser of Redis replies (RESP2, https://redis.io/docs/latest/develop/reference/protocol-spec/)
 * for ./resp-pipe.ts: `push` a chunk from the socket, get back the replies it completed. A reply
 * cut between chunks is parsed again from its start when the next chunk comes (replies on the post
 * path are small arrays). Bulk strings are decoded as UTF-8 (the store's arguments and events are
 * JSON text), integers as numbers (the store's are counters and seqs, far below 2^53).
 */

/** A reply: simple and bulk strings as strings, integers as numbers, arrays, null for a nil. */
export type RespReply = string | number | null | RespReply[];

/** An error reply ("-ERR …", "-NOSCRIPT …"): a refusal by Redis, not a connection failure. */
export class RespReplyError extends Error {
  override readonly name = 'ReplyError';
}

/** Nesting deeper than this is not a reply the store asked for: the stream is corrupt. */
const MAX_DEPTH = 8;
const CR_LF = Buffer.from('\r\n');
const INCOMPLETE = Symbol('incomplete');
const SIMPLE = 0x2b; // '+'
const ERROR = 0x2d; // '-'
const INTEGER = 0x3a; // ':'
const BULK = 0x24; // '$'
const ARRAY = 0x2a; // '*'

export class RespParser {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  /** The replies `chunk` completed, in order; throws on bytes that are not RESP (a broken stream). */
  push(chunk: Buffer): Array<RespReply | RespReplyError> {
    this.buffer = this.offset < this.buffer.length ? Buffer.concat([this.buffer.subarray(this.offset), chunk]) : chunk;
    this.offset = 0;
    const replies: Array<RespReply | RespReplyError> = [];
    // Bounded by the buffer: each round consumes one whole reply, or stops.
    while (this.offset < this.buffer.length) {
      const start = this.offset;
      const reply = this.parse(0);
      if (reply === INCOMPLETE) {
        this.offset = start;
        break;
      }
      replies.push(reply);
    }
    return replies;
  }

  private line(): string | typeof INCOMPLETE {
    const end = this.buffer.indexOf(CR_LF, this.offset);
    if (end < 0) return INCOMPLETE;
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 2;
    return text;
  }

  private length(head: string): number {
    const value = Number(head);
    if (!Number.isSafeInteger(value) || value < -1) throw new Error(`RESP: bad length ${JSON.stringify(head.slice(0, 20))}`);
    return value;
  }

  private parse(depth: number): RespReply | RespReplyError | typeof INCOMPLETE {
    if (depth > MAX_DEPTH) throw new Error('RESP: replies nested too deep');
    if (this.offset >= this.buffer.length) return INCOMPLETE;
    const type = this.buffer[this.offset];
    this.offset += 1;
    const head = this.line();
    if (head === INCOMPLETE) return INCOMPLETE;
    switch (type) {
      case SIMPLE:
        return head;
      case ERROR:
        return new RespReplyError(head);
      case INTEGER: {
        const value = Number(head);
        if (!Number.isSafeInteger(value)) throw new Error(`RESP: bad integer ${JSON.stringify(head.slice(0, 20))}`);
        return value;
      }
      case BULK: {
        const length = this.length(head);
        if (length < 0) return null;
        if (this.offset + length + 2 > this.buffer.length) return INCOMPLETE;
        const text = this.buffer.toString('utf8', this.offset, this.offset + length);
        this.offset += length + 2;
        return text;
      }
      case ARRAY: {
        const count = this.length(head);
        if (count < 0) return null;
        const items: RespReply[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.parse(depth + 1);
          if (item === INCOMPLETE) return INCOMPLETE;
          // An error inside an array (a script's error_reply in a table) is kept as its text.
          items.push(item instanceof RespReplyError ? item.message : item);
        }
        return items;
      }
      default:
        throw new Error(`RESP: unexpected type byte ${String(type)}`);
    }
  }
}
