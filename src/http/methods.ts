/**
 * Which HTTP methods reach the core, and as which verb. The core turns every verb it does not know as a read,
 * list, delete or patch into an update (a write), so an unlisted method must never get that far: the mapping
 * below is an allow-list, and everything else is answered 405 with an `Allow` header, whichever layer sees it
 * first (the router, Node's `connect` event for CONNECT, or the parser's clientError for methods llhttp does
 * not know at all, such as `FOO`).
 */
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import type { HttpVerb } from '../core/request/index.js';

/** Vault's methods. LIST never arrives as such: list-method.ts rewrites it to `GET ...?list=true`. */
const VERBS: ReadonlyMap<string, HttpVerb> = new Map<string, HttpVerb>([
  ['GET', 'GET'],
  ['PUT', 'PUT'],
  ['POST', 'POST'],
  ['DELETE', 'DELETE'],
  ['PATCH', 'PATCH'],
  ['LIST', 'LIST'],
]);

export const ALLOW = [...VERBS.keys()].join(', ');

/**
 * Paths that answer HEAD as a GET without a body. Vault documents HEAD only for sys/health; elsewhere its HEAD
 * is an operation no path implements. A general "HEAD = GET" would not do here: some reads have effects
 * (database/creds issues a credential), whose answer HEAD would throw away.
 */
const HEAD_AS_GET = new Set(['sys/health']);

/** The routed methods: Vault's, and HEAD for the paths above (Fastify's automatic HEAD routes are off). */
export const ROUTED_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD'];

/** The verb for a request's method on an API path (without "/v1/"), or undefined when it is not allowed. */
export function verbFor(method: string, path: string): HttpVerb | undefined {
  if (method === 'HEAD') return HEAD_AS_GET.has(path) ? 'GET' : undefined;
  return VERBS.get(method);
}

/** Whether a method is one the API knows on some path (for 404 versus 405 outside the routed paths). */
export function isApiMethod(method: string): boolean {
  return VERBS.has(method);
}

export function methodNotAllowedMessage(method: string | undefined): string {
  const which = method ? `method ${method} not allowed` : 'HTTP method not allowed';
  return `${which}; the API takes ${ALLOW}${method === 'HEAD' ? ' (HEAD only on sys/health)' : ''}`;
}

/** A complete 405 written straight on a connection the HTTP server will not use again. */
function write405(socket: Duplex): void {
  if (!socket.writable) return;
  const body = JSON.stringify({ errors: [methodNotAllowedMessage(undefined)] });
  socket.write(
    'HTTP/1.1 405 Method Not Allowed\r\n' +
      `Allow: ${ALLOW}\r\nCache-Control: no-store\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

type ClientErrorListener = (err: Error & { code?: string }, socket: Duplex) => void;

/**
 * Answers 405 to the methods the router never sees. Call it after the server's own clientError listeners are
 * registered (Fastify's, when built) and before installListMethodSupport, which must stay in front: a LIST
 * fails llhttp's method check too, and is taken over before this listener is asked.
 */
export function refuseUnknownMethods(server: http.Server | https.Server): void {
  const emitter: EventEmitter = server;
  const others = emitter.rawListeners('clientError') as ClientErrorListener[];
  emitter.removeAllListeners('clientError');
  emitter.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code !== 'HPE_INVALID_METHOD' || socket.destroyed) {
      for (const listener of others) listener.call(server, err, socket);
      return;
    }
    write405(socket);
    socket.destroy();
  });
  // Without a listener Node drops a CONNECT's connection unanswered; a tunnel is never what a client wants here.
  emitter.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    write405(socket);
    socket.end(() => socket.destroy());
  });
}
