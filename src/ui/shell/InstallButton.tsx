/** "Install Covey", only while the browser offers installing (`beforeinstallprompt`). */
import { installOffer, promptInstall } from './install-prompt.js';
import './shell.css';

export interface InstallButtonProps {
  /** Extra classes, to fit the button into the surrounding screen. */
  readonly class?: string;
}

export function InstallButton(props: InstallButtonProps) {
  if (installOffer.value === undefined) return null;
  return (
    <button
      type="button"
      class={`shell-button shell-button--primary ${props.class ?? ''}`.trim()}
      onClick={() => void promptInstall()}
    >
      Install Covey
    </button>
  );
}
