/**
 * What a link or scanned code says, before anything changes (`previewLink`), and the one button
 * that acts on it: add the contact, or join the group.
 */
import type { JSX } from 'preact';
import type { CardPreview, InviteLinkPreview } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { Avatar } from '../../components/Avatar.js';
import { Callout, ErrorText } from '../../components/Notice.js';
import { timeUntil } from '../../format/time.js';
import { hostOf } from '../../app/StatusBar.js';

/** What to do about a link Covey cannot read (worker error 'bad-link'). */
export const BAD_LINK_HINT = 'Ask for the link again and copy all of it, or scan their code in person.';

/**
 * `replaceScreen`: the preview is a screen of its own (Add a friend), which the contact or group
 * replaces, so Back leads to where the person came from, not to an emptied form.
 */
export function LinkPreview({ link, preview, onDone, onCancel, replaceScreen }: { link: string; preview: CardPreview | InviteLinkPreview; onDone: () => void; onCancel: () => void; replaceScreen?: boolean }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const open = replaceScreen === true ? router.replace : router.go;
  const act = useAction(async () => {
    if (preview.kind === 'contact') {
      const { contactId } = await api.addContact({ link });
      onDone();
      open({ section: 'contacts', detail: { name: 'contact', id: contactId } });
    } else {
      const { invitationId } = await api.openInviteLink({ link });
      const { conversationId } = await api.acceptInvitation({ invitationId });
      onDone();
      open({ section: 'chats', detail: { name: 'conversation', id: conversationId } });
    }
  });
  if (preview.kind === 'invite') {
    return (
      <div class="stack link-preview">
        <div class="row">
          <Avatar name={preview.groupName} group large />
          <div>
            <p class="label">{preview.groupName}</p>
            <p class="hint">Invited by {preview.inviterName} (as they call themselves)</p>
          </div>
        </div>
        <p class="hint">
          On the relay {hostOf(preview.relay)}. The link expires {timeUntil(preview.expiresAtMs)}.
        </p>
        <p>When you join, the members see your name, and you see what they write from then on.</p>
        <ErrorText error={act.error} />
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void act.run()} disabled={act.pending}>
            {act.pending ? 'Joining…' : `Join ${preview.groupName}`}
          </button>
          <button type="button" class="btn" onClick={onCancel}>
            Not now
          </button>
        </div>
      </div>
    );
  }
  if (preview.isSelf) {
    return (
      <div class="stack link-preview">
        <Callout tone="info" title="This is your own link">
          <p>Send it to a friend so they can add you, and open theirs here.</p>
        </Callout>
        <button type="button" class="btn" onClick={onCancel}>
          OK
        </button>
      </div>
    );
  }
  return (
    <div class="stack link-preview">
      <div class="row">
        <Avatar name={preview.name} large />
        <div>
          <p class="label">{preview.name}</p>
          <p class="hint">The name they gave themselves. On the relay {hostOf(preview.relay)}.</p>
        </div>
      </div>
      {preview.existingContactId !== null ? (
        <p>{preview.name} is already in your contacts.</p>
      ) : (
        <p>Covey sends them a request. You can chat and invite them to groups at once; they see your request first.</p>
      )}
      <ErrorText error={act.error} />
      <div class="row">
        <button type="button" class="btn btn-primary" onClick={() => void act.run()} disabled={act.pending}>
          {act.pending ? 'Adding…' : preview.existingContactId !== null ? `Open ${preview.name}` : `Add ${preview.name}`}
        </button>
        <button type="button" class="btn" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}
