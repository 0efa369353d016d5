/**
 * Forward secrecy inside a subsession (mpENC §6.2.1 "Messaging ratchet for intra-subsession
 * forward secrecy"; issue 9 §3): the group key is split deterministically into one hash chain
 * per sender, and each data packet of v2 is encrypted under its own message key.
 *
 *   CK₀(m)   = HKDF-SHA256(ikm = group key, salt = sid, info = "covey chain v2" ‖ u8 len ‖ m, 32)
 *   MKᵢ(m)   = SHA-256(CKᵢ(m) ‖ 0x01)          (AES-256-CTR key of m's i-th packet)
 *   CKᵢ₊₁(m) = SHA-256(CKᵢ(m) ‖ 0x02)
 *
 * (A hash chain as §6.2.1 names it: CK is a uniformly random 32-byte secret, so one SHA-256
 * compression per step suffices; HMAC would cost four, measured on the catch-up path.)
 *
 * Once the chains are derived the group key is not kept (the subsession holds SHA-256(sid ‖ gk)
 * for the data signatures and these chains only). A message key is used once and deleted; a
 * chain only moves forward, so a state taken after a member read packet i of m holds CKᵢ₊₁(m)
 * (and the keys of packets it skipped and has not read yet): nothing opens packet i or earlier.
 * As §6.2.1 says, no entropy is added along the way: a leaked chain opens its later packets.
 */
import { base64Decode, base64Encode, concatBytes, latin1Encode, utf8Encode } from '../bytes.js';
import { sha256Now } from '../crypto/noble.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ProtocolError } from '../errors.js';
import type { MemberId, SessionId } from '../ids.js';

const CHAIN_INFO = latin1Encode('covey chain v2');
const MESSAGE_KEY_STEP = 0x01;
const CHAIN_KEY_STEP = 0x02;
const CHAIN_KEY_BYTES = 32;

/** CK ‖ label, the input of one chain step: one buffer reused, wiped after every step. */
const stepInput = new Uint8Array(CHAIN_KEY_BYTES + 1);

/**
 * One chain step, SHA-256(CK ‖ label), on noble whatever the provider (as the hybrid does for
 * small hashes, crypto/select.ts: WebCrypto's per-call cost is far more than the hash), and
 * synchronously: a catch-up takes two steps per message, and an await per step cost more than
 * the hash (issue 8). The copy of CK in `stepInput` is wiped before returning.
 */
const chainStep = (key: Uint8Array, label: number): Uint8Array => {
  // (A restored state's key of another length, never written by us: hashed as before, unpadded.)
  if (key.length !== CHAIN_KEY_BYTES) return sha256Now(concatBytes(key, Uint8Array.of(label)));
  stepInput.set(key);
  stepInput[CHAIN_KEY_BYTES] = label;
  try {
    return sha256Now(stepInput);
  } finally {
    stepInput.fill(0);
  }
};

/**
 * Message keys kept for packets skipped over (a packet arrived before earlier ones of its
 * author: resends, a reordering transport), per subsession. The relay orders each author's
 * packets, so in practice only the gap a lost packet leaves until its resend; bounded so that a
 * malicious member cannot make us derive and hold keys without end. Beyond it the oldest skipped
 * key goes: that packet, if it comes, is refused (`unreadable`).
 */
export const MAX_SKIPPED_MESSAGE_KEYS = 2048;

/**
 * How far ahead of its chain a packet may claim to be: deriving its key costs two hashes per
 * step, and every skipped key is kept (above). A claim further ahead is refused.
 */
export const MAX_CHAIN_JUMP = MAX_SKIPPED_MESSAGE_KEYS;

interface Chain {
  /** CKₙ: the key of the next packet index `next`. Secret. */
  key: Uint8Array;
  next: number;
}

export interface SenderChainsSnapshot {
  readonly chains: readonly (readonly [MemberId, string, number])[];
  readonly skipped: readonly (readonly [MemberId, number, string])[];
}

export class SenderChains {
  private readonly chains = new Map<MemberId, Chain>();
  /** `${member} ${index}` → message key of a packet skipped over, in the order skipped. */
  private readonly skipped = new Map<string, Uint8Array>();

  private constructor() {}

