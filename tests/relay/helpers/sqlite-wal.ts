// Helpers for tests that look inside the SQLite store's WAL (sqlite-layout, sqlite-nonces).
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** An fdatasync the test completes by hand; `onCall` sees the WAL's fd when the group's commit is in it. */
export class HeldSync {
  readonly calls: Array<(error: Error | null) => void> = [];
  onCall: (() => void) | undefined;
  readonly syncFile = (_fd: number, done: (error: Error | null) => void): void => {
    this.onCall?.();
    this.calls.push(done);
  };
  release(index: number): void {
    this.calls[index]?.(null);
  }

  /** Syncs released so far by `releaseNext` and `settle`, in call order. */
  #released = 0;

  /** Waits until the next sync is asked for: its write is committed, not yet durable. */
  async nextCall(): Promise<void> {
    await expect.poll(() => this.calls.length, { timeout: 30_000 }).toBeGreaterThan(this.#released);
  }

  releaseNext(): void {
    this.release(this.#released++);
  }

  /** `write` once its sync was asked for and released. */
  async settle<T>(write: Promise<T>): Promise<T> {
    await this.nextCall();
    this.releaseNext();
    return write;
  }
}

/** Frames of the last committed transaction in a WAL file (sqlite.org/fileformat.html "WAL File Format"). */
export function framesOfLastCommit(walPath: string): number {
  const wal = readFileSync(walPath);
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  const commits: number[] = [];
  let frames = 0;
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (wal.readUInt32BE(offset + 8) !== salt1 || wal.readUInt32BE(offset + 12) !== salt2) break;
    frames += 1;
    if (wal.readUInt32BE(offset + 4) !== 0) commits.push(frames);
  }
  const last = commits.at(-1);
  if (last === undefined) throw new Error('no commit in the WAL');
  return last - (commits.at(-2) ?? 0);
}
