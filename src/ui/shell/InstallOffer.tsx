/**
 * "Install Covey" for a screen (settings, help): the browser's install button where it offers
 * one, the iOS or macOS Safari instructions where it does not, nothing once installed or where
 * the browser cannot install web apps (Firefox on desktop). Always there, not dismissable: the
 * one-time suggestion is InstallBanner's job.
 */
import { InstallButton } from './InstallButton.js';
import { InstallHint } from './InstallHint.js';
import { currentInstallHint, installed, installOffer } from './install-prompt.js';

export function InstallOffer() {
  if (installed.value) return null;
  if (installOffer.value !== undefined) return <InstallButton />;
  const hint = currentInstallHint();
  return hint === 'none' ? null : <InstallHint hint={hint} />;
}
