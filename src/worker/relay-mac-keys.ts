/**
 * Which proof a member request to one relay carries: a request MAC (src/shared/relay-mac.ts) or,
 * as before, an Ed25519 signature. Holds the relay's auth key and the MAC keys derived from it,
 * shared by every RelayClient of that relay (`withSigner` copies share it through their options).
 *
 * Why MACs: the relay checks a MAC in ~4 µs instead of ~150 µs for a signature (issue 13), and
 * computing one costs the client less than signing.
 *
 * A request gets a MAC when the relay's auth key is known and its signer can derive its MAC key
 * (`RelaySigner.macKey`); everything else falls back to a signature, which every relay takes:
 *  - an older relay (404 on RELAY_AUTH_KEY_PATH): signatures; asked again after
 *    AUTH_KEY_RECHECK_MS, in case it was upgraded meanwhile;
 *  - the key could not be fetched (network, timeout, 5xx, an answer that is not a key):
 *    signatures; asked again after a jitter-free exponential backoff (AUTH_KEY_RETRY_*);
 *  - while the key is being fetched, a request waits for it at most AUTH_KEY_WAIT_MS, then is
 *    signed: a dead or slow relay never holds requests back behind this fetch;
 *  - a MAC'd request refused as 'bad-signature' (`refused`): the relay's key changed (its data
 *    was reset) or it no longer checks MACs. The key is fetched again and the caller retries the
 *    request once; if the relay still gives the key it refused the MAC under, it does not take
 *    our MACs: signatures until AUTH_KEY_RECHECK_MS.
 */
import { RELAY_AUTH_KEY_PATH, type RelayAuthKeyResponse } from '../shared/relay-mac.js';
import type { MemberKey } from '../shared/relay-api.js';
import type { RelaySigner } from './relay-signer.js';

/** The client's fetch (relay-client.ts FetchLike), as this file uses it. */
type AuthKeyFetch = (input: string, init: { method: string; headers: Record<string, string>; cache?: 'no-cache' }) => Promise<Response>;

/** How long a request waits for the auth key being fetched before it goes signed instead. */
export const AUTH_KEY_WAIT_MS = 1_000;
/** Signatures this long after a 404 (an older relay) or a refused MAC before the key is asked again. */
export const AUTH_KEY_RECHECK_MS = 60 * 60_000;
/** After a failed fetch of the key: first delay before the next, doubling up to the cap. */
export const AUTH_KEY_RETRY_BASE_MS = 5_000;
export const AUTH_KEY_RETRY_MAX_MS = 5 * 60_000;
/**
 * MAC keys kept per relay (one per member key: a channel's, or the inbox owner's). A miss costs
 * one X25519 and an HKDF; past the limit the oldest goes.
 */
export const MAC_KEYS_MAX = 1024;

/** An auth key as the relay sends it: 32 bytes, base64url without padding. */
const AUTH_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A MAC proof's key: the relay's auth key it was made under (to report a refusal) and the HMAC key. */
export interface MacProofKey {
  readonly authKey: string;
  readonly macKey: Uint8Array;
}

/** What the relay's auth key route answered. */
type AuthKeyAnswer = { readonly kind: 'key'; readonly key: string } | { readonly kind: 'absent' } | { readonly kind: 'failed' };

type AuthKeyState =
  /** Never asked. */
  | { readonly phase: 'unasked' }
  /** Being fetched; `refused`: the key a MAC was just refused under (the same again: no MACs). */
  | { readonly phase: 'fetching'; readonly answered: Promise<void>; readonly failures: number; readonly refused: string | undefined }
  /** MACs under `key`; `macKeys` by member key, as promises so that concurrent requests derive once. */
  | { readonly phase: 'known'; readonly key: string; readonly macKeys: Map<MemberKey, Promise<Uint8Array>> }
  /** Signatures until `untilMs`; `failures`: fetches failed in a row (the backoff). */
  | { readonly phase: 'signatures'; readonly untilMs: number; readonly failures: number };

export class RelayMacKeys {
  private state: AuthKeyState = { phase: 'unasked' };

  constructor(
    private readonly baseUrl: string,
    private readonly fetch: AuthKeyFetch,
    private readonly now: () => number,
  ) {}

