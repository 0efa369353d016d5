/**
 * The browser's own install offer (`beforeinstallprompt`: Chromium browsers on Android and
 * desktop). It can fire before any component mounts, so `listenForInstallPrompt()` runs at start
 * and keeps the event here until the user presses "Install Covey".
 */
import { signal } from '@preact/signals';
import { installHintFor, type InstallHint } from './install-hint.js';

/** Not in TypeScript's DOM types: a Chromium extension (WICG "Web App Install Prompt"). */
interface BeforeInstallPromptEvent extends Event {
  prompt(): Promise<void>;
  readonly userChoice: Promise<{ readonly outcome: 'accepted' | 'dismissed' }>;
}

/** The deferred offer, while the browser allows one (one prompt per event). */
export const installOffer = signal<BeforeInstallPromptEvent | undefined>(undefined);
/** True once this browser installed Covey while this page was open. */
export const installed = signal(false);

export function listenForInstallPrompt(): void {
  window.addEventListener('beforeinstallprompt', (event) => {
    // Instead of Chrome's mini-infobar, the app shows its own button where it fits.
    event.preventDefault();
    installOffer.value = event as BeforeInstallPromptEvent;
  });
  window.addEventListener('appinstalled', () => {
    installOffer.value = undefined;
    installed.value = true;
  });
}

export type InstallOutcome = 'accepted' | 'dismissed' | 'unavailable';

/** Shows the browser's install dialog; the offer is used up either way. */
export async function promptInstall(): Promise<InstallOutcome> {
  const offer = installOffer.value;
  if (offer === undefined) return 'unavailable';
  installOffer.value = undefined;
  await offer.prompt();
  const { outcome } = await offer.userChoice;
  return outcome;
}

/** Already running as an installed app (home screen, dock, app window). */
export function isStandalone(): boolean {
  const iosStandalone = (navigator as Navigator & { readonly standalone?: boolean }).standalone === true;
  return iosStandalone || window.matchMedia('(display-mode: standalone)').matches;
}

/** The written instructions this browser needs, if any (see install-hint.ts). */
export function currentInstallHint(): InstallHint {
  return installHintFor({ userAgent: navigator.userAgent, maxTouchPoints: navigator.maxTouchPoints, standalone: isStandalone() });
}
