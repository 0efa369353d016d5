/**
 * Wycheproof vectors (tests/vectors/wycheproof, C2SP/wycheproof testvectors_v1), run for every
 * provider. Each suite counts what it ran and asserts the file's full test count, so nothing is
 * skipped silently. Policies asserted here are the ones stated in checks.ts.
 */
import { describe, expect, it } from 'vitest';
import { concatBytes, hexEncode } from '../../src/protocol/bytes.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import { GCM_NONCE_MAX_BYTES, GCM_NONCE_MIN_BYTES } from '../../src/protocol/crypto/checks.js';
import { allProviders as providers } from '../helpers/providers.js';
import { hex, wycheproof } from '../vectors/load.js';

const x25519File = wycheproof.x25519();
const ed25519File = wycheproof.ed25519();
const hkdfFile = wycheproof.hkdfSha256();
const gcmFile = wycheproof.aesGcm();

/** Runs `check` on every case, collecting mismatches so one failure shows them all. */
async function runAll<T extends { tcId: number }>(
  cases: readonly T[],
  check: (t: T) => Promise<string | undefined>,
): Promise<{ ran: number; failures: string[] }> {
  const failures: string[] = [];
  for (const t of cases) {
    const problem = await check(t).catch((e: unknown) => `threw ${String(e)}`);
    if (problem !== undefined) failures.push(`tcId ${t.tcId}: ${problem}`);
  }
  return { ran: cases.length, failures };
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

describe.each(providers)('Wycheproof: $name provider', (p) => {
  it('x25519_test.json: 518 tests; all-zero results rejected, everything else computed', async () => {
    const cases = x25519File.testGroups.flatMap((g) => g.tests);
    let rejected = 0;
    let acceptedAcceptable = 0;
    const { ran, failures } = await runAll(cases, async (t) => {
      const run = p.x25519(hex(t.private), hex(t.public));
      if (/^(00)+$/.test(t.shared)) {
        // Policy (mpenc-wire.md "CLIQUES", RFC 7748 §6.1): a low-order u gives the all-zero
        // secret, and every such case must be refused with 'low-order-point'.
        rejected++;
        const e = await errorOf(run);
        return isProtocolError(e) && e.code === 'low-order-point' ? undefined : `expected low-order-point, got ${String(e)}`;
      }
      // "valid", and "acceptable" twist / non-canonical u: RFC 7748 §5 accepts these.
      if (t.result === 'acceptable') acceptedAcceptable++;
      const shared = hexEncode(await run);
      return shared === t.shared ? undefined : `shared ${shared} != ${t.shared}`;
    });
    expect(failures).toEqual([]);
    expect(ran).toBe(x25519File.numberOfTests);
    expect(ran).toBe(518);
    expect(rejected).toBe(31); // the 31 "ZeroSharedSecret" cases
    expect(acceptedAcceptable).toBe(254 - 31);
  });

  it('ed25519_test.json: 151 tests; valid verify, invalid (malleable S, bad encodings, truncation) do not', async () => {
    const cases = ed25519File.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, pk: g.publicKey.pk })));
    const { ran, failures } = await runAll(cases, async (t) => {
      const ok = await p.ed25519Verify(hex(t.pk), hex(t.msg), hex(t.sig));
      return ok === (t.result === 'valid') ? undefined : `verify gave ${ok} for a ${t.result} case (${t.comment})`;
    });
    expect(failures).toEqual([]);
    expect(ran).toBe(ed25519File.numberOfTests);
    expect(ran).toBe(151);
    expect(cases.filter((t) => t.result === 'valid')).toHaveLength(88);
  });

  it('hkdf_sha256_test.json: 86 tests; output sizes above 255×32 refused', async () => {
    const cases = hkdfFile.testGroups.flatMap((g) => g.tests);
    const { ran, failures } = await runAll(cases, async (t) => {
      const run = p.hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size);
      if (t.result === 'invalid') {
        const e = await errorOf(run);
        return e instanceof RangeError ? undefined : `expected RangeError, got ${String(e)}`;
      }
      const okm = hexEncode(await run);
      return okm === t.okm ? undefined : 'okm differs';
    });
    expect(failures).toEqual([]);
    expect(ran).toBe(hkdfFile.numberOfTests);
    expect(ran).toBe(86);
  });

  it('aes_gcm_test.json: 316 tests; nonces outside 12..128 bytes refused, bad tags fail', async () => {
    const cases = gcmFile.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, ivSize: g.ivSize, tagSize: g.tagSize })));
    let outsideInterface = 0;
    const { ran, failures } = await runAll(cases, async (t) => {
      if (t.tagSize !== 128) return `tag size ${t.tagSize} not covered by this suite`;
      const key = hex(t.key);
      const iv = hex(t.iv);
      const aad = hex(t.aad);
      const sealed = concatBytes(hex(t.ct), hex(t.tag));
      if (iv.length < GCM_NONCE_MIN_BYTES || iv.length > GCM_NONCE_MAX_BYTES) {
        // Outside the interface (checks.ts: what WebCrypto takes); both providers must refuse.
        outsideInterface++;
        const e1 = await errorOf(p.aesGcmEncrypt(key, iv, hex(t.msg), aad));
        const e2 = await errorOf(p.aesGcmDecrypt(key, iv, sealed, aad));
        const refused = (e: unknown) => isProtocolError(e) && e.code === 'bad-value';
        return refused(e1) && refused(e2) ? undefined : `nonce of ${iv.length} bytes not refused`;
      }
      if (t.result === 'invalid') {
        const e = await errorOf(p.aesGcmDecrypt(key, iv, sealed, aad));
        return isProtocolError(e) && e.code === 'decrypt-failed' ? undefined : `expected decrypt-failed, got ${String(e)}`;
      }
      const ct = hexEncode(await p.aesGcmEncrypt(key, iv, hex(t.msg), aad));
      if (ct !== t.ct + t.tag) return 'ciphertext differs';
      const pt = hexEncode(await p.aesGcmDecrypt(key, iv, sealed, aad));
      return pt === t.msg ? undefined : 'plaintext differs';
    });
    expect(failures).toEqual([]);
    expect(ran).toBe(gcmFile.numberOfTests);
    expect(ran).toBe(316);
    // IVs of 0, 1, 2, 4, 6, 8, 10 and 257 bytes: 46 cases over the three key sizes.
    expect(outsideInterface).toBe(46);
  });
});
