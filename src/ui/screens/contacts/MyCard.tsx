/** My card (issue 11 §2): the link and QR code that let a friend add me. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { AppView, MyCard } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { LinkBox } from '../../components/LinkBox.js';
import { ErrorText } from '../../components/Notice.js';
import { QrImage } from '../../components/QrImage.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { timeUntil } from '../../format/time.js';
import { CopyButton, ShareButton } from './ShareButtons.js';

export function MyCardScreen({ app }: { app: AppView }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const card = useAction(() => api.myCard({}));
  const [value, setValue] = useState<MyCard | null>(null);
  useEffect(() => {
    // Once per opening: the worker renews the card when it nears expiry.
    void card.run().then((result) => result !== undefined && setValue(result));
  }, [card.run]);
  return (
    <section class="pane" aria-labelledby="my-card-title">
      <ScreenHeader title={<span id="my-card-title">Your link and code</span>} onBack={() => router.back()} />
      <div class="pane-body stack my-card">
        <p>
          Friends add you, <strong>{app.me?.displayName}</strong>, by opening this link or scanning this code. Send it in any way you like: it holds no secret that lets anyone read
          your messages.
        </p>
        {value === null ? (
          card.error === null ? (
            <p class="muted">Making your card…</p>
          ) : (
            <ErrorText error={card.error} />
          )
        ) : (
          <>
            <div class="qr-frame">
              <QrImage qr={value.qr} label={`QR code of ${value.name}’s Covey link`} />
            </div>
            <LinkBox link={value.link} label="Your Covey link" testId="my-card-link" />
            <div class="row">
              <CopyButton text={value.link} label="Copy link" />
              <ShareButton title={`Chat with ${value.name} on Covey`} url={value.link} />
            </div>
            <p class="hint">New friends can use it until it expires {timeUntil(value.expiresAtMs)}; Covey renews it when you open this page.</p>
            <p class="hint">
              Your safety number half: <span class="mono">{value.fingerprint}</span>
            </p>
          </>
        )}
      </div>
    </section>
  );
}

