import type { Caller, Operation } from '../backend.js';
import { addressAllowed } from '../cidr.js';
import type { Core } from '../core.js';
import { CofreError, permissionDenied } from '../errors.js';
import type { TokenEntry } from '../token-store.js';
import { type IncomingRequest, queryFields } from './route.js';

/**
 * Step 2 of a request: who is asking (the token) and whether its policies allow this path and operation. It runs
 * before anything looks at whether the path exists, supports the operation or has the fields, so a refusal is
 * the same 403 whatever the path.
 */

export interface AclCheck {
  path: string;
  operation: Operation;
  sudo: boolean;
  params: Record<string, unknown>;
  /** Seconds of response wrapping asked for; policies' min_wrapping_ttl and max_wrapping_ttl bound it. */
  wrapTtl?: number;
}

export async function authenticate(core: Core, token: string | undefined, remoteAddress = ''): Promise<TokenEntry> {
  if (!token) throw new CofreError(403, 'permission denied: missing client token');
  const entry = await core.tokens.lookup(token);
  if (!entry) throw permissionDenied('permission denied: invalid or expired token');
  // A token bound to CIDR blocks is worth nothing from elsewhere, as if it did not exist.
  if (!addressAllowed(entry.boundCidrs, remoteAddress))
    throw permissionDenied('permission denied: invalid or expired token');
  return entry;
}

/** What policy parameter rules see: the body of a write, the query string of a read, list or delete (as Vault). */
export function requestParams(req: IncomingRequest, operation: Operation): Record<string, unknown> {
  return operation === 'read' || operation === 'list' || operation === 'delete'
    ? { ...queryFields(req.query), ...req.body }
    : req.body;
}

/** Checks the ACL (unless `check` is undefined: a path any valid token may use) and describes the caller. */
export async function authorize(
  core: Core,
  entry: TokenEntry,
  clientToken: string,
  check: AclCheck | undefined,
): Promise<Caller> {
  if (check) {
    const acl = await core.policies.acl(entry.policies);
    const wrapTTL = check.wrapTtl ? check.wrapTtl : undefined;
    const verdict = acl.check(check.path, check.operation, check.params, { wrapTTL });
    if (!verdict.allowed || (check.sudo && !verdict.sudo)) throw permissionDenied();
  }
  return describeCaller(entry, clientToken);
}

/** The caller a token makes, whether or not the ACL has been checked yet. */
export function describeCaller(entry: TokenEntry, clientToken: string): Caller {
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
