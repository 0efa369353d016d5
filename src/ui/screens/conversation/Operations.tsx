/**
 * Membership operations in progress or failed (mpENC §2.3 "Progress and result of a membership
 * change operation"), just above the composer: a message sent now still goes to the old members,
 * so the person must see that a change is under way.
 */
import type { JSX } from 'preact';
import type { ConversationView, OperationView } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { ErrorText } from '../../components/Notice.js';
import { Icon } from '../../components/icons.js';
import { timeUntil } from '../../format/time.js';

export function Operations({ conversation }: { conversation: ConversationView }): JSX.Element | null {
  if (conversation.operations.length === 0) return null;
  return (
    <ul class="operations" aria-label="Changes in progress">
      {conversation.operations.map((operation) => (
        <Operation key={operation.id} operation={operation} conversation={conversation} />
      ))}
    </ul>
  );
}

function Operation({ operation, conversation }: { operation: OperationView; conversation: ConversationView }): JSX.Element {
  const api = useApi();
  const cancel = useAction(() => api.cancelOperation({ conversationId: conversation.id, operationId: operation.id }));
  const retry = useAction(() => api.retryOperation({ conversationId: conversation.id, operationId: operation.id }));
  const failed = operation.state === 'failed';
  return (
    <li class={failed ? 'operation operation-failed' : 'operation'} role="status">
      {failed ? <Icon name="alert" small /> : <span class="spinner spinner-sm" aria-hidden="true" />}
      <div class="operation-text">
        <p>{operation.text}</p>
        {operation.state === 'waiting' && operation.expiresAtMs !== null && <p class="hint">Gives up {timeUntil(operation.expiresAtMs)} if nothing happens.</p>}
        <ErrorText error={cancel.error ?? retry.error} />
      </div>
      <div class="operation-actions">
        {operation.canRetry && (
          <button type="button" class="btn" onClick={() => void retry.run()} disabled={retry.pending}>
            {operation.retryLabel ?? 'Try again'}
          </button>
        )}
        {operation.canCancel && (
          <button type="button" class="btn btn-quiet" onClick={() => void cancel.run()} disabled={cancel.pending}>
            Cancel
          </button>
        )}
      </div>
    </li>
  );
}
