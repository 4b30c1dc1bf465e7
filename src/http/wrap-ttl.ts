import { durationProblemText, readDuration } from '../core/duration.js';
import { badRequest } from '../core/errors.js';

/** Long enough for any real duration; an error does not echo an arbitrarily long header back. */
const SHOWN_MAX = 64;

/**
 * The response-wrapping TTL a client asks for with X-Vault-Wrap-TTL, in whole seconds: seconds or a Go-style
 * duration, as Vault's parseutil reads it. Absent, empty or "0": no wrapping (as Vault). Anything else that is not
 * a duration of at least one second is a 400, so the request does not run and nothing is answered in clear.
 */
export function wrapTtlOf(header: string | string[] | undefined): number {
  if (header === undefined) return 0;
  const value = Array.isArray(header) ? header[header.length - 1]! : header;
  if (value.trim() === '') return 0;
  const shown = value.length > SHOWN_MAX ? `${value.slice(0, SHOWN_MAX)}...` : value;
  const read = readDuration(value);
  if (!read.ok) throw badRequest(`invalid X-Vault-Wrap-TTL "${shown}": ${durationProblemText(read.problem)}`);
  if (read.seconds === 0) return 0;
  if (read.seconds < 1) throw badRequest(`invalid X-Vault-Wrap-TTL "${shown}": must be at least 1 second`);
  return Math.floor(read.seconds);
}
