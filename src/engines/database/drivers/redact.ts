/**
 * Turning what a database client throws into the DatabaseError a client of Cofre may see: passwords taken out of
 * the message, and "cannot reach the database" kept apart from "a statement failed" (the engine retries the first,
 * and reports the second to the caller).
 */
import { DatabaseError } from './driver.js';

export const REDACTED = '[redacted]';

/** Shortest piece of a secret that is still taken out of a message: shorter runs occur in ordinary words. */
const MIN_FRAGMENT = 4;

/**
 * Replaces every occurrence of each secret (as given, and as it appears percent-encoded in a URL), and every
 * piece of one at least MIN_FRAGMENT long: databases quote statements cut short (MySQL's "near '…'" stops at 80
 * characters, PostgreSQL's "at or near" gives one token), which can hold part of a password.
 */
export function redact(message: string, secrets: readonly string[]): string {
  const forms = secrets.filter((s) => s.length > 0).flatMap((s) => [s, encodeURIComponent(s)]);
  // Longest first, so that a secret containing another is replaced whole.
  forms.sort((a, b) => b.length - a.length);
  let out = forms.reduce((msg, s) => msg.split(s).join(REDACTED), message);
  for (const secret of forms) {
    for (let length = secret.length - 1; length >= MIN_FRAGMENT; length--) {
      for (let start = 0; start + length <= secret.length; start++) {
        const piece = secret.slice(start, start + length);
        if (out.includes(piece)) out = out.split(piece).join(REDACTED);
      }
    }
  }
  return out;
}

/** Where a connection points, for messages: never the URL, which may carry credentials. */
export interface Endpoint {
  name: string;
  /** HOST:PORT, or a socket's path. */
  address: string;
}

/**
 * The database could not be used at all: refused, unknown host, timed out, or the admin login was rejected. The
 * message tells the last apart from the others, since its fix is the connection's credentials, not the network.
 */
export function unreachable(endpoint: Endpoint, err: unknown, secrets: readonly string[]): DatabaseError {
  const reason = redact(reasonOf(err), secrets);
  const what = isLoginRefused(err) ? 'the database refused the login' : 'cannot reach the database';
  return new DatabaseError(`connection "${endpoint.name}": ${what} at ${endpoint.address}: ${reason}`, true);
}

const LOGIN_REFUSED_CODES = new Set([
  '28P01', // PostgreSQL invalid_password
  '28000', // PostgreSQL invalid_authorization_specification (no pg_hba.conf entry, role may not log in)
  'ER_ACCESS_DENIED_ERROR', // mysql2: MySQL and MariaDB 1045
  'ER_DBACCESS_DENIED_ERROR',
]);

function isLoginRefused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && LOGIN_REFUSED_CODES.has(code);
}

/** A statement failed on a working connection; `what` says what the driver was doing ("creating user x"). */
export function statementFailed(
  endpoint: Endpoint,
  what: string,
  err: unknown,
  secrets: readonly string[],
): DatabaseError {
  if (isConnectionLost(err)) return unreachable(endpoint, err, secrets);
  return new DatabaseError(redact(`connection "${endpoint.name}": ${what}: ${reasonOf(err)}`, secrets));
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST', // mysql2: the server closed the connection
  '57P01', // PostgreSQL admin_shutdown: the server is stopping
  '57P03', // PostgreSQL cannot_connect_now: the server is starting or shutting down
]);

/** True when an error thrown by a query means the connection or server went away, not that the query was wrong. */
export function isConnectionLost(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isConnectionLost)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  // pg reports a dropped socket and its own connect timeout only in words.
  return /Connection terminated|timeout exceeded when trying to connect|connection timeout/i.test(message);
}

/**
 * The text of an error. Node reports a refused connection to a name with several addresses (localhost: ::1 and
 * 127.0.0.1) as an AggregateError with an empty message; its inner errors say what happened.
 */
export function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  const inner = (err as { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length > 0) return inner.map(reasonOf).join('; ');
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err.name;
}

/** Vault refuses to create a user from nothing too (dbutil.ErrEmptyCreationStatement). */
export function noCreationStatements(name: string): DatabaseError {
  return new DatabaseError(`connection "${name}": the role has no creation statements`);
}
