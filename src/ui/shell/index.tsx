/**
 * The app shell (issue 11/12). main.tsx calls `startShell(shellRoot)` once: it registers the
 * service worker, listens for the browser's install offer and renders ShellOverlay (update
 * prompt, one-time install suggestion) into its own root beside the app. For the screens:
 * `<InstallOffer />` wherever installing fits for good (settings); `serviceWorkerStatus` says
 * whether the app can open offline. Self-contained: styles in shell.css, no props required.
 */
import { render } from 'preact';
import { ShellOverlay } from './ShellOverlay.js';
import { listenForInstallPrompt } from './install-prompt.js';
import { registerServiceWorker } from './service-worker.js';

export { backgroundSyncSupported, startBackgroundWork } from './background.js';
export { DeviceSettings } from './DeviceSettings.js';
export { InstallBanner } from './InstallBanner.js';
export { InstallButton } from './InstallButton.js';
export { InstallHint } from './InstallHint.js';
export { InstallOffer } from './InstallOffer.js';
export { ShellOverlay } from './ShellOverlay.js';
export { UpdatePrompt } from './UpdatePrompt.js';
export { installHintFor, type InstallHint as InstallHintKind } from './install-hint.js';
export { currentInstallHint, installed, installOffer, isStandalone, promptInstall } from './install-prompt.js';
export { applyUpdate, postponeUpdate, serviceWorkerStatus, updateReady, type ServiceWorkerStatus } from './service-worker.js';

/** This build's name (COVEY_VERSION at build time). */
export const COVEY_VERSION: string = __COVEY_VERSION__;

export function startShell(overlayRoot: HTMLElement): void {
  listenForInstallPrompt();
  registerServiceWorker();
  render(<ShellOverlay />, overlayRoot);
}
