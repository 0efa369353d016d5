/**
 * Conversations list (issue 11 §3): groups and chats of two with their last message, unread
 * count and time, operations in progress and failed ones, and group invitations to answer.
 */
import type { JSX } from 'preact';
import type { ConversationSummary, InvitationView } from '../../../shared/worker-api.js';
import { useContext } from 'preact/hooks';
import { ConversationsContext, useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { Avatar } from '../../components/Avatar.js';
import { ErrorText } from '../../components/Notice.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { VerificationMark } from '../../components/VerificationMark.js';
import { Icon } from '../../components/icons.js';
import { shortTime, longTime } from '../../format/time.js';
import { listNames } from '../../format/words.js';
import { InstallOffer } from '../../shell/index.js';
import './chats.css';

const EMPTY = {};

export function ChatList(): JSX.Element {
  // The root's watch (App), else our own.
  const shared = useContext(ConversationsContext);
  const own = useView('conversations', shared === null ? EMPTY : null, 'conversations');
  const view = shared ?? own;
  const router = useRouter();
  const openId = router.route.detail?.name === 'conversation' ? router.route.detail.id : null;
  return (
    <section class="list-screen" aria-labelledby="chats-title">
      <ScreenHeader
        title={<span id="chats-title">Chats</span>}
        actions={
          <button type="button" class="icon-btn" aria-label="New group" title="New group" onClick={() => router.go({ section: 'chats', detail: { name: 'new-group' } })}>
            <Icon name="plus" />
          </button>
        }
      />
      {view.status === 'loading' && <p class="list-empty muted">Loading chats…</p>}
      {view.status === 'ended' && <p class="list-empty error-text">{view.error.message}</p>}
      {view.status === 'ready' && (
        <div class="list-scroll">
          {view.value.invitations.length > 0 && (
            <section aria-labelledby="invitations-title" class="list-group">
              <h2 id="invitations-title" class="list-group-title">
                Invitations
              </h2>
              <ul>
                {view.value.invitations.map((invitation) => (
                  <Invitation key={invitation.id} invitation={invitation} />
                ))}
              </ul>
            </section>
          )}
          {view.value.conversations.length === 0 && view.value.invitations.length === 0 ? (
            <EmptyChats />
          ) : (
            <ul aria-label="Chats">
              {view.value.conversations.map((summary) => (
                <ChatRow key={summary.id} summary={summary} open={summary.id === openId} />
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}

function EmptyChats(): JSX.Element {
  const router = useRouter();
  return (
    <div class="empty-start stack">
      <h2>Start chatting</h2>
      <p class="muted">Covey has no accounts to search. To chat with someone, swap links or scan each other’s codes, then make a group.</p>
      <button type="button" class="btn btn-primary" onClick={() => router.go({ section: 'contacts', detail: { name: 'my-card' } })}>
        <Icon name="qr" /> Share your link or code
      </button>
      <button type="button" class="btn" onClick={() => router.go({ section: 'contacts', detail: { name: 'add-contact' } })}>
        <Icon name="userPlus" /> Add a friend
      </button>
      <button type="button" class="btn" onClick={() => router.go({ section: 'chats', detail: { name: 'new-group' } })}>
        <Icon name="users" /> Make a group
      </button>
      <InstallOffer />
    </div>
  );
}

function preview(summary: ConversationSummary): string {
  const last = summary.lastMessage;
  if (last === null) return summary.state === 'waiting' ? 'Waiting for others to join' : 'No messages yet';
  if (summary.kind === 'direct' && !last.mine) return last.text;
  return `${last.mine ? 'You' : last.authorName}: ${last.text}`;
}

function stateLine(summary: ConversationSummary): string | null {
  if (summary.state === 'removed') return 'You were removed from this group';
  if (summary.state === 'left') return 'You left this group';
  return null;
}

function ChatRow({ summary, open }: { summary: ConversationSummary; open: boolean }): JSX.Element {
  const router = useRouter();
  const failed = summary.operations.filter((op) => op.state === 'failed');
  const busy = summary.operations.filter((op) => op.state !== 'failed');
  const state = stateLine(summary);
  return (
    <li>
      <button
        type="button"
        class={open ? 'chat-row chat-row-open' : 'chat-row'}
        aria-current={open ? 'true' : undefined}
        onClick={() => (open ? undefined : router.go({ section: 'chats', detail: { name: 'conversation', id: summary.id } }))}
      >
        <Avatar name={summary.name} group={summary.kind === 'group'} />
        <span class="chat-row-body">
          <span class="chat-row-top">
            <span class="chat-row-name">{summary.name}</span>
            <time class="chat-row-time" dateTime={new Date(summary.timeMs).toISOString()} title={longTime(summary.timeMs)}>
              {shortTime(summary.timeMs)}
            </time>
          </span>
          <span class="chat-row-bottom">
            <span class="chat-row-preview">
              {/* What you were writing, not the last message under a "Draft:" label. */}
              {state ?? (summary.draft !== null ? <><span class="draft-mark">Draft: </span>{summary.draft}</> : preview(summary))}
            </span>
            {summary.needsAttention && (
              <span class="attention-mark" title="A security warning waits in this chat">
                <Icon name="alert" small label="A security warning waits in this chat" />
              </span>
            )}
            {summary.unread > 0 && (
              <span class="count-badge">
                {summary.unread}
                <span class="visually-hidden"> unread</span>
              </span>
            )}
          </span>
          {busy.map((op) => (
            <span key={op.id} class="chat-row-op">
              <span class="spinner spinner-sm" aria-hidden="true" />
              {op.text}
            </span>
          ))}
          {failed.map((op) => (
            <span key={op.id} class="chat-row-op chat-row-op-failed">
              <Icon name="alert" small />
              {op.text}
            </span>
          ))}
        </span>
      </button>
    </li>
  );
}

function Invitation({ invitation }: { invitation: InvitationView }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const accept = useAction(async () => {
    const { conversationId } = await api.acceptInvitation({ invitationId: invitation.id });
    router.go({ section: 'chats', detail: { name: 'conversation', id: conversationId } });
  });
  const decline = useAction(() => api.declineInvitation({ invitationId: invitation.id }));
  const others = invitation.memberNames.filter((name) => name !== invitation.inviterName);
  return (
    <li class="invitation">
      <Avatar name={invitation.groupName} group={invitation.kind === 'group'} />
      <div class="invitation-body stack">
        <p>
          <strong>{invitation.inviterName}</strong> <VerificationMark verification={invitation.inviterVerification} />{' '}
          {invitation.kind === 'group' ? (
            <>
              invited you to <strong>{invitation.groupName}</strong>
            </>
          ) : (
            'wants to chat with you'
          )}
        </p>
        {others.length > 0 && <p class="hint">Also in it: {listNames(others)}</p>}
        {!invitation.inviterIsContact && <p class="hint">{invitation.inviterName} is not in your contacts. Only join if you know who sent this.</p>}
        <div class="row">
          <button type="button" class="btn btn-primary" onClick={() => void accept.run()} disabled={accept.pending || decline.pending}>
            {accept.pending ? 'Joining…' : 'Join'}
            <span class="visually-hidden"> {invitation.groupName}</span>
          </button>
          <button type="button" class="btn" onClick={() => void decline.run()} disabled={accept.pending || decline.pending}>
            Decline<span class="visually-hidden"> {invitation.groupName}</span>
          </button>
        </div>
        <ErrorText error={accept.error ?? decline.error} />
      </div>
    </li>
  );
}
