import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { StreamFrame } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { CofreError } from '../core/errors.js';
import { setOwn } from '../core/own-keys.js';
import { rawBodyRequest } from '../core/raw-body.js';
import { handleRequest } from '../core/request/index.js';
import { envelope, errorBody } from './envelope.js';
import { serveHelp } from './help.js';
import { wrapTtlOf } from './wrap-ttl.js';
import { jsonLimitExceeded } from './json-limits.js';
import { installListMethodSupport } from './list-method.js';
import { logRequests } from './request-log.js';
import {
  ALLOW,
  isApiMethod,
  methodNotAllowedMessage,
  refuseUnknownMethods,
  ROUTED_METHODS,
  verbFor,
} from './methods.js';
import type { Metrics } from './metrics.js';
import type { ServeRequest } from '../workers/write-forwarding.js';
import { registerUi, uiBuilt, UI_BUILD_DIR, type UiOptions } from './ui.js';
import { BrowserHosts } from './browser-hosts.js';
import { RequestLogger } from './request-logger.js';

export interface HttpOptions {
  logLevel: string;
  /** Where log lines go (stdout when unset). */
  logStream?: NodeJS.WritableStream;
  /** Log every answered request at info (dev mode, as Vault's). */
  requestLog?: boolean;
  bodyLimit: number;
  tls?: { cert: Buffer; key: Buffer };
  metrics: Metrics;
  /** Serve the web UI at /ui/ (dev mode, or `ui = true` in the configuration file); off when unset. */
  ui?: UiOptions;
  /** How often an event stream with nothing to say writes a heartbeat (STREAM_HEARTBEAT_MS when unset). */
  streamHeartbeatMs?: number;
  /** Serves a parsed request instead of this thread's core (a server thread hands writes to the first one). */
  serveRequest?: ServeRequest;
  /** Names browsers may reach this server by besides IP addresses and localhost (browser-hosts.ts). */
  browserHosts?: readonly string[];
  /** Check every request's Host, not only browsers' (a dev server: its root token may be well known). */
  checkEveryHost?: boolean;
}

export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;

function tokenOf(req: FastifyRequest): string | undefined {
  const header = req.headers['x-vault-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  return undefined;
}

/** Query values as single strings (the last wins when a key repeats), as Vault reads them. */
function flatQuery(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    setOwn(out, k, Array.isArray(v) ? String(v[v.length - 1]) : String(v));
  }
  return out;
}

function bodyObject(req: FastifyRequest): Record<string, unknown> {
  const body = req.body;
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new CofreError(400, 'invalid request body: expected a JSON object');
  }
  return body as Record<string, unknown>;
}

function methodNotAllowed(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .code(405)
    .header('allow', ALLOW)
    .send(errorBody([methodNotAllowedMessage(req.method)]));
}

/** Whether this server serves the web UI: not asked to, asked to but not built, or served at /ui/. */
export type UiState = 'off' | 'unbuilt' | 'served';

const API_HINT = 'the API is under /v1/ (try GET /v1/sys/health)';
const UI_PAGE_ANSWERS: Record<UiState, string> = {
  off: `the web UI is off on this server (dev mode, or ui = true in the configuration file, turns it on); ${API_HINT}`,
  unbuilt: `the web UI is not built (npm run build builds it into web/dist); ${API_HINT}`,
  served: `the web UI is at /ui/; ${API_HINT}`,
};
/** Long enough for any real path; an error answer does not echo an arbitrarily long one. */
const SHOWN_PATH_MAX = 256;

/**
 * Why a path outside /v1/ has no answer. Vault redirects "/" to its web UI at /ui/; Cofre does that in dev mode,
 * and otherwise tells a browser (or a VAULT_ADDR with a path in it) where the UI and the API are instead of
 * answering an empty error list.
 */
export function notFoundMessage(method: string, url: string, ui: UiState = 'off'): string {
  const path = url.split('?')[0] ?? '/';
  if (path === '/' || path === '/ui' || path.startsWith('/ui/')) return UI_PAGE_ANSWERS[ui];
  const shown = path.length > SHOWN_PATH_MAX ? `${path.slice(0, SHOWN_PATH_MAX)}...` : path;
  return `no handler for ${method} ${shown}; the API is under /v1/`;
}

const WRITE_VERBS: ReadonlySet<string> = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);
const CROSS_SITE_REFUSED =
  'a write without a token, sent by a page of another site, is refused (the browser said so in Sec-Fetch-Site or Origin)';

