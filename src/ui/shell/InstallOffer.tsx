/**
 * The one place to put "install Covey" on a screen: the browser's install button where it offers
 * one, the iOS or macOS Safari instructions where it does not, nothing once installed.
 */
import { InstallButton } from './InstallButton.js';
import { InstallHint } from './InstallHint.js';
import { installHintFor } from './install-hint.js';
import { installed, installOffer, isStandalone } from './install-prompt.js';

export function InstallOffer() {
  if (installed.value) return null;
  if (installOffer.value !== undefined) return <InstallButton />;
  const hint = installHintFor({
    userAgent: navigator.userAgent,
    maxTouchPoints: navigator.maxTouchPoints,
    standalone: isStandalone(),
  });
  return hint === 'none' ? null : <InstallHint hint={hint} />;
}
