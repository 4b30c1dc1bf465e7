import type { Operation, PathRecord, Request } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest, CofreError } from '../errors.js';
import type { CompiledPath, Mounted } from '../mount-table.js';

/**
 * Step 1 of a request: from verb and path to an operation, a mount and a path record of that mount. Nothing here
 * looks at the token or the fields; a path that matches no record is only refused (404) after authorisation, so
 * that a caller that may not use a path learns nothing about it.
 */

export type HttpVerb = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' | 'LIST';

export interface IncomingRequest {
  verb: HttpVerb;
  /** The API path without "/v1/". */
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown>;
  token: string | undefined;
  requestId: string;
  remoteAddress?: string;
  /** Seconds of response wrapping asked for (X-Vault-Wrap-TTL); 0 or absent: none. */
  wrapTtl?: number;
}

export interface Route {
  mounted: Mounted;
  record: PathRecord;
  params: Record<string, string>;
  /** The path within the mount. */
  relative: string;
}

export function validateApiPath(path: string): void {
  // What nearly every request looks like, decided without splitting: no dot, no percent sign, no empty segment.
  if (!path.includes('.') && !path.includes('%') && !path.includes('//') && !path.startsWith('/')) return;
  const segments = path.split('/');
  // Also refuse percent-encoded dots: a proxy or client along the way may decode them into a traversal.
  const dots = (s: string): boolean => /^(\.|%2e){1,2}$/i.test(s);
  if (segments.some(dots)) throw badRequest(`invalid path "${path}": "." and ".." are not allowed`);
  if (segments.slice(0, -1).some((s) => s === '')) throw badRequest(`invalid path "${path}": empty path segment`);
}

// What Go's strconv.ParseBool reads, which Vault parses ?list= with: hvac sends "True", curl users "1" or "true".
const LIST_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const LIST_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Whether a GET's `list` query parameter asks for a listing; anything ParseBool refuses is a 400, as in Vault. */
function listAsked(value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (LIST_TRUE.has(value)) return true;
  if (LIST_FALSE.has(value)) return false;
  throw badRequest(`invalid value for the list parameter: "${value}" is not a boolean`);
}

export function operationOf(req: IncomingRequest): Operation {
  switch (req.verb) {
    case 'GET':
      return listAsked(req.query.list) ? 'list' : 'read';
    case 'LIST':
      return 'list';
    case 'DELETE':
      return 'delete';
    case 'PATCH':
      return 'patch';
    case 'PUT':
    case 'POST':
      return 'update'; // the path's existence check may turn it into create
  }
  // The HTTP layer lets no other method through; should one come, it must never run a write.
  throw new CofreError(405, `unsupported method ${String(req.verb)}`);
}

/** Vault lists directories: a list request names a folder whether or not the caller wrote the slash. */
export function routedPath(req: IncomingRequest, operation: Operation): string {
  return operation === 'list' && req.path !== '' && !req.path.endsWith('/') ? `${req.path}/` : req.path;
}

interface PathMatch {
  record: PathRecord;
  params: Record<string, string>;
}

/** How many paths within one mount keep their match: enough for any working set, bounded against a flood. */
const MATCHES_KEPT = 4096;
/**
 * Longer paths are matched anew each time: routing runs before the token is checked, so the paths remembered are
 * anyone's, and a URL may be 16 KiB long (4,096 of those would be 128 MiB per mount; of these, 2 MiB at most).
 */
const MATCH_KEPT_PATH_MAX = 256;
/** The matches found per mount's records (records are compiled once per mount), by path within the mount. */
const matchesOf = new WeakMap<readonly CompiledPath[], Map<string, PathMatch | null>>();

/**
 * The first of a mount's path records whose anchored pattern matches the path within the mount. A path's match
 * is remembered: a hot path is matched once instead of against each record's regex on every request (4 % of a
 * server thread answering KV reads). The records never change once compiled, and a mount change compiles anew.
 */
export function matchPath(paths: readonly CompiledPath[], relative: string): PathMatch | undefined {
  if (relative.length > MATCH_KEPT_PATH_MAX) return firstMatch(paths, relative) ?? undefined;
  let matches = matchesOf.get(paths);
  if (!matches) matchesOf.set(paths, (matches = new Map()));
  let found = matches.get(relative);
  if (found === undefined) {
    found = firstMatch(paths, relative);
    // A flood of distinct paths empties the memory rather than growing it.
    if (matches.size >= MATCHES_KEPT) matches.clear();
    matches.set(relative, found);
  }
  // Each request gets its own params: a handler may add to them.
  return found === null ? undefined : { record: found.record, params: { ...found.params } };
}

function firstMatch(paths: readonly CompiledPath[], relative: string): PathMatch | null {
  for (const compiled of paths) {
    const m = compiled.regex.exec(relative);
    if (m) return { record: compiled.record, params: { ...(m.groups ?? {}) } };
  }
  return null;
}

/** The mount (longest prefix) and, if one matches, the path record; the mount alone picks the 404's wording. */
export function route(core: Core, path: string): { mounted: Mounted | undefined; route: Route | undefined } {
  const mounted = core.mounts.match(path);
  if (!mounted) return { mounted, route: undefined };
  const relative = path.slice(mounted.prefix.length);
  const found = matchPath(mounted.paths, relative);
  return { mounted, route: found && { mounted, ...found, relative } };
}

/** Query parameters that are fields of the path; `list` only chooses the operation. */
export function queryFields(query: Record<string, string>): Record<string, string> {
  if (!('list' in query)) return query;
  const { list: _list, ...rest } = query;
  return rest;
}

/**
 * A write (update) becomes a create when the path's existence check says the target is not there. It runs before
 * the ACL check, because policies tell create from update; it reads only the path, never the fields.
 */
export async function settleOperation(record: PathRecord, request: Request): Promise<void> {
  if (request.operation === 'update' && record.exists && !(await record.exists(request))) request.operation = 'create';
}