/**
 * Whether a browser says a page of another site sent this request (Fetch Metadata; clients that are not browsers
 * send no such header, and the web UI is same-origin). A page of another site cannot add X-Vault-Token (there is no
 * CORS), but it can POST to what needs no token, even a text/plain body, which is parsed as JSON as Vault does: the
 * initialisation of a new server, an unseal reset, a root generation or rekey attempt, a login.
 *
 * Browsers too old for Fetch Metadata still send Origin with a cross-origin POST: a page of another host (or port)
 * than the one asked, or an opaque one ("null": a sandboxed frame, a file), is another site to them too.
 */
function fromAnotherSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'cross-site' || site === 'same-site';
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (!URL.canParse(origin)) return true;
  return new URL(origin).host !== req.headers.host;
}

async function serve(
  serveRequest: ServeRequest,
  core: Core,
  req: FastifyRequest,
  reply: FastifyReply,
  heartbeatMs: number,
): Promise<unknown> {
  const path = (req.params as { '*': string })['*'];
  const verb = verbFor(req.method, path);
  if (!verb) return methodNotAllowed(req, reply);
  const query = flatQuery(req.query);
  // As Vault's, a non-empty help parameter asks for the path's help whatever the method: nothing else runs.
  if (query.help !== undefined && query.help !== '') {
    const help = { path, token: tokenOf(req), requestId: req.id, remoteAddress: req.ip };
    return reply.code(200).send(await serveHelp(core, help));
  }
  if (verb === 'PATCH' && !String(req.headers['content-type'] ?? '').startsWith('application/merge-patch+json')) {
    return reply.code(415).send(errorBody(['PATCH requires Content-Type: application/merge-patch+json']));
  }
  if (WRITE_VERBS.has(verb) && tokenOf(req) === undefined && fromAnotherSite(req)) {
    return reply.code(403).send(errorBody([CROSS_SITE_REFUSED]));
  }
  // Read before anything runs: a bad wrap TTL must not leave the request done and its answer in clear.
  const wrapTtl = wrapTtlOf(req.headers['x-vault-wrap-ttl']);
  // Server-sent-event clients resume by sending the last id they saw.
  const lastEventId = req.headers['last-event-id'];
  if (typeof lastEventId === 'string' && query.index === undefined) query.index = lastEventId;
  const handled = await serveRequest({
    verb,
    path,
    query,
    body: verb === 'PUT' || verb === 'POST' || verb === 'PATCH' ? bodyObject(req) : {},
    token: tokenOf(req),
    requestId: req.id,
    remoteAddress: req.ip,
    wrapTtl,
  });
  const response = handled.response;
  if (response?.stream) return streamEvents(reply, response.stream, heartbeatMs);
  if (response?.rawBody !== undefined) {
    return reply
      .code(response.status ?? 200)
      .type(response.contentType ?? 'application/json')
      .send(response.rawBody);
  }
  if (!response || (response.data === undefined && !response.auth && !response.warnings && !response.wrapInfo)) {
    return reply.code(response?.status ?? 204).send();
  }
  return reply.code(response.status ?? 200).send(envelope(response, req.id, handled.mountType));
}

/**
 * An event stream with nothing to say writes a comment line this often: proxies keep it open, and a client that
 * hears nothing for several of these knows its connection is dead (the cluster agent gives up after 45 s).
 */
export const STREAM_HEARTBEAT_MS = 15_000;

