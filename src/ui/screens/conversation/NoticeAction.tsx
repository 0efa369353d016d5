/** The button of a notice's suggested action (worker-api NoticeAction). */
import type { JSX } from 'preact';
import type { ConversationId, NoticeAction } from '../../../shared/worker-api.js';
import { useAction, useApi } from '../../app/engine.js';
import { useRouter } from '../../app/router.js';
import { ErrorText } from '../../components/Notice.js';

export function NoticeActionButton({ action, conversationId, primary }: { action: NoticeAction; conversationId: ConversationId; primary?: boolean }): JSX.Element {
  const api = useApi();
  const router = useRouter();
  const run = useAction(async () => {
    switch (action.command) {
      case 'acceptKeyChange':
        return api.acceptKeyChange({ contactId: action.contactId });
      case 'verifyContact':
        // Verifying means comparing the safety number: open it rather than mark blindly.
        router.go({ section: 'contacts', detail: { name: 'contact', id: action.contactId } });
        return undefined;
      case 'retryOperation':
        return api.retryOperation({ conversationId, operationId: action.operationId });
      case 'cancelOperation':
        return api.cancelOperation({ conversationId, operationId: action.operationId });
      case 'retrySend':
        return api.retrySend({ conversationId, messageId: action.messageId });
    }
  });
  return (
    <>
      <button type="button" class={primary ? 'btn btn-primary' : 'btn'} onClick={() => void run.run()} disabled={run.pending}>
        {action.label}
      </button>
      <ErrorText error={run.error} />
    </>
  );
}
