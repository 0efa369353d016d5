/**
 * Writing a message: Enter sends, Shift+Enter starts a new line. The draft is the worker's
 * (saved as you type, so a reload or a crash loses nothing).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { MAX_MESSAGE_TEXT_CHARS, type ConversationView, type WorkerError } from '../../../shared/worker-api.js';
import { asWorkerError, useApi } from '../../app/engine.js';
import { ErrorText } from '../../components/Notice.js';
import { Icon } from '../../components/icons.js';

/** Save the draft this long after the last keystroke. */
const DRAFT_SAVE_DELAY_MS = 600;
/** The box grows with the text up to this many lines, then scrolls. */
const MAX_COMPOSER_ROWS = 6;

export function Composer({ conversation }: { conversation: ConversationView }): JSX.Element {
  const api = useApi();
  const [text, setText] = useState(conversation.draft);
  const saved = useRef(conversation.draft);
  const textRef = useRef(text);
  textRef.current = text;
  const box = useRef<HTMLTextAreaElement>(null);
  const conversationId = conversation.id;

  const saveDraft = (value: string) => {
    if (value === saved.current) return;
    saved.current = value;
    void api.saveDraft({ conversationId, text: value }).catch(() => undefined);
  };
  useEffect(() => {
    const timer = setTimeout(() => saveDraft(text), DRAFT_SAVE_DELAY_MS);
    return () => clearTimeout(timer);
  });
  // Leaving the conversation saves what was typed; so does leaving the page (reload, closing the
  // tab, switching apps on a phone, where the browser may end the page unasked) without waiting
  // for the pause after the last keystroke.
  useEffect(() => {
    const saveNow = () => saveDraft(textRef.current);
    const onHidden = () => {
      if (document.visibilityState === 'hidden') saveNow();
    };
    window.addEventListener('pagehide', saveNow);
    document.addEventListener('visibilitychange', onHidden);
    return () => {
      window.removeEventListener('pagehide', saveNow);
      document.removeEventListener('visibilitychange', onHidden);
      saveNow();
    };
  }, []);

  // The box empties the moment a message is sent, so the next one can be typed at once; sends
  // run one after another in the order written. (Emptying it when the worker answered erased
  // whatever had been typed meanwhile, and a second Enter during a send was dropped.)
  const queue = useRef<Promise<void>>(Promise.resolve());
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const [sendError, setSendError] = useState<WorkerError | null>(null);
  const trimmed = text.trim();
  const tooLong = text.length > MAX_MESSAGE_TEXT_CHARS;
  const submit = () => {
    if (trimmed.length === 0 || tooLong) return;
    const value = text;
    setText('');
    saveDraft('');
    setSendError(null);
    box.current?.focus();
    queue.current = queue.current.then(
      () =>
        api.send({ conversationId, text: value }).then(
          () => undefined,
          (error: unknown) => {
            if (!mounted.current) {
              // Closed meanwhile: keep the text as the draft, unless a newer one was left there.
              if (saved.current === '') saveDraft(value);
              return;
            }
            setSendError(asWorkerError(error));
            // Not sent: give the text back, unless something new was typed meanwhile.
            setText((current) => (current === '' ? value : current));
          },
        ),
    );
  };
  const rows = Math.min(MAX_COMPOSER_ROWS, Math.max(1, text.split('\n').length));
  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        submit();
      }}
    >
      {conversation.state === 'waiting' && <p class="composer-note hint">Nobody else has joined yet. What you write waits and is sent when they do.</p>}
      <ErrorText error={sendError} />
      {tooLong && <p class="error-text">A message can be at most {MAX_MESSAGE_TEXT_CHARS.toLocaleString()} characters.</p>}
      <div class="composer-row">
        <label for={`composer-${conversationId}`} class="visually-hidden">
          Message to {conversation.name}
        </label>
        <textarea
          id={`composer-${conversationId}`}
          ref={box}
          class="input composer-input"
          rows={rows}
          placeholder="Message"
          value={text}
          onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
              event.preventDefault();
              submit();
            }
          }}
        />
        <button type="submit" class="icon-btn send-btn" aria-label="Send" disabled={trimmed.length === 0 || tooLong}>
          <Icon name="send" />
        </button>
      </div>
    </form>
  );
}
