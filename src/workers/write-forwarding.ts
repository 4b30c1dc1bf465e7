/**
 * Writes served by the first server thread. With several server threads each one could serve every request, but a
 * write served by one thread costs the others too: they drop the keys it changed from their caches and read them
 * back (and, before the store numbered the change log's entries, their entries collided). Measured on two cores, a
 * write cost half as much CPU again on two threads as on one, at the same throughput (bench/README.md). So the other threads serve
 * reads themselves and hand every write to the first thread, as Vault's performance standbys forward writes to
 * the active node: the request as the core takes it (src/core/request/), parsed and checked by the HTTP layer of
 * the thread that received it, and its answer back, over a port of their own.
 *
 * Nothing about the security model changes: the first thread authenticates, authorises and audits the request as
 * if it had received it. A thread still commits writes of its own (a limited-use token's use during a read), and
 * every coherence rule between threads (src/workers/primary.ts) holds as before.
 */
import type { MessagePort } from 'node:worker_threads';
import { CofreError } from '../core/errors.js';
import { rawBodyOf } from '../core/raw-body.js';
import type { Response } from '../core/backend.js';
import type { Core } from '../core/core.js';
import type { HandledRequest, IncomingRequest } from '../core/request/index.js';
import { route, validateApiPath } from '../core/request/route.js';
import { rpc } from './rpc.js';

/** What the HTTP layer needs of a handled request to answer it. */
export type ServedRequest = Pick<HandledRequest, 'response' | 'mountType'>;

export type ServeRequest = (req: IncomingRequest) => Promise<ServedRequest>;

const WRITE_VERBS: ReadonlySet<string> = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

/**
 * Whether a request goes to the first thread: the verbs that write, except
 * - paths whose writes store nothing (PathRecord.storesNothing), unless the answer is to be wrapped (which stores
 *   it);
 * - paths served without a token (logins, unseal): a login's password hash or signature check is the heaviest
 *   work a request does here, and every thread should share it;
 * - requests that bring no token to a path that needs one: refused where they arrive, so that a flood of them
 *   (bodies up to the limit) costs the thread that serves every write nothing;
 * - a body of raw bytes (a snapshot to restore), which cannot cross a port.
 * A path that does not validate or names no mount here is sent too: the first thread answers it as it would.
 */
export function servedByFirstThread(core: Core, req: IncomingRequest): boolean {
  if (!WRITE_VERBS.has(req.verb) || rawBodyOf(req.body) !== undefined) return false;
  try {
    validateApiPath(req.path);
  } catch {
    return true;
  }
  // The mount table as the first thread has it (a mount just enabled through it, say).
  core.catchUp();
  const record = route(core, req.path).route?.record;
  if (!record) return true;
  if (record.unauthenticated || (req.token === undefined && !record.wrappingToken)) return false;
  return !record.storesNothing || (req.wrapTtl ?? 0) > 0;
}

/**
 * A thread other than the first: writes go over `port` to the first thread (`forwarded` counts them), everything
 * else to `local`.
 */
export function forwardingWrites(
  core: Core,
  port: MessagePort,
  local: ServeRequest,
  forwarded: () => void = () => undefined,
): ServeRequest {
  const first = rpc(port, {});
  let gone = false;
  // The first thread closes its end when the server stops: a write on its way, or sent after, gets an answer.
  const goneError = () => new CofreError(503, 'the server is stopping: the thread that serves writes is gone');
  port.once('close', () => {
    gone = true;
    first.fail(goneError());
  });
  return (req) => {
    if (!servedByFirstThread(core, req)) return local(req);
    if (gone) return Promise.reject(goneError());
    forwarded();
    return first.call<ServedRequest>('serve', req);
  };
}

/**
 * What of a response the HTTP layer answers with (src/http/server.ts, the envelope): a handler's inner parts (a
 * lease's revocation data, a login to issue) stay on the thread that served it.
 */
function answered(response: Response): Response {
  const { data, auth, warnings, lease, status, rawBody, contentType, mergeDataToTop, wrapInfo } = response;
  const out: Response = {};
  if (data !== undefined) out.data = data;
  if (auth !== undefined) out.auth = auth;
  if (warnings !== undefined) out.warnings = warnings;
  if (lease !== undefined) out.lease = lease;
  if (status !== undefined) out.status = status;
  if (rawBody !== undefined) out.rawBody = rawBody;
  if (contentType !== undefined) out.contentType = contentType;
  if (mergeDataToTop !== undefined) out.mergeDataToTop = mergeDataToTop;
  if (wrapInfo !== undefined) out.wrapInfo = wrapInfo;
  return out;
}

/**
 * The first thread: serves the writes the other threads send over `ports`. A CofreError reaches the other thread
 * with its status and message; anything else is also given to `failed` here, with its stack, under the request's
 * id, which the other thread's answer (a 500) names.
 */
export function serveForwardedWrites(
  ports: MessagePort[],
  serve: ServeRequest,
  failed: (err: unknown, req: IncomingRequest) => void = () => undefined,
): void {
  for (const port of ports) {
    rpc(port, {
      serve: async (req: IncomingRequest): Promise<ServedRequest> => {
        try {
          const { response, mountType } = await serve(req);
          // Event streams answer reads only; one here could not cross the port.
          if (response?.stream) throw new Error('an event stream cannot be served through another thread');
          return { response: response && answered(response), mountType };
        } catch (err) {
          if (err instanceof CofreError) throw err;
          // Logged here, with its stack; the other thread answers 500 with the request id, which finds this line.
          failed(err, req);
          throw new Error('internal error on the first server thread');
        }
      },
    });
  }
}
