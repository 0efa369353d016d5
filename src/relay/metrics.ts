/**
 * Prometheus text-format metrics (issue 5 §9): counters, gauges and one latency histogram, all
 * from memory (issue 13 "Broken" 4: a scrape never touches the store; the stored counts are those
 * of the last storage check).
 */
import type { StorageStatus } from '../shared/relay-api.js';
import type { ProofTally } from './auth.js';

/** Request latency buckets in seconds: sub-millisecond loopback up to slow disks. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Distinct `code` label values kept: the error codes plus 'ok' are far fewer. */
const MAX_CODE_LABELS = 64;

export class RelayMetrics implements ProofTally {
  eventsAppended = 0;
  eventBytes = 0;
  eventsPushed = 0;
  connections = 0;
  /** Open TCP connections on the public port (HTTP keep-alive and WebSocket alike). */
  tcpConnections = 0;
  subscriptions = 0;
  private readonly requestsByCode = new Map<string, number>();
  private readonly bucketCounts = new Array<number>(LATENCY_BUCKETS_S.length).fill(0);
  private latencySum = 0;
  private latencyCount = 0;
  /** Proofs checked, by kind and verdict. */
  private readonly proofs = { mac: { accepted: 0, refused: 0 }, signature: { accepted: 0, refused: 0 } };

  recordProof(proof: 'mac' | 'signature', valid: boolean): void {
    if (valid) this.proofs[proof].accepted += 1;
    else this.proofs[proof].refused += 1;
  }

  observeRequest(code: string, seconds: number): void {
    if (this.requestsByCode.has(code) || this.requestsByCode.size < MAX_CODE_LABELS) {
      this.requestsByCode.set(code, (this.requestsByCode.get(code) ?? 0) + 1);
    }
    this.latencySum += seconds;
    this.latencyCount += 1;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= (LATENCY_BUCKETS_S[i] ?? Infinity)) this.bucketCounts[i] = (this.bucketCounts[i] ?? 0) + 1;
    }
  }

  /** `macKeysCached`: members' MAC keys this node holds (mac-keys.ts). */
  render(stored: { channels: number; events: number; bytes: number }, pushes?: Readonly<Record<string, number>>, storage?: StorageStatus, macKeysCached?: number): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, values: string[]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values);
    };
    metric('covey_relay_events_appended_total', 'counter', 'Events appended through this node.', [
      `covey_relay_events_appended_total ${this.eventsAppended}`,
    ]);
    metric('covey_relay_event_bytes_total', 'counter', 'Packet bytes (base64url) appended through this node.', [
      `covey_relay_event_bytes_total ${this.eventBytes}`,
    ]);
    metric('covey_relay_events_pushed_total', 'counter', 'Events pushed over WebSockets by this node.', [
      `covey_relay_events_pushed_total ${this.eventsPushed}`,
    ]);
    metric('covey_relay_connections', 'gauge', 'Open WebSocket connections.', [`covey_relay_connections ${this.connections}`]);
    metric('covey_relay_tcp_connections', 'gauge', 'Open TCP connections on the public port.', [`covey_relay_tcp_connections ${this.tcpConnections}`]);
    metric('covey_relay_subscriptions', 'gauge', 'Active channel subscriptions.', [`covey_relay_subscriptions ${this.subscriptions}`]);
    metric(
      'covey_relay_requests_total',
      'counter',
      'HTTP requests and WebSocket post frames by outcome code.',
      [...this.requestsByCode].map(([code, n]) => `covey_relay_requests_total{code="${code}"} ${n}`),
    );
    const buckets = LATENCY_BUCKETS_S.map((le, i) => `covey_relay_request_duration_seconds_bucket{le="${le}"} ${this.bucketCounts[i] ?? 0}`);
    metric('covey_relay_request_duration_seconds', 'histogram', 'Latency of HTTP requests and WebSocket post frames.', [
      ...buckets,
      `covey_relay_request_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`,
      `covey_relay_request_duration_seconds_sum ${this.latencySum}`,
      `covey_relay_request_duration_seconds_count ${this.latencyCount}`,
    ]);
    metric(
      'covey_relay_request_proofs_total',
      'counter',
      'Proofs of member requests and frames checked, by kind (mac, signature) and verdict.',
      (['mac', 'signature'] as const).flatMap((proof) => [
        `covey_relay_request_proofs_total{proof="${proof}",result="accepted"} ${this.proofs[proof].accepted}`,
        `covey_relay_request_proofs_total{proof="${proof}",result="refused"} ${this.proofs[proof].refused}`,
      ]),
    );
    if (macKeysCached !== undefined) {
      metric('covey_relay_mac_keys_cached', 'gauge', "Members' request-MAC keys held by this node.", [`covey_relay_mac_keys_cached ${macKeysCached}`]);
    }
    if (pushes !== undefined) {
      metric(
        'covey_relay_pushes_total',
        'counter',
        'Web Push requests by outcome (sent, gone, later, failed; dropped = not sent, state full).',
        Object.entries(pushes).map(([outcome, n]) => `covey_relay_pushes_total{outcome="${outcome}"} ${n}`),
      );
    }
    metric('covey_relay_channels', 'gauge', 'Channels in the store.', [`covey_relay_channels ${stored.channels}`]);
    metric('covey_relay_stored_events', 'gauge', 'Events in the store.', [`covey_relay_stored_events ${stored.events}`]);
    metric('covey_relay_stored_bytes', 'gauge', 'Event bytes in the store.', [`covey_relay_stored_bytes ${stored.bytes}`]);
    if (storage !== undefined) {
      metric('covey_relay_storage_writable', 'gauge', '1 while new content is accepted, 0 at the storage high-water mark.', [
        `covey_relay_storage_writable ${storage.writable ? 1 : 0}`,
      ]);
      if (storage.freeBytes !== undefined) {
        metric('covey_relay_storage_free_bytes', 'gauge', 'Free bytes of the data dir file system.', [`covey_relay_storage_free_bytes ${storage.freeBytes}`]);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
