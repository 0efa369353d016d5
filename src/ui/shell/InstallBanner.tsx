/**
 * The one-time suggestion to install Covey (ShellOverlay): the browser's offer as "Install
 * Covey / Not now" (instead of Chromium's own mini-infobar, which listenForInstallPrompt
 * suppresses), or the iOS / macOS Safari instructions. "Not now" is remembered on this device;
 * InstallOffer in settings stays available.
 */
import { useState } from 'preact/hooks';
import { InstallHint } from './InstallHint.js';
import { currentInstallHint, installed, installOffer, promptInstall } from './install-prompt.js';
import './shell.css';

const DISMISSED_KEY = 'covey.shell.installBannerDismissed';

function wasDismissed(): boolean {
  try {
    return localStorage.getItem(DISMISSED_KEY) === '1';
  } catch {
    return false; // storage blocked: offer again next time, it costs one tap
  }
}

export function InstallBanner() {
  const [dismissed, setDismissed] = useState(wasDismissed);
  if (dismissed || installed.value) return null;
  const dismiss = (): void => {
    setDismissed(true);
    try {
      localStorage.setItem(DISMISSED_KEY, '1');
    } catch {
      // storage blocked: dismissed for this visit only
    }
  };
  if (installOffer.value !== undefined) {
    return (
      <div class="shell-toast" data-testid="install-banner">
        <p class="shell-toast__text">Install Covey: it opens like an app and works offline.</p>
        <div class="shell-actions">
          <button type="button" class="shell-button shell-button--primary" onClick={() => void promptInstall()}>
            Install Covey
          </button>
          <button type="button" class="shell-button" onClick={dismiss}>
            Not now
          </button>
        </div>
      </div>
    );
  }
  const hint = currentInstallHint();
  if (hint === 'none') return null;
  return (
    <div class="shell-toast shell-toast--hint" data-testid="install-banner">
      <InstallHint hint={hint} onDismiss={dismiss} />
    </div>
  );
}
