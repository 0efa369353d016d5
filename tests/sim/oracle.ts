/**
 * The simulators' security oracle (issue 9 §1): it measures what the engine must guarantee
 * instead of trusting the engine's own bookkeeping.
 *
 * Non-invasive: every simulated member gets its own recording wrapper around the CryptoProvider
 * (`providerFor`), and the simulator hands the oracle what the member's own state holds (its key
 * contributions and its subsessions). The oracle records
 *  - every group key each member derives (HKDF with the group-key info, mpenc-wire.md "CLIQUES"),
 *    with the shared secret it came from;
 *  - every AES-CTR use (key, counter block, and the plaintext/ciphertext pair);
 *  - every data-packet signature and who made it;
 * and checks:
 *  1. key secrecy: a member outside subsession S (excluded from it, or included only later)
 *     holds no key of S: neither derived it, nor gets it by applying its stored contributions to
 *     any slot of any downflow in the log whose member list leaves it out (async-groups.md "What
 *     the simulator must check" 1);
 *  2. one keystream per message: a (key, IV) pair never encrypts two different plaintexts;
 *  3. authorship: a delivered message was signed by its claimed author (the forgery check of
 *     the session simulator compares author and text on top);
 *  4. the chain hash is compared: a member accepts an operation only on the chain hash it holds
 *     itself (mpENC §3.3; the initial packet's CHAIN_HASH against its own head);
 *  5. an operation is accepted only on an initial packet its initiator signed, as it stands.
 * It also checks itself: a subsession key that no member was seen deriving means the engine
 * derives keys some other way now, and the oracle says so rather than go blind.
 */
import { bytesEqual, concatBytes, hexDecode, hexEncode, latin1Encode } from '../../src/protocol/bytes.js';
import { CONTRIBUTOR_SIGNATURE_CONTEXT, DATA_SIGNATURE_CONTEXT, GreetFlag, GREETING_SIGNATURE_CONTEXT, GROUP_KEY_INFO } from '../../src/protocol/codec/constants.js';
import { decodePacket } from '../../src/protocol/codec/packet.js';
import type { CryptoProvider } from '../../src/protocol/crypto/provider.js';
import { stolenScalars, tryScalar } from '../helpers/stolen-key.js';
import type { MembershipState } from '../../src/protocol/greeting/types.js';

const GROUP_KEY_INFO_BYTES = latin1Encode(GROUP_KEY_INFO);
const DATA_CONTEXT = latin1Encode(DATA_SIGNATURE_CONTEXT);
const GREETING_CONTEXT = latin1Encode(GREETING_SIGNATURE_CONTEXT);
/** v2 contributor packets are signed by the static key under their own context (async-groups rule 2). */
const CONTRIBUTOR_CONTEXT = latin1Encode(CONTRIBUTOR_SIGNATURE_CONTEXT);
/** SHA-256(sid ‖ gk) follows the context in a data signature (mpenc-wire.md "Data packets"). */
const SIDKEY_HASH_BYTES = 32;
const MESSAGE_ID_BYTES = 20;

/** A subsession as one member holds it. */
export interface KeyHolding {
  readonly sid: Uint8Array;
  readonly groupKey: Uint8Array;
  readonly members: readonly string[];
}

export interface OracleOptions {
  /**
   * Try every stored contribution chain on every slot of every downflow that leaves its owner
   * out (check 1's expensive half: one x25519 per contribution, slot and downflow). The cheap
   * half (keys the member derived) always runs.
   */
  readonly keyTrial: boolean;
}

/**
 * Every complete INT_KEY list among these packet texts, with its member list: downflows, and the
 * initial packets of exclude and refresh (mpenc-wire.md "Greeting packets"), each once.
 */
export function completeIntKeyLists(texts: Iterable<string>): { members: string[]; intKeys: Uint8Array[] }[] {
  const seen = new Set<string>();
  const out: { members: string[]; intKeys: Uint8Array[] }[] = [];
  for (const text of texts) {
    if (seen.has(text) || !text.startsWith('?mpENC')) continue;
    seen.add(text);
    let packet;
    try {
      packet = decodePacket(text);
    } catch {
      continue;
    }
    if (packet.kind !== 'greeting' || (packet.greetType & GreetFlag.DOWN) === 0) continue;
    const keys = packet.intKeys;
    // (A v2 downflow names its operation by reference: no member list, so every member is tried.)
    if (keys.length === 0 || (packet.members.length > 0 && keys.length !== packet.members.length) || keys.some((k) => k === null)) continue;
    out.push({ members: [...packet.members], intKeys: keys as Uint8Array[] });
  }
  return out;
}

