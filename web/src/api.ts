/**
 * The UI's only way to the server: the public /v1 API with the signed-in user's token in X-Vault-Token, exactly as
 * the CLI or any Vault client calls it. Errors carry the server's own messages, which the pages show as they are.
 */
import { encodePath, UnsafePathError } from './api-path';
import { currentToken } from './session';

// The API answers are Vault's JSON envelopes; each page reads the fields it knows.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    /** The whole answer: a KV v2 read of a deleted version answers 404 with the version's metadata. */
    readonly body?: Json,
  ) {
    super(errors.length > 0 ? errors.join('; ') : `the server answered ${status} without a message`);
  }
}

export interface CallOptions {
  body?: unknown;
  /** Query parameters; the token never goes here (a URL ends up in logs and history). */
  query?: Record<string, string>;
  /** Send the body as a JSON merge patch (KV v2's PATCH). */
  mergePatch?: boolean;
  /** Use this token instead of the session's (sign-in checks a token before keeping it). */
  token?: string;
}

export { encodePath } from './api-path';

export async function call(method: string, path: string, opts: CallOptions = {}): Promise<Json> {
  const headers: Record<string, string> = {};
  const token = opts.token ?? currentToken();
  if (token) headers['X-Vault-Token'] = token;
  if (opts.body !== undefined)
    headers['Content-Type'] = opts.mergePatch ? 'application/merge-patch+json' : 'application/json';
  const query = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : '';
  let url: string;
  try {
    url = `/v1/${encodePath(path)}${query}`;
  } catch (err) {
    if (err instanceof UnsafePathError) throw new ApiError(400, [err.message]);
    throw err;
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, ['the server could not be reached']);
  }
  const text = await res.text();
  let parsed: Json = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const errors = Array.isArray(parsed?.errors) ? parsed.errors.map(String) : [];
    throw new ApiError(res.status, errors, parsed);
  }
  return parsed;
}

/** A LIST (as GET ?list=true); a path with nothing under it is an empty list, not an error. */
export async function list(path: string): Promise<string[]> {
  try {
    const res = await call('GET', path, { query: { list: 'true' } });
    return Array.isArray(res?.data?.keys) ? res.data.keys.map(String) : [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.errors.length === 0) return [];
    throw err;
  }
}
