/**
 * The API client of the CLI, the Kubernetes operator and every future agent: Vault's JSON API over HTTP(S). It is
 * configured with values (address, token, CA); where they come from (flags, environment, a token helper file, a
 * CofreConnection) is its user's business, and so is reporting its errors (errors.ts).
 */
import { ApiError, ClientError } from './errors.js';
import { AnswerTooLargeError, send } from './transport.js';
import type { ExchangeLimits, RawResponse, TlsSettings } from './transport.js';
import { unreachableError } from './unreachable.js';
import type { Secret } from './wire.js';

/** After this long without an answer the client calls `onSlow` (when set), saying what it is waiting for. */
const SLOW_NOTICE_MS = 1_000;

export interface ClientConfig extends TlsSettings, ExchangeLimits {
  address: string;
  token?: string;
  /**
   * Where `address` came from, named when the server cannot be reached: "could not reach the server at ADDRESS
   * (ORIGIN): ...". The CLI says which flag or variable it was; left out, nothing is said.
   */
  addressOrigin?: string;
  /** Added to a TLS failure's reason: how to give a private CA, in its user's words (a flag, a field). */
  caHint?: string;
  /** Called once when a request has had no answer for a second: "Waiting for ADDRESS to answer GET /v1/...". */
  onSlow?: (message: string) => void;
  /**
   * Response wrapping for every request (X-Vault-Wrap-TTL, a duration such as "5m"): the server answers with
   * wrap_info, the answer itself waiting in a single-use wrapping token. Unset: only sys/wrapping/wrap is wrapped,
   * for DEFAULT_WRAP_TTL, as Vault's client does.
   */
  wrapTtl?: string;
}

/** Vault's client wraps sys/wrapping/wrap for this long when no wrap TTL is set (api.DefaultWrappingTTL). */
export const DEFAULT_WRAP_TTL = '5m';

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | string[]>;
  /** Describes the operation in error messages, e.g. "reading secret/foo". */
  what?: string;
  contentType?: string;
  /**
   * How to treat a 404: "null" answers null, or the body when it has data or warnings (reads, as Vault's client:
   * a deleted KV v2 version is a 404 with its metadata), but only when the server gave no reason: a 404 whose
   * `errors` say why (no mount or route there) is an ApiError, so "No value found" never hides "no such mount".
   * "error" (the default) throws an ApiError for every 404, as for writes.
   */
  notFound?: 'null' | 'error';
  /** Overrides the configured token (null sends none). */
  token?: string | null;
  /** false: never wrapped, whatever the configured wrap TTL (the CLI's own look-ups, such as kv's preflight). */
  wrap?: boolean;
}

/** Request paths are relative to /v1; each segment is escaped, the slashes kept. */
export function apiUrl(address: string, path: string, query?: Record<string, string | string[]>): string {
  const clean = path.replace(/^\/+/, '');
  const encoded = clean.split('/').map(encodeURIComponent).join('/');
  let url = `${address.replace(/\/+$/, '')}/v1/${encoded}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  return url;
}

export class VaultClient {
  constructor(readonly config: ClientConfig) {}

  get address(): string {
    return this.config.address;
  }

  get token(): string | undefined {
    return this.config.token;
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const url = apiUrl(this.config.address, path, opts.query);
    const what = opts.what ?? `${method} ${path}`;
    const headers: Record<string, string> = { 'X-Vault-Request': 'true' };
    const token = opts.token === undefined ? this.config.token : opts.token;
    if (token) headers['X-Vault-Token'] = token;
    const wrapTtl = opts.wrap === false ? undefined : this.wrapTtlFor(method, path);
    if (wrapTtl) headers['X-Vault-Wrap-TTL'] = wrapTtl;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = opts.contentType ?? 'application/json';
    }
    const onSlow = this.config.onSlow;
    const notice = onSlow
      ? setTimeout(
          () => onSlow(`Waiting for ${this.config.address} to answer ${method} /v1/${path}...`),
          SLOW_NOTICE_MS,
        )
      : undefined;
    let res: RawResponse;
    try {
      res = await send(method, url, headers, body, this.config, this.config);
    } catch (err) {
      if (err instanceof AnswerTooLargeError) throw new ClientError(`${what}: ${err.message} (${url})`);
      throw unreachableError(this.config.address, err, this.config);
    } finally {
      clearTimeout(notice);
    }
    let parsed: unknown = null;
    if (res.text.trim() !== '') {
      try {
        parsed = JSON.parse(res.text);
      } catch {
        if (res.status < 400) throw new ClientError(`${what}: invalid JSON in the response from ${url}`);
      }
    }
    const secret = parsed as Secret | null;
    const hasData =
      secret !== null && typeof secret === 'object' && (hasEntries(secret.data) || hasEntries(secret.warnings));
    const errors = (parsed as { errors?: unknown } | null)?.errors;
    const list = Array.isArray(errors) ? errors.map(String) : [];
    if (res.status === 404 && opts.notFound === 'null' && (hasData || list.length === 0)) {
      return hasData ? parsed : null;
    }
    if (res.status >= 400) {
      // A write answered 404 with warnings did nothing: an error, as in Vault (whose client returns the body too).
      const raw = secret !== null && typeof secret === 'object' ? undefined : res.text;
      throw new ApiError(what, method, url, res.status, list, raw, hasData ? (secret ?? undefined) : undefined);
    }
    return parsed;
  }

  /** The wrap TTL a request is sent with: the configured one, else Vault's default for sys/wrapping/wrap. */
  private wrapTtlFor(method: string, path: string): string | undefined {
    if (this.config.wrapTtl) return this.config.wrapTtl;
    const wrapPath = path.replace(/^\/+/, '') === 'sys/wrapping/wrap';
    return wrapPath && (method === 'PUT' || method === 'POST') ? DEFAULT_WRAP_TTL : undefined;
  }

  read(path: string, query?: Record<string, string | string[]>): Promise<Secret | null> {
    return this.request('GET', path, { query, what: `reading ${path}`, notFound: 'null' }) as Promise<Secret | null>;
  }

  /**
   * Lists with the LIST verb. Servers whose HTTP parser rejects unknown methods (Node's does, before any route
   * runs) answer a bare 400/405/501 without Vault's `errors`; then the list is retried as Vault's Go client sends
   * it, `GET ?list=true`.
   */
  async list(path: string): Promise<Secret | null> {
    const what = `listing ${path}`;
    try {
      return (await this.request('LIST', path, { what, notFound: 'null' })) as Secret | null;
    } catch (err) {
      if (!(err instanceof ApiError) || err.errors.length > 0 || ![400, 405, 501].includes(err.status)) throw err;
    }
    return (await this.request('GET', path, { what, query: { list: 'true' }, notFound: 'null' })) as Secret | null;
  }

  write(path: string, body?: unknown, method = 'PUT'): Promise<Secret | null> {
    return this.request(method, path, {
      body: body ?? {},
      what: `writing ${path}`,
    }) as Promise<Secret | null>;
  }

  /** A JSON merge patch, as `kv patch` sends. */
  patch(path: string, body: unknown): Promise<Secret | null> {
    return this.request('PATCH', path, {
      body,
      what: `patching ${path}`,
      contentType: 'application/merge-patch+json',
    }) as Promise<Secret | null>;
  }

  delete(path: string, query?: Record<string, string | string[]>): Promise<Secret | null> {
    return this.request('DELETE', path, {
      query,
      what: `deleting ${path}`,
    }) as Promise<Secret | null>;
  }
}

function hasEntries(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return value !== null && typeof value === 'object' && Object.keys(value).length > 0;
}
