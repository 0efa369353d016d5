/**
 * Which push endpoints the relay will POST to (issue 12 §5). A push endpoint is a URL chosen by a
 * client, so without a check the relay could be made to send requests into its own network
 * (server-side request forgery). Production: https only, to the push services of the browsers
 * by default (RELAY_PUSH_HOSTS widens or narrows the list). Tests: loopback over http too, only
 * when `allowLoopback` is set.
 */
import { isIP } from 'node:net';

export interface PushEndpointPolicy {
  /** Host patterns: an exact host name, `*.suffix` for its subdomains, or `*` for any DNS name over https. */
  readonly allowedHosts: readonly string[];
  /** Tests only: endpoints on loopback hosts (http or https) are allowed whatever allowedHosts says. */
  readonly allowLoopback: boolean;
  /** Longest endpoint accepted. */
  readonly maxChars: number;
}

/** The browsers' push services (Chrome/Edge/Brave/Opera via FCM, Firefox, Safari, legacy Edge/Windows). */
export const DEFAULT_PUSH_HOSTS: readonly string[] = [
  'fcm.googleapis.com',
  'android.googleapis.com',
  '*.push.services.mozilla.com',
  '*.push.apple.com',
  '*.notify.windows.com',
];

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function hostAllowed(hostname: string, patterns: readonly string[]): boolean {
  // `*` means any DNS name: IP literals and loopback names stay refused (they name this network).
  const isName = isIP(hostname.replace(/^\[|\]$/g, '')) === 0 && !isLoopback(hostname) && hostname.includes('.');
  return patterns.some((pattern) => {
    if (pattern === '*') return isName;
    if (pattern.startsWith('*.')) return isName && hostname.endsWith(pattern.slice(1));
    return hostname === pattern;
  });
}

/** The endpoint as a URL if the policy allows it, else a human reason. */
export function checkPushEndpoint(text: unknown, policy: PushEndpointPolicy): URL | string {
  if (typeof text !== 'string' || text.length === 0 || text.length > policy.maxChars) {
    return `endpoint must be a URL of at most ${policy.maxChars} characters`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'endpoint is not a URL';
  }
  if (url.username !== '' || url.password !== '') return 'endpoint must not carry credentials';
  const hostname = url.hostname.toLowerCase();
  if (policy.allowLoopback && isLoopback(hostname) && (url.protocol === 'http:' || url.protocol === 'https:')) return url;
  if (url.protocol !== 'https:') return 'endpoint must be an https URL';
  if (!hostAllowed(hostname, policy.allowedHosts)) return `push service ${hostname} is not allowed on this relay`;
  return url;
}

/** Parses RELAY_PUSH_HOSTS: comma-separated patterns; empty or unset = the defaults. */
export function pushHostsFromEnv(text: string | undefined): readonly string[] {
  if (text === undefined || text.trim() === '') return DEFAULT_PUSH_HOSTS;
  return text
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '');
}
