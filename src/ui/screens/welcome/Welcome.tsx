/**
 * First run (issue 11 §1): pick a display name, and one screen that says the three things a
 * person needs. No account, no phone number, nothing else asked.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { MAX_DISPLAY_NAME_CHARS } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { pendingLinkKind } from '../../app/links.js';
import { ErrorText } from '../../components/Notice.js';
import { Icon, type IconName } from '../../components/icons.js';
import './welcome.css';
import { LengthHint } from '../../components/LengthHint.js';

const STEPS: readonly { icon: IconName; title: string; text: string }[] = [
  { icon: 'qr', title: 'Share your link or QR code', text: 'Send your Covey link to a friend, or let them scan your code. That is how they find you: there are no accounts or phone numbers.' },
  { icon: 'userPlus', title: 'Add a friend from their link or code', text: 'Open or paste the link they send you, or scan their code with your camera.' },
  { icon: 'users', title: 'Make a group', text: 'Pick friends you have added and start chatting. Only the people in a chat can read it.' },
];

/** Only the page can ask for persistent storage (src/worker/README.md "Persistence"). */
async function askPersistence(): Promise<boolean | 'unsupported'> {
  if (navigator.storage?.persist === undefined) return 'unsupported';
  try {
    return await navigator.storage.persist();
  } catch {
    return false;
  }
}

export function Welcome(): JSX.Element {
  const api = useApi();
  const [name, setName] = useState('');
  const [touched, setTouched] = useState(false);
  const create = useAction(async (displayName: string) => {
    await api.createIdentity({ displayName });
    // Not awaited before continuing: Firefox asks the person, and the answer may take a while.
    void askPersistence().then((granted) => api.reportPersistence({ granted }).catch(() => undefined));
  });
  const trimmed = name.trim();
  const invalid = touched && trimmed.length === 0;
  const link = pendingLinkKind();
  const onSubmit = (event: Event) => {
    event.preventDefault();
    setTouched(true);
    if (trimmed.length === 0) return;
    void create.run(trimmed);
  };
  return (
    <main class="welcome">
      <div class="welcome-inner">
        <div class="welcome-brand">
          <span class="brand-mark" aria-hidden="true">
            <Icon name="chat" />
          </span>
          <h1>Welcome to Covey</h1>
          <p class="welcome-lead">Private group chat, encrypted on your device. The relay that carries your messages can read none of them.</p>
        </div>
        {link !== null && (
          <p class="callout callout-info welcome-link">
            {link === 'contact' ? 'You opened a friend’s Covey link. Pick your name first; then Covey shows who it is from.' : 'You opened an invitation to a group. Pick your name first; then Covey shows the invitation.'}
          </p>
        )}
        <ol class="welcome-steps">
          {STEPS.map((step, i) => (
            <li key={step.title} class="welcome-step">
              <span class="welcome-step-icon" aria-hidden="true">
                <Icon name={step.icon} />
              </span>
              <div>
                <h2 class="welcome-step-title">
                  <span class="visually-hidden">Step {i + 1}: </span>
                  {step.title}
                </h2>
                <p class="muted">{step.text}</p>
              </div>
            </li>
          ))}
        </ol>
        <form class="welcome-form stack" onSubmit={onSubmit} noValidate>
          <div class="field">
            <label for="display-name">Your name</label>
            <p class="hint" id="display-name-hint">
              Friends see this name when you add them. You can change it later.
            </p>
            <input
              id="display-name"
              class="input"
              name="name"
              autocomplete="nickname"
              maxLength={MAX_DISPLAY_NAME_CHARS}
              value={name}
              aria-describedby={invalid ? 'display-name-hint display-name-error' : 'display-name-hint'}
              aria-invalid={invalid ? 'true' : undefined}
              onInput={(event) => setName(event.currentTarget.value)}
            />
            <LengthHint value={name} max={MAX_DISPLAY_NAME_CHARS} />
            {invalid && (
              <p class="error-text" id="display-name-error">
                Enter a name
              </p>
            )}
          </div>
          <button type="submit" class="btn btn-primary btn-block" disabled={create.pending}>
            {create.pending ? 'Setting up…' : 'Start using Covey'}
          </button>
          <ErrorText error={create.error} />
          <p class="hint">Covey keeps your messages and keys in this browser only. Nothing is asked or stored about you anywhere else.</p>
        </form>
      </div>
    </main>
  );
}
