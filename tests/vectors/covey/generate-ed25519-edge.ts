/**
 * Generates ed25519-edge.json: Ed25519 cases that RFC 8032 and Wycheproof leave open and on
 * which the libraries behind our two providers disagree unless checks.ts and noble.ts step in.
 * Run: npx tsx tests/vectors/covey/generate-ed25519-edge.ts > tests/vectors/covey/ed25519-edge.json
 * Deterministic: fixed seeds and nonces, so the output is stable.
 */
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';

const { Point } = ed25519;
const L = Point.Fn.ORDER;
const le = (b: Uint8Array) => BigInt('0x' + bytesToHex(b.slice().reverse()) || '0');
const leBytes = (n: bigint) => hexToBytes(n.toString(16).padStart(64, '0')).reverse();
const challenge = (R: Uint8Array, A: Uint8Array, m: Uint8Array) => le(sha512(concatBytes(R, A, m))) % L;

// RFC 8032 TEST 1 key: a = secret scalar, A = aB.
const seed = hexToBytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const { scalar: a } = ed25519.utils.getExtendedPublicKey(seed);
const r = 0x1234567890abcdefn; // a fixed nonce: these are test signatures, not real ones
const order8 = Point.fromHex(ED25519_TORSION_SUBGROUP[1]!); // a point of order 8
const order4 = order8.double();
const identity = '01' + '00'.repeat(31);

interface EdgeCase {
  name: string;
  publicKey: string;
  message: string;
  signature: string;
  valid: boolean;
  why: string;
}
const cases: EdgeCase[] = [];

// Small-order public keys: with S = 0 and R = identity the equation holds for every message.
for (const [name, pk] of [
  ['A = identity', identity],
  ['A = identity with the sign bit set (non-canonical: x = 0)', '01' + '00'.repeat(30) + '80'],
  ['A = identity encoded as y = p + 1 (non-canonical: y ≥ p)', 'ee' + 'ff'.repeat(30) + '7f'],
  ['A of order 8', ED25519_TORSION_SUBGROUP[1]!],
] as const) {
  cases.push({
    name,
    publicKey: pk,
    message: '61',
    signature: identity + '00'.repeat(32),
    valid: false,
    why: 'small-order or non-canonical public key: "verifies" any message (checks.ts)',
  });
}

// R with a torsion component: holds cofactored ([8]SB = [8]R + [8]kA), fails cofactorless.
{
  const A = Point.BASE.multiply(a).toBytes();
  const m = hexToBytes('6d697865642d6f72646572');
  const R = Point.BASE.multiply(r).add(order8).toBytes();
  const S = (r + challenge(R, A, m) * a) % L;
  cases.push({
    name: 'R = rB + T (T of order 8)',
    publicKey: bytesToHex(A),
    message: bytesToHex(m),
    signature: bytesToHex(concatBytes(R, leBytes(S))),
    valid: false,
    why: 'cofactored check accepts, cofactorless (OpenSSL, BoringSSL, noble.ts) rejects',
  });
}

// Mixed-order public key A' = aB + T4: cofactorless holds iff [k]T4 = 0, i.e. k ≡ 0 (mod 4).
{
  const A = Point.BASE.multiply(a).add(order4).toBytes();
  const R = Point.BASE.multiply(r).toBytes();
  let found = { bad: false, good: false };
  for (let i = 0; i < 64 && !(found.bad && found.good); i++) {
    const m = new Uint8Array([i]);
    const k = challenge(R, A, m);
    const S = (r + k * a) % L;
    const valid = k % 4n === 0n;
    if ((valid && found.good) || (!valid && found.bad)) continue;
    found = { bad: found.bad || !valid, good: found.good || valid };
    cases.push({
      name: `mixed-order A, k ${valid ? '≡' : '≢'} 0 (mod 4)`,
      publicKey: bytesToHex(A),
      message: bytesToHex(m),
      signature: bytesToHex(concatBytes(R, leBytes(S))),
      valid,
      why: valid ? 'SB − kA = R exactly: valid under every rule' : 'holds only cofactored: rejected',
    });
  }
}

console.log(
  JSON.stringify(
    { source: 'Constructed by Covey: tests/vectors/covey/generate-ed25519-edge.ts (deterministic)', tests: cases },
    null,
    2,
  ),
);
