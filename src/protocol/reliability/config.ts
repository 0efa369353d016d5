/**
 * Timing of end-to-end reliability (mpENC §3.5, §6.1 "Flow control"), as one config object so a
 * test or the simulator can shrink it. The defaults suit a relay whose round trip is a second or two
 * and members that may be offline for a while (the relay queues for them).
 */
export interface ReliabilityConfig {
  /**
   * Delay before an automatic ack. Acks are transitive (mpENC §3.5), so waiting batches every
   * message that arrives meanwhile into one ack, and any message we write in the meantime makes
   * the ack unnecessary.
   */
  readonly autoAckDelayMs: number;
  /** A message not fully acked after this long is resent (ours and others', mpENC §3.5). */
  readonly resendIntervalMs: number;
  /** Resends per message are bounded: a member who is away for long is the relay's job. */
  readonly maxResends: number;
  /** A message not fully acked after this long raises one warning naming who did not ack. */
  readonly ackTimeoutMs: number;
}

export const DEFAULT_RELIABILITY: ReliabilityConfig = {
  autoAckDelayMs: 2_000,
  resendIntervalMs: 15_000,
  maxResends: 4,
  ackTimeoutMs: 60_000,
};
