// The Redis store's lean post-path connection (src/relay/store/resp-pipe.ts) and its reply parser,
// against a fake Redis whose every byte the test sees and answers: batching, setup, failures
// (nothing sent twice, errors the store maps to store-unavailable), back-off and close.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { unavailable } from '../../src/relay/store/redis.js';
import { RespParser, RespReplyError, type RespReply } from '../../src/relay/store/resp-parser.js';
import { encodeCommand, openRespPipe, type RespPipe, type RespPipeOptions } from '../../src/relay/store/resp-pipe.js';
import { StoreUnavailableError } from '../../src/relay/store/types.js';

const STREAM = Buffer.from(
  [
    '+OK\r\n',
    '-NOSCRIPT No matching script\r\n',
    ':42\r\n',
    '$-1\r\n',
    '*-1\r\n',
    '$7\r\nh\u00e9 \u{1f426}\r\n'.replace('$7', `$${Buffer.byteLength('h\u00e9 \u{1f426}')}`),
    '*3\r\n$2\r\nok\r\n:17\r\n*2\r\n-ERR inner\r\n$0\r\n\r\n',
  ].join(''),
  'utf8',
);
const EXPECTED: Array<RespReply | RespReplyError> = ['OK', new RespReplyError('NOSCRIPT No matching script'), 42, null, null, 'h\u00e9 \u{1f426}', ['ok', 17, ['ERR inner', '']]];

describe('RespParser', () => {
  it('parses every reply kind, whatever the chunks the stream comes in', () => {
    const whole = new RespParser().push(STREAM);
    expect(whole).toEqual(EXPECTED);
    expect(whole[1]).toBeInstanceOf(RespReplyError);
    // Every split point, including inside a multi-byte UTF-8 character and inside "\r\n".
    for (let cut = 1; cut < STREAM.length; cut++) {
      const parser = new RespParser();
      const replies = [...parser.push(STREAM.subarray(0, cut)), ...parser.push(STREAM.subarray(cut))];
      expect(replies, `cut at ${cut}`).toEqual(EXPECTED);
    }
    const bytewise = new RespParser();
    const replies: Array<RespReply | RespReplyError> = [];
    for (const byte of STREAM) replies.push(...bytewise.push(Buffer.from([byte])));
    expect(replies).toEqual(EXPECTED);
  });

  it('refuses bytes that are not RESP', () => {
    expect(() => new RespParser().push(Buffer.from('HTTP/1.1 200 OK\r\n'))).toThrow(/unexpected type byte/);
    expect(() => new RespParser().push(Buffer.from('$abc\r\n'))).toThrow(/bad length/);
    expect(() => new RespParser().push(Buffer.from(`${'*1\r\n'.repeat(20)}:1\r\n`))).toThrow(/nested too deep/);
  });
});

describe('encodeCommand', () => {
  it('counts bulk lengths in UTF-8 bytes', () => {
    expect(encodeCommand(['SET', 'k\u00e9', 12])).toBe('*3\r\n$3\r\nSET\r\n$3\r\nk\u00e9\r\n$2\r\n12\r\n');
    const [reply] = new RespParser().push(Buffer.from(`*1\r\n${encodeCommand(['\u{1f426}']).slice(4)}`));
    expect(reply).toEqual(['\u{1f426}']);
  });
});

/** A fake Redis: records what each connection sends, answers only when the test says so. */
interface FakeRedis {
  readonly port: number;
  readonly connections: Socket[];
  /** Everything received on connection `i`, as text, and each data event apart. */
  received(i: number): string;
  chunks(i: number): string[];
  /** Waits until connection `i` has received `count` commands in all. */
  commands(i: number, count: number): Promise<string[]>;
  close(): Promise<void>;
}

const servers: Server[] = [];
const pipes: RespPipe[] = [];

