/**
 * Members of a conversation (issue 11 §4): name, verified or not, online or last seen (mpENC
 * §2.3: members who stopped answering are greyed), invited or joining; add, remove, leave,
 * rename, invite link.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { MAX_GROUP_NAME_CHARS, type ContactId, type ConversationView, type InviteLink, type MemberView } from '../../../shared/worker-api.js';
import { useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { Avatar } from '../../components/Avatar.js';
import { Dialog } from '../../components/Dialog.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { VerificationMark } from '../../components/VerificationMark.js';
import { Icon } from '../../components/icons.js';
import { timeUntil } from '../../format/time.js';
import { presenceText } from '../../format/words.js';
import { ContactPicker } from '../groups/ContactPicker.js';
import { CopyButton, ShareButton } from '../contacts/ShareButtons.js';
import { QrImage } from '../../components/QrImage.js';
import { LinkBox } from '../../components/LinkBox.js';
import { LengthHint } from '../../components/LengthHint.js';

type Open = null | 'add' | 'rename' | 'leave' | 'link' | { remove: MemberView };

function roleText(member: MemberView): string | null {
  if (member.role === 'invited') return 'Invited: has not opened Covey since';
  if (member.role === 'joining') return 'Joining: waits for a member’s device to add them';
  return null;
}

export function MembersPanel({ conversation, onClose }: { conversation: ConversationView; onClose: () => void }): JSX.Element {
  const [open, setOpen] = useState<Open>(null);
  const router = useRouter();
  const active = conversation.state === 'active' || conversation.state === 'waiting';
  const group = conversation.kind === 'group';
  // Escape closes the panel, the topmost layer here (on phones it covers the conversation), so it
  // listens in the capture phase and keeps the key from also clearing a selected message below.
  // A modal dialog (ours or another) handles its own Escape first.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== 'Escape' || event.defaultPrevented || document.querySelector('dialog[open]') !== null) return;
      event.stopPropagation();
      onClose();
    };
    addEventListener('keydown', onKey, { capture: true });
    return () => removeEventListener('keydown', onKey, { capture: true });
  }, [onClose]);
  return (
    <aside class="members-panel" aria-labelledby="members-title">
      <ScreenHeader title={<span id="members-title">{group ? 'Group members' : 'Chat details'}</span>} level={2} onBack={onClose} backLabel="Close members" backAlways />
      <div class="pane-body stack">
        <ul class="member-list" aria-label="Members">
          {conversation.members.map((member) => {
            const role = roleText(member);
            const away = member.presence.state !== 'online';
            // The worker marks your own entry "Name (you)"; this panel says so itself, once.
            const name = member.self ? member.name.replace(/ \(you\)$/, '') : member.name;
            return (
              <li key={member.member} class={away ? 'member member-away' : 'member'}>
                <Avatar name={name} />
                <div class="member-body">
                  {!member.self && member.contactId !== null ? (
                    <button
                      type="button"
                      class="member-name link-btn"
                      aria-label={`${member.name}: safety number and contact details`}
                      onClick={() => router.go({ section: 'contacts', detail: { name: 'contact', id: member.contactId as ContactId } })}
                    >
                      {member.name}
                    </button>
                  ) : (
                    <p class="member-name">{member.self ? `${name} (you)` : name}</p>
                  )}
                  <p class="hint">
                    {!member.self && (
                      <>
                        <VerificationMark verification={member.verification} withText />
                        {' · '}
                      </>
                    )}
                    {member.self ? 'This device' : (role ?? presenceText(member.presence))}
                  </p>
                </div>
                {!member.self && group && conversation.canManage && (
                  <button type="button" class="icon-btn btn-danger" aria-label={`Remove ${member.name} from the group`} title={`Remove ${member.name} from the group`} onClick={() => setOpen({ remove: member })}>
                    <Icon name="close" />
                  </button>
                )}
              </li>
            );
          })}
        </ul>
        {active && group && (
          <div class="stack">
            {conversation.canManage && (
              <>
                <button type="button" class="btn" onClick={() => setOpen('add')}>
                  <Icon name="userPlus" /> Add people
                </button>
                <button type="button" class="btn" onClick={() => setOpen('link')}>
                  <Icon name="link" /> Invite with a link
                </button>
                <button type="button" class="btn" onClick={() => setOpen('rename')}>
                  Rename group
                </button>
              </>
            )}
            <button type="button" class="btn btn-danger" onClick={() => setOpen('leave')}>
              Leave group
            </button>
          </div>
        )}
        <p class="hint">Relay: {conversation.relay}</p>
      </div>
      {open === 'add' && <AddPeople conversation={conversation} onClose={() => setOpen(null)} />}
      {open === 'rename' && <Rename conversation={conversation} onClose={() => setOpen(null)} />}
      {open === 'leave' && <Leave conversation={conversation} onClose={() => setOpen(null)} />}
      {open === 'link' && <InviteLinkDialog conversation={conversation} onClose={() => setOpen(null)} />}
      {open !== null && typeof open === 'object' && <Remove conversation={conversation} member={open.remove} onClose={() => setOpen(null)} />}
    </aside>
  );
}

const EMPTY = {};

function AddPeople({ conversation, onClose }: { conversation: ConversationView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const contacts = useView('contacts', EMPTY, 'contacts');
  const [chosen, setChosen] = useState<ReadonlySet<ContactId>>(new Set());
  const add = useAction(async () => {
    await api.inviteContacts({ conversationId: conversation.id, contactIds: [...chosen] });
    onClose();
  });
  const inGroup = new Set(conversation.members.map((member) => member.contactId));
  const candidates = contacts.status === 'ready' ? contacts.value.contacts.filter((contact) => !inGroup.has(contact.id)) : [];
  return (
    <Dialog title={`Add people to ${conversation.name}`} onClose={onClose}>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          if (chosen.size > 0) void add.run();
        }}
      >
        {candidates.length === 0 ? (
          <p>Everyone in your contacts is already in this group. Add a friend in Contacts first.</p>
        ) : (
          <ContactPicker contacts={candidates} chosen={chosen} onChange={setChosen} legend="Contacts to add" />
        )}
        <p class="hint">Messages sent before they join stay unreadable to them. They join when they next open Covey.</p>
        <ErrorText error={add.error} />
        <button type="submit" class="btn btn-primary" disabled={chosen.size === 0 || add.pending}>
          {add.pending ? 'Adding…' : 'Add'}
        </button>
      </form>
    </Dialog>
  );
}

function Rename({ conversation, onClose }: { conversation: ConversationView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const [name, setName] = useState(conversation.name);
  const rename = useAction(async () => {
    await api.renameGroup({ conversationId: conversation.id, name: name.trim() });
    onClose();
  });
  return (
    <Dialog title="Rename group" onClose={onClose}>
      <form
        class="stack"
        onSubmit={(event) => {
          event.preventDefault();
          if (name.trim().length > 0) void rename.run();
        }}
      >
        <div class="field">
          <label for="rename-group">Group name</label>
          <input id="rename-group" class="input" maxLength={MAX_GROUP_NAME_CHARS} value={name} onInput={(event) => setName(event.currentTarget.value)} />
          <LengthHint value={name} max={MAX_GROUP_NAME_CHARS} />
        </div>
        <ErrorText error={rename.error} />
        <button type="submit" class="btn btn-primary" disabled={name.trim().length === 0 || rename.pending}>
          Save
        </button>
      </form>
    </Dialog>
  );
}

function Leave({ conversation, onClose }: { conversation: ConversationView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const leave = useAction(async () => {
    await api.leaveConversation({ conversationId: conversation.id });
    onClose();
  });
  return (
    <Dialog title={`Leave ${conversation.name}?`} onClose={onClose}>
      <div class="stack">
        <p>You will get no new messages from this group. What was said so far stays on this device.</p>
        <ErrorText error={leave.error} />
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void leave.run()} disabled={leave.pending}>
            Leave group
          </button>
          <button type="button" class="btn" onClick={onClose}>
            Stay
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function Remove({ conversation, member, onClose }: { conversation: ConversationView; member: MemberView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const remove = useAction(async () => {
    await api.removeMember({ conversationId: conversation.id, member: member.member });
    onClose();
  });
  return (
    <Dialog title={`Remove ${member.name}?`} onClose={onClose}>
      <div class="stack">
        <p>
          {member.name} will get none of the messages sent after the removal is done. The group agrees on new keys; this takes a moment and needs the other members’ devices to be
          reachable.
        </p>
        <ErrorText error={remove.error} />
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void remove.run()} disabled={remove.pending}>
            Remove {member.name}
          </button>
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function InviteLinkDialog({ conversation, onClose }: { conversation: ConversationView; onClose: () => void }): JSX.Element {
  const api = useApi();
  const [link, setLink] = useState<InviteLink | null>(null);
  const make = useAction(async () => setLink(await api.createInviteLink({ conversationId: conversation.id })));
  return (
    <Dialog title="Invite with a link" onClose={onClose}>
      <div class="stack">
        <p>Anyone who opens this link can ask to join {conversation.name}. It works once. Send it only to the person you mean, in a private message.</p>
        {link === null ? (
          <>
            <ErrorText error={make.error} />
            <button type="button" class="btn btn-primary" onClick={() => void make.run()} disabled={make.pending}>
              {make.pending ? 'Making the link…' : 'Make an invite link'}
            </button>
          </>
        ) : (
          <>
            <QrImage qr={link.qr} label={`QR code of the invite link to ${conversation.name}`} />
            <LinkBox link={link.link} label={`Invite link to ${conversation.name}`} />
            <p class="hint">Expires {timeUntil(link.expiresAtMs)}.</p>
            <div class="row">
              <CopyButton text={link.link} label="Copy link" />
              <ShareButton title={`Join ${conversation.name} on Covey`} url={link.link} />
            </div>
          </>
        )}
      </div>
    </Dialog>
  );
}
