/**
 * One message (issue 11 §4): author with their verification state, text (as text; only http(s)
 * links are links), time and delivery. Selecting it (click or tap on the bubble, or the time
 * button from the keyboard) shows who has it and greys out what its author had not seen.
 */
import type { JSX } from 'preact';
import { memo } from 'preact/compat';
import { useEffect, useId, useRef } from 'preact/hooks';
import type { ConversationId, ConversationKind, Delivery, MessageRef, MessageView } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { ErrorText } from '../../components/Notice.js';
import { VerificationMark } from '../../components/VerificationMark.js';
import { Icon, type IconName } from '../../components/icons.js';
import { linkify } from '../../format/linkify.js';
import { longTime, timeOnly } from '../../format/time.js';
import { deliveryShort, deliveryText, listNames } from '../../format/words.js';
import type { DetailsState } from './details-state.js';

const DELIVERY_ICONS: Record<Delivery['state'], IconName> = {
  'waiting-to-send': 'clock',
  'at-relay': 'check',
  delivered: 'check',
  'delivered-to-all': 'checks',
  'not-acked': 'alert',
  failed: 'alert',
};

export function MessageText({ text }: { text: string }): JSX.Element {
  return (
    <p class="msg-text">
      {linkify(text).map((segment, i) =>
        segment.kind === 'text' ? (
          segment.text
        ) : (
          <a key={i} href={segment.href} target="_blank" rel="noopener noreferrer">
            {segment.text}
          </a>
        ),
      )}
    </p>
  );
}

/**
 * Memoised: the worker sends a conversation's changes as patches and the bridge keeps every
 * unchanged message the same object (src/shared/view-patch.ts), so a new message or a delivery
 * change re-renders that one item, not the 200 of the window. Keep every prop stable.
 */
export const MessageItem = memo(function MessageItem({
  message,
  kind,
  showAuthor,
  selected,
  dimmed,
  details,
  onSelect,
  conversationId,
}: {
  message: MessageView;
  kind: ConversationKind;
  showAuthor: boolean;
  selected: boolean;
  dimmed: boolean;
  details: DetailsState | null;
  /** Stable across renders (memo): called with this message's id. */
  onSelect: (id: MessageRef) => void;
  conversationId: ConversationId;
}): JSX.Element {
  const detailsId = useId();
  const { delivery } = message;
  const warn = delivery.state === 'not-acked' || delivery.state === 'failed';
  // mpENC §2.3: a progress mark on the messages you send; on anyone's message, the warning when a
  // reader did not acknowledge it. Other people's messages otherwise show their time only (as
  // messengers do); selecting one still shows who has it.
  const showDelivery = message.mine || warn;
  const onBubbleClick = (event: MouseEvent) => {
    if (event.target instanceof Element && event.target.closest('a, button') !== null) return;
    if ((getSelection()?.toString() ?? '') !== '') return; // selecting text to copy it
    onSelect(message.id);
  };
  const classes = ['msg', message.mine ? 'msg-mine' : 'msg-theirs'];
  if (selected) classes.push('msg-selected');
  if (dimmed) classes.push('msg-dimmed');
  if (!message.read) classes.push('msg-unread');
  return (
    <li class={classes.join(' ')} data-message-id={message.id} data-delivery={delivery.state}>
      {message.parentsDiffer && (
        <p class="msg-parents-differ">
          <Icon name="info" small />
          {message.author.self ? 'You' : message.author.name} had seen different messages than the one above when writing this. Select it to see which.
        </p>
      )}
      <div class="bubble" onClick={onBubbleClick}>
        {message.mine ? (
          <span class="visually-hidden">You:</span>
        ) : (
          (showAuthor || kind === 'group') && (
            <p class={showAuthor ? 'msg-author' : 'msg-author visually-hidden'}>
              <span>{message.author.name}</span>
              <VerificationMark verification={message.author.verification} />
            </p>
          )
        )}
        <MessageText text={message.text} />
        <button type="button" class={warn ? 'msg-meta msg-meta-warn' : 'msg-meta'} aria-expanded={selected} aria-controls={selected ? detailsId : undefined} onClick={() => onSelect(message.id)}>
          <time dateTime={new Date(message.timeMs).toISOString()} title={longTime(message.timeMs)}>
            {timeOnly(message.timeMs)}
          </time>
          {showDelivery && (
            <span class={`delivery delivery-${delivery.state}`} title={deliveryText(delivery)}>
              <Icon name={DELIVERY_ICONS[delivery.state]} small />
              <span aria-hidden="true">{deliveryShort(delivery)}</span>
            </span>
          )}
          <span class="visually-hidden">
            {showDelivery ? `, ${deliveryText(delivery)}.` : '.'} {selected ? 'Hide details' : 'Show details'}
          </span>
        </button>
      </div>
      {delivery.state === 'failed' && message.mine && <RetrySend message={message} conversationId={conversationId} />}
      {selected && <Details id={detailsId} message={message} details={details} />}
    </li>
  );
});

function RetrySend({ message, conversationId }: { message: MessageView; conversationId: ConversationId }): JSX.Element {
  const api = useApi();
  const retry = useAction(() => api.retrySend({ conversationId, messageId: message.id }));
  return (
    <div class="msg-retry">
      <button type="button" class="btn" onClick={() => void retry.run()} disabled={retry.pending}>
        Send again
      </button>
      <ErrorText error={retry.error} />
    </div>
  );
}

function Details({ id, message, details }: { id: string; message: MessageView; details: DetailsState | null }): JSX.Element {
  const body = (() => {
    if (details === null || details.status === 'loading') return <p class="muted">Loading…</p>;
    if (details.status === 'failed') return <p class="error-text">{details.text}</p>;
    const readers = details.details.readers;
    const has = readers.filter((reader) => reader.state === 'acked').map((reader) => reader.name);
    const pending = readers.filter((reader) => reader.state === 'pending').map((reader) => reader.name);
    const missing = readers.filter((reader) => reader.state === 'not-acked').map((reader) => reader.name);
    return (
      <dl class="details-list">
        {has.length > 0 && (
          <>
            <dt>Has it</dt>
            <dd>{listNames(has)}</dd>
          </>
        )}
        {pending.length > 0 && (
          <>
            <dt>Not yet: not online since it was sent</dt>
            <dd>{listNames(pending)}</dd>
          </>
        )}
        {missing.length > 0 && (
          <>
            <dt>Did not confirm</dt>
            <dd>
              {listNames(missing)}: {missing.length === 1 ? 'was' : 'were'} online since and did not confirm getting it. Their device may not have received it.
            </dd>
          </>
        )}
        {readers.length === 0 && (
          <>
            <dt>Readers</dt>
            <dd>Nobody else was in the chat when this was written.</dd>
          </>
        )}
      </dl>
    );
  })();
  const ref = useRef<HTMLDivElement>(null);
  const ready = details?.status === 'ready';
  useEffect(() => ref.current?.scrollIntoView({ block: 'nearest' }), [ready]);
  return (
    <div class="msg-details" id={id} role="region" aria-label="Message details" ref={ref}>
      <p class={message.delivery.state === 'not-acked' || message.delivery.state === 'failed' ? 'details-delivery details-warn' : 'details-delivery'}>{deliveryText(message.delivery)}</p>
      <p class="hint">
        Written {longTime(message.timeMs)} by {message.author.self ? 'you' : message.author.name}
        {message.author.self ? '' : ` (${message.author.verification === 'verified' ? 'verified' : message.author.verification === 'key-changed' ? 'safety number changed' : 'not verified'})`}.
      </p>
      {body}
    </div>
  );
}
