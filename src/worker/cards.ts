/**
 * Contact cards, member bindings and invite links (issue 10 §5, §6, §7): the signed statements a
 * person's device hands out. Every one is JSON inside a signature by the identity key, so a
 * changed byte anywhere is refused. Parsing treats input as hostile: bounded sizes, exact field
 * shapes, then the signature, then use (STYLE.md §3).
 *
 * - Card: who I am (display name, identity key), how to reach me (relay, inbox, deposit
 *   capability) and the X25519 key my inbox messages are sealed to. Travels in a link's fragment
 *   (`#c=`), which browsers never send to a server, and as a QR code of that link.
 * - Binding: "this channel key is me in this channel", signed by the identity key. Travels only
 *   encrypted (inside sealed invitations and the group's encrypted roster), so the relay never
 *   links a channel key to a person (README "Linkability").
 * - Invite link: a one-time capability to join one group (`#i=`), signed by the inviter.
 */
import { base64UrlDecode, base64UrlEncode, utf8Encode } from '../protocol/bytes.js';
import type { CryptoProvider } from '../protocol/crypto/provider.js';
import type { CapabilityToken, ChannelId, MemberKey } from '../shared/relay-api.js';
import { MAX_DISPLAY_NAME_CHARS, MAX_GROUP_NAME_CHARS, MAX_LINK_CHARS, WorkerError } from '../shared/worker-api.js';

export const CARD_VERSION = 1;
export const CARD_FRAGMENT = 'c';
export const INVITE_FRAGMENT = 'i';
/** Longest relay origin we accept in a card (a host name is at most 253 characters). */
const MAX_RELAY_URL_CHARS = 300;

export interface Card {
  readonly v: typeof CARD_VERSION;
  readonly name: string;
  /** Identity key: ed25519 public key, base64url (43 characters). */
  readonly ik: string;
  /** Inbox sealing key: X25519 public key (HPKE), base64url. */
  readonly hk: string;
  readonly relay: string;
  readonly inbox: ChannelId;
  readonly deposit: CapabilityToken;
  /** When the deposit capability expires (ms). */
  readonly exp: number;
  readonly sig: string;
}

export interface Binding {
  readonly ik: string;
  readonly name: string;
  readonly ch: ChannelId;
  readonly mk: MemberKey;
  readonly sig: string;
}

export interface InviteLinkPayload {
  readonly v: typeof CARD_VERSION;
  readonly relay: string;
  readonly ch: ChannelId;
  /** The relay's invite capability (one use). */
  readonly cap: CapabilityToken;
  /** Key of the join claim the joiner posts into the channel (32 bytes, base64url). */
  readonly jk: string;
  readonly id: string;
  readonly name: string;
  readonly kind: 'group' | 'direct';
  readonly by: { readonly name: string; readonly ik: string };
  readonly exp: number;
  readonly sig: string;
}

export const badLink = (why: string): WorkerError => new WorkerError('bad-link', why);

// ---- field checks ---------------------------------------------------------------------------

const B64URL = /^[A-Za-z0-9_-]*$/;

export function checkKey(value: unknown, what: string, bytes = 32): string {
  if (typeof value !== 'string' || !B64URL.test(value) || value.length !== Math.ceil((bytes * 4) / 3)) throw badLink(`${what} is malformed`);
  try {
    base64UrlDecode(value); // canonical padding bits
  } catch {
    throw badLink(`${what} is malformed`);
  }
  return value;
}

export function checkToken(value: unknown, what: string, chars: number): string {
  if (typeof value !== 'string' || value.length !== chars || !B64URL.test(value)) throw badLink(`${what} is malformed`);
  return value;
}

