import type { MessageDetails } from '../../../shared/worker-api.js';

/** A selected message's details as the timeline fetched them (`messageDetails`). */
export type DetailsState = { readonly status: 'loading' } | { readonly status: 'ready'; readonly details: MessageDetails } | { readonly status: 'failed'; readonly text: string };
