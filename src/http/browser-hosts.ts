/**
 * DNS rebinding: a page of another site whose owner points its name at this server's address (after the page has
 * loaded) becomes, to the browser, the same origin as this server, and reads the answers to its requests: it could
 * initialise a new server and keep the keys, or use a dev server's well-known root token. What such a request cannot
 * hide is the name it was sent to. So a request a browser marks as its own (`Origin`, which browsers send with every
 * write, same-origin ones included, or `Sec-Fetch-Site`) is served only under a name this server knows as its own:
 * an IP address (a name is needed to rebind), `localhost` and `*.localhost` (browsers resolve them to loopback
 * themselves), the listener's and `api_addr`'s host, and the names of `browser_hosts` in the configuration file.
 * Clients that are not browsers (the CLI, SDKs, the operator, curl) send neither header and reach the server under
 * any name, as behind a load balancer or a Kubernetes Service.
 *
 * Over plain HTTP a browser marks a same-origin read with neither header (Fetch Metadata goes only to HTTPS and
 * loopback origins), so a rebound page can still read what needs no token (health, seal status). A dev server, whose
 * root token may be well known, therefore checks every request's name (`allRequests`), also when it listens on
 * 0.0.0.0 behind a port published on loopback only; `--dev-allowed-host` adds names.
 */
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** `browser_hosts = ["*"]`: browsers may use any name (reopens DNS rebinding; for a trusted proxy that checks it). */
const ANY_BROWSER_HOST = '*';

/** A name as RFC 1123 allows it (letters, digits, hyphens; dot-separated labels of at most 63), and "_" as in
 * Compose service names, which browsers send as they are. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** How many Host headers' verdicts are remembered. */
const DECISIONS_KEPT = 64;

/** Long enough for any real name; the refusal does not echo an arbitrarily long Host. */
const SHOWN_HOST_MAX = 100;

/** Why a configured name is not one (undefined when it is a host name, an IP address or "*"). */
export function invalidBrowserHost(name: string): string | undefined {
  if (name === ANY_BROWSER_HOST) return undefined;
  if (isIP(name) !== 0) return undefined;
  const host = /[/:@?#\s\\%]/.test(name) ? undefined : hostOf(name);
  if (host !== undefined && HOST_NAME.test(host)) return undefined;
  return `"${name.slice(0, SHOWN_HOST_MAX)}" is not a host name (give the name alone: no scheme, port or path)`;
}

/**
 * The host part of an address such as "cofre.example.com:8200", "[::1]:8200" or "http://cofre:8200/", in lower case
 * (punycode for an international name, as browsers send it); undefined for what is no address.
 */
export function hostOf(address: string): string | undefined {
  const url = URL.canParse(address) && /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
  if (!URL.canParse(url)) return undefined;
  return normalise(new URL(url).hostname);
}

/** Lower case (the URL parser's), without IPv6 brackets or the trailing dot of a fully qualified name. */
function normalise(hostname: string): string {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

export class BrowserHosts {
  private readonly names: ReadonlySet<string>;
  private readonly any: boolean;
  /** Host header → its refusal ('' when served); cleared when full, so crafted Hosts cannot grow it. */
  private readonly decided = new Map<string, string>();

  /**
   * `names`: this server's own (listener, api_addr) and browser_hosts; IPs and localhost need not be listed.
   * `allRequests`: check the name of every request, not only of those a browser marks as its own.
   */
  constructor(
    names: Iterable<string>,
    private readonly allRequests = false,
  ) {
    const own = new Set<string>();
    for (const name of names) own.add(name === ANY_BROWSER_HOST ? name : (hostOf(name) ?? name.toLowerCase()));
    this.any = own.has(ANY_BROWSER_HOST);
    this.names = own;
  }

  /** Why a request is refused, or undefined: only a browser's request under a name that is not this server's. */
  refusal(headers: IncomingHttpHeaders): string | undefined {
    if (this.any) return undefined;
    if (!this.allRequests && headers['sec-fetch-site'] === undefined && headers.origin === undefined) return undefined;
    // Browsers always send Host; a request without one (an HTTP/1.0 health probe) is no browser's.
    if (headers.host === undefined) return this.allRequests ? undefined : this.judge('');
    const host = headers.host;
    // Parsing a Host costs more than the rest of the check, and a server is reached by a handful of names.
    const known = this.decided.get(host);
    if (known !== undefined) return known || undefined;
    if (this.decided.size >= DECISIONS_KEPT) this.decided.clear();
    const refusal = this.judge(host);
    this.decided.set(host, refusal ?? '');
    return refusal;
  }

  private judge(host: string): string | undefined {
    // A Host a browser sends is a name or an address and a port: never userinfo, a path or a query.
    const name = /[@/\\?#\s]/.test(host) ? undefined : hostOf(host);
    if (name !== undefined && this.allows(name)) return undefined;
    const shown = host.length > SHOWN_HOST_MAX ? `${host.slice(0, SHOWN_HOST_MAX)}...` : host;
    return this.allRequests
      ? `a request for host "${shown}" is refused: a dev server answers only to an IP address, localhost, its ` +
          "listen address's host (guarding its root token against DNS rebinding); " +
          '--dev-allowed-host NAME adds a name'
      : `a browser's request for host "${shown}" is refused: that is not a name of this server ` +
          '(add it to browser_hosts in the configuration file if browsers should reach the server by it)';
  }

  private allows(name: string): boolean {
    if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost')) return true;
    return this.names.has(name);
  }
}
