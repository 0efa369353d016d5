/**
 * The timeline (mpENC §2.3): messages and notices in the worker's display order, day separators,
 * and selection: selecting a message asks the worker for its details (who has it, its ancestors)
 * and greys out every message that is not an ancestor, so its real causal context is visible.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ConversationView, MessageRef, NoticeView, TimelineItem } from '../../../shared/worker-api.js';
import { asWorkerError, useApi } from '../../app/engine.js';
import { Icon } from '../../components/icons.js';
import { dayLabel, sameDay } from '../../format/time.js';
import type { DetailsState } from './details-state.js';
import { MessageItem } from './MessageItem.js';
import { NoticeActionButton } from './NoticeAction.js';

/** "Near the bottom": new messages keep the view pinned to the end (px). */
const STICK_TO_BOTTOM_PX = 80;

export function Timeline({ conversation, onLoadEarlier }: { conversation: ConversationView; onLoadEarlier: () => void }): JSX.Element {
  const api = useApi();
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const [selected, setSelected] = useState<MessageRef | null>(null);
  const [details, setDetails] = useState<DetailsState | null>(null);
  // One function for every message (they are memoised on their props).
  const onSelect = useCallback((id: MessageRef) => setSelected((current) => (current === id ? null : id)), []);

  // Details follow the view: delivery changes while a message is selected show up at once.
  useEffect(() => {
    if (selected === null) {
      setDetails(null);
      return undefined;
    }
    let live = true;
    if (!conversation.timeline.some((item) => item.type === 'message' && item.id === selected)) {
      setSelected(null);
      return undefined;
    }
    setDetails((current) => current ?? { status: 'loading' });
    api.messageDetails({ conversationId: conversation.id, messageId: selected }).then(
      (value) => live && setDetails({ status: 'ready', details: value }),
      (error: unknown) => live && setDetails({ status: 'failed', text: asWorkerError(error).message }),
    );
    return () => {
      live = false;
    };
  }, [api, conversation, selected]);

  useEffect(() => {
    if (selected === null) return undefined;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') setSelected(null);
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [selected]);

  const count = conversation.timeline.length;
  useLayoutEffect(() => {
    const element = scroller.current;
    if (element !== null && atBottom.current) element.scrollTop = element.scrollHeight;
  }, [count, conversation.id]);
  const onScroll = () => {
    const element = scroller.current;
    if (element !== null) atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < STICK_TO_BOTTOM_PX;
  };

  const ancestors = details?.status === 'ready' ? new Set(details.details.ancestors) : null;
  const items: JSX.Element[] = [];
  let previous: TimelineItem | null = null;
  // Messages above the selected one that its author had not seen: what the hint talks about.
  let dimmedAbove = 0;
  let passedSelected = false;
  for (const item of conversation.timeline) {
    if (previous === null || !sameDay(previous.timeMs, item.timeMs)) {
      items.push(
        <li key={`day-${item.timeMs}-${item.id}`} class="day-separator">
          <span>{dayLabel(item.timeMs)}</span>
        </li>,
      );
    }
    if (item.type === 'notice') items.push(<Notice key={item.id} notice={item} conversation={conversation} />);
    else {
      const isSelected = item.id === selected;
      const dimmed = selected !== null && !isSelected && ancestors !== null && !ancestors.has(item.id);
      if (isSelected) passedSelected = true;
      else if (dimmed && !passedSelected) dimmedAbove++;
      const groupedWithPrevious = previous?.type === 'message' && previous.author.member === item.author.member && sameDay(previous.timeMs, item.timeMs);
      items.push(
        <MessageItem
          key={item.id}
          message={item}
          kind={conversation.kind}
          showAuthor={!groupedWithPrevious || item.parentsDiffer}
          selected={isSelected}
          dimmed={dimmed}
          details={isSelected ? details : null}
          onSelect={onSelect}
          conversationId={conversation.id}
        />,
      );
    }
    previous = item;
  }

  return (
    <div class={selected === null ? 'timeline' : 'timeline timeline-selecting'} ref={scroller} onScroll={onScroll}>
      {conversation.hasEarlier && (
        <button type="button" class="btn load-earlier" onClick={onLoadEarlier}>
          Show earlier messages
        </button>
      )}
      {selected !== null && (
        <p class="selection-hint" role="status">
          {ancestors === null
            ? 'Looking up what its author had seen…'
            : dimmedAbove === 0
              ? 'Its author had seen every message above it when writing it.'
              : 'Greyed-out messages had not reached the author when they wrote the selected one.'}{' '}
          <button type="button" class="link-btn" onClick={() => setSelected(null)}>
            Done
          </button>
        </p>
      )}
      {count === 0 ? (
        <p class="timeline-empty muted">No messages yet. Messages here are end-to-end encrypted: only the members can read them.</p>
      ) : (
        <ol class="timeline-list" aria-label="Messages">
          {items}
        </ol>
      )}
    </div>
  );
}

function Notice({ notice, conversation }: { notice: NoticeView; conversation: ConversationView }): JSX.Element {
  if (notice.tone === 'info' && notice.action === null) {
    return (
      <li class="notice notice-info">
        <span>{notice.text}</span>
      </li>
    );
  }
  return (
    <li class={`notice notice-${notice.tone}`}>
      <Icon name="alert" />
      <div class="stack">
        <p class="callout-title">{notice.text}</p>
        {notice.whatToDo !== null && <p>{notice.whatToDo}</p>}
        {notice.action !== null && (
          <div class="row">
            <NoticeActionButton action={notice.action} conversationId={conversation.id} />
          </div>
        )}
      </div>
    </li>
  );
}