afterEach(async () => {
  await Promise.all(pipes.splice(0).map((pipe) => pipe.close()));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function fakeRedis(): Promise<FakeRedis> {
  const connections: Socket[] = [];
  const chunks: string[][] = [];
  const server = createServer((socket) => {
    const index = connections.length;
    connections.push(socket);
    chunks[index] = [];
    socket.on('data', (chunk) => chunks[index]?.push(chunk.toString('utf8')));
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const received = (i: number): string => (chunks[i] ?? []).join('');
  const parse = (text: string): string[] => {
    // The commands are RESP arrays of bulk strings: split on each top-level "*".
    const replies = new RespParser().push(Buffer.from(text));
    return replies.map((reply) => (Array.isArray(reply) ? reply.join(' ') : String(reply)));
  };
  return {
    port: address.port,
    connections,
    received,
    chunks: (i) => chunks[i] ?? [],
    async commands(i, count) {
      // Bounded: the test's own timeout ends a wait that never comes.
      while (parse(received(i)).length < count) await new Promise((resolve) => setTimeout(resolve, 2));
      return parse(received(i));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const options = (port: number, extra: Partial<RespPipeOptions> = {}): RespPipeOptions => ({
  host: '127.0.0.1',
  port,
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 2_000,
  ...extra,
});

/** Opens a pipe on the fake, answering its set-up (PING, after AUTH/SELECT when asked). */
async function openOn(fake: FakeRedis, extra: Partial<RespPipeOptions> = {}, connection = 0): Promise<RespPipe> {
  const opening = openRespPipe(options(fake.port, extra));
  const setup = 1 + (extra.password === undefined ? 0 : 1) + (extra.db === undefined || extra.db === 0 ? 0 : 1);
  await fake.commands(connection, setup);
  fake.connections[connection]?.write('+OK\r\n'.repeat(setup - 1) + '+PONG\r\n');
  const pipe = await opening;
  pipes.push(pipe);
  return pipe;
}

describe('openRespPipe', () => {
  it('sends AUTH and SELECT first, then PING, and opens when they are answered', async () => {
    const fake = await fakeRedis();
    await openOn(fake, { username: 'relay', password: 'p\u00e4ss', db: 3 });
    expect(await fake.commands(0, 3)).toEqual(['AUTH relay p\u00e4ss', 'SELECT 3', 'PING']);
  });

  it('fails to open when Redis refuses the password', async () => {
    const fake = await fakeRedis();
    const opening = openRespPipe(options(fake.port, { password: 'wrong' }));
    await fake.commands(0, 2);
    fake.connections[0]?.write('-WRONGPASS invalid username-password pair\r\n+PONG\r\n');
    await expect(opening).rejects.toThrow(/setup failed: WRONGPASS/);
  });

  it('sends the calls of one turn in one write, and those made while a batch is out together when it is answered', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    const before = fake.chunks(0).length;
    const first = [pipe.call(['GET', 'a']), pipe.call(['GET', 'b'])];
    await fake.commands(0, 3);
    expect(fake.chunks(0).length).toBe(before + 1);
    // While that batch is out, three more calls in two turns: nothing goes yet.
    const second = [pipe.call(['GET', 'c']), pipe.call(['GET', 'd'])];
    await new Promise((resolve) => setImmediate(resolve));
    second.push(pipe.call(['GET', 'e']));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.chunks(0).length).toBe(before + 1);
    // The replies of the first batch, cut in the middle: the second batch goes once both are in.
    fake.connections[0]?.write('$1\r\nA\r\n$');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.chunks(0).length).toBe(before + 1);
    fake.connections[0]?.write('1\r\nB\r\n');
    expect(await Promise.all(first)).toEqual(['A', 'B']);
    expect((await fake.commands(0, 6)).slice(3)).toEqual(['GET c', 'GET d', 'GET e']);
    expect(fake.chunks(0).length).toBe(before + 2);
    fake.connections[0]?.write(':1\r\n-ERR nope\r\n*2\r\n$1\r\nx\r\n:2\r\n');
    const settled = await Promise.allSettled(second);
    expect(settled.map((result) => (result.status === 'fulfilled' ? result.value : (result.reason as Error).message))).toEqual([1, 'ERR nope', ['x', 2]]);
  });

  it('fails every unanswered call when the connection drops, sends none of them again, and connects anew for the next call', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    const lost = [pipe.call(['EVALSHA', 'abc', 0, 'one']), pipe.call(['EVALSHA', 'abc', 0, 'two'])];
    await fake.commands(0, 3);
    fake.connections[0]?.destroy();
    for (const result of await Promise.allSettled(lost)) {
      expect(result.status).toBe('rejected');
      expect(unavailable(result.status === 'rejected' ? result.reason : undefined)).toBeInstanceOf(StoreUnavailableError);
    }
    const next = pipe.call(['GET', 'k']);
    // A new connection: set-up first, then only the new call (the lost ones are not resent).
    await fake.commands(1, 1);
    fake.connections[1]?.write('+PONG\r\n');
    expect(await fake.commands(1, 2)).toEqual(['PING', 'GET k']);
    fake.connections[1]?.write('$1\r\nv\r\n');
    expect(await next).toBe('v');
  });

  it('fails a batch that gets no answer within the command timeout, as store-unavailable', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake, { commandTimeoutMs: 100 });
    const silent = pipe.call(['GET', 'k']);
    const error = await silent.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(String(error)).toMatch(/timed out/);
    expect(unavailable(error)).toBeInstanceOf(StoreUnavailableError);
  });

  it('after a failed connect, fails calls at once for a back-off instead of connecting for each', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    await fake.close();
    servers.splice(0);
    // The drop itself: the next call connects again, and that connect is refused.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const refused = await pipe.call(['GET', 'k']).catch((error: unknown) => error);
    expect(unavailable(refused)).toBeInstanceOf(StoreUnavailableError);
    const fast = await pipe.call(['GET', 'k']).catch((error: unknown) => error);
    expect(String(fast)).toMatch(/reconnecting/);
    expect(unavailable(fast)).toBeInstanceOf(StoreUnavailableError);
  });

  it('fails calls as store-unavailable whatever ends the connection: a set-up refused on reconnect, a broken stream', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    fake.connections[0]?.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Redis at maxclients answers a new connection so and closes it (ioredis' path: store-unavailable too).
    const refused = pipe.call(['GET', 'k']).catch((error: unknown) => error);
    await fake.commands(1, 1);
    fake.connections[1]?.write('-ERR max number of clients reached\r\n');
    expect(String(await refused)).toMatch(/max number of clients/);
    expect(unavailable(await refused)).toBeInstanceOf(StoreUnavailableError);
    // After the back-off, a connection that answers with bytes that are not RESP.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const garbled = pipe.call(['GET', 'k']).catch((error: unknown) => error);
    await fake.commands(2, 1);
    fake.connections[2]?.write('+PONG\r\n');
    await fake.commands(2, 2);
    fake.connections[2]?.write('HTTP/1.1 400 Bad Request\r\n');
    expect(String(await garbled)).toMatch(/RESP/);
    expect(unavailable(await garbled)).toBeInstanceOf(StoreUnavailableError);
  });

  it('fails alone a call whose command cannot be queued (V8 refuses a string past ~512 MiB), the others keep their own replies', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    const first = pipe.call(['GET', 'a']);
    await fake.commands(0, 2);
    // While that batch is out: the middle call's text does not fit (stands in for "Invalid string length").
    const byteLength = vi.spyOn(Buffer, 'byteLength').mockImplementationOnce(() => {
      throw new RangeError('Invalid string length');
    });
    const calls = [pipe.call(['GET', 'b']), pipe.call(['GET', 'c']), pipe.call(['GET', 'd'])].map((call) => call.catch((error: unknown) => (error as Error).message));
    byteLength.mockRestore();
    fake.connections[0]?.write('$1\r\nA\r\n');
    expect(await first).toBe('A');
    expect((await fake.commands(0, 4)).slice(2)).toEqual(['GET c', 'GET d']);
    fake.connections[0]?.write('$1\r\nC\r\n$1\r\nD\r\n');
    expect(await Promise.all(calls)).toEqual(['Invalid string length', 'C', 'D']);
  });

  it('closes only once the calls already made are answered', async () => {
    const fake = await fakeRedis();
    const pipe = await openOn(fake);
    const pending = pipe.call(['GET', 'k']);
    await fake.commands(0, 2);
    let closed = false;
    const closing = pipe.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false);
    await expect(pipe.call(['GET', 'late'])).rejects.toThrow(/Connection is closed/);
    fake.connections[0]?.write('$1\r\nv\r\n');
    expect(await pending).toBe('v');
    await closing;
    expect(closed).toBe(true);
  });
});
