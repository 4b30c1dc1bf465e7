import type { TokenEntry } from './token-store.js';
import { AuditFailure } from './audit-broker.js';
import type { AuditEvent } from './audit-format.js';
import type { Caller, Operation, PathRecord, Request, Response } from './backend.js';
import type { Core } from './core.js';
import { badRequest, CofreError, notFound, permissionDenied, sealedError, unsupportedOperation } from './errors.js';
import { resolveTtl } from './expiration.js';
import { parseFields } from './fields.js';
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
    default:
      return 'update'; // PUT and POST: the path's existence check may turn it into create
  }
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

/**
 * One request through the core: route to a mount and path record, refuse while sealed, authenticate the token,
 * check the ACL (with the existence check for create vs update and sudo where the path needs it), validate the
 * fields, then run the handler. Errors thrown as CofreError carry their status to the client.
 */
export async function handleRequest(core: Core, req: IncomingRequest): Promise<HandledRequest> {
  validateApiPath(req.path);
  let operation = operationOf(req);
  // Vault lists directories: a list request names a folder whether or not the caller wrote the slash.
  const path = operation === 'list' && req.path !== '' && !req.path.endsWith('/') ? `${req.path}/` : req.path;
  const mounted = core.mounts.match(path);
  if (!mounted) {
    if (core.sealed) throw sealedError();
    throw notFound(`no handler for route "${req.path}". route entry not found.`);
  }
  const relative = path.slice(mounted.prefix.length);
  let params: Record<string, string> = {};
  const compiled = mounted.paths.find((p) => {
    const m = p.regex.exec(relative);
    if (m) params = { ...(m.groups ?? {}) };
    return m !== null;
  });
  if (!compiled || (core.sealed && !compiled.record.whileSealed)) {
    if (core.sealed) throw sealedError();
    throw notFound('unsupported path');
  }
  const record = compiled.record;
  const audited = !core.sealed && !record.noAudit;
  const event: AuditEvent = {
    time: new Date(),
    type: 'request',
    requestId: req.requestId,
    operation,
    path,
    mountType: mounted.entry.type,
    remoteAddress: req.remoteAddress ?? '',
    clientToken: req.token,
    caller: undefined,
    requestData: operation === 'read' || operation === 'list' ? req.query : req.body,
    error: '',
  };
  let requestLogged = false;
  try {
    // The token is checked before anything else touches the request; the ACL after the existence check.
    const token = record.unauthenticated ? undefined : await authenticate(core, req.token);
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
    const request: Request = {
      operation,
      path: relative,
      params,
      data: fields.data,
      raw: req.body,
      query: req.query,
      storage: mounted.storage,
      caller: undefined,
      mountPoint: mounted.prefix,
      requestId: req.requestId,
    };
    if (operation === 'update' && record.exists && !(await record.exists(request))) operation = 'create';
    request.operation = event.operation = operation;
    const handler =
      record.operations[operation] ??
      (operation === 'create'
        ? record.operations.update
        : operation === 'update'
          ? record.operations.create
          : undefined);
    if (!handler) throw unsupportedOperation();
    if (token) {
      const check = record.anyToken ? undefined : { path, operation, sudo: record.sudo ?? false, body: req.body };
      request.caller = event.caller = await authorize(core, token, req.token!, check);
    }
    // Audit before answer: nothing runs unless the request is on record.
    if (audited) await core.audit.log(event);
    requestLogged = true;
    const lastUse = token ? await core.tokens.use(token) : false;
    let response: Response | undefined;
    try {
      response = await handler(request);
      // Leased before a last-use token goes, so the token's revocation takes the lease with it (as in Vault).
      if (response?.secret) await registerLease(core, mounted, request, response);
    } finally {
      if (lastUse) await core.tokens.revokeTree(token!.hash);
    }
    if (fields.warnings.length > 0 && response) response.warnings = [...(response.warnings ?? []), ...fields.warnings];
    if (CHANGES.has(operation) && mounted.table === 'mounts' && mounted.entry.type !== 'system') {
      await reportChange(core, mounted.prefix, path, record, request, response);
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
    return { response, mountType: mounted.entry.type, operation, caller: request.caller };
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

async function authenticate(core: Core, token: string | undefined): Promise<TokenEntry> {
  if (!token) throw new CofreError(403, 'permission denied: missing client token');
  const entry = await core.tokens.lookup(token);
  if (!entry) throw permissionDenied('permission denied: invalid or expired token');
  return entry;
}

async function authorize(
  core: Core,
  entry: TokenEntry,
  clientToken: string,
  check: { path: string; operation: Operation; sudo: boolean; body: Record<string, unknown> } | undefined,
): Promise<Caller> {
  if (check) {
    const acl = await core.policies.acl(entry.policies);
    const verdict = acl.check(check.path, check.operation, check.body);
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
