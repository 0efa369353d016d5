/**
 * How to install where the browser has no install button: iOS (Share → Add to Home Screen) and
 * Safari on macOS (File → Add to Dock).
 */
import type { InstallHint as Hint } from './install-hint.js';
import './shell.css';

export interface InstallHintProps {
  readonly hint: Exclude<Hint, 'none'>;
  /** Shows "Not now" (the banner); inline placements (settings) leave it out. */
  readonly onDismiss?: () => void;
}

export function InstallHint(props: InstallHintProps) {
  return (
    <section class="shell-hint" aria-label="Install Covey" data-testid="install-hint">
      {props.hint === 'ios-share' ? (
        <>
          <p class="shell-hint__title">Install Covey on this iPhone or iPad</p>
          <ol class="shell-hint__steps">
            <li>
              Tap <ShareIcon /> <strong>Share</strong> in the browser’s toolbar.
            </li>
            <li>
              Choose <strong>Add to Home Screen</strong>, then <strong>Add</strong>.
            </li>
          </ol>
        </>
      ) : (
        <>
          <p class="shell-hint__title">Install Covey on this Mac</p>
          <p class="shell-hint__steps">
            In Safari’s menu bar, choose <strong>File</strong> → <strong>Add to Dock</strong>.
          </p>
        </>
      )}
      {props.onDismiss && (
        <div class="shell-actions">
          <button type="button" class="shell-button" onClick={props.onDismiss}>
            Not now
          </button>
        </div>
      )}
    </section>
  );
}

/** The iOS share glyph (a square with an arrow up), so the words match what the user looks for. */
function ShareIcon() {
  return (
    <svg class="shell-hint__icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path
        fill="none"
        stroke="currentColor"
        stroke-width="1.8"
        stroke-linecap="round"
        stroke-linejoin="round"
        d="M12 3v12M8 7l4-4 4 4M8 10H6a1 1 0 0 0-1 1v9a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-9a1 1 0 0 0-1-1h-2"
      />
    </svg>
  );
}
