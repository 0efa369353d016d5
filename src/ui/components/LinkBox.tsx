import type { JSX } from 'preact';

/**
 * A long link shown whole, in a read-only box that scrolls (keyboard included: it is a form
 * control) and selects itself on focus, for copying by hand where the clipboard is refused.
 */
export function LinkBox({ link, label, testId }: { link: string; label: string; testId?: string }): JSX.Element {
  return (
    <textarea
      class="input link-box"
      readOnly
      rows={3}
      value={link}
      aria-label={label}
      data-testid={testId}
      spellcheck={false}
      onFocus={(event) => event.currentTarget.select()}
    />
  );
}