/** Writes server-sent events until the stream ends or the client leaves; a comment line keeps proxies open. */
async function streamEvents(
  reply: FastifyReply,
  stream: (signal: AbortSignal) => AsyncIterable<StreamFrame>,
  heartbeatMs: number,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  res.flushHeaders();
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
  try {
    for await (const frame of stream(abort.signal)) {
      if (abort.signal.aborted) break;
      res.write(`${frame.id ? `id: ${frame.id}\n` : ''}event: ${frame.event}\ndata: ${frame.data}\n\n`);
    }
  } catch (err) {
    // The headers are gone: a failure (the server sealing under an open stream) ends it with an error event the
    // client reconnects on. A CofreError's message is written for callers; anything else stays in the log.
    const message = err instanceof CofreError ? err.message : 'internal error';
    if (!(err instanceof CofreError)) reply.log.error({ err }, 'event stream failed');
    if (!res.writableEnded) res.write(`event: error\ndata: ${JSON.stringify({ error: message })}\n\n`);
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}

/** How long a request answered before its body was read may go on sending it (as a web server's lingering close). */
export const UNREAD_BODY_LINGER_MS = 2000;

/**
 * A body left unread (application/octet-stream, for a snapshot restore, has no body limit) whose request was answered
 * without it: refused before the handler read it, or sent to another path. Node.js goes on reading and discarding it
 * for as long as the client sends, on a connection nobody can use meanwhile. The connection is given a moment, so
 * that a client finishing its upload still reads the answer (closing with unread bytes resets the connection, and the
 * client may lose the answer), and is then closed.
 */
function closeAfterLingering(req: IncomingMessage): void {
  const timer = setTimeout(() => {
    if (!req.complete) req.socket.destroy();
  }, UNREAD_BODY_LINGER_MS);
  timer.unref();
  req.once('end', () => clearTimeout(timer));
}

/**
 * The Fastify server: one catch-all /v1 route hands every request to the core, whose path records validate each
 * path's fields. Errors by kind: CofreError and Fastify's own 4xx keep their status and message; anything else
 * is logged with its request id and answered 500 with only that id.
 */
export async function buildHttpServer(core: Core, opts: HttpOptions): Promise<FastifyInstance> {
  const serveRequest: ServeRequest = opts.serveRequest ?? ((req) => handleRequest(core, req));
  const app = Fastify({
    logger: { level: opts.logLevel, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    // Per-request info lines would cost throughput and can carry paths; errors are logged by the handler below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    // Change-stream subscribers hold their connections open: closing must end them, not wait for them.
    forceCloseConnections: true,
    genReqId: () => randomUUID(),
    childLoggerFactory: RequestLogger.factory,
    // A HEAD route per GET route would run GET's handler; which paths take HEAD is methods.ts's to say.
    exposeHeadRoutes: false,
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
  });

  // Vault clients send JSON under any content type (or none); parse every body as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    const exceeded = jsonLimitExceeded(text);
    if (exceeded) return done(new CofreError(400, `failed to parse JSON input: ${exceeded}`), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      // V8's message quotes the input around the error, which may be a secret: keep only its position.
      const position = /position (\d+)/.exec((err as Error).message)?.[1];
      const where = position ? ` (at character ${position})` : text.trim().length > 0 ? '' : ' (empty)';
      done(new CofreError(400, `failed to parse JSON input: the body is not valid JSON${where}`), undefined);
    }
  });

  // Bytes, not JSON (snapshot restores): left unread for the handler, which streams them, so no body limit here.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, rawBodyRequest(payload)));

  app.setErrorHandler((err: FastifyError | CofreError, req, reply) => {
    if (err instanceof CofreError) return reply.code(err.status).send(errorBody(err.message ? [err.message] : []));
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send(errorBody([err.message]));
    req.log.error({ err, requestId: req.id }, 'internal error');
    return reply.code(500).send(errorBody([`internal error; request id ${req.id}`]));
  });
  // Before anything else, the UI's files included: under a rebound name a page could read them all.
  const browserHosts = new BrowserHosts(opts.browserHosts ?? [], opts.checkEveryHost ?? false);
  app.addHook('onRequest', (req, reply, done) => {
    const refusal = browserHosts.refusal(req.headers);
    if (refusal === undefined) return done();
    void reply.code(403).send(errorBody([refusal]));
  });
  // Methods no route takes (OPTIONS, TRACE, PROPFIND...) land here too: they are refused as such, not as a path.
  const uiState: UiState = !opts.ui ? 'off' : uiBuilt(opts.ui.dir ?? UI_BUILD_DIR) ? 'served' : 'unbuilt';
  if (opts.ui && uiState === 'served') registerUi(app, opts.ui);
  app.setNotFoundHandler((req, reply) =>
    isApiMethod(req.method)
      ? reply.code(404).send(errorBody([notFoundMessage(req.method, req.url, uiState)]))
      : methodNotAllowed(req, reply),
  );

  // Any API answer may hold a secret or a token, error answers included: no cache may keep one (as Vault marks
  // every response). onSend sees every reply sent through Fastify; the event stream and the raw 405s set their own.
  // The hooks take callbacks rather than being async: Fastify runs an async hook through a promise of its own,
  // per request.
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('cache-control', 'no-store');
    // Vault answers "application/json" without a charset, and hvac reads errors only under that exact type.
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json;')) {
      reply.header('content-type', 'application/json');
    }
    done(null, payload);
  });

  if (opts.requestLog) logRequests(app);
  app.addHook('onResponse', (req, reply, done) => {
    opts.metrics.recordRequest(req.method, reply.statusCode, reply.elapsedTime / 1000);
    // (A request injected without a connection, as tests make, has no socket to close.)
    if (!req.raw.complete && typeof req.raw.socket?.destroy === 'function') closeAfterLingering(req.raw);
    done();
  });

  app.route({
    method: ROUTED_METHODS,
    url: '/v1/*',
    schema: {
      querystring: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array' }] } },
      headers: {
        type: 'object',
        properties: { 'x-vault-token': { type: 'string', maxLength: 4096 } },
      },
    },
    handler: (req, reply) => serve(serveRequest, core, req, reply, opts.streamHeartbeatMs ?? STREAM_HEARTBEAT_MS),
  });

  await app.ready();
  refuseUnknownMethods(app.server);
  installListMethodSupport(app.server);
  return app;
}
