import type { JSX } from 'preact';
import type { Verification } from '../../shared/worker-api.js';
import { verificationText } from '../format/words.js';
import { Icon } from './icons.js';

/**
 * The verification state of a person, next to their name wherever it is shown (DESIGN.md §5:
 * every message view shows its author's). `withText` writes the words; otherwise the icon carries
 * them for screen readers and as a tooltip.
 */
export function VerificationMark({ verification, withText }: { verification: Verification; withText?: boolean }): JSX.Element {
  const text = verificationText(verification);
  const icon = verification === 'verified' ? 'shield' : verification === 'key-changed' ? 'alert' : 'info';
  return (
    <span class={`vmark vmark-${verification}`} title={text}>
      <Icon name={icon} small label={withText ? undefined : text} />
      {withText && <span>{text}</span>}
    </span>
  );
}
