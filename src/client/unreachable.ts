/**
 * "Could not reach the server" errors: a connection that failed before any HTTP answer (nothing listening, a host
 * name that does not resolve, a TLS handshake that failed). They say which address was used and, when the
 * program that configured the client says so, where it came from (the CLI: a wrong or missing VAULT_ADDR /
 * COFRE_ADDR is the usual cause), and nothing about the request that happened to be first (often an internal
 * lookup the user never asked for).
 */
import { UnreachableError } from './errors.js';

interface NodeError {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
}

/** fetch wraps the socket's error in `cause` ("fetch failed"); node:http and node:https reject with it directly. */
function rootCause(err: unknown): NodeError {
  const outer = (err ?? {}) as NodeError;
  return outer.cause && typeof outer.cause === 'object' ? (outer.cause as NodeError) : outer;
}

/**
 * Why the connection failed, in words, from the error Node gave. `caHint` is added to a TLS failure: how to give
 * a private CA, in the words of the program that configured the client.
 */
export function connectionReason(err: unknown, caHint?: string): string {
  const cause = rootCause(err);
  const code = cause.code ?? '';
  const message = (cause.message ?? '').trim();
  if ((err as NodeError | undefined)?.name === 'TimeoutError' || code === 'ETIMEDOUT' || /timed out/.test(message)) {
    return 'no answer in time (timed out)';
  }
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED): is the server running and listening there?';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve (DNS: ${message})`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `the connection was closed without an answer`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return 'TLS failed: the server does not speak TLS there (try http://)';
  if (/SSL|TLS|CERT/.test(code) || /certificate/i.test(message)) {
    return `TLS failed: ${message}${caHint ? ` (${caHint})` : ''}`;
  }
  return message || code || String(err);
}

const NOT_A_URL = 'the address is not an http:// or https:// URL (expected e.g. http://127.0.0.1:8200)';

export interface UnreachableContext {
  /** Where the address came from, said after it ("address from VAULT_ADDR"); left out when not given. */
  addressOrigin?: string;
  /** Added to a TLS failure (see connectionReason). */
  caHint?: string;
}

export function unreachableError(address: string, err: unknown, context: UnreachableContext = {}): UnreachableError {
  // "host:8200" parses as a URL of scheme "host:" (fetch then says "unknown scheme"): name the real mistake.
  const reason = /^https?:\/\/[^/]/i.test(address) ? connectionReason(err, context.caHint) : NOT_A_URL;
  const from = context.addressOrigin ? ` (${context.addressOrigin})` : '';
  return new UnreachableError(`could not reach the server at ${address}${from}: ${reason}`, address, reason);
}
