import type { AuditEvent } from '../audit-format.js';
import type { Caller, Operation, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { CofreError, notFound, sealedError } from '../errors.js';
import { auditFailure, auditResponse } from './audit.js';
import { discardStream, revokeUnsent, validateWrappingToken, wrapResponse } from '../wrapping.js';
import { authenticate, authorize, describeCaller, requestParams } from './authorise.js';
import { prepareDispatch } from './dispatch.js';
import { captureChange, reportChange } from './change-capture.js';
import { completeResponse } from './finish.js';
import { isEmptyListing } from './list-answer.js';
import {
  type IncomingRequest,
  operationOf,
  queryFields,
  route,
  routedPath,
  settleOperation,
  validateApiPath,
} from './route.js';

export type { HttpVerb, IncomingRequest } from './route.js';
export { validateApiPath } from './route.js';

export interface HandledRequest {
  response: Response | undefined;
  /** The matched mount's type, for the envelope's mount_type. */
  mountType: string;
  operation: Operation;
  caller: Caller | undefined;
}

/**
 * One request through the core, in four steps: route to a mount and path record (refused while sealed),
 * authorise (the token, then the ACL, with the existence check for create vs update and sudo where the path needs
 * it), dispatch to the handler (only now: whether the path supports the operation, and its fields), and finish
 * (lease, login token, last use, change stream). A caller that may not use a path learns nothing about it, not
 * even whether it exists. The request is audited before the handler runs and its answer before it is returned.
 * Errors thrown as CofreError carry their status to the client.
 */
export async function handleRequest(core: Core, req: IncomingRequest): Promise<HandledRequest> {
  // What other server threads committed is applied first: nothing they acknowledged is answered from a stale cache.
  core.catchUp();
  validateApiPath(req.path);
  const asked = operationOf(req); // before the existence check, which may turn an update into a create
  const path = routedPath(req, asked);
  let { mounted, route: found } = route(core, path);
  // Another thread or node changed the mounts, the audit devices or the keyring, and this one is loading them: the
  // request waits, so that the mounts and devices it meets are those already acknowledged. The paths served while
  // sealed (health, seal status, unseal) do not wait, nor those that drain requests (sys/seal, a snapshot's
  // restore): an operator must be able to seal a node that refuses requests (Core.requestHold).
  const reloading = found?.record.whileSealed || found?.record.drainsRequests ? undefined : core.requestHold;
  // Not held, such a request must still not be authorised by what the node may hold stale (a token or policy
  // changed on a node it no longer hears): it reads them from the store.
  if (found?.record.drainsRequests) core.forgetIfStale();
  if (reloading) {
    await reloading;
    ({ mounted, route: found } = route(core, path));
  }
  if ((core.sealed || core.requests.draining) && !found?.record.whileSealed) throw sealedError();
  // Counted in from here: a seal waits for this request to end (the paths served while sealed are not counted:
  // sys/seal is one of the callers that wait). Long-lived streams return their generator and leave at once.
  const leave = found && !found.record.whileSealed && !found.record.drainsRequests ? core.requests.enter() : undefined;
  try {
    return await handleCounted(core, req, asked, path, mounted, found);
  } finally {
    leave?.();
  }
}

async function handleCounted(
  core: Core,
  req: IncomingRequest,
  asked: Operation,
  path: string,
  mounted: ReturnType<typeof route>['mounted'],
  found: ReturnType<typeof route>['route'],
): Promise<HandledRequest> {
  // The paths served while sealed (init, unseal, seal status, health) are never wrapped, as in Vault, where the
  // HTTP layer answers them itself: a client that sends VAULT_WRAP_TTL with every request still reads its status.
  const wrapTtl = found?.record.whileSealed ? 0 : (req.wrapTtl ?? 0);
  if (!found) {
    // Authorised first: only a caller that may use the path hears that nothing serves it.
    const token = await authenticate(core, req.token, req.remoteAddress);
    const check = { path, operation: asked, sudo: false, params: requestParams(req, asked), wrapTtl };
    await authorize(core, token, req.token!, check);
    throw notFound(mounted ? 'unsupported path' : `no handler for route "${req.path}". route entry not found.`);
  }
  const { record } = found;
  const request: Request = {
    operation: asked,
    path: found.relative,
    params: found.params,
    data: {},
    raw: req.body,
    query: req.query,
    storage: found.mounted.storage,
    caller: undefined,
    mountPoint: found.mounted.prefix,
    requestId: req.requestId,
    remoteAddress: req.remoteAddress ?? '',
    wrapTtl,
  };
  const audited = !core.sealed && !record.noAudit;
  const event: AuditEvent = {
    time: new Date(),
    type: 'request',
    requestId: req.requestId,
    operation: request.operation,
    path,
    mountType: found.mounted.entry.type,
    remoteAddress: req.remoteAddress ?? '',
    clientToken: req.token,
    caller: undefined,
    requestData: request.operation === 'read' || request.operation === 'list' ? req.query : req.body,
    error: '',
  };
  let requestLogged = false;
  try {
    // The wrapping token of sys/wrapping/{lookup,unwrap,rewrap} is checked first, as Vault does: a used or
    // unknown one is the same 400 whoever asks.
    if (record.wrappingToken) {
      const named = asked === 'read' ? queryFields(req.query) : req.body;
      request.wrapping = await validateWrappingToken(core, named, req.token);
    }
    // Authorise: the token is checked before anything else touches the request.
    const token = record.unauthenticated ? undefined : await authenticate(core, req.token, req.remoteAddress);
    // The existence check may need to know whose path it is (a cubbyhole is the caller's own); it only reads.
    if (token) request.caller = describeCaller(token, req.token!);
    await settleOperation(record, request);
    const operation = (event.operation = request.operation);
    if (token) {
      const check = record.anyToken
        ? undefined
        : { path, operation, sudo: record.sudo ?? false, params: requestParams(req, operation), wrapTtl };
      request.caller = event.caller = await authorize(core, token, req.token!, check);
      if (check && record.exists && (operation === 'create' || operation === 'update')) {
        request.mayAlso = (other) =>
          authorize(core, token, req.token!, { ...check, operation: other }).then(
            () => {
              // The response's audit entry names what the write does: the request's named what it was authorised as.
              event.operation = other;
              return true;
            },
            (err: unknown) => {
              if (err instanceof CofreError && err.status === 403) return false;
              throw err;
            },
          );
      }
    }
    // Dispatch: 405 and field errors only now, after authorisation.
    const dispatch = prepareDispatch(record, request);
    // Audit before answer: nothing runs unless the request is on record.
    // Asked now, not when the request began: a device enabled meanwhile (here or on another node) records it.
    if (audited && core.audit.wanted) await core.audit.log(event);
    requestLogged = true;
    const lastUse = token ? await core.tokens.use(token) : false;
    const capture = captureChange(core, found.mounted, path, record, request);
    let response: Response | undefined;
    try {
      response = await dispatch.run();
      // As Vault's HTTP layer: an empty listing is a 404, unless it is to be wrapped.
      if (request.operation === 'list' && wrapTtl === 0 && isEmptyListing(response)) throw notFound();
      await completeResponse(core, found.mounted, request, response);
    } finally {
      // A token's last use ends with the request, after the lease it may own was registered.
      if (lastUse) await core.tokens.revokeTree(token!.hash);
    }
    await reportChange(core, capture, response);
    // Wrapped after the request is done and before it is audited: the audit entry shows wrap_info, as Vault's.
    const mountType = found.mounted.entry.type;
    // An unauthenticated raw answer (sys/leader) is Vault's HTTP layer's own, never wrapped: and no anonymous
    // client can make the server mint tokens and write storage at will by asking.
    const raw = record.unauthenticated === true && response?.rawBody !== undefined;
    const answer = response;
    response = await wrapResponse(core, answer, {
      requestTtl: raw ? 0 : wrapTtl,
      requestPath: path,
      requestId: req.requestId,
      mountType,
    }).catch(async (err: unknown) => {
      await revokeUnsent(core, answer);
      throw err;
    });
    if (audited) {
      await auditResponse(core, event, response, record.auditedResponseData).catch((err: unknown) => {
        discardStream(response);
        throw err;
      });
    }
    return { response, mountType: found.mounted.entry.type, operation, caller: request.caller };
  } catch (err) {
    if (audited) await auditFailure(core, event, err, requestLogged);
    throw err;
  }
}
