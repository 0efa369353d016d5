import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';
import { Icon } from './icons.js';

/** The fields a dialog opens in: text to type, not a checkbox or a button. */
const FIRST_FIELD = 'input:not([type=checkbox]):not([type=radio]):not([type=hidden]):not([type=file]):not(:disabled):not([readonly]), textarea:not(:disabled):not([readonly])';

/**
 * A modal on the native <dialog> (focus trap, Escape and the top layer come with it). Closing in
 * any way (Escape, the close button, a backdrop click) calls `onClose`; the parent unmounts it.
 */
export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return undefined;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    // showModal focuses the first focusable element, the close button; a dialog that asks for
    // something (a name, a passphrase) starts in its first field, so typing goes there at once.
    dialog.querySelector<HTMLElement>(FIRST_FIELD)?.focus();
    const onCancel = (event: Event) => {
      event.preventDefault();
      onCloseRef.current();
    };
    dialog.addEventListener('cancel', onCancel);
    return () => {
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      opener?.focus();
    };
  }, []);
  const onBackdrop = (event: MouseEvent) => {
    if (event.target === ref.current) onCloseRef.current();
  };
  return (
    <dialog ref={ref} class={wide ? 'dialog dialog-wide' : 'dialog'} aria-labelledby={titleId} onClick={onBackdrop}>
      <div class="dialog-body">
        <div class="dialog-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" class="icon-btn" onClick={() => onCloseRef.current()} aria-label="Close">
            <Icon name="close" />
          </button>
        </div>
        {children}
      </div>
    </dialog>
  );
}
