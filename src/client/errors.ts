/**
 * The errors the API client throws. They carry what went wrong and nothing about how a program reports it: the
 * CLI turns every ClientError into exit code 1 (program.ts, reportError), the operator into a status condition.
 */
import type { Secret } from './wire.js';

/** Every error the client throws on purpose: the server could not be reached, or answered an error or nonsense. */
export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientError';
  }
}

/**
 * A non-2xx answer, with the server's `errors` list. `secret` is the body when it carried data or warnings (e.g. a
 * write to a KV v2 mount without data/ is a 404 with a warning): Vault's client returns it along with the error,
 * and the CLI prints its warnings after the error.
 */
export class ApiError extends ClientError {
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
    super(`${what}: Error making API request.\n\nURL: ${method} ${url}\nCode: ${status}. ${detail}`);
    this.name = 'ApiError';
  }
}

/** No HTTP answer at all: nothing listening, a name that does not resolve, a TLS handshake that failed. */
export class UnreachableError extends ClientError {
  constructor(
    message: string,
    readonly address: string,
    /** Why, in words (unreachable.ts). */
    readonly reason: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}
