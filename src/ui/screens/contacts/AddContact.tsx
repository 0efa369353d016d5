/** Add a friend (issue 11 §2): paste their link, or scan their code with the camera. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { MAX_LINK_CHARS, type CardPreview, type InviteLinkPreview } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { Icon } from '../../components/icons.js';
import { ScanDialog } from '../../scan/ScanDialog.js';
import { BAD_LINK_HINT, LinkPreview } from './LinkPreview.js';

export function AddContact(): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const [text, setText] = useState('');
  const [scanning, setScanning] = useState(false);
  const [preview, setPreview] = useState<{ link: string; value: CardPreview | InviteLinkPreview } | null>(null);
  const look = useAction(async (link: string) => setPreview({ link, value: await api.previewLink({ text: link }) }));
  const submit = (link: string) => {
    const trimmed = link.trim();
    if (trimmed.length === 0) return;
    void look.run(trimmed);
  };
  return (
    <section class="pane" aria-labelledby="add-contact-title">
      <ScreenHeader title={<span id="add-contact-title">Add a friend</span>} onBack={() => router.back()} />
      <div class="pane-body stack">
        {preview === null ? (
          <>
            <form
              class="stack"
              onSubmit={(event) => {
                event.preventDefault();
                submit(text);
              }}
            >
              <div class="field">
                <label for="contact-link">Their Covey link</label>
                <p class="hint" id="contact-link-hint">
                  Ask your friend for their link (in Covey: Contacts, then “Your link and code”) and paste it here.
                </p>
                <textarea
                  id="contact-link"
                  class="input link-input"
                  rows={3}
                  maxLength={MAX_LINK_CHARS}
                  spellcheck={false}
                  autocapitalize="off"
                  value={text}
                  aria-describedby={look.error ? 'contact-link-hint contact-link-error' : 'contact-link-hint'}
                  aria-invalid={look.error ? 'true' : undefined}
                  onInput={(event) => {
                    setText(event.currentTarget.value);
                    look.clearError();
                  }}
                  onKeyDown={(event) => {
                    // Enter reads the link, as in every other form (a link has no line breaks).
                    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
                      event.preventDefault();
                      if (!look.pending) submit(event.currentTarget.value);
                    }
                  }}
                />
                <ErrorText error={look.error} id="contact-link-error" />
                {look.error?.code === 'bad-link' && <p class="hint">{BAD_LINK_HINT}</p>}
              </div>
              <button type="submit" class="btn btn-primary" disabled={text.trim().length === 0 || look.pending}>
                {look.pending ? 'Reading the link…' : 'Continue'}
              </button>
            </form>
            <div class="or-divider" aria-hidden="true">
              <span>or</span>
            </div>
            <button type="button" class="btn" onClick={() => setScanning(true)}>
              <Icon name="camera" /> Scan their QR code
            </button>
            <p class="hint">
              In person? Open “Your link and code” on their phone and scan it. Scanning also checks that nobody swapped the link on the way.{' '}
              <button type="button" class="link-btn" onClick={() => router.go({ section: 'contacts', detail: { name: 'my-card' } })}>
                Show my code instead
              </button>
            </p>
          </>
        ) : (
          <LinkPreview
            link={preview.link}
            preview={preview.value}
            replaceScreen
            onDone={() => setText('')}
            onCancel={() => {
              setPreview(null);
              setText('');
            }}
          />
        )}
      </div>
      {scanning && (
        <ScanDialog
          title="Scan their QR code"
          onClose={() => setScanning(false)}
          onResult={(scanned) => {
            setScanning(false);
            setText(scanned);
            submit(scanned);
          }}
        />
      )}
    </section>
  );
}