  /** CK₀ of every member, from the group key (which the caller then drops). */
  static async derive(crypto: CryptoProvider, groupKey: Uint8Array, sessionId: SessionId, members: readonly MemberId[]): Promise<SenderChains> {
    const chains = new SenderChains();
    for (const m of members) {
      const id = utf8Encode(m);
      if (id.length > 255) throw new ProtocolError('too-long', 'member id longer than 255 bytes');
      const key = await crypto.hkdfSha256(groupKey, sessionId, concatBytes(CHAIN_INFO, Uint8Array.of(id.length), id), CHAIN_KEY_BYTES);
      chains.chains.set(m, { key, next: 0 });
    }
    return chains;
  }

  /** The index of `member`'s next packet (ours: the one we seal next). */
  nextIndex(member: MemberId): number | undefined {
    return this.chains.get(member)?.next;
  }

  /**
   * The message key of `member`'s packet `index`, deleted from this state as it is returned (a
   * key is used once). Undefined if it is gone (already used: a replay or a second copy; or
   * dropped beyond MAX_SKIPPED_MESSAGE_KEYS), too far ahead (MAX_CHAIN_JUMP), or `member` has
   * no chain here. The caller wipes the key after use.
   */
  async take(crypto: CryptoProvider, member: MemberId, index: number): Promise<Uint8Array | undefined> {
    const key = await this.key(crypto, member, index);
    if (key !== undefined) this.skipped.delete(`${member} ${index}`);
    return key;
  }

  /**
   * The message key of `member`'s packet `index`, kept until `consume` (a reader deletes it once
   * it has kept the message: a packet it opened and then dropped, e.g. a late one whose parents
   * never came, may come again and must open again). Undefined as for `take`. Not a copy: wipe
   * it only through `consume`.
   */
  async key(crypto: CryptoProvider, member: MemberId, index: number): Promise<Uint8Array | undefined> {
    return this.keyNow(member, index);
  }

  /** `key`, synchronously (the chain steps are noble's SHA-256 whatever the provider). */
  keyNow(member: MemberId, index: number): Uint8Array | undefined {
    const chain = this.chains.get(member);
    if (chain === undefined || !Number.isSafeInteger(index) || index < 0) return undefined;
    if (index < chain.next) return this.skipped.get(`${member} ${index}`);
    if (index - chain.next > MAX_CHAIN_JUMP) return undefined;
    while (chain.next <= index) {
      this.skipped.set(`${member} ${chain.next}`, chainStep(chain.key, MESSAGE_KEY_STEP));
      this.advance(chain);
      if (this.skipped.size > MAX_SKIPPED_MESSAGE_KEYS) {
        const oldest = this.skipped.keys().next().value!;
        this.skipped.get(oldest)!.fill(0);
        this.skipped.delete(oldest);
      }
    }
    return this.skipped.get(`${member} ${index}`);
  }

  /** The message key of `member`'s packet `index` is used: deleted from this state and returned for the caller to wipe. */
  consume(member: MemberId, index: number): Uint8Array | undefined {
    const slot = `${member} ${index}`;
    const key = this.skipped.get(slot);
    this.skipped.delete(slot);
    return key;
  }

  /** Every secret wiped (the subsession leaves memory). */
  wipe(): void {
    for (const c of this.chains.values()) c.key.fill(0);
    for (const k of this.skipped.values()) k.fill(0);
    this.chains.clear();
    this.skipped.clear();
  }

  snapshot(): SenderChainsSnapshot {
    return {
      chains: [...this.chains].map(([m, c]) => [m, base64Encode(c.key), c.next] as const),
      skipped: [...this.skipped].map(([slot, key]) => {
        const cut = slot.lastIndexOf(' ');
        return [slot.slice(0, cut) as MemberId, Number(slot.slice(cut + 1)), base64Encode(key)] as const;
      }),
    };
  }

  static restore(s: SenderChainsSnapshot): SenderChains {
    const chains = new SenderChains();
    for (const [m, key, next] of s.chains) chains.chains.set(m, { key: base64Decode(key), next });
    for (const [m, index, key] of s.skipped) chains.skipped.set(`${m} ${index}`, base64Decode(key));
    return chains;
  }

  private advance(chain: Chain): void {
    const next = chainStep(chain.key, CHAIN_KEY_STEP);
    chain.key.fill(0);
    chain.key = next;
    chain.next += 1;
  }
}
