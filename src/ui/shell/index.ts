/**
 * The app shell's pieces for the screens (issue 11/12): call `startShell()` once before the first
 * render, place `<UpdatePrompt />` once near the root and `<InstallOffer />` wherever installing
 * fits (first run, settings). Self-contained: styles in shell.css, no props required.
 */
import { listenForInstallPrompt } from './install-prompt.js';
import { registerServiceWorker } from './service-worker.js';

export { InstallButton } from './InstallButton.js';
export { InstallHint } from './InstallHint.js';
export { InstallOffer } from './InstallOffer.js';
export { UpdatePrompt } from './UpdatePrompt.js';
export { installHintFor, type InstallHint as InstallHintKind } from './install-hint.js';
export { installed, installOffer, isStandalone, promptInstall } from './install-prompt.js';
export { applyUpdate, postponeUpdate, serviceWorkerStatus, updateReady, type ServiceWorkerStatus } from './service-worker.js';

/** This build's name (COVEY_VERSION at build time). */
export const COVEY_VERSION: string = __COVEY_VERSION__;

export function startShell(): void {
  listenForInstallPrompt();
  registerServiceWorker();
}
