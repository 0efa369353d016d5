/**
 * Contacts (issue 11 §2): my card, add a friend, requests to accept or decline, and everyone
 * added, with their verification state.
 */
import type { JSX } from 'preact';
import type { AppView, ContactRequestView } from '../../../shared/worker-api.js';
import { useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { Avatar } from '../../components/Avatar.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { VerificationMark } from '../../components/VerificationMark.js';
import { Icon } from '../../components/icons.js';
import { contactStatusText } from '../../format/words.js';

const EMPTY = {};

export function ContactList({ app }: { app: AppView }): JSX.Element {
  const view = useView('contacts', EMPTY, 'contacts');
  const router = useRouter();
  const detail = router.route.detail;
  const openId = detail?.name === 'contact' ? detail.id : null;
  return (
    <section class="list-screen" aria-labelledby="contacts-title">
      <ScreenHeader
        title={<span id="contacts-title">Contacts</span>}
        actions={
          <button type="button" class="icon-btn" aria-label="Add a friend" title="Add a friend" onClick={() => router.go({ section: 'contacts', detail: { name: 'add-contact' } })}>
            <Icon name="userPlus" />
          </button>
        }
      />
      <div class="list-scroll">
        <div class="my-card-row">
          <button
            type="button"
            class={detail?.name === 'my-card' ? 'chat-row chat-row-open' : 'chat-row'}
            onClick={() => router.go({ section: 'contacts', detail: { name: 'my-card' } })}
          >
            <Avatar name={app.me?.displayName ?? '?'} />
            <span class="chat-row-body">
              <span class="chat-row-name">{app.me?.displayName}</span>
              <span class="chat-row-preview">Your link and code: share them to be added</span>
            </span>
            <Icon name="qr" />
          </button>
          <button
            type="button"
            class={detail?.name === 'add-contact' ? 'chat-row chat-row-open' : 'chat-row'}
            onClick={() => router.go({ section: 'contacts', detail: { name: 'add-contact' } })}
          >
            <span class="avatar avatar-action" aria-hidden="true">
              <Icon name="userPlus" />
            </span>
            <span class="chat-row-body">
              <span class="chat-row-name">Add a friend</span>
              <span class="chat-row-preview">From their link or QR code</span>
            </span>
          </button>
        </div>
        {view.status === 'ended' && <p class="list-empty error-text">{view.error.message}</p>}
        {view.status === 'ready' && view.value.requests.length > 0 && (
          <section class="list-group" aria-labelledby="requests-title">
            <h2 id="requests-title" class="list-group-title">
              Requests
            </h2>
            <ul>
              {view.value.requests.map((request) => (
                <Request key={request.id} request={request} />
              ))}
            </ul>
          </section>
        )}
        {view.status === 'ready' && (
          <section class="list-group" aria-labelledby="people-title">
            <h2 id="people-title" class="list-group-title">
              People
            </h2>
            {view.value.contacts.length === 0 ? (
              <p class="list-empty muted">Nobody yet. Share your link, or add a friend from theirs.</p>
            ) : (
              <ul>
                {view.value.contacts.map((contact) => (
                  <li key={contact.id}>
                    <button
                      type="button"
                      class={contact.id === openId ? 'chat-row chat-row-open' : 'chat-row'}
                      aria-current={contact.id === openId ? 'true' : undefined}
                      onClick={() => router.go({ section: 'contacts', detail: { name: 'contact', id: contact.id } })}
                    >
                      <Avatar name={contact.name} />
                      <span class="chat-row-body">
                        <span class="chat-row-top">
                          <span class="chat-row-name">{contact.name}</span>
                          <VerificationMark verification={contact.verification} withText={contact.verification !== 'unverified'} />
                        </span>
                        <span class="chat-row-preview">{contactStatusText(contact)}</span>
                      </span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </section>
        )}
      </div>
    </section>
  );
}

function Request({ request }: { request: ContactRequestView }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const accept = useAction(async () => {
    const { contactId } = await api.acceptContactRequest({ requestId: request.id });
    router.go({ section: 'contacts', detail: { name: 'contact', id: contactId } });
  });
  const decline = useAction(() => api.declineContactRequest({ requestId: request.id }));
  return (
    <li class="invitation">
      <Avatar name={request.name} />
      <div class="invitation-body stack">
        <p>
          <strong>{request.name}</strong> wants to add you
        </p>
        {request.existingContactId !== null && <p class="hint">Someone already in your contacts uses this name. This request comes from a different key: check with them before you accept.</p>}
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void accept.run()} disabled={accept.pending || decline.pending}>
            Accept<span class="visually-hidden"> {request.name}</span>
          </button>
          <button type="button" class="btn" onClick={() => void decline.run()} disabled={accept.pending || decline.pending}>
            Decline<span class="visually-hidden"> {request.name}</span>
          </button>
        </div>
        <ErrorText error={accept.error ?? decline.error} />
      </div>
    </li>
  );
}
