/** Make a group: a name and the contacts to invite (issue 11 §1's third step). */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { MAX_GROUP_MEMBERS, MAX_GROUP_NAME_CHARS, type ContactId } from '../../../shared/worker-api.js';
import { useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { ContactPicker } from './ContactPicker.js';
import { LengthHint } from '../../components/LengthHint.js';

const EMPTY = {};

export function NewGroup(): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const contacts = useView('contacts', EMPTY, 'contacts');
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<ReadonlySet<ContactId>>(new Set());
  const [touched, setTouched] = useState(false);
  const create = useAction(async () => {
    const { conversationId } = await api.createGroup({ name: name.trim(), contactIds: [...chosen] });
    router.replace({ section: 'chats', detail: { name: 'conversation', id: conversationId } });
  });
  const nameMissing = touched && name.trim().length === 0;
  const tooMany = chosen.size + 1 > MAX_GROUP_MEMBERS;
  const onSubmit = (event: Event) => {
    event.preventDefault();
    setTouched(true);
    if (name.trim().length === 0 || tooMany) return;
    void create.run();
  };
  return (
    <section class="pane" aria-labelledby="new-group-title">
      <ScreenHeader title={<span id="new-group-title">New group</span>} onBack={() => router.back()} />
      <form class="pane-body stack" onSubmit={onSubmit} noValidate>
        <div class="field">
          <label for="group-name">Group name</label>
          <p class="hint" id="group-name-hint">
            Only the members see it: it is encrypted like the messages.
          </p>
          <input
            id="group-name"
            class="input"
            maxLength={MAX_GROUP_NAME_CHARS}
            value={name}
            aria-invalid={nameMissing ? 'true' : undefined}
            aria-describedby={nameMissing ? 'group-name-hint group-name-error' : 'group-name-hint'}
            onInput={(event) => setName(event.currentTarget.value)}
          />
          <LengthHint value={name} max={MAX_GROUP_NAME_CHARS} />
          {nameMissing && (
            <p class="error-text" id="group-name-error">
              Enter a name for the group
            </p>
          )}
        </div>
        {contacts.status === 'ready' && contacts.value.contacts.length > 0 && (
          <ContactPicker contacts={contacts.value.contacts} chosen={chosen} onChange={setChosen} legend="Who to invite" />
        )}
        {contacts.status === 'ready' && contacts.value.contacts.length === 0 && (
          <div class="callout callout-info">
            <p>
              You have no contacts yet. You can make the group now and add people later, or{' '}
              <button type="button" class="link-btn" onClick={() => router.go({ section: 'contacts', detail: { name: 'add-contact' } })}>
                add a friend first
              </button>
              .
            </p>
          </div>
        )}
        {tooMany && <p class="error-text">A group can have at most {MAX_GROUP_MEMBERS} members.</p>}
        <p class="hint">Each person you invite joins when they next open Covey. Until then the group shows them as invited.</p>
        <button type="submit" class="btn btn-primary" disabled={create.pending}>
          {create.pending ? 'Making the group…' : chosen.size === 0 ? 'Make group' : `Make group and invite ${chosen.size}`}
        </button>
        <ErrorText error={create.error} />
      </form>
    </section>
  );
}