/** 64-bit FNV-1a fingerprint (two 32-bit lanes): cheap, and collisions would only hide a reuse. */
function fingerprint(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i]!, 0x01000193) >>> 0;
    b = Math.imul(b ^ bytes[i]!, 0x01000197) >>> 0;
  }
  return `${bytes.length}:${a.toString(16)}${b.toString(16)}`;
}

export class SecurityOracle {
  readonly violations: string[] = [];
  /** Member → hex of every group key it derived. */
  private readonly derived = new Map<string, Set<string>>();
  /** Hex group key → the shared secret it was derived from. */
  private readonly secretOf = new Map<string, Uint8Array>();
  /** hex(key) ‖ hex(counter block) → fingerprint of the {plaintext, ciphertext} pair. */
  private readonly keystreams = new Map<string, string>();
  /** Hex signature → who made it, over what (fingerprint of the signed message). */
  private readonly signatures = new Map<string, { readonly who: string; readonly message: string }>();
  /** Hex message id → member who signed that data packet, and SHA-256(sid ‖ gk) it signed. */
  private readonly dataSigners = new Map<string, { readonly who: string; readonly subsession: string }>();
  /**
   * Member → every scalar its stored keys ever gave a thief (helpers/stolen-key.ts: a v1 list's
   * prefixes; a v2 scalar and its last ratchet undone), each kept once by hex.
   */
  private readonly chains = new Map<string, Map<string, Uint8Array>>();
  /** Every (member, subsession) holding seen. */
  private readonly holdings: { readonly member: string; readonly holding: KeyHolding }[] = [];
  private readonly holdingKeys = new Set<string>();
  /** (member, subsession) whose key the member's session took (its membership state dropped it), by SHA-256(sid ‖ gk). */
  private readonly bound: { readonly member: string; readonly sid: Uint8Array; readonly sidkeyHash: Uint8Array; readonly members: readonly string[] }[] = [];
  private readonly boundKeys = new Set<string>();
  /** Counts, for the report and the oracle's own sanity checks. */
  readonly counts = { keysDerived: 0, ctrUses: 0, dataSignatures: 0, downflowsTried: 0, trials: 0 };
  private readonly wrappers = new Map<string, CryptoProvider>();

  constructor(
    readonly base: CryptoProvider,
    readonly options: OracleOptions = { keyTrial: true },
  ) {}

  private violate(what: string): void {
    if (!this.violations.includes(what)) this.violations.push(what);
  }

  /** The provider member `who` runs on: the base provider, recorded. */
  providerFor(who: string): CryptoProvider {
    const existing = this.wrappers.get(who);
    if (existing !== undefined) return existing;
    const base = this.base;
    const wrapper: CryptoProvider = {
      name: base.name,
      forgetKeys: (keys) => base.forgetKeys(keys),
      randomBytes: (length) => base.randomBytes(length),
      sha256: (data) => base.sha256(data),
      hmacSha256: (key, data) => base.hmacSha256(key, data),
      hkdfSha256: async (ikm, salt, info, length) => {
        const out = await base.hkdfSha256(ikm, salt, info, length);
        if (bytesEqual(info, GROUP_KEY_INFO_BYTES)) this.noteDerived(who, ikm, out);
        return out;
      },
      x25519PublicKey: (privateKey) => base.x25519PublicKey(privateKey),
      x25519: (privateKey, publicKey) => base.x25519(privateKey, publicKey),
      ed25519PublicKey: (seed) => base.ed25519PublicKey(seed),
      ed25519Sign: async (seed, message) => {
        const signature = await base.ed25519Sign(seed, message);
        await this.noteSignature(who, message, signature);
        return signature;
      },
      ed25519Verify: (publicKey, message, signature) => base.ed25519Verify(publicKey, message, signature),
      aesCtr: async (key, counterBlock, data, oneUse) => {
        const out = await base.aesCtr(key, counterBlock, data, oneUse);
        this.noteCtr(key, counterBlock, data, out);
        return out;
      },
      aesGcmEncrypt: async (key, nonce, plaintext, aad) => {
        // AES-GCM has the same rule: a (key, nonce) pair seals one plaintext only.
        this.noteNonce(key, nonce, plaintext, aad);
        return base.aesGcmEncrypt(key, nonce, plaintext, aad);
      },
      aesGcmDecrypt: (key, nonce, ciphertext, aad) => base.aesGcmDecrypt(key, nonce, ciphertext, aad),
    };
    this.wrappers.set(who, wrapper);
    return wrapper;
  }

