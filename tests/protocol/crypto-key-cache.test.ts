/**
 * Key caches (issue 8 hot path): noble keeps AES key schedules per key object, WebCrypto keeps
 * imported CryptoKeys. A key changed in place must never decrypt with its old schedule, and
 * forgetKeys() must leave the provider working (it only drops what it cached).
 */
import { describe, expect, it } from 'vitest';
import { allProviders, webCryptoProvider } from '../helpers/providers.js';
import { nobleProvider } from '../../src/protocol/crypto/noble.js';

const counter = Uint8Array.from({ length: 16 }, (_, i) => (i < 12 ? i + 1 : 0));
const data = Uint8Array.from({ length: 77 }, (_, i) => (i * 7) & 0xff);

describe('AES-CTR key caches', () => {
  it.each(allProviders.map((p) => [p.name, p] as const))('%s: a key changed in place uses its new bytes; forgetKeys keeps it working', async (_name, p) => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const first = await p.aesCtr(key, counter, data);
    expect(await p.aesCtr(key, counter, data)).toEqual(first);
    key[0] = 0xff; // the same object, other bytes
    const other = await p.aesCtr(key, counter, data);
    expect(other).not.toEqual(first);
    expect(other).toEqual(await webCryptoProvider.aesCtr(Uint8Array.from(key), counter, data));
    p.forgetKeys([key]);
    expect(await p.aesCtr(key, counter, data)).toEqual(other);
  });

  it('noble: the input, the counter block and the key are left as they were', async () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    const keyCopy = Uint8Array.from(key);
    const counterCopy = Uint8Array.from(counter);
    const input = data.subarray(3); // unaligned view
    const inputCopy = Uint8Array.from(input);
    const out = await nobleProvider.aesCtr(key, counter, input);
    expect(key).toEqual(keyCopy);
    expect(counter).toEqual(counterCopy);
    expect(input).toEqual(inputCopy);
    // CTR is its own inverse.
    expect(await nobleProvider.aesCtr(key, counter, out)).toEqual(inputCopy);
  });
});
