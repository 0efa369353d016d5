/**
 * A lean pipelined Redis connection for the post path (issue 13 "Scale-out that keeps up"): the
 * Redis store sends its appends through it on a standalone Redis (./redis.ts). ioredis builds a
 * Command object per call, flattens and converts every argument and runs an auto-pipeline object
 * per turn; for the append script's 23 arguments that was ~6 % of the relay's CPU per post (perf at
 * 3,000–4,000 posts/s). Here a call is one RESP string added to the batch, and replies are parsed
 * straight from the socket's chunks (./resp-parser.ts).
 *
 * Batching as ioredis' auto-pipelining does it: calls made while a batch is out wait, and go
 * together in one write when its last reply comes in. A busy relay sends Redis few large writes
 * (one AOF fsync each with `appendfsync always`); an idle one sends each call on the next turn.
 *
 * Failure (the store's module comment): nothing is ever sent twice. When the connection drops,
 * times out or errs, every call not yet answered fails with a RespConnectionError, which
 * `unavailable` (./redis.ts) maps to StoreUnavailableError whatever its cause, as ioredis' path
 * answers any failed connection (a refused set-up, a DNS failure, a broken stream); the next call
 * connects again. After a failed connect, calls fail at once for a back-off (50 ms doubling to
 * 2 s) instead of each trying to connect.
 */
import { connect, type Socket } from 'node:net';
import { RespParser, RespReplyError, type RespReply } from './resp-parser.js';

export interface RespPipeOptions {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** The database of a redis://host/N URL. */
  readonly db?: number;
  readonly connectTimeoutMs: number;
  /** A batch with no reply for this long fails the connection (and every call on it). */
  readonly commandTimeoutMs: number;
}

export interface RespPipe {
  /** Sends one command; resolves with its reply, rejects with a RespReplyError for an error reply. */
  call(args: ReadonlyArray<string | number>): Promise<RespReply>;
  /** Lets the calls already made finish (bounded by the command timeout), then closes. */
  close(): Promise<void>;
}

/**
 * What unanswered calls fail with when the connection goes, for any reason (an error reply to a
 * call is a RespReplyError instead): the store answers store-unavailable.
 */
export class RespConnectionError extends Error {
  override readonly name = 'RespConnectionError';
}

/** The message unanswered calls fail with when the connection goes or the pipe is closed. */
const CLOSED_MESSAGE = 'Connection is closed';
/** Back-off after a failed connect: first and longest. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2_000;
/**
 * AUTH refused because Redis asks for no password: not a failure, as ioredis reads it (the store's
 * other connections warn and go on: ioredis' event_handler.js, handleAuthError).
 */
const NO_PASSWORD_NEEDED = /no password is set|without any password configured for the default user/;
/**
 * TCP keepalive's first probe after this much idle time. When a silently dead idle connection is
 * declared dead is up to the kernel's probe interval and count (minutes with Linux defaults); a
 * batch sent on it fails sooner, at the command timeout.
 */
const KEEPALIVE_MS = 10_000;

interface Call {
  readonly resolve: (reply: RespReply) => void;
  readonly reject: (error: Error) => void;
}

/** One command in RESP: a multi-bulk of bulk strings (lengths in UTF-8 bytes). */
export function encodeCommand(args: ReadonlyArray<string | number>): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const text = typeof arg === 'number' ? String(arg) : arg;
    out += `$${Buffer.byteLength(text, 'utf8')}\r\n${text}\r\n`;
  }
  return out;
}

