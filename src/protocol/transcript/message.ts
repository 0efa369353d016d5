/**
 * What the transcript knows about one verified-decrypted message (mpENC §3.4, §5.3).
 *
 * The transcript is agnostic of the message body: it only needs the author and the parent
 * references. The body rides along (typed by the caller) so that higher layers (MessageLog,
 * reliability) can tell content from flow-control messages.
 */
import type { MemberId, MessageKey } from './ids.js';

export interface TranscriptMessage<Body = unknown> {
  readonly id: MessageKey;
  readonly author: MemberId;
  /** mpENC §3.4: the latest messages the author had seen when writing this one. */
  readonly parents: readonly MessageKey[];
  readonly body: Body;
}
