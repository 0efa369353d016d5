/**
 * The shell's own layer, rendered by main.tsx into #shell beside the app's root: the update prompt,
 * or else the one-time install suggestion, at the bottom of the screen in a polite live region.
 * Independent of the app's screens, so it works in every phase (first run, locked, chatting).
 */
import { InstallBanner } from './InstallBanner.js';
import { UpdatePrompt } from './UpdatePrompt.js';
import { updateReady } from './service-worker.js';
import './shell.css';

export function ShellOverlay() {
  return (
    <div class="shell-toast-region" role="status" aria-live="polite">
      {updateReady.value ? <UpdatePrompt /> : <InstallBanner />}
    </div>
  );
}