  /** Starts fetching the auth key if it is due (a subscription does, to have it when its socket opens). */
  prefetch(): void {
    this.due();
  }

  /**
   * The MAC key of `signer` at this relay, or undefined: sign this request instead (the signer
   * cannot derive one, the relay has no auth key, or it is not known within AUTH_KEY_WAIT_MS).
   */
  async proofKey(signer: RelaySigner): Promise<MacProofKey | undefined> {
    if (signer.macKey === undefined) return undefined;
    const due = this.due();
    if (due.phase === 'fetching') await settledWithin(due.answered, AUTH_KEY_WAIT_MS);
    const state = this.state;
    if (state.phase !== 'known') return undefined;
    let macKey = state.macKeys.get(signer.publicKey);
    if (macKey === undefined) {
      if (state.macKeys.size >= MAC_KEYS_MAX) state.macKeys.delete(state.macKeys.keys().next().value!);
      macKey = signer.macKey(state.key);
      state.macKeys.set(signer.publicKey, macKey);
    }
    try {
      return { authKey: state.key, macKey: await macKey };
    } catch {
      // The relay's key is no X25519 key we can use (a low-order point): sign. The rejection
      // stays cached, so this member signs without trying again until the key changes.
      return undefined;
    }
  }

  /**
   * The relay refused a request MAC'd under `authKey` as 'bad-signature': fetch the key again
   * (the caller then proves the request afresh, with `proofKey`, and retries it once).
   */
  refused(authKey: string): void {
    if (this.state.phase === 'known' && this.state.key === authKey) this.startFetch(0, authKey);
  }

  /** The current state, after starting a fetch when one is due. */
  private due(): AuthKeyState {
    const state = this.state;
    if (state.phase === 'unasked') this.startFetch(0, undefined);
    else if (state.phase === 'signatures' && this.now() >= state.untilMs) this.startFetch(state.failures, undefined);
    return this.state;
  }

  private startFetch(failures: number, refused: string | undefined): void {
    const answered = this.fetchAuthKey(refused !== undefined).then((answer) => {
      this.state = this.next(answer, failures, refused);
    });
    this.state = { phase: 'fetching', answered, failures, refused };
  }

  private next(answer: AuthKeyAnswer, failures: number, refused: string | undefined): AuthKeyState {
    switch (answer.kind) {
      case 'key':
        if (answer.key === refused) return { phase: 'signatures', untilMs: this.now() + AUTH_KEY_RECHECK_MS, failures: 0 };
        return { phase: 'known', key: answer.key, macKeys: new Map() };
      case 'absent':
        return { phase: 'signatures', untilMs: this.now() + AUTH_KEY_RECHECK_MS, failures: 0 };
      case 'failed':
        return {
          phase: 'signatures',
          untilMs: this.now() + Math.min(AUTH_KEY_RETRY_MAX_MS, AUTH_KEY_RETRY_BASE_MS * 2 ** failures),
          failures: failures + 1,
        };
    }
  }

  /**
   * GET RELAY_AUTH_KEY_PATH (unauthenticated), through the client's fetch and so its timeout.
   * The relay lets HTTP caches keep the answer for an hour, so the browser may answer the first
   * fetch from its cache (no request at start); after a refused MAC (`fresh`) it must not.
   */
  private async fetchAuthKey(fresh: boolean): Promise<AuthKeyAnswer> {
    try {
      const response = await this.fetch(this.baseUrl + RELAY_AUTH_KEY_PATH, { method: 'GET', headers: {}, ...(fresh ? { cache: 'no-cache' as const } : {}) });
      if (!response.ok) {
        await response.arrayBuffer().catch(() => undefined); // frees the connection
        return response.status === 404 ? { kind: 'absent' } : { kind: 'failed' };
      }
      const body = (await response.json()) as Partial<RelayAuthKeyResponse> | null;
      const key = body?.key;
      return typeof key === 'string' && AUTH_KEY_PATTERN.test(key) ? { kind: 'key', key } : { kind: 'failed' };
    } catch {
      // Unreachable, timed out, or not JSON (a proxy's page): as any failed request.
      return { kind: 'failed' };
    }
  }
}

/** Waits for `promise` (which never rejects) or `ms`, whichever comes first. */
async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise, elapsed]);
  } finally {
    clearTimeout(timer);
  }
}
