/**
 * What a simulated restart must keep, as text to compare before and after: the session's
 * snapshot, and for each message its ack monitor still tracks, the readers it still waits for
 * as the session answers them. The snapshot alone is not enough: it leaves us out of the readers
 * still to ack (AckMonitorSnapshot.selfImplicit; restore derives us), so a restore that forgot
 * our own owed acks would save the very same snapshot (mutant restore-forgets-own-acks).
 * Presence is left out: who is shown online is not part of what a restart keeps.
 */
import type { Session } from '../../src/protocol/session/session.js';

export function restartState(session: Session): string {
  const snapshot = session.snapshot();
  const waiting = snapshot.subsessions.flatMap((sub) =>
    sub.acks.tracked.map((t) => {
      const d = session.delivery(t.id);
      return [t.id, [...d.waiting, ...d.pending, ...d.late].sort(), d.gone];
    }),
  );
  return JSON.stringify({ snapshot, waiting });
}
