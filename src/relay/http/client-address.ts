/**
 * Who a request comes from, for rate limits, quotas and connection caps (issue 13 "Weak"). The
 * socket's peer address, unless that peer is a trusted reverse proxy (RELAY_TRUSTED_PROXIES):
 * then the rightmost X-Forwarded-For entry that is not itself a trusted proxy. Entries left of
 * that are whatever the client wrote, so they are never believed.
 *
 * IPv6 clients are keyed by their /64: one subscriber line usually gets a whole /64, so keying by
 * full address would give an attacker 2^64 fresh rate-limit buckets.
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** Entries read from the right of X-Forwarded-For at most (a proxy chain is short). */
const MAX_FORWARDED_HOPS = 16;

export interface ClientInfo {
  /** The client's address key (IPv4 address, or an IPv6 /64 as "xxxx:xxxx:xxxx:xxxx::/64"). */
  readonly address: string;
  /** True when the browser reached us over TLS: our own, or a trusted proxy's X-Forwarded-Proto. */
  readonly secure: boolean;
}

/** ::ffff:1.2.3.4 → 1.2.3.4; anything not an IP → undefined. */
function normalizeIp(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim().replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(trimmed);
  const ip = mapped?.[1] ?? trimmed;
  return isIP(ip) === 0 ? undefined : ip.toLowerCase();
}

/** The rate-limit key of an address: IPv4 as is, IPv6 by its /64. */
export function addressKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  // Expand "::" so the first four groups are known.
  const [head = '', tail = ''] = ip.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = ip.includes('::') ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class ClientAddresses {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `proxies`: IP addresses and CIDR ranges ("10.0.0.0/8", "::1", "fd00::/8"). */
  constructor(proxies: readonly string[]) {
    for (const entry of proxies) {
      const [ip, prefix] = entry.split('/');
      const address = normalizeIp(ip);
      if (address === undefined) throw new Error(`RELAY_TRUSTED_PROXIES: ${entry} is not an IP address or CIDR range`);
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.trusted.addAddress(address, type);
      else {
        const bits = Number(prefix);
        if (!Number.isInteger(bits) || bits < 0 || bits > (type === 'ipv6' ? 128 : 32)) throw new Error(`RELAY_TRUSTED_PROXIES: bad prefix in ${entry}`);
        this.trusted.addSubnet(address, bits, type);
      }
    }
    this.any = proxies.length > 0;
  }

  isTrusted(ip: string | undefined): boolean {
    if (!this.any || ip === undefined) return false;
    return this.trusted.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client of a request (see the module comment). */
  of(req: IncomingMessage, socketSecure: boolean): ClientInfo {
    const peer = normalizeIp(req.socket.remoteAddress) ?? 'unknown';
    if (!this.isTrusted(peer)) return { address: peer === 'unknown' ? peer : addressKey(peer), secure: socketSecure };
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').slice(-MAX_FORWARDED_HOPS);
    let client = peer;
    // Right to left: each hop was added by the proxy before it; stop at the first untrusted one.
    for (let i = hops.length - 1; i >= 0 && this.isTrusted(client); i--) {
      const hop = normalizeIp(hops[i]);
      if (hop === undefined) break;
      client = hop;
    }
    const proto = req.headers['x-forwarded-proto'];
    const forwardedSecure = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase() === 'https';
    return { address: addressKey(client), secure: socketSecure || forwardedSecure };
  }
}

/** Parses RELAY_TRUSTED_PROXIES: comma- or space-separated IPs and CIDR ranges. */
export function trustedProxiesFromEnv(text: string | undefined): readonly string[] {
  return (text ?? '').split(/[\s,]+/).filter((part) => part !== '');
}
