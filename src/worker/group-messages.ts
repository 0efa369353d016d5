/**
 * What Covey puts inside mpENC payloads (the encrypted, signed, acked group messages), and the
 * join claim a newcomer posts into the channel.
 *
 * Payload text is JSON with a one-letter tag:
 *   {"t":"m","x":text}                      a chat message
 *   {"t":"r","name":…,"kind":…,"b":[…]}     roster: group name, kind and every member's signed
 *                                           binding (sent by whoever completed a start or include;
 *                                           issue 10 §6: the group's first encrypted message)
 *   {"t":"n","name":…}                      rename (group-info message)
 *   {"t":"i","id":…,"jk":…,"ik":…,"name":…,"exp":…}   an invitation exists: any member may include
 *                                           the joiner who proves it (async-groups rule 10)
 *   {"t":"x","id":…}                        that invitation was cancelled
 * A payload that is not one of these (another client, a newer version) shows as text.
 *
 * Join claim (channel packet, not mpENC): "?covey-join:" + base64url(iv ‖ AES-256-GCM(jk, JSON
 * {"id": inviteId, "b": binding})), AAD = "covey-join-v1\n" + channel. Only holders of the
 * invitation's join key (the group's members) can read which person joined.
 */
import { base64UrlDecode, base64UrlEncode, concatBytes, utf8Encode } from '../protocol/bytes.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import type { ChannelId } from '../shared/relay-api.js';
import { MAX_GROUP_NAME_CHARS, MAX_MESSAGE_TEXT_CHARS, type ConversationKind } from '../shared/worker-api.js';
import { checkKey, checkToken, cleanName, type Binding } from './cards.js';

export type GroupPayload =
  | { readonly t: 'm'; readonly x: string }
  | { readonly t: 'r'; readonly name: string; readonly kind: ConversationKind; readonly b: readonly unknown[] }
  | { readonly t: 'n'; readonly name: string }
  | { readonly t: 'i'; readonly id: string; readonly jk: string; readonly ik: string | null; readonly name: string | null; readonly exp: number }
  | { readonly t: 'x'; readonly id: string };

export const JOIN_CLAIM_PREFIX = '?covey-join:';
const IV_BYTES = 12;
/** A roster lists at most this many bindings (MAX_GROUP_MEMBERS). */
const MAX_ROSTER_BINDINGS = 128;

export function encodePayload(payload: GroupPayload): string {
  return JSON.stringify(payload);
}

/** The payload of a delivered message; anything unknown is plain text. */
export function decodePayload(text: string): GroupPayload {
  if (!text.startsWith('{')) return { t: 'm', x: text };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { t: 'm', x: text };
  }
  if (typeof v !== 'object' || v === null) return { t: 'm', x: text };
  const p = v as Record<string, unknown>;
  try {
    switch (p.t) {
      case 'm':
        if (typeof p.x === 'string' && p.x.length <= MAX_MESSAGE_TEXT_CHARS) return { t: 'm', x: p.x };
        break;
      case 'r':
        if (Array.isArray(p.b) && p.b.length <= MAX_ROSTER_BINDINGS && (p.kind === 'group' || p.kind === 'direct')) {
          return { t: 'r', name: cleanName(p.name, MAX_GROUP_NAME_CHARS, 'group name'), kind: p.kind, b: p.b };
        }
        break;
      case 'n':
        return { t: 'n', name: cleanName(p.name, MAX_GROUP_NAME_CHARS, 'group name') };
      case 'i':
        return {
          t: 'i',
          id: checkToken(p.id, 'invite id', 22),
          jk: checkKey(p.jk, 'join key'),
          ik: p.ik === null ? null : checkKey(p.ik, 'invitee key'),
          name: p.name === null ? null : cleanName(p.name, MAX_GROUP_NAME_CHARS, 'invitee name'),
          exp: typeof p.exp === 'number' && Number.isSafeInteger(p.exp) ? p.exp : 0,
        };
      case 'x':
        return { t: 'x', id: checkToken(p.id, 'invite id', 22) };
    }
  } catch {
    // A malformed control message from a peer shows as its raw text (nothing else changes).
  }
  return { t: 'm', x: text };
}

async function joinKey(jk: string): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey('raw', base64UrlDecode(jk) as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

export async function sealJoinClaim(crypto: CryptoProvider, jk: string, channel: ChannelId, inviteId: string, binding: Binding): Promise<string> {
  const iv = crypto.randomBytes(IV_BYTES);
  const aad = utf8Encode(`covey-join-v1\n${channel}`);
  const ct = new Uint8Array(
    await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: iv as Uint8Array<ArrayBuffer>, additionalData: aad as Uint8Array<ArrayBuffer> },
      await joinKey(jk),
      utf8Encode(JSON.stringify({ id: inviteId, b: binding })) as Uint8Array<ArrayBuffer>,
    ),
  );
  return JOIN_CLAIM_PREFIX + base64UrlEncode(concatBytes(iv, ct));
}

/** The claim's invite id and (unchecked) binding, or undefined when `jk` does not open it. */
export async function openJoinClaim(jk: string, channel: ChannelId, text: string): Promise<{ id: string; binding: unknown } | undefined> {
  if (!text.startsWith(JOIN_CLAIM_PREFIX) || text.length > 8192) return undefined;
  try {
    const bytes = base64UrlDecode(text.slice(JOIN_CLAIM_PREFIX.length));
    const plain = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: bytes.slice(0, IV_BYTES), additionalData: utf8Encode(`covey-join-v1\n${channel}`) as Uint8Array<ArrayBuffer> },
      await joinKey(jk),
      bytes.slice(IV_BYTES) as Uint8Array<ArrayBuffer>,
    );
    const v = JSON.parse(new TextDecoder().decode(plain)) as { id?: unknown; b?: unknown };
    if (typeof v.id !== 'string') return undefined;
    return { id: v.id, binding: v.b };
  } catch {
    return undefined;
  }
}
