import type { ComponentChildren, JSX } from 'preact';
import type { NoticeTone } from '../../shared/worker-api.js';
import { asSentence } from '../format/words.js';
import { Icon } from './icons.js';

/** A coloured box with an icon: information, a warning, or danger (GOV.UK's warning text). */
export function Callout({ tone, title, children, live }: { tone: NoticeTone; title?: string; children?: ComponentChildren; live?: boolean }): JSX.Element {
  return (
    <div class={`callout callout-${tone}`} role={live ? (tone === 'info' ? 'status' : 'alert') : undefined}>
      <Icon name={tone === 'info' ? 'info' : 'alert'} />
      <div class="callout-text">
        {title !== undefined && <p class="callout-title">{title}</p>}
        {children}
      </div>
    </div>
  );
}

export function ErrorText({ error, id }: { error: { message: string } | null; id?: string }): JSX.Element | null {
  if (error === null) return null;
  return (
    <p class="error-text" id={id} role="alert">
      {asSentence(error.message)}
    </p>
  );
}
