/**
 * The engine's codes in plain words (issue 10 §7, mpENC §2.3: "warnings in words a person
 * understands"). The engine reports peer errors and greeting outcomes with enum codes
 * (ProtocolErrorCode, greeting WarningCode, FailureReason) and member ids; none of those may reach
 * the UI as they are. Every mapping here has a fallback, so a code added to the engine later
 * still reads as a sentence (and names nobody by key).
 */

/** Why a packet failed a check (ProtocolErrorCode), said as what happened to it. */
export function rejectionWords(code: string): string {
  switch (code) {
    case 'bad-signature':
      return 'its signature did not match';
    case 'decrypt-failed':
    case 'bad-padding':
      return 'it could not be decrypted';
    case 'replay':
      return 'it was a copy of an earlier message';
    case 'unknown-member':
      return 'it came from someone who is not in the group';
    case 'inconsistent':
      return 'it disagreed with the history you have';
    case 'unexpected-packet':
      return 'it came at a point where it makes no sense';
    case 'limit-exceeded':
    case 'too-long':
      return 'it was too large';
    case 'not-mpenc':
    case 'bad-framing':
    case 'truncated':
    case 'trailing-bytes':
    case 'bad-record':
    case 'bad-value':
    case 'bad-key':
    case 'low-order-point':
      return 'it was malformed';
    case 'unsupported-version':
      return 'it was made by a version of Covey this one does not understand';
    default:
      return 'it failed a security check';
  }
}

/** A greeting warning (GreetingMembership: "<code>[ (<member>)]: <message>") in plain words. */
export function membershipWarningWords(text: string): { text: string; whatToDo: string } {
  const code = /^([a-z-]+)/.exec(text)?.[1] ?? '';
  const tamper = 'If it repeats, someone may be tampering with the relay: compare safety numbers with the members.';
  switch (code) {
    case 'bad-packet':
      return { text: 'A malformed group key message was ignored', whatToDo: 'Nothing changed. ' + tamper };
    case 'bad-signature':
    case 'forged-source':
      return { text: 'A group key message failed its signature check and was ignored', whatToDo: 'Nothing changed. ' + tamper };
    case 'replay':
      return { text: 'A copy of an earlier group key message was ignored', whatToDo: 'Nothing changed. ' + tamper };
    case 'inconsistent-order':
      return { text: 'A group change arrived that does not fit the history you have; it was ignored', whatToDo: tamper };
    case 'events-withheld':
      return { text: 'Some of the group’s messages seem to be missing from the relay', whatToDo: tamper };
    case 'low-order-point':
      return { text: 'A group key message held an unsafe key and was refused', whatToDo: 'Nothing changed. ' + tamper };
    case 'key-mismatch':
      return { text: 'A member’s device computed a different group key than yours', whatToDo: 'The group starts over with a fresh key. ' + tamper };
    case 'peer-alarm':
      return { text: 'A member’s device stopped a group change because something looked wrong', whatToDo: tamper };
    default:
      return { text: 'The group’s key agreement reported a problem', whatToDo: tamper };
  }
}

/** A greeting operation in words: what was being done. */
export function operationWords(operation: string): string {
  switch (operation) {
    case 'include':
      return 'adding members';
    case 'exclude':
      return 'removing a member';
    case 'refresh':
      return 'renewing the group key';
    case 'start':
      return 'starting the group';
    default:
      return 'changing the group';
  }
}

/** Why a greeting operation failed (FailureReason), as the end of "Could not add Carol: …". */
export function failureWords(reason: string, by: string | null): string {
  switch (reason) {
    case 'aborted':
      return by === null ? 'it was cancelled' : `${by} cancelled it`;
    case 'member-left':
      return 'someone it waited for left the group';
    case 'left-channel':
      return 'you left the group';
    case 'rejected-packet':
      return 'one of its messages failed a security check';
    default:
      return 'it did not go through';
  }
}
