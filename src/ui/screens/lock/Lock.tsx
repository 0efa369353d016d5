/** Lock screen (issue 11 §6): the store is sealed with a passphrase until it is entered here. */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { MAX_PASSPHRASE_CHARS } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { ErrorText } from '../../components/Notice.js';
import { Icon } from '../../components/icons.js';

export function Lock(): JSX.Element {
  const api = useApi();
  const [passphrase, setPassphrase] = useState('');
  // `autofocus` works only for the page's first screen: after "Lock now" the field must be
  // focused by hand, or a keyboard user types into nothing.
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => field.current?.focus(), []);
  const unlock = useAction((value: string) => api.unlock({ passphrase: value }));
  const onSubmit = (event: Event) => {
    event.preventDefault();
    if (passphrase.length === 0) return;
    void unlock.run(passphrase).then(() => setPassphrase(''));
  };
  return (
    <main class="phase">
      <form class="phase-card stack" onSubmit={onSubmit}>
        <span class="brand-mark" aria-hidden="true">
          <Icon name="lock" />
        </span>
        <h1>Covey is locked</h1>
        <p class="muted">Enter your passphrase to open your chats.</p>
        <div class="field">
          <label for="unlock-passphrase">Passphrase</label>
          <input
            ref={field}
            id="unlock-passphrase"
            class="input"
            type="password"
            autocomplete="current-password"
            maxLength={MAX_PASSPHRASE_CHARS}
            value={passphrase}
            aria-invalid={unlock.error?.code === 'wrong-passphrase' ? 'true' : undefined}
            aria-describedby={unlock.error ? 'unlock-error' : undefined}
            onInput={(event) => setPassphrase(event.currentTarget.value)}
          />
        </div>
        <ErrorText error={unlock.error} id="unlock-error" />
        <button type="submit" class="btn btn-primary btn-block" disabled={unlock.pending || passphrase.length === 0}>
          {unlock.pending ? 'Unlocking…' : 'Unlock'}
        </button>
        <p class="hint">Forgot it? Without the passphrase nobody, including Covey, can open the messages on this device.</p>
      </form>
    </main>
  );
}
