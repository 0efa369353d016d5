/** Settings: your name, appearance, the lock (passphrase), relays and storage, about. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { MAX_DISPLAY_NAME_CHARS, MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS, type AppView } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { saveTheme, storedTheme, type Theme } from '../../app/theme.js';
import { hostOf } from '../../app/StatusBar.js';
import { Dialog } from '../../components/Dialog.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { Icon } from '../../components/icons.js';
import { COVEY_VERSION, DeviceSettings, InstallOffer } from '../../shell/index.js';
import { LengthHint } from '../../components/LengthHint.js';

const THEMES: readonly { value: Theme; label: string }[] = [
  { value: 'system', label: 'Same as this device' },
  { value: 'light', label: 'Light' },
  { value: 'dark', label: 'Dark' },
];

const PERSISTENCE_TEXT: Record<AppView['persistence'], string> = {
  granted: 'This browser keeps Covey’s data even when space runs low.',
  refused: 'This browser may delete Covey’s messages and keys when space runs low. Installing Covey or bookmarking it usually helps.',
  unsupported: 'This browser does not say whether it keeps Covey’s data when space runs low.',
  unknown: 'Checking whether this browser keeps Covey’s data…',
};

export function Settings({ app }: { app: AppView }): JSX.Element {
  const api = useApi();
  const [theme, setTheme] = useState<Theme>(storedTheme);
  const [name, setName] = useState(app.me?.displayName ?? '');
  const [dialog, setDialog] = useState<null | 'set' | 'clear'>(null);
  const rename = useAction(() => api.setDisplayName({ displayName: name.trim() }));
  const lock = useAction(() => api.lock({}));
  const nameChanged = name.trim() !== (app.me?.displayName ?? '') && name.trim().length > 0;
  return (
    <section class="list-screen" aria-labelledby="settings-title">
      <ScreenHeader title={<span id="settings-title">Settings</span>} />
      <div class="list-scroll pane-body stack">
        <form
          class="card stack"
          onSubmit={(event) => {
            event.preventDefault();
            if (nameChanged) void rename.run();
          }}
        >
          <div class="field">
            <label for="settings-name">Your name</label>
            <p class="hint">New contacts and groups see this name; people you have added keep the name they gave you.</p>
            <input id="settings-name" class="input" maxLength={MAX_DISPLAY_NAME_CHARS} value={name} onInput={(event) => setName(event.currentTarget.value)} />
            <LengthHint value={name} max={MAX_DISPLAY_NAME_CHARS} />
          </div>
          <ErrorText error={rename.error} />
          <button type="submit" class="btn" disabled={!nameChanged || rename.pending}>
            Save name
          </button>
        </form>

        <fieldset class="card stack">
          <legend class="label">Appearance</legend>
          {THEMES.map((option) => (
            <label key={option.value} class="check">
              <input
                type="radio"
                name="theme"
                value={option.value}
                checked={theme === option.value}
                onChange={() => {
                  setTheme(option.value);
                  saveTheme(option.value);
                }}
              />
              {option.label}
            </label>
          ))}
        </fieldset>

        <section class="card stack" aria-labelledby="lock-title">
          <h2 id="lock-title">Lock</h2>
          {app.passphraseSet ? (
            <>
              <p>Covey asks for your passphrase when it opens. Without it, nobody can read the messages stored on this device.</p>
              <div class="row">
                <button type="button" class="btn" onClick={() => void lock.run()} disabled={lock.pending}>
                  <Icon name="lock" /> Lock now
                </button>
                <button type="button" class="btn" onClick={() => setDialog('set')}>
                  Change passphrase
                </button>
                <button type="button" class="btn btn-danger" onClick={() => setDialog('clear')}>
                  Remove passphrase
                </button>
              </div>
              <ErrorText error={lock.error} />
            </>
          ) : (
            <>
              <p>Set a passphrase so that anyone who uses this browser cannot read your chats.</p>
              <button type="button" class="btn" onClick={() => setDialog('set')}>
                <Icon name="lock" /> Set a passphrase
              </button>
            </>
          )}
        </section>

        <DeviceSettings app={app} />

        <section class="card stack" aria-labelledby="connection-title">
          <h2 id="connection-title">Connection and storage</h2>
          <ul class="stack">
            {app.relays.map((relay) => (
              <li key={relay.url}>
                <p>
                  <strong>{hostOf(relay.url)}</strong>: {relay.state === 'connected' ? 'connected' : relay.state === 'connecting' ? 'connecting…' : 'offline'}
                  {relay.messages > 0 && `, ${relay.messages} ${relay.messages === 1 ? 'message' : 'messages'} waiting to be sent`}
                </p>
                {relay.problem !== null && <p class="hint">{relay.problem}</p>}
              </li>
            ))}
          </ul>
          <p class={app.persistence === 'refused' ? 'error-text' : 'hint'}>{PERSISTENCE_TEXT[app.persistence]}</p>
          <InstallOffer />
        </section>

        <section class="card stack" aria-labelledby="about-title">
          <h2 id="about-title">About</h2>
          <p class="hint">
            Your key’s fingerprint: <span class="mono">{app.me?.fingerprint}</span>
          </p>
          <p class="hint">
            Home relay: {app.me?.homeRelay}
          </p>
          <p class="hint">Version {COVEY_VERSION}</p>
        </section>
      </div>
      {dialog === 'set' && <SetPassphrase hasCurrent={app.passphraseSet} onClose={() => setDialog(null)} />}
      {dialog === 'clear' && <ClearPassphrase onClose={() => setDialog(null)} />}
    </section>
  );
}

function SetPassphrase({ hasCurrent, onClose }: { hasCurrent: boolean; onClose: () => void }): JSX.Element {
  const api = useApi();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const save = useAction(async () => {
    await api.setPassphrase(hasCurrent ? { passphrase: next, current } : { passphrase: next });
    onClose();
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    if (next.length < MIN_PASSPHRASE_CHARS) setProblem(`Use at least ${MIN_PASSPHRASE_CHARS} characters.`);
    else if (next !== again) setProblem('The two passphrases are not the same.');
    else {
      setProblem(null);
      void save.run();
    }
  };
  return (
    <Dialog title={hasCurrent ? 'Change passphrase' : 'Set a passphrase'} onClose={onClose}>
      <form class="stack" onSubmit={onSubmit} noValidate>
        {hasCurrent && (
          <div class="field">
            <label for="pass-current">Current passphrase</label>
            <input id="pass-current" class="input" type="password" autocomplete="current-password" maxLength={MAX_PASSPHRASE_CHARS} value={current} onInput={(event) => setCurrent(event.currentTarget.value)} />
          </div>
        )}
        <div class="field">
          <label for="pass-new">New passphrase</label>
          <p class="hint">At least {MIN_PASSPHRASE_CHARS} characters. A few unrelated words are easy to remember and hard to guess. If you forget it, the messages on this device cannot be opened.</p>
          <input id="pass-new" class="input" type="password" autocomplete="new-password" maxLength={MAX_PASSPHRASE_CHARS} value={next} onInput={(event) => setNext(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="pass-again">New passphrase again</label>
          <input id="pass-again" class="input" type="password" autocomplete="new-password" maxLength={MAX_PASSPHRASE_CHARS} value={again} onInput={(event) => setAgain(event.currentTarget.value)} />
        </div>
        {problem !== null && (
          <p class="error-text" role="alert">
            {problem}
          </p>
        )}
        <ErrorText error={save.error} />
        <button type="submit" class="btn btn-primary" disabled={save.pending}>
          {save.pending ? 'Encrypting…' : 'Save passphrase'}
        </button>
      </form>
    </Dialog>
  );
}

function ClearPassphrase({ onClose }: { onClose: () => void }): JSX.Element {
  const api = useApi();
  const [current, setCurrent] = useState('');
  const clear = useAction(async () => {
    await api.clearPassphrase({ current });
    onClose();
  });
  return (
    <Dialog title="Remove the passphrase" onClose={onClose}>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void clear.run();
        }}
      >
        <p>Covey will open without asking. Anyone who uses this browser can then read your chats.</p>
        <div class="field">
          <label for="pass-clear">Current passphrase</label>
          <input id="pass-clear" class="input" type="password" autocomplete="current-password" maxLength={MAX_PASSPHRASE_CHARS} value={current} onInput={(event) => setCurrent(event.currentTarget.value)} />
        </div>
        <ErrorText error={clear.error} />
        <button type="submit" class="btn btn-danger" disabled={current.length === 0 || clear.pending}>
          Remove passphrase
        </button>
      </form>
    </Dialog>
  );
}
