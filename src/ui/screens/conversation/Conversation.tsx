/**
 * One conversation (issue 11 §4, mpENC §2.3): header, timeline of messages and notices,
 * operations in progress, and the composer, or why sending is held, or why the chat is read-only.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { DEFAULT_MESSAGE_WINDOW, MAX_MESSAGE_WINDOW, type ConversationId, type ConversationView } from '../../../shared/worker-api.js';
import { useAction, useApi, useView } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { ScreenHeader } from '../../components/ScreenHeader.js';
import { Icon } from '../../components/icons.js';
import { listNames } from '../../format/words.js';
import { Composer } from './Composer.js';
import { MembersPanel } from './MembersPanel.js';
import { NoticeActionButton } from './NoticeAction.js';
import { Operations } from './Operations.js';
import { Timeline } from './Timeline.js';
import './conversation.css';

export function Conversation({ id, panel }: { id: ConversationId; panel: 'members' | null }): JSX.Element {
  const [limit, setLimit] = useState(DEFAULT_MESSAGE_WINDOW);
  const view = useView('conversation', { conversationId: id, limit }, `${id}:${limit}`);
  const router = useRouter();
  const close = () => router.back();
  if (view.status === 'loading') {
    return (
      <section class="conversation" aria-busy="true">
        <ScreenHeader title="Loading…" onBack={close} />
      </section>
    );
  }
  if (view.status === 'ended') {
    return (
      <section class="conversation">
        <ScreenHeader title="Chat not available" onBack={close} />
        <p class="list-empty">{view.error.message}</p>
      </section>
    );
  }
  const conversation = view.value;
  const showMembers = panel === 'members';
  const toggleMembers = () =>
    showMembers ? router.back() : router.go({ section: router.route.section, detail: { name: 'conversation', id, panel: 'members' } });
  return (
    <div class={showMembers ? 'conversation-wrap with-panel' : 'conversation-wrap'}>
      <section class="conversation" aria-label={conversation.name}>
        <ScreenHeader
          title={conversation.name}
          subtitle={subtitle(conversation)}
          onBack={close}
          backLabel="Back to chats"
          actions={
            <button type="button" class="icon-btn" aria-label="Members and settings of this chat" aria-expanded={showMembers} onClick={toggleMembers}>
              <Icon name="users" />
            </button>
          }
        />
        <Timeline
          conversation={conversation}
          onLoadEarlier={() => setLimit((current) => Math.min(MAX_MESSAGE_WINDOW, current + DEFAULT_MESSAGE_WINDOW))}
        />
        <Operations conversation={conversation} />
        <Footer conversation={conversation} />
      </section>
      {showMembers && <MembersPanel conversation={conversation} onClose={toggleMembers} />}
      <MarkRead conversation={conversation} />
    </div>
  );
}

function subtitle(conversation: ConversationView): string {
  if (conversation.state === 'left') return 'You left this group';
  if (conversation.state === 'removed') return 'You were removed from this group';
  const others = conversation.members.filter((member) => !member.self);
  if (conversation.kind === 'direct') {
    const other = others[0];
    if (other === undefined) return '';
    return other.presence.state === 'online' ? 'Online' : other.role === 'invited' ? 'Has not opened your invitation yet' : '';
  }
  const online = others.filter((member) => member.presence.state === 'online').length;
  const names = listNames(['You', ...others.map((member) => member.name)]);
  return online > 0 ? `${names} · ${online} online` : names;
}

function Footer({ conversation }: { conversation: ConversationView }): JSX.Element {
  if (conversation.state === 'removed' || conversation.state === 'left') return <ReadOnly conversation={conversation} />;
  if (!conversation.canSend && conversation.sendBlocked !== null) {
    return (
      <div class="send-blocked" role="alert">
        <Icon name="alert" />
        <div class="stack">
          <p class="callout-title">Sending is on hold</p>
          <p>{conversation.sendBlocked.text}</p>
          {conversation.sendBlocked.action !== null && <NoticeActionButton action={conversation.sendBlocked.action} conversationId={conversation.id} primary />}
        </div>
      </div>
    );
  }
  return <Composer key={conversation.id} conversation={conversation} />;
}

function ReadOnly({ conversation }: { conversation: ConversationView }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const remove = useAction(async () => {
    await api.deleteConversation({ conversationId: conversation.id });
    router.replace({ section: 'chats', detail: null });
  });
  return (
    <div class="read-only">
      <p>{conversation.state === 'removed' ? 'You were removed from this group' : 'You left this group'}: you can read it, but no longer send or receive messages here.</p>
      <button type="button" class="btn btn-danger" onClick={() => void remove.run()} disabled={remove.pending}>
        Delete this chat from this device
      </button>
    </div>
  );
}

/** Everything shown while the page is visible counts as read (Signal's rule). */
function MarkRead({ conversation }: { conversation: ConversationView }): null {
  const api = useApi();
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', onChange);
    return () => document.removeEventListener('visibilitychange', onChange);
  }, []);
  const unread = conversation.unread;
  useEffect(() => {
    if (visible && unread > 0) void api.markRead({ conversationId: conversation.id }).catch(() => undefined);
  }, [api, conversation.id, unread, visible, conversation.timeline.length]);
  return null;
}
