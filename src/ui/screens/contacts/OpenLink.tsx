/**
 * A contact or invite link opened in the browser (`https://…/#c=…`, `#i=…`): ask the worker what
 * it is, show it, and clear it from the address bar (src/worker/README.md "Links").
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { MAX_LINK_CHARS, type CardPreview, type InviteLinkPreview } from '../../../shared/worker-api.js';
import { asWorkerError, useApi } from '../../app/engine.js';
import { clearLinkFromUrl, linkKindOf } from '../../app/links.js';
import { Dialog } from '../../components/Dialog.js';
import { asSentence } from '../../format/words.js';
import { BAD_LINK_HINT, LinkPreview } from './LinkPreview.js';

type Opened = { link: string; state: 'loading' } | { link: string; state: 'ready'; preview: CardPreview | InviteLinkPreview } | { link: string; state: 'failed'; text: string; badLink: boolean };

export function OpenLink(): JSX.Element | null {
  const api = useApi();
  const [opened, setOpened] = useState<Opened | null>(null);
  useEffect(() => {
    const check = () => {
      if (linkKindOf(location.hash) === null) return;
      const link = location.href.slice(0, MAX_LINK_CHARS);
      clearLinkFromUrl();
      setOpened({ link, state: 'loading' });
      api.previewLink({ text: link }).then(
        (preview) => setOpened({ link, state: 'ready', preview }),
        (error: unknown) => {
          const refused = asWorkerError(error);
          setOpened({ link, state: 'failed', text: refused.message, badLink: refused.code === 'bad-link' });
        },
      );
    };
    check();
    addEventListener('hashchange', check);
    return () => removeEventListener('hashchange', check);
  }, [api]);
  if (opened === null) return null;
  const close = () => setOpened(null);
  const title = opened.state === 'ready' ? (opened.preview.kind === 'contact' ? 'Add a contact' : 'Join a group') : 'Opening the link';
  return (
    <Dialog title={title} onClose={close}>
      {opened.state === 'loading' && <p role="status">Reading the link…</p>}
      {opened.state === 'failed' && (
        <div class="stack">
          <p class="error-text" role="alert">
            {asSentence(opened.text)}
          </p>
          {opened.badLink && <p>{BAD_LINK_HINT}</p>}
          <button type="button" class="btn" onClick={close}>
            OK
          </button>
        </div>
      )}
      {opened.state === 'ready' && <LinkPreview link={opened.link} preview={opened.preview} onDone={close} onCancel={close} />}
    </Dialog>
  );
}
