/**
 * A contact (issue 11 §2, DESIGN.md §5): verification by safety number (digit groups, compared
 * in person or on a trusted call) or by scanning their code; a changed key as a loud warning with
 * what to do; start a chat; rename; remove.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { MAX_DISPLAY_NAME_CHARS, type ContactId, type ContactView } from '../../../shared/worker-api.js';
import { useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { Avatar } from '../../components/Avatar.js';
import { Dialog } from '../../components/Dialog.js';
import { Callout, ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { VerificationMark } from '../../components/VerificationMark.js';
import { Icon } from '../../components/icons.js';
import { asSentence, contactStatusText } from '../../format/words.js';
import { ScanDialog } from '../../scan/ScanDialog.js';
import { LengthHint } from '../../components/LengthHint.js';

const EMPTY = {};

export function ContactDetail({ id }: { id: ContactId }): JSX.Element {
  const view = useView('contacts', EMPTY, 'contacts');
  const router = useRouter();
  const contact = view.status === 'ready' ? view.value.contacts.find((candidate) => candidate.id === id) : undefined;
  if (contact === undefined) {
    return (
      <section class="pane">
        <ScreenHeader title={view.status === 'loading' ? 'Loading…' : 'Contact not found'} onBack={() => router.back()} />
        {view.status !== 'loading' && <p class="list-empty">This contact is no longer on this device.</p>}
      </section>
    );
  }
  return <Contact contact={contact} />;
}

/** Safety numbers come as 12 groups of 5 digits; shown as a grid, read aloud group by group. */
export function SafetyNumber({ digits }: { digits: string }): JSX.Element {
  const groups = digits.split(/\s+/).filter((group) => group.length > 0);
  return (
    <ol class="safety-number" aria-label={`Safety number: ${groups.join(', ')}`}>
      {groups.map((group, i) => (
        <li key={i} aria-hidden="true">
          {group}
        </li>
      ))}
    </ol>
  );
}

