/** Checkboxes of contacts, for a new group or adding people to one. */
import type { JSX } from 'preact';
import type { ContactId, ContactView } from '../../../shared/worker-api.js';
import { Avatar } from '../../components/Avatar.js';
import { VerificationMark } from '../../components/VerificationMark.js';

export function ContactPicker({
  contacts,
  chosen,
  onChange,
  legend,
}: {
  contacts: readonly ContactView[];
  chosen: ReadonlySet<ContactId>;
  onChange: (next: ReadonlySet<ContactId>) => void;
  legend: string;
}): JSX.Element {
  const toggle = (id: ContactId, on: boolean) => {
    const next = new Set(chosen);
    if (on) next.add(id);
    else next.delete(id);
    onChange(next);
  };
  return (
    <fieldset class="picker">
      <legend class="label">{legend}</legend>
      <ul>
        {contacts.map((contact) => (
          <li key={contact.id}>
            <label class="check picker-row">
              <input type="checkbox" checked={chosen.has(contact.id)} onChange={(event) => toggle(contact.id, event.currentTarget.checked)} />
              <Avatar name={contact.name} />
              <span class="picker-name">{contact.name}</span>
              <VerificationMark verification={contact.verification} />
              {contact.state === 'requested' && <span class="hint">has not accepted your request yet</span>}
            </label>
          </li>
        ))}
      </ul>
    </fieldset>
  );
}
