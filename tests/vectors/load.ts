/**
 * Typed loaders for the known-answer vectors in this folder (sources in README.md). Only the
 * fields the suites read are typed; the JSON files are kept byte-identical to their sources.
 */
import { readFileSync } from 'node:fs';
import { hexDecode } from '../../src/protocol/bytes.js';

const here = new URL('./', import.meta.url);

export function loadJson<T>(relativePath: string): T {
  return JSON.parse(readFileSync(new URL(relativePath, here), 'utf8')) as T;
}

export const hex = hexDecode;

/** Wycheproof "testvectors_v1" file: groups of tests, with the total stated in the header. */
export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

export interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
}

export interface X25519Group {
  tests: (WycheproofTest & { public: string; private: string; shared: string })[];
}

export interface Ed25519Group {
  publicKey: { pk: string };
  tests: (WycheproofTest & { msg: string; sig: string })[];
}

export interface HkdfGroup {
  tests: (WycheproofTest & { ikm: string; salt: string; info: string; size: number; okm: string })[];
}

export interface AesGcmGroup {
  keySize: number;
  ivSize: number;
  tagSize: number;
  tests: (WycheproofTest & { key: string; iv: string; aad: string; msg: string; ct: string; tag: string })[];
}

export const wycheproof = {
  x25519: () => loadJson<WycheproofFile<X25519Group>>('wycheproof/x25519_test.json'),
  ed25519: () => loadJson<WycheproofFile<Ed25519Group>>('wycheproof/ed25519_test.json'),
  hkdfSha256: () => loadJson<WycheproofFile<HkdfGroup>>('wycheproof/hkdf_sha256_test.json'),
  aesGcm: () => loadJson<WycheproofFile<AesGcmGroup>>('wycheproof/aes_gcm_test.json'),
};

export interface Rfc8032Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

export interface Rfc7748Vectors {
  scalarMult: { scalar: string; u: string; output: string }[];
  iterated: { start: string; after: Record<'1' | '1000' | '1000000', string> };
  diffieHellman: {
    alicePrivate: string;
    alicePublic: string;
    bobPrivate: string;
    bobPublic: string;
    shared: string;
  };
}

export interface Rfc5869Vector {
  name: string;
  ikm: string;
  salt: string;
  info: string;
  length: number;
  prk: string;
  okm: string;
}

export interface NistCtrVector {
  key: string;
  initialCounter: string;
  plaintext: string;
  ciphertext: string;
}

export const rfc = {
  x25519: () => loadJson<Rfc7748Vectors>('rfc/rfc7748-x25519.json'),
  ed25519: () => loadJson<{ tests: Rfc8032Vector[] }>('rfc/rfc8032-ed25519.json').tests,
  hkdfSha256: () => loadJson<{ tests: Rfc5869Vector[] }>('rfc/rfc5869-hkdf-sha256.json').tests,
  ctrAes256: () => loadJson<NistCtrVector>('rfc/nist-sp800-38a-ctr-aes256.json'),
};
