import type { TokenEntry } from './token-store.js';
import { AuditFailure } from './audit-broker.js';
import type { AuditEvent } from './audit-format.js';
import type { Caller, Operation, PathRecord, Request, Response } from './backend.js';
import type { Core } from './core.js';
import { badRequest, CofreError, notFound, permissionDenied, sealedError, unsupportedOperation } from './errors.js';
import { resolveTtl } from './expiration.js';
import { addressAllowed } from './cidr.js';
import { parseFields } from './fields.js';
import { issueLoginToken } from './login.js';
import type { Mounted } from './mount-table.js';

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
}

export interface HandledRequest {
  response: Response | undefined;
  /** The matched mount's type, for the envelope's mount_type. */
  mountType: string;
  operation: Operation;
  caller: Caller | undefined;
}

function operationOf(req: IncomingRequest): Operation {
  switch (req.verb) {
    case 'GET':
      return req.query.list === 'true' || req.query.list === '1' ? 'list' : 'read';
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

/** Query parameters that are fields of the path; `list` only chooses the operation. */
function queryFields(query: Record<string, string>): Record<string, string> {
  if (!('list' in query)) return query;
  const { list: _list, ...rest } = query;
  return rest;
}

export function validateApiPath(path: string): void {
  const segments = path.split('/');
  // Also refuse percent-encoded dots: a proxy or client along the way may decode them into a traversal.
  const dots = (s: string): boolean => /^(\.|%2e){1,2}$/i.test(s);
  if (segments.some(dots)) throw badRequest(`invalid path "${path}": "." and ".." are not allowed`);
  if (segments.slice(0, -1).some((s) => s === '')) throw badRequest(`invalid path "${path}": empty path segment`);
}

interface Route {
  mounted: Mounted;
  record: PathRecord;
  params: Record<string, string>;
  /** The path within the mount. */
  relative: string;
}

function route(core: Core, path: string): { mounted: Mounted | undefined; route: Route | undefined } {
  const mounted = core.mounts.match(path);
  if (!mounted) return { mounted, route: undefined };
  const relative = path.slice(mounted.prefix.length);
  for (const compiled of mounted.paths) {
    const m = compiled.regex.exec(relative);
    if (m) return { mounted, route: { mounted, record: compiled.record, params: { ...(m.groups ?? {}) }, relative } };
  }
  return { mounted, route: undefined };
}

/** What policy parameter rules see: the body of a write, the query string of a read, list or delete (as Vault). */
function requestParams(req: IncomingRequest, operation: Operation): Record<string, unknown> {
  return operation === 'read' || operation === 'list' || operation === 'delete'
    ? { ...queryFields(req.query), ...req.body }
    : req.body;
}

function handlerFor(record: PathRecord, operation: Operation): PathRecord['operations'][Operation] {
  if (operation === 'create') return record.operations.create ?? record.operations.update;
  if (operation === 'update') return record.operations.update ?? record.operations.create;
  return record.operations[operation];
}

/**
 * One request through the core: route to a mount and path record, refuse while sealed, authenticate the token,
 * check the ACL (with the existence check for create vs update and sudo where the path needs it), and only then
 * look at what the request asks: whether the path supports the operation, and its fields. A caller that may not
 * use a path learns nothing about it, not even whether it exists. Errors thrown as CofreError carry their status
 * to the client.
 */
export async function handleRequest(core: Core, req: IncomingRequest): Promise<HandledRequest> {
  validateApiPath(req.path);
  let operation = operationOf(req);
  // Vault lists directories: a list request names a folder whether or not the caller wrote the slash.
  const path = operation === 'list' && req.path !== '' && !req.path.endsWith('/') ? `${req.path}/` : req.path;
  const { mounted, route: found } = route(core, path);
  if (core.sealed && !found?.record.whileSealed) throw sealedError();
  if (!found) {
    const token = await authenticate(core, req.token, req.remoteAddress);
    await authorize(core, token, req.token!, { path, operation, sudo: false, params: requestParams(req, operation) });
    throw notFound(mounted ? 'unsupported path' : `no handler for route "${req.path}". route entry not found.`);
  }
  const { record, params, relative } = found;
  const audited = !core.sealed && !record.noAudit;
  const event: AuditEvent = {
    time: new Date(),
    type: 'request',
    requestId: req.requestId,
    operation,
    path,
    mountType: found.mounted.entry.type,
    remoteAddress: req.remoteAddress ?? '',
    clientToken: req.token,
    caller: undefined,
    requestData: operation === 'read' || operation === 'list' ? req.query : req.body,
    error: '',
  };
  let requestLogged = false;
  try {
    // The token is checked before anything else touches the request.
    const token = record.unauthenticated ? undefined : await authenticate(core, req.token, req.remoteAddress);
    const request: Request = {
      operation,
      path: relative,
      params,
      data: {},
      raw: req.body,
      query: req.query,
      storage: found.mounted.storage,
      caller: undefined,
      mountPoint: found.mounted.prefix,
      requestId: req.requestId,
      remoteAddress: req.remoteAddress ?? '',
    };
    // The existence check reads only the path: it decides between create and update, which the ACL tells apart.
    if (operation === 'update' && record.exists && !(await record.exists(request))) operation = 'create';
    request.operation = event.operation = operation;
    if (token) {
      const check = record.anyToken
        ? undefined
        : { path, operation, sudo: record.sudo ?? false, params: requestParams(req, operation) };
      request.caller = event.caller = await authorize(core, token, req.token!, check);
    }
    const handler = handlerFor(record, operation);
    if (!handler) throw unsupportedOperation();
    const fields = parseFields(
      record.fields ?? {},
      {
        ...(operation === 'read' || operation === 'list' || operation === 'delete' ? queryFields(req.query) : {}),
        ...req.body,
      },
      {
        rejectUnknown: record.rejectUnknownFields ?? false,
        freeForm: record.freeForm ?? false,
        applyDefaults: true,
        requireFields: operation === 'update' || operation === 'patch',
      },
    );
    request.data = fields.data;
    // Audit before answer: nothing runs unless the request is on record.
    if (audited) await core.audit.log(event);
    requestLogged = true;
    const lastUse = token ? await core.tokens.use(token) : false;
    let response: Response | undefined;
    try {
      response = await handler(request);
      // Leased before a last-use token goes, so the token's revocation takes the lease with it (as in Vault).
      if (response?.secret) await registerLease(core, found.mounted, request, response);
      if (response?.login) {
        response.auth = await issueLoginToken(core, found.mounted, request, response.login);
        delete response.login;
      }
    } finally {
      if (lastUse) await core.tokens.revokeTree(token!.hash);
    }
    if (fields.warnings.length > 0 && response) response.warnings = [...(response.warnings ?? []), ...fields.warnings];
    const succeeded = (response?.status ?? 200) < 400;
    if (
      succeeded &&
      CHANGES.has(operation) &&
      found.mounted.table === 'mounts' &&
      found.mounted.entry.type !== 'system'
    ) {
      await reportChange(core, found.mounted.prefix, path, record, request, response);
    }
    if (audited) {
      const raw = response?.rawBody;
      await core.audit.log({
        ...event,
        type: 'response',
        time: new Date(),
        responseData: response?.data ?? (raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : null),
        responseAuth: response?.auth,
        status: response?.status ?? (response ? 200 : 204),
      });
    }
    return { response, mountType: found.mounted.entry.type, operation, caller: request.caller };
  } catch (err) {
    // Refusals and failures are on record too; an audit failure itself cannot be.
    if (audited && !(err instanceof AuditFailure)) {
      const known = err instanceof CofreError;
      if (!requestLogged) await core.audit.log(event);
      const failure = { status: known ? err.status : 500, error: known ? err.message : 'internal error' };
      await core.audit.log({ ...event, type: 'response', time: new Date(), ...failure });
    }
    throw err;
  }
}

/**
 * Puts a dynamic secret the handler created under a lease. If the lease cannot be stored, the secret is revoked
 * at once: a credential nobody can revoke later must not exist.
 */
async function registerLease(core: Core, mounted: Mounted, request: Request, response: Response): Promise<void> {
  const secret = response.secret!;
  delete response.secret;
  const { ttl, maxTtl } = resolveTtl(secret, mounted.entry.config);
  try {
    const lease = await core.expiration.register({
      mountPrefix: mounted.prefix,
      requestPath: request.path,
      secret,
      ttl,
      maxTtl,
      tokenHash: request.caller?.tokenId ?? '',
      tokenExpireTime: request.caller?.token.expireTime ?? 0,
    });
    response.lease = {
      leaseId: lease.leaseId,
      ttl: Math.round((lease.expireTime - lease.issueTime) / 1000),
      renewable: lease.renewable,
    };
  } catch (err) {
    const revoke = mounted.backend.secrets?.[secret.type]?.revoke;
    // The lease's own failure is what the client hears about; a failed clean-up must not hide it.
    await revoke?.({ leaseId: '', internal: secret.internal, storage: mounted.storage, expireTime: new Date() }).catch(
      () => undefined,
    );
    throw err;
  }
}

const CHANGES = new Set<Operation>(['create', 'update', 'patch', 'delete']);

/** Puts a successful change of a secrets engine on the change stream (never its value). */
async function reportChange(
  core: Core,
  prefix: string,
  requestPath: string,
  record: PathRecord,
  request: Request,
  response: Response | undefined,
): Promise<void> {
  const scope = record.changeScope ? record.changeScope(request) : { path: request.path, aclPath: request.path };
  if (!scope) return;
  const version = response?.data?.version;
  await core.changes.append({
    kind: scope.kind ?? (request.operation === 'delete' ? 'delete' : 'write'),
    path: prefix + scope.path,
    aclPath: prefix + scope.aclPath,
    requestPath,
    ...(typeof version === 'number' ? { version } : {}),
  });
}

async function authenticate(core: Core, token: string | undefined, remoteAddress = ''): Promise<TokenEntry> {
  if (!token) throw new CofreError(403, 'permission denied: missing client token');
  const entry = await core.tokens.lookup(token);
  if (!entry) throw permissionDenied('permission denied: invalid or expired token');
  // A token bound to CIDR blocks is worth nothing from elsewhere, as if it did not exist.
  if (!addressAllowed(entry.boundCidrs, remoteAddress))
    throw permissionDenied('permission denied: invalid or expired token');
  return entry;
}

async function authorize(
  core: Core,
  entry: TokenEntry,
  clientToken: string,
  check: { path: string; operation: Operation; sudo: boolean; params: Record<string, unknown> } | undefined,
): Promise<Caller> {
  if (check) {
    const acl = await core.policies.acl(entry.policies);
    const verdict = acl.check(check.path, check.operation, check.params);
    if (!verdict.allowed || (check.sudo && !verdict.sudo)) throw permissionDenied();
  }
  return {
    tokenId: entry.hash,
    accessor: entry.accessor,
    policies: entry.policies,
    root: entry.policies.includes('root'),
    displayName: entry.displayName,
    entityId: '',
    token: entry,
    clientToken,
  };
}