  private noteDerived(who: string, secret: Uint8Array, key: Uint8Array): void {
    this.counts.keysDerived++;
    const hex = hexEncode(key);
    let set = this.derived.get(who);
    if (set === undefined) this.derived.set(who, (set = new Set()));
    set.add(hex);
    this.secretOf.set(hex, Uint8Array.from(secret));
  }

  private noteCtr(key: Uint8Array, counterBlock: Uint8Array, input: Uint8Array, output: Uint8Array): void {
    this.counts.ctrUses++;
    const slot = hexEncode(key) + hexEncode(counterBlock);
    const a = fingerprint(input);
    const b = fingerprint(output);
    const pair = a < b ? `${a}/${b}` : `${b}/${a}`;
    const seen = this.keystreams.get(slot);
    if (seen === undefined) this.keystreams.set(slot, pair);
    else if (seen !== pair) {
      this.violate(`keystream reuse: key ${hexEncode(key).slice(0, 8)}… with IV ${hexEncode(counterBlock.subarray(0, 12))} encrypts two different plaintexts`);
    }
  }

  private noteNonce(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined): void {
    const slot = `gcm:${hexEncode(key)}${hexEncode(nonce)}`;
    const what = `${fingerprint(plaintext)}/${aad === undefined ? '' : fingerprint(aad)}`;
    const seen = this.keystreams.get(slot);
    if (seen === undefined) this.keystreams.set(slot, what);
    else if (seen !== what) this.violate(`nonce reuse: key ${hexEncode(key).slice(0, 8)}… with AES-GCM nonce ${hexEncode(nonce)} seals two different plaintexts`);
  }

  private async noteSignature(who: string, message: Uint8Array, signature: Uint8Array): Promise<void> {
    this.signatures.set(hexEncode(signature), { who, message: fingerprint(message) });
    if (message.length < DATA_CONTEXT.length + SIDKEY_HASH_BYTES || !bytesEqual(message.subarray(0, DATA_CONTEXT.length), DATA_CONTEXT)) return;
    // mpenc-wire.md "Ids": message id = SHA-256(signature ‖ S)[0..20], S = the signed region.
    const signed = message.subarray(DATA_CONTEXT.length + SIDKEY_HASH_BYTES);
    const id = hexEncode((await this.base.sha256(concatBytes(signature, signed))).subarray(0, MESSAGE_ID_BYTES));
    this.counts.dataSignatures++;
    const subsession = hexEncode(message.subarray(DATA_CONTEXT.length, DATA_CONTEXT.length + SIDKEY_HASH_BYTES));
    this.dataSigners.set(id, { who, subsession });
  }

  /** Check 3, per delivery: `member` was shown message `id` as written by `author`. */
  checkAuthor(member: string, messageIdHex: string, author: string): void {
    const signer = this.dataSigners.get(messageIdHex)?.who;
    if (signer !== author) this.violate(`${member} accepted message ${messageIdHex.slice(0, 8)} as ${author}'s, but ${signer ?? 'nobody here'} signed it`);
  }