function Contact({ contact }: { contact: ContactView }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const [dialog, setDialog] = useState<null | 'scan' | 'rename' | 'remove'>(null);
  const [scanResult, setScanResult] = useState<'matched' | null>(null);
  const verify = useAction(() => api.verifyContact({ contactId: contact.id }));
  const unverify = useAction(() => api.unverifyContact({ contactId: contact.id }));
  const acceptKey = useAction(() => api.acceptKeyChange({ contactId: contact.id }));
  const byQr = useAction(async (scanned: string) => {
    await api.verifyContactByQr({ contactId: contact.id, scanned });
    setScanResult('matched');
  });
  const chat = useAction(async () => {
    const { conversationId } = await api.startDirectChat({ contactId: contact.id });
    router.go({ section: 'chats', detail: { name: 'conversation', id: conversationId } });
  });
  return (
    <section class="pane" aria-labelledby="contact-title">
      <ScreenHeader title={<span id="contact-title">{contact.name}</span>} onBack={() => router.back()} />
      <div class="pane-body stack">
        <div class="contact-head">
          <Avatar name={contact.name} large />
          <div>
            <VerificationMark verification={contact.verification} withText />
            <p class="hint">{contactStatusText(contact)}</p>
          </div>
        </div>
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void chat.run()} disabled={chat.pending}>
            <Icon name="chat" /> Message
          </button>
          <button type="button" class="btn" onClick={() => setDialog('rename')}>
            Rename
          </button>
        </div>
        <ErrorText error={chat.error} />

        {contact.keyChange !== null && (
          <Callout tone="danger" title={contact.keyChange.text} live>
            <p>{contact.keyChange.whatToDo}</p>
            <p class="hint">
              Old safety number: <span class="mono">{contact.keyChange.previousSafetyNumber}</span>
            </p>
            <div class="row">
              <button type="button" class="btn btn-primary" onClick={() => void acceptKey.run()} disabled={acceptKey.pending}>
                Accept the new key
              </button>
            </div>
            <ErrorText error={acceptKey.error} />
          </Callout>
        )}

        <section class="card stack" aria-labelledby="verify-title">
          <h2 id="verify-title">Safety number</h2>
          <p>
            To be sure you are talking to {contact.name} and nobody in between, compare these numbers with the ones on {contact.name}’s screen, in person or on a call where you
            recognise their voice.
          </p>
          <SafetyNumber digits={contact.safetyNumber} />
          {scanResult === 'matched' && (
            <Callout tone="info" title="The code matches" live>
              <p>{contact.name} is now verified.</p>
            </Callout>
          )}
          {byQr.error !== null && (
            <Callout tone="danger" title={byQr.error.code === 'key-mismatch' ? 'That code does not match' : 'The code could not be checked'} live>
              <p>{asSentence(byQr.error.message)}</p>
            </Callout>
          )}
          <div class="row">
            {contact.verification === 'verified' ? (
              <button type="button" class="btn" onClick={() => void unverify.run()} disabled={unverify.pending}>
                Clear verification
              </button>
            ) : (
              <button type="button" class="btn btn-primary" onClick={() => void verify.run()} disabled={verify.pending || contact.verification === 'key-changed'}>
                <Icon name="shield" /> The numbers match: mark verified
              </button>
            )}
            <button type="button" class="btn" onClick={() => setDialog('scan')}>
              <Icon name="camera" /> Scan their code
            </button>
          </div>
          <ErrorText error={verify.error ?? unverify.error} />
          <p class="hint">To scan, ask {contact.name} to open Contacts, then “Your link and code”.</p>
        </section>

        <button type="button" class="btn btn-danger" onClick={() => setDialog('remove')}>
          Remove {contact.name} from contacts
        </button>
      </div>
      {dialog === 'scan' && (
        <ScanDialog
          title={`Scan ${contact.name}’s code`}
          onClose={() => setDialog(null)}
          onResult={(scanned) => {
            setDialog(null);
            setScanResult(null);
            void byQr.run(scanned);
          }}
        />
      )}
      {dialog === 'rename' && <RenameContact contact={contact} onClose={() => setDialog(null)} />}
      {dialog === 'remove' && <RemoveContact contact={contact} onClose={() => setDialog(null)} />}
    </section>
  );
}

function RenameContact({ contact, onClose }: { contact: ContactView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const [name, setName] = useState(contact.name);
  const rename = useAction(async () => {
    await api.renameContact({ contactId: contact.id, name: name.trim() });
    onClose();
  });
  return (
    <Dialog title={`Rename ${contact.name}`} onClose={onClose}>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          if (name.trim().length > 0) void rename.run();
        }}
      >
        <div class="field">
          <label for="rename-contact">Name</label>
          <p class="hint">Only you see the name you give a contact.</p>
          <input id="rename-contact" class="input" maxLength={MAX_DISPLAY_NAME_CHARS} value={name} onInput={(event) => setName(event.currentTarget.value)} />
          <LengthHint value={name} max={MAX_DISPLAY_NAME_CHARS} />
        </div>
        <ErrorText error={rename.error} />
        <button type="submit" class="btn btn-primary" disabled={name.trim().length === 0 || rename.pending}>
          Save
        </button>
      </form>
    </Dialog>
  );
}

function RemoveContact({ contact, onClose }: { contact: ContactView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const remove = useAction(async () => {
    await api.removeContact({ contactId: contact.id });
    onClose();
    router.replace({ section: 'contacts', detail: null });
  });
  return (
    <Dialog title={`Remove ${contact.name}?`} onClose={onClose}>
      <div class="stack">
        <p>They stay in the groups you share. To add them again you need their link.</p>
        <ErrorText error={remove.error} />
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void remove.run()} disabled={remove.pending}>
            Remove
          </button>
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
        </div>
      </div>
    </Dialog>
  );
}
