/**
 * A small bounded cache of imported WebCrypto keys, keyed by the raw key bytes.
 *
 * Importing a key costs about as much as a whole small operation (bench/crypto.ts measures it:
 * see the comment in select.ts), and Covey reuses the same few keys for many operations: one
 * group key per subsession for every data packet, one ephemeral signing key, each peer's public
 * key. The cache holds promises so that concurrent calls share one import; a failed import is
 * dropped so that it is retried. Oldest entries go first (Map keeps insertion order; a hit is
 * re-inserted, so this is an LRU).
 *
 * The map key is a byte string of the key material: for secret keys it lives as long as the
 * CryptoKey it names, which already holds the same secret.
 */

/**
 * Keys in use at once: a few subsessions' group keys, our signing keys, and the public keys of
 * every member of our groups. A greeting of a full group (MAX_GROUP_MEMBERS = 128) verifies each
 * member's static and ephemeral key and applies our contributions (x25519 private keys): about
 * 3 × 128 keys for one group, so 1,024 keeps a couple of full groups warm (a miss re-imports the
 * key: ~20 % more per verify, see select.ts). Entries are small (a CryptoKey and its bytes), and
 * `forget` drops a closed subsession's secrets at once.
 */
export const KEY_CACHE_MAX_ENTRIES = 1024;

/** Longer keys (only HMAC takes them; it hashes them first anyway) are not worth a map entry. */
export const KEY_CACHE_MAX_KEY_BYTES = 64;

export class KeyCache<K> {
  readonly #entries = new Map<string, Promise<K>>();
  /** Every `kind` ever cached (a handful: 'verify', 'aes-ctr', …): `forget` looks up one id per kind. */
  readonly #kinds = new Set<string>();

  constructor(readonly maxEntries: number = KEY_CACHE_MAX_ENTRIES) {}

  get size(): number {
    return this.#entries.size;
  }

  get(kind: string, keyBytes: Uint8Array, load: () => Promise<K>): Promise<K> {
    if (keyBytes.length > KEY_CACHE_MAX_KEY_BYTES) return load();
    const id = kind + ':' + byteString(keyBytes);
    this.#kinds.add(kind);
    const hit = this.#entries.get(id);
    if (hit !== undefined) {
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit;
    }
    const loading = load();
    this.#entries.set(id, loading);
    loading.catch(() => {
      if (this.#entries.get(id) === loading) this.#entries.delete(id);
    });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return loading;
  }

  /** Drops every cached key made from these bytes, whatever its kind (forgetKeys). */
  forget(keyBytes: Uint8Array): void {
    if (keyBytes.length > KEY_CACHE_MAX_KEY_BYTES) return;
    // (One lookup per kind, not a scan of every entry: a catch-up forgets a message key per
    // message, and the cache holds up to maxEntries keys.)
    const suffix = ':' + byteString(keyBytes);
    for (const kind of this.#kinds) this.#entries.delete(kind + suffix);
  }

  clear(): void {
    this.#entries.clear();
  }
}

function byteString(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
