/** Copy to the clipboard, and the system share sheet where the browser has one (Web Share API). */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Icon } from '../../components/icons.js';

/** How long "Copied" shows. */
const COPIED_FEEDBACK_MS = 2_500;

export function CopyButton({ text, label }: { text: string; label: string }): JSX.Element {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return undefined;
    const timer = setTimeout(() => setState('idle'), COPIED_FEEDBACK_MS);
    return () => clearTimeout(timer);
  }, [state]);
  const copy = () => {
    if (navigator.clipboard === undefined) {
      setState('failed');
      return;
    }
    navigator.clipboard.writeText(text).then(
      () => setState('copied'),
      () => setState('failed'),
    );
  };
  return (
    <>
      <button type="button" class="btn" onClick={copy}>
        <Icon name={state === 'copied' ? 'check' : 'copy'} />
        {state === 'copied' ? 'Copied' : label}
      </button>
      <span class="visually-hidden" role="status">
        {state === 'copied' ? 'Copied to the clipboard' : ''}
      </span>
      {state === 'failed' && <p class="error-text">This browser did not let Covey copy. Select the link above and copy it.</p>}
    </>
  );
}

export function ShareButton({ title, url }: { title: string; url: string }): JSX.Element | null {
  if (typeof navigator.share !== 'function') return null;
  const share = () => {
    navigator.share({ title, url }).catch(() => undefined); // dismissed: nothing to say
  };
  return (
    <button type="button" class="btn" onClick={share}>
      <Icon name="share" /> Share
    </button>
  );
}