  /**
   * Check 3, per transcript: every message `member` holds in the subsession with these keys was
   * signed by a member, for exactly this subsession (mpenc-wire.md: SHA-256(sid ‖ gk) is signed).
   */
  async checkPlacement(
    member: string,
    keys: { readonly sessionId: Uint8Array; readonly groupKey: Uint8Array } | { readonly sessionId: Uint8Array; readonly sidkeyHash: Uint8Array },
    messageIds: readonly string[],
  ): Promise<void> {
    // A v2 subsession (issue 9 §3) keeps SHA-256(sid ‖ gk), not the group key.
    const expected = hexEncode('sidkeyHash' in keys ? keys.sidkeyHash : await this.base.sha256(concatBytes(keys.sessionId, keys.groupKey)));
    for (const id of messageIds) {
      const signed = this.dataSigners.get(id);
      if (signed === undefined) this.violate(`${member} holds message ${id.slice(0, 8)}, which no member signed`);
      else if (signed.subsession !== expected) this.violate(`${member} holds message ${id.slice(0, 8)} in subsession ${hexEncode(keys.sessionId).slice(0, 8)}…, but it was sealed for another`);
    }
  }

  /** What a member's membership state holds: its contribution chains and its subsession. */
  noteState(member: string, state: MembershipState): void {
    for (const key of [state.own?.contributions, state.op?.contributions, state.proposal?.contributions]) {
      if (key !== undefined && key !== null) this.noteChain(member, stolenScalars(key));
    }
    const cur = state.current;
    if (cur !== null && cur.groupKey !== null) this.noteHolding(member, { sid: cur.sid, groupKey: cur.groupKey, members: cur.members });
  }

  /**
   * A subsession `member` holds whose group key its membership handed to the session and then
   * dropped (issue 9 §3): known by SHA-256(sid ‖ gk), the key itself is found among the member's
   * recorded derivations when the keys are checked (`checkKeys`).
   */
  noteBound(member: string, bound: { readonly sid: Uint8Array; readonly sidkeyHash: Uint8Array; readonly members: readonly string[] }): void {
    const key = `${member}/${hexEncode(bound.sid)}`;
    if (this.boundKeys.has(key)) return;
    this.boundKeys.add(key);
    this.bound.push({ member, sid: Uint8Array.from(bound.sid), sidkeyHash: Uint8Array.from(bound.sidkeyHash), members: [...bound.members] });
  }

  /** Every group key any member was seen deriving (hex). */
  derivedKeys(): string[] {
    return [...this.derived.values()].flatMap((set) => [...set]);
  }

  hasBound(member: string, sid: Uint8Array): boolean {
    return this.boundKeys.has(`${member}/${hexEncode(sid)}`);
  }

  /** Each bound subsession's key, from what its member derived (a miss means the oracle went blind). */
  private async resolveBound(): Promise<void> {
    for (const b of this.bound.splice(0)) {
      let found: Uint8Array | undefined;
      for (const hex of this.derived.get(b.member) ?? []) {
        const key = hexDecode(hex);
        if (bytesEqual(await this.base.sha256(concatBytes(b.sid, key)), b.sidkeyHash)) found = key;
      }
      if (found === undefined) this.violate(`oracle blind: ${b.member} holds subsession ${hexEncode(b.sid).slice(0, 8)}… under a key it was not seen deriving (update tests/sim/oracle.ts)`);
      else this.noteHolding(b.member, { sid: b.sid, groupKey: found, members: b.members });
    }
  }

  private noteChain(member: string, scalars: readonly Uint8Array[]): void {
    const known = this.chains.get(member) ?? new Map<string, Uint8Array>();
    for (const x of scalars) known.set(hexEncode(x), x);
    this.chains.set(member, known);
  }

  noteHolding(member: string, holding: KeyHolding): void {
    const key = `${member}/${hexEncode(holding.sid)}/${hexEncode(holding.groupKey)}`;
    if (this.holdingKeys.has(key)) return;
    this.holdingKeys.add(key);
    this.holdings.push({ member, holding: { sid: Uint8Array.from(holding.sid), groupKey: Uint8Array.from(holding.groupKey), members: [...holding.members] } });
  }