/** Connects (AUTH, SELECT and a PING answered), or rejects: a store that cannot post must not start. */
export async function openRespPipe(options: RespPipeOptions): Promise<RespPipe> {
  type State =
    | { readonly kind: 'idle'; readonly retryAtMs: number; readonly failures: number }
    | { readonly kind: 'connecting'; readonly socket: Socket; readonly failures: number }
    | { readonly kind: 'open'; readonly socket: Socket }
    | { readonly kind: 'closed' };
  let state: State = { kind: 'idle', retryAtMs: 0, failures: 0 };
  /** Sent and not yet answered, in order (the batch out). */
  let sent: Call[] = [];
  let sentHead = 0;
  /** Made while a batch is out or while connecting; their RESP text in `queuedText`. */
  let queued: Call[] = [];
  let queuedText = '';
  let flushScheduled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let parser = new RespParser();
  let drained: (() => void) | undefined;
  /** close() was called: no new calls, the ones made finish. */
  let closing = false;
  /** The first connection's outcome, for openRespPipe's caller. */
  let firstOpen: { resolve: () => void; reject: (error: Error) => void } | undefined;

  const outstanding = (): number => sent.length - sentHead + queued.length;

  const settleDrain = (): void => {
    if (drained !== undefined && outstanding() === 0) drained();
  };

  const armTimer = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (sentHead < sent.length) {
      // A set-up that gets no answer counts as a failed connect (back-off), a batch as a drop.
      timer = setTimeout(() => drop(new Error(`Command timed out after ${options.commandTimeoutMs} ms`), state.kind === 'connecting'), options.commandTimeoutMs);
      timer.unref();
    }
  };

  /** Fails every unanswered call with `error` and leaves the socket; `connectFailed` backs off. */
  const drop = (cause: Error, connectFailed: boolean): void => {
    const error = cause instanceof RespConnectionError ? cause : new RespConnectionError(cause.message, { cause });
    const unanswered = sent.slice(sentHead).concat(queued);
    sent = [];
    sentHead = 0;
    queued = [];
    queuedText = '';
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (state.kind === 'connecting' || state.kind === 'open') state.socket.destroy();
    if (state.kind !== 'closed') {
      const failures = connectFailed && state.kind === 'connecting' ? state.failures + 1 : 0;
      const backoff = failures === 0 ? 0 : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1));
      state = { kind: 'idle', retryAtMs: Date.now() + backoff, failures };
    }
    for (const call of unanswered) call.reject(error);
    firstOpen?.reject(error);
    firstOpen = undefined;
    settleDrain();
  };

  const flush = (): void => {
    flushScheduled = false;
    if (state.kind !== 'open' || queued.length === 0 || sentHead < sent.length) return;
    sent = queued;
    sentHead = 0;
    queued = [];
    const text = queuedText;
    queuedText = '';
    state.socket.write(text);
    armTimer();
  };

  const onData = (socket: Socket, chunk: Buffer): void => {
    let replies: Array<RespReply | RespReplyError>;
    try {
      replies = parser.push(chunk);
    } catch (error) {
      drop(error instanceof Error ? error : new Error(String(error)), false);
      return;
    }
    for (const reply of replies) {
      const call = sent[sentHead];
      if (call === undefined) {
        drop(new Error('Redis sent a reply nothing asked for'), false);
        return;
      }
      sentHead += 1;
      if (reply instanceof RespReplyError) call.reject(reply);
      else call.resolve(reply);
      // A set-up reply may have failed the connection (its callbacks run at once): stop here.
      if (!(state.kind === 'connecting' || state.kind === 'open') || state.socket !== socket) return;
    }
    if (sentHead < sent.length) {
      if (replies.length > 0) armTimer();
      return;
    }
    sent = [];
    sentHead = 0;
    armTimer();
    flush();
    settleDrain();
  };

  const connectNow = (failures: number): void => {
    parser = new RespParser();
    const socket = connect({ host: options.host, port: options.port });
    state = { kind: 'connecting', socket, failures };
    const current = (): boolean => (state.kind === 'connecting' || state.kind === 'open') && state.socket === socket;
    socket.setNoDelay(true);
    socket.setTimeout(options.connectTimeoutMs, () => {
      if (current() && state.kind === 'connecting') drop(new Error(`connect ETIMEDOUT ${options.host}:${options.port}`), true);
    });
    socket.on('error', (error) => {
      if (current()) drop(error, state.kind === 'connecting');
    });
    socket.on('close', () => {
      if (current()) drop(new Error(CLOSED_MESSAGE), state.kind === 'connecting');
    });
    socket.on('data', (chunk: Buffer) => onData(socket, chunk));
    socket.once('connect', () => {
      if (!current()) return;
      socket.setTimeout(0);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      // AUTH, SELECT and PING go ahead of the calls made meanwhile; the connection is open for
      // them once the PING is answered (any error reply fails the connection and every call).
      const setup: Array<ReadonlyArray<string | number>> = [];
      if (options.password !== undefined) setup.push(options.username === undefined ? ['AUTH', options.password] : ['AUTH', options.username, options.password]);
      if (options.db !== undefined && options.db !== 0) setup.push(['SELECT', options.db]);
      setup.push(['PING']);
      const setupFailed = (error: Error): void => {
        if (current()) drop(new Error(`Redis connection setup failed: ${error.message}`), true);
      };
      const opened = (): void => {
        // onData sends the calls queued meanwhile once this batch is all answered.
        if (!current()) return;
        state = { kind: 'open', socket };
        firstOpen?.resolve();
        firstOpen = undefined;
      };
      const authFailed = (error: Error): void => {
        if (!NO_PASSWORD_NEEDED.test(error.message)) setupFailed(error);
      };
      sent = setup.map((_, i) => ({
        resolve: i === setup.length - 1 ? opened : () => undefined,
        reject: i === 0 && options.password !== undefined ? authFailed : setupFailed,
      }));
      sentHead = 0;
      socket.write(setup.map(encodeCommand).join(''));
      armTimer();
    });
  };

  const pipe: RespPipe = {
    call(args) {
      if (closing) return Promise.reject(new RespConnectionError(CLOSED_MESSAGE));
      if (state.kind === 'idle' && Date.now() < state.retryAtMs) return Promise.reject(new RespConnectionError(`${CLOSED_MESSAGE} (reconnecting)`));
      return new Promise<RespReply>((resolve, reject) => {
        // First the text, which may throw (V8's string limit, ~512 MiB queued): a call that fails
        // here must leave no entry behind, or every later reply would go to the call before its own.
        const text = queuedText + encodeCommand(args);
        queued.push({ resolve, reject });
        queuedText = text;
        if (state.kind === 'idle') connectNow(state.failures);
        else if (state.kind === 'open' && !flushScheduled && sentHead >= sent.length) {
          flushScheduled = true;
          setImmediate(flush);
        }
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      if (outstanding() > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          const deadline = setTimeout(resolve, options.commandTimeoutMs);
          deadline.unref();
        });
      }
      const last = state;
      state = { kind: 'closed' };
      if (last.kind === 'connecting' || last.kind === 'open') last.socket.destroy();
      drop(new Error(CLOSED_MESSAGE), false);
    },
  };

  // The first connection, awaited: its failure is the caller's.
  const ready = new Promise<void>((resolve, reject) => {
    firstOpen = { resolve, reject };
  });
  connectNow(0);
  await ready;
  return pipe;
}
