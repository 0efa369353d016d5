/**
 * "A new version of Covey is ready — Reload": shown when an update waits (service-worker.ts).
 * ShellOverlay shows it; it renders nothing until an update waits.
 */
import { useState } from 'preact/hooks';
import { applyUpdate, postponeUpdate, updateReady } from './service-worker.js';
import './shell.css';

export function UpdatePrompt() {
  const [reloading, setReloading] = useState(false);
  if (!updateReady.value) return null;
  const reload = (): void => {
    setReloading(true);
    applyUpdate();
  };
  return (
    <div class="shell-toast" data-testid="update-prompt">
      <p class="shell-toast__text">A new version of Covey is ready.</p>
      <div class="shell-actions">
        <button type="button" class="shell-button shell-button--primary" onClick={reload} disabled={reloading}>
          {reloading ? 'Reloading…' : 'Reload'}
        </button>
        <button type="button" class="shell-button" onClick={postponeUpdate} disabled={reloading}>
          Later
        </button>
      </div>
    </div>
  );
}
