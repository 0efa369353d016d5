/**
 * The scanning dialog: live camera preview, or a photo of a code. The scanner module (and the
 * JS decoder behind it) loads only when this opens.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { MAX_LINK_CHARS } from '../../shared/worker-api.js';
import { Dialog } from '../components/Dialog.js';

export function ScanDialog({ title, onResult, onClose }: { title: string; onResult: (text: string) => void; onClose: () => void }): JSX.Element {
  const video = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<'starting' | 'scanning' | 'reading' | { problem: string }>('starting');
  const onResultRef = useRef(onResult);
  onResultRef.current = onResult;
  const deliver = (text: string) => onResultRef.current(text.slice(0, MAX_LINK_CHARS));

  useEffect(() => {
    let stop: (() => void) | null = null;
    let cancelled = false;
    void import('./camera.js').then(async ({ scanCamera }) => {
      const element = video.current;
      if (element === null || cancelled) return;
      try {
        const stopCamera = await scanCamera(element, deliver);
        if (cancelled) stopCamera();
        else {
          stop = stopCamera;
          setState('scanning');
        }
      } catch (error) {
        if (!cancelled) setState({ problem: error instanceof Error ? error.message : 'The camera could not be started.' });
      }
    });
    return () => {
      cancelled = true;
      stop?.();
    };
  }, []);

  const onFile = (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (file === undefined) return;
    setState('reading');
    void import('./camera.js')
      .then(({ scanImageFile }) => scanImageFile(file))
      .then(
        (text) => (text === null ? setState({ problem: 'No QR code was found in that picture. Try a sharper one, or paste the link.' }) : deliver(text)),
        () => setState({ problem: 'That file could not be read as a picture.' }),
      );
  };

  return (
    <Dialog title={title} onClose={onClose}>
      <div class="stack scan">
        <div class="scan-frame">
          <video ref={video} class="scan-video" muted playsInline aria-label="Camera preview" />
          {state === 'starting' && <p class="scan-overlay">Starting the camera…</p>}
        </div>
        {state === 'scanning' && (
          <p role="status" class="hint">
            Point the camera at the QR code. It is read as soon as it is in view.
          </p>
        )}
        {state === 'reading' && <p role="status">Reading the picture…</p>}
        {typeof state === 'object' && (
          <p class="error-text" role="alert">
            {state.problem}
          </p>
        )}
        <label class="btn">
          Choose a photo of the code
          <input type="file" accept="image/*" class="visually-hidden" onChange={onFile} />
        </label>
      </div>
    </Dialog>
  );
}
