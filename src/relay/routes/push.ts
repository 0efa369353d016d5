/**
 * Web Push registration (issue 12 §5): the relay's VAPID public key, and per member and channel
 * the browser's PushSubscription. What the relay then sends is in web-push/dispatcher.ts.
 */
import type { RegisterPushResponse, VapidKeyResponse } from '../../shared/relay-api.js';
import type { Reply, RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { parseJsonObject } from '../http/io.js';
import type { WebPushService } from '../web-push/dispatcher.js';
import { channelParam, member, noBody } from './common.js';

function webPushOf(ctx: RequestContext): WebPushService {
  const service = ctx.deps.webPush;
  if (service === undefined) throw new RelayError('not-found', 'Web Push is turned off on this relay');
  return service;
}

export async function vapidKey(ctx: RequestContext): Promise<Reply> {
  noBody(ctx);
  const response: VapidKeyResponse = { publicKey: webPushOf(ctx).publicKey };
  return { status: 200, json: response };
}

export async function registerPush(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  const service = webPushOf(ctx);
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const keys = body['keys'];
  const fields = typeof keys === 'object' && keys !== null && !Array.isArray(keys) ? (keys as Record<string, unknown>) : {};
  const subscription = service.checkSubscription(body['endpoint'], fields['p256dh'], fields['auth']);
  if (typeof subscription === 'string') throw new RelayError('bad-request', subscription);
  if (!(await ctx.deps.store.putPushSubscription(channelId, key, subscription))) {
    throw new RelayError('forbidden', 'not a member of this channel');
  }
  const response: RegisterPushResponse = { registered: true };
  return { status: 200, json: response };
}

export async function unregisterPush(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  webPushOf(ctx);
  const { key } = await member(ctx, channelId);
  noBody(ctx);
  await ctx.deps.store.deletePushSubscription(channelId, key);
  const response: RegisterPushResponse = { registered: false };
  return { status: 200, json: response };
}