  /** Check 5: `member` accepted an operation on this initial packet, claimed to be `source`'s. */
  checkInitialSigned(member: string, source: string, signature: Uint8Array, signed: Uint8Array): void {
    const made = this.signatures.get(hexEncode(signature));
    const asSigned = (context: Uint8Array) => fingerprint(concatBytes(context, signed));
    if (made === undefined || made.who !== source || (made.message !== asSigned(GREETING_CONTEXT) && made.message !== asSigned(CONTRIBUTOR_CONTEXT))) {
      this.violate(`${member} accepted an operation on an initial packet ${source} never signed as it stands${made === undefined ? '' : ` (the signature is ${made.who}'s, over other bytes)`}`);
    }
  }

  /**
   * Check 4: `member` accepted an operation whose initial packet names `claimed` as the chain
   * hash of its parent, while the member's own head was `own` (null: a joiner, which adopts it).
   */
  checkChainAccepted(member: string, claimed: Uint8Array, own: Uint8Array | null): void {
    if (own !== null && !bytesEqual(claimed, own)) {
      this.violate(`${member} accepted an operation built on chain hash ${hexEncode(claimed).slice(0, 8)}…, not its own ${hexEncode(own).slice(0, 8)}…`);
    }
  }

  /**
   * Check 1. `downflows`: every complete INT_KEY list in the relay log with its member list
   * (downflows, and exclude/refresh initial packets). `everyone`: all simulated member ids.
   */
  async checkKeys(downflows: readonly { readonly members: readonly string[]; readonly intKeys: readonly Uint8Array[] }[], everyone: readonly string[]): Promise<void> {
    await this.resolveBound();
    // Keys each member must not hold: those of subsessions it is not a member of.
    const forbidden = new Map<string, Map<string, KeyHolding>>();
    for (const m of everyone) forbidden.set(m, new Map());
    for (const { holding } of this.holdings) {
      const hex = hexEncode(holding.groupKey);
      if (!this.secretOf.has(hex)) {
        this.violate(`oracle blind: nobody was seen deriving the key of subsession ${hexEncode(holding.sid).slice(0, 8)}… (update tests/sim/oracle.ts)`);
      }
      for (const m of everyone) if (!holding.members.includes(m)) forbidden.get(m)!.set(hex, holding);
    }
    // Cheap half: keys a member derived.
    for (const m of everyone) {
      for (const hex of this.derived.get(m) ?? []) {
        const h = forbidden.get(m)!.get(hex);
        if (h !== undefined) this.violate(`${m} derived the key of subsession ${hexEncode(h.sid).slice(0, 8)}… of ${h.members.join(',')}, which it is not in`);
      }
    }
    if (!this.options.keyTrial) return;
    // Expensive half: every scalar a member's stored keys gave, on every slot of every downflow that leaves it out.
    for (const d of downflows) {
      this.counts.downflowsTried++;
      for (const m of everyone) {
        if (d.members.includes(m)) continue;
        const chains = [...(this.chains.get(m)?.values() ?? [])];
        const targets = forbidden.get(m)!;
        if (chains.length === 0 || targets.size === 0) continue;
        const secrets = new Map([...targets].flatMap(([hex, h]) => (this.secretOf.has(hex) ? [[hexEncode(this.secretOf.get(hex)!), h] as const] : [])));
        for (const slot of d.intKeys) {
          for (const x of chains) {
            this.counts.trials++;
            const point = await tryScalar(this.base, x, slot);
            const h = point === null ? undefined : secrets.get(hexEncode(point));
            if (h !== undefined) {
              this.violate(`${m}'s stored contributions open the key of subsession ${hexEncode(h.sid).slice(0, 8)}… of ${h.members.join(',')}, which it is not in`);
            }
          }
        }
      }
    }
  }

  /**
   * Self-check for the session simulator: every distinct data packet posted was seen signed and
   * encrypted (with AES-CTR), so checks 2 and 3 looked at all of them.
   */
  expectSealed(dataPackets: number): void {
    if (dataPackets > 0 && this.counts.dataSignatures < dataPackets) {
      this.violate(`oracle blind: ${dataPackets} data packets posted but only ${this.counts.dataSignatures} data signatures seen (update tests/sim/oracle.ts)`);
    }
    if (dataPackets > 0 && this.counts.ctrUses < dataPackets) {
      this.violate(`oracle blind: ${dataPackets} data packets posted but only ${this.counts.ctrUses} AES-CTR uses seen (update tests/sim/oracle.ts)`);
    }
  }
}
