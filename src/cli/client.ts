import { CliError } from './errors.js';
import { readStoredToken } from './token-helper.js';
import { send } from './transport.js';
import type { RawResponse } from './transport.js';
import { unreachableError } from './unreachable.js';
import type { AddressSource } from './unreachable.js';

export const DEFAULT_ADDRESS = 'http://127.0.0.1:8200';
/** After this long without an answer the client says on stderr what it is waiting for. */
const SLOW_NOTICE_MS = 1_000;

export interface ClientConfig {
  address: string;
  /** Where `address` came from (resolveConfig sets it), named when the server cannot be reached. */
  addressSource?: AddressSource;
  token?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
}

export interface ConnectionFlags {
  address?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
}

/** `--address`, else `COFRE_ADDR`, else `VAULT_ADDR`, else http://127.0.0.1:8200; and which one it was. */
export function resolveAddressFrom(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { address: string; source: AddressSource } {
  if (flag) return { address: flag, source: '-address' };
  if (env.COFRE_ADDR) return { address: env.COFRE_ADDR, source: 'COFRE_ADDR' };
  if (env.VAULT_ADDR) return { address: env.VAULT_ADDR, source: 'VAULT_ADDR' };
  return { address: DEFAULT_ADDRESS, source: 'default' };
}

export function resolveAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolveAddressFrom(flag, env).address;
}

/** `COFRE_TOKEN`, else `VAULT_TOKEN`, else the token helper file. */
export function resolveToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.COFRE_TOKEN || env.VAULT_TOKEN || readStoredToken(env);
}

/** `--ca-cert`, else `COFRE_CACERT`, else `VAULT_CACERT`. */
export function resolveCaCert(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag || env.COFRE_CACERT || env.VAULT_CACERT || undefined;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'true', 'yes'].includes(value.toLowerCase());
}

export function resolveConfig(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const { address, source } = resolveAddressFrom(flags.address, env);
  return {
    address,
    addressSource: source,
    token: resolveToken(env),
    caCert: resolveCaCert(flags.caCert, env),
    tlsSkipVerify: flags.tlsSkipVerify || truthy(env.COFRE_SKIP_VERIFY ?? env.VAULT_SKIP_VERIFY),
  };
}

export interface SecretAuth {
  client_token: string;
  accessor: string;
  policies?: string[] | null;
  token_policies?: string[] | null;
  identity_policies?: string[] | null;
  metadata?: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  [key: string]: unknown;
}

/** The Vault response envelope. */
export interface Secret {
  request_id?: string;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  data?: Record<string, unknown> | null;
  auth?: SecretAuth | null;
  warnings?: string[] | null;
  wrap_info?: unknown;
  [key: string]: unknown;
}

/**
 * A non-2xx answer, with the server's `errors` list. Exit code 1. `secret` is the body when it carried data or
 * warnings (e.g. a write to a KV v2 mount without data/ is a 404 with a warning): Vault's client returns it along
 * with the error, and the CLI prints its warnings after the error.
 */
export class ApiError extends CliError {
  constructor(
    what: string,
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly errors: string[],
    /** The body when it was not JSON (Vault then prints it as the "Raw Message"). */
    raw: string | undefined,
    readonly secret?: Secret,
  ) {
    const list = errors.map((e) => `\n* ${e}`).join('');
    const detail = raw === undefined ? `Errors:${list && `\n${list}`}` : `Raw Message:\n\n${raw.trim()}`;
    super(`${what}: Error making API request.\n\nURL: ${method} ${url}\nCode: ${status}. ${detail}`, 1);
    this.name = 'ApiError';
  }
}

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
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = opts.contentType ?? 'application/json';
    }
    const notice = setTimeout(() => {
      process.stderr.write(`Waiting for ${this.config.address} to answer ${method} /v1/${path}...\n`);
    }, SLOW_NOTICE_MS);
    let res: RawResponse;
    try {
      res = await send(method, url, headers, body, this.config);
    } catch (err) {
      throw unreachableError(this.config.address, this.config.addressSource, err);
    } finally {
      clearTimeout(notice);
    }
    let parsed: unknown = null;
    if (res.text.trim() !== '') {
      try {
        parsed = JSON.parse(res.text);
      } catch {
        if (res.status < 400) throw new CliError(`${what}: invalid JSON in the response from ${url}`, 1);
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

export function createClient(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): VaultClient {
  return new VaultClient(resolveConfig(flags, env));
}
