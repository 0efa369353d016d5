/**
 * What bench/crypto-browser.ts (the driver, in Node) and bench/crypto-browser-worker.ts (in the
 * browser) say to each other: one request per primitive, its answer.
 */
/**
 * 'aes-ctr' reuses one key (v1 data packets: the group key; both providers keep its schedule or
 * CryptoKey); 'aes-ctr-one-use' takes a fresh key per call (v2 data packets: each packet's message
 * key from its author's chain, packets/ratchet.ts: noble expands it, WebCrypto imports it).
 * 'hkdf-sha256': the size is the ikm's (as the hybrid routes it), 32 bytes out, a 32-byte info.
 */
export type Primitive = 'aes-ctr' | 'aes-ctr-one-use' | 'aes-gcm-seal' | 'aes-gcm-open' | 'sha256' | 'hmac-sha256' | 'hkdf-sha256';
export const PRIMITIVES: readonly Primitive[] = ['aes-ctr', 'aes-ctr-one-use', 'aes-gcm-seal', 'aes-gcm-open', 'sha256', 'hmac-sha256', 'hkdf-sha256'];
export type ProviderName = 'noble' | 'webcrypto';
/**
 * 'cold': awaited one by one as 'sequential', but with SCRUB_BYTES of other memory touched before
 * each call (the engine runs decoding, hashing and storage code between two decryptions, so its
 * tables are not all in L1 as in a tight loop); the scrub's own time, measured alone, is taken off.
 */
export type Mode = 'sequential' | 'inFlight' | 'cold';
export const MODES: readonly Mode[] = ['sequential', 'inFlight', 'cold'];

export interface CellRequest {
  readonly primitive: Primitive;
  readonly sizes: readonly number[];
  readonly rounds: number;
  readonly batchMs: number;
}

/** Median µs per call, per size (as a string key), provider and mode. */
export type CellTimes = Record<string, Record<ProviderName, Record<Mode, number>>>;

export interface WorkerAnswer {
  readonly primitive: Primitive;
  readonly times: CellTimes;
  readonly userAgent: string;
  /** What the engine's worker would detect there (detect.ts), hence its thresholds (select.ts). */
  readonly runtime: string;
  readonly crossOriginIsolated: boolean;
}

/**
 * The receive path of one v2 data packet as the engine runs it (Session.receiveAll): its message
 * id (SHA-256 of signature ‖ signed), its signature check (Ed25519: WebCrypto in every hybrid),
 * then decryption under its one-use message key, unpadding and decoding. Timed with the hybrid at
 * each set of thresholds, so that the routing of AES-CTR and SHA-256 is judged inside the code it
 * runs in rather than alone. Sizes are padded plaintext sizes (128 B is the smallest packet).
 */
export interface PacketRequest {
  readonly kind: 'packet';
  readonly paddedSizes: readonly number[];
  /** Name → thresholds of the hybrid to time. */
  readonly hybrids: Readonly<Record<string, { aesCtrMinBytes: number; aesGcmMinBytes: number; sha256MinBytes: number }>>;
  readonly rounds: number;
  readonly batchMs: number;
}

/** Median µs per packet, per padded size (as a string key), hybrid name, awaited one by one or all in flight. */
export interface PacketAnswer {
  readonly times: Record<string, Record<string, { readonly sequential: number; readonly inFlight: number }>>;
}
