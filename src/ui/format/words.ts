/**
 * View-model states in plain words (GOV.UK: say what it is and what to do), shared by every
 * screen so the same state always reads the same.
 */
import type { ContactView, Delivery, Presence, Verification } from '../../shared/worker-api.js';
import { shortTime } from './time.js';

export function presenceText(presence: Presence, nowMs: number = Date.now()): string {
  switch (presence.state) {
    case 'online':
      return 'Online';
    case 'last-seen':
      return `Last seen ${shortTime(presence.atMs, nowMs)}`;
    case 'unknown':
      return 'Not seen yet';
  }
}

/**
 * A contact's line under their name. Presence comes from the chats you share, so a contact you
 * have no chat with yet has none: say that, not "not seen", which reads as if they never came.
 */
export function contactStatusText(contact: ContactView, nowMs: number = Date.now()): string {
  if (contact.state === 'requested') return 'Has not accepted your request yet';
  if (contact.presence.state === 'unknown') return 'No chat together yet';
  return presenceText(contact.presence, nowMs);
}

export function verificationText(verification: Verification): string {
  switch (verification) {
    case 'verified':
      return 'Verified';
    case 'unverified':
      return 'Not verified';
    case 'key-changed':
      return 'Safety number changed';
  }
}

function names(list: readonly string[]): string {
  if (list.length <= 1) return list.join('');
  return `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
}

/** One line for the message meta and its screen-reader label. */
export function deliveryText(delivery: Delivery): string {
  switch (delivery.state) {
    case 'waiting-to-send':
      return delivery.text || 'Waiting to send';
    case 'at-relay':
      return 'At the relay; nobody has it yet';
    case 'delivered':
      return delivery.notYetOnline.length > 0
        ? `Delivered to ${delivery.acked} of ${delivery.of}; ${names(delivery.notYetOnline)} ${delivery.notYetOnline.length === 1 ? 'has' : 'have'} not been online since it was sent`
        : `Delivered to ${delivery.acked} of ${delivery.of}`;
    case 'delivered-to-all':
      return delivery.of === 1 ? 'Delivered' : `Delivered to everyone (${delivery.of})`;
    case 'not-acked':
      return delivery.text;
    case 'failed':
      return delivery.text;
  }
}

/** The short mark next to the time: screen readers get deliveryText instead. */
export function deliveryShort(delivery: Delivery): string {
  switch (delivery.state) {
    case 'waiting-to-send':
      return 'Waiting';
    case 'at-relay':
      return 'Sent';
    case 'delivered':
      return `${delivery.acked}/${delivery.of}`;
    case 'delivered-to-all':
      return 'Delivered';
    case 'not-acked':
      return 'Not confirmed';
    case 'failed':
      return 'Not sent';
  }
}

export { names as listNames };

/**
 * A worker's refusal as a sentence: some reasons are written to follow a colon ("the link is
 * damaged (…)"), and a person should read "The link is damaged (…)." on screen.
 */
export function asSentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return trimmed;
  const first = trimmed[0]!.toLocaleUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

/**
 * How many characters a name field has left, shown only near its limit: `maxLength` stops typing
 * and cuts a paste without a word, so a name cut short would otherwise be a surprise.
 */
export const LENGTH_HINT_REMAINING = 10;

export function lengthHintText(length: number, max: number): string | null {
  const left = max - length;
  if (left > LENGTH_HINT_REMAINING) return null;
  if (left <= 0) return `That is the longest a name can be (${max} characters)`;
  return `${left} character${left === 1 ? '' : 's'} left`;
}
