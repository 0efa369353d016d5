/**
 * A WebSocket double for RelayClient tests (src/worker/relay-client.ts `WebSocketLike`): records
 * the frames the client sends and lets a test play the relay's side (`emit`, `frame`).
 */
import type { ServerFrame } from '../../../src/shared/relay-api.js';
import type { WebSocketLike } from '../../../src/worker/relay-client.js';

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  private listeners = new Map<string, ((event: { data: unknown; code?: number }) => void)[]>();
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  addEventListener(type: string, listener: (event: { data: unknown; code?: number }) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.emit('close');
  }
  emit(type: string, data?: unknown): void {
    if (type === 'open') this.readyState = 1;
    if (type === 'close') this.readyState = 3;
    for (const listener of this.listeners.get(type) ?? []) listener({ data });
  }
  frame(frame: ServerFrame): void {
    this.emit('message', JSON.stringify(frame));
  }
}