/** Names: trimmed, 1..max characters, no control characters (they would break lines and lists). */
export function cleanName(value: unknown, max: number, what: string, error = badLink): string {
  if (typeof value !== 'string') throw error(`${what} is missing`);
  const name = value.normalize('NFC').trim();
  if (name.length === 0) throw error(`${what} is empty`);
  if ([...name].length > max) throw error(`${what} is longer than ${max} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) throw error(`${what} holds control characters`);
  return name;
}

/** A relay origin: http(s), no path, query, fragment or credentials. */
export function checkRelayUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_RELAY_URL_CHARS) throw badLink('the relay address is malformed');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badLink('the relay address is malformed');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.origin !== value) {
    throw badLink('the relay address must be an http(s) origin');
  }
  return value;
}

function checkTime(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badLink(`${what} is malformed`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function exactKeys(value: Record<string, unknown>, keys: readonly string[], what: string): void {
  const actual = Object.keys(value);
  if (actual.length !== keys.length || !keys.every((k) => Object.hasOwn(value, k))) throw badLink(`${what} has unexpected fields`);
}

// ---- signatures -----------------------------------------------------------------------------

const cardText = (c: Omit<Card, 'sig'>) => utf8Encode(`covey-card-v1\n${JSON.stringify([c.v, c.name, c.ik, c.hk, c.relay, c.inbox, c.deposit, c.exp])}`);
const bindingText = (b: Omit<Binding, 'sig'>) => utf8Encode(`covey-binding-v1\n${JSON.stringify([b.ik, b.name, b.ch, b.mk])}`);
const inviteText = (i: Omit<InviteLinkPayload, 'sig'>) =>
  utf8Encode(`covey-invite-link-v1\n${JSON.stringify([i.v, i.relay, i.ch, i.cap, i.jk, i.id, i.name, i.kind, i.by.name, i.by.ik, i.exp])}`);

async function verifySig(crypto: CryptoProvider, ik: string, text: Uint8Array, sig: unknown, what: string): Promise<void> {
  const signature = checkKey(sig, `${what} signature`, 64);
  if (!(await crypto.ed25519Verify(base64UrlDecode(ik), text, base64UrlDecode(signature)))) throw badLink(`${what} signature does not verify: it was altered or forged`);
}

const sign = async (crypto: CryptoProvider, seed: Uint8Array, text: Uint8Array) => base64UrlEncode(await crypto.ed25519Sign(seed, text));

export async function makeCard(crypto: CryptoProvider, identitySeed: Uint8Array, fields: Omit<Card, 'sig' | 'v' | 'ik'>): Promise<Card> {
  const body = { v: CARD_VERSION, ik: base64UrlEncode(await crypto.ed25519PublicKey(identitySeed)), ...fields } as const;
  return { ...body, sig: await sign(crypto, identitySeed, cardText(body)) };
}

export async function verifyCard(crypto: CryptoProvider, value: unknown): Promise<Card> {
  if (!isRecord(value)) throw badLink('the card is malformed');
  exactKeys(value, ['v', 'name', 'ik', 'hk', 'relay', 'inbox', 'deposit', 'exp', 'sig'], 'the card');
  if (value.v !== CARD_VERSION) throw badLink('the card is of an unknown version: update Covey');
  const card: Card = {
    v: CARD_VERSION,
    name: cleanName(value.name, MAX_DISPLAY_NAME_CHARS, 'the name'),
    ik: checkKey(value.ik, 'the identity key'),
    hk: checkKey(value.hk, 'the inbox key'),
    relay: checkRelayUrl(value.relay),
    inbox: checkToken(value.inbox, 'the inbox', 22) as ChannelId,
    deposit: checkToken(value.deposit, 'the inbox capability', 43) as CapabilityToken,
    exp: checkTime(value.exp, 'the expiry'),
    sig: value.sig as string,
  };
  if (card.name !== value.name) throw badLink('the name is not in normal form');
  await verifySig(crypto, card.ik, cardText(card), value.sig, 'the card');
  return card;
}

export async function makeBinding(crypto: CryptoProvider, identitySeed: Uint8Array, fields: Omit<Binding, 'sig' | 'ik'>): Promise<Binding> {
  const body = { ik: base64UrlEncode(await crypto.ed25519PublicKey(identitySeed)), ...fields };
  return { ...body, sig: await sign(crypto, identitySeed, bindingText(body)) };
}

/** A binding, checked for its signature and, when given, its channel and channel key. */
export async function verifyBinding(crypto: CryptoProvider, value: unknown, expect: { ch?: ChannelId; mk?: MemberKey } = {}): Promise<Binding> {
  if (!isRecord(value)) throw badLink('a member binding is malformed');
  exactKeys(value, ['ik', 'name', 'ch', 'mk', 'sig'], 'a member binding');
  const binding: Binding = {
    ik: checkKey(value.ik, 'a member identity key'),
    name: cleanName(value.name, MAX_DISPLAY_NAME_CHARS, 'a member name'),
    ch: checkToken(value.ch, 'a binding channel', 22) as ChannelId,
    mk: checkKey(value.mk, 'a binding channel key') as MemberKey,
    sig: value.sig as string,
  };
  if (binding.name !== value.name) throw badLink('a member name is not in normal form');
  if (expect.ch !== undefined && binding.ch !== expect.ch) throw badLink('a member binding names another group');
  if (expect.mk !== undefined && binding.mk !== expect.mk) throw badLink('a member binding names another member');
  await verifySig(crypto, binding.ik, bindingText(binding), value.sig, 'a member binding');
  return binding;
}

export async function makeInviteLinkPayload(crypto: CryptoProvider, identitySeed: Uint8Array, fields: Omit<InviteLinkPayload, 'sig' | 'v'>): Promise<InviteLinkPayload> {
  const body = { v: CARD_VERSION, ...fields } as const;
  return { ...body, sig: await sign(crypto, identitySeed, inviteText(body)) };
}

export async function verifyInviteLinkPayload(crypto: CryptoProvider, value: unknown): Promise<InviteLinkPayload> {
  if (!isRecord(value)) throw badLink('the invite link is malformed');
  exactKeys(value, ['v', 'relay', 'ch', 'cap', 'jk', 'id', 'name', 'kind', 'by', 'exp', 'sig'], 'the invite link');
  if (value.v !== CARD_VERSION) throw badLink('the invite link is of an unknown version: update Covey');
  const by = value.by;
  if (!isRecord(by)) throw badLink('the invite link is malformed');
  exactKeys(by, ['name', 'ik'], 'the invite link');
  if (value.kind !== 'group' && value.kind !== 'direct') throw badLink('the invite link is malformed');
  const payload: InviteLinkPayload = {
    v: CARD_VERSION,
    relay: checkRelayUrl(value.relay),
    ch: checkToken(value.ch, 'the group', 22) as ChannelId,
    cap: checkToken(value.cap, 'the invite capability', 43) as CapabilityToken,
    jk: checkKey(value.jk, 'the join key'),
    id: checkToken(value.id, 'the invite id', 22),
    name: cleanName(value.name, MAX_GROUP_NAME_CHARS, 'the group name'),
    kind: value.kind,
    by: { name: cleanName(by.name, MAX_DISPLAY_NAME_CHARS, "the inviter's name"), ik: checkKey(by.ik, "the inviter's key") },
    exp: checkTime(value.exp, 'the expiry'),
    sig: value.sig as string,
  };
  await verifySig(crypto, payload.by.ik, inviteText(payload), value.sig, 'the invite link');
  return payload;
}

// ---- links ----------------------------------------------------------------------------------

export function encodeFragment(value: unknown): string {
  return base64UrlEncode(utf8Encode(JSON.stringify(value)));
}

export function linkFor(appOrigin: string, kind: typeof CARD_FRAGMENT | typeof INVITE_FRAGMENT, value: unknown): string {
  return `${appOrigin}/#${kind}=${encodeFragment(value)}`;
}

/**
 * Finds the Covey payload in a pasted link, a scanned QR text or a bare fragment: `…#c=<b64>`
 * or `…#i=<b64>`. The origin before the fragment does not matter (any Covey app opens any card).
 * The link may sit inside the message it came in ("Add me: https://…/#c=…. See you!"): people
 * paste what their messenger copied, sentence, full stop and all; the first link counts.
 */
export function parseLinkText(text: unknown): { kind: 'c' | 'i'; value: unknown } {
  if (typeof text !== 'string') throw new WorkerError('bad-request', 'the link must be text');
  if (text.length > MAX_LINK_CHARS) throw badLink('that is far too long to be a Covey link');
  const trimmed = text.trim();
  const match = /(?:^|#)([ci])=([A-Za-z0-9_-]+)/.exec(trimmed);
  if (match === null) throw badLink('that is not a Covey link or code');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64UrlDecode(match[2]!)));
  } catch {
    throw badLink('the link is damaged (it may have been cut off when copied)');
  }
  return { kind: match[1] as 'c' | 'i', value };
}
