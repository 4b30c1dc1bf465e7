import type { Operation, PathRecord, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { resolveTtl } from '../expiration.js';
import { issueLoginToken } from '../login.js';
import type { Mounted } from '../mount-table.js';

/**
 * Step 4 of a request: what the core makes of the handler's answer. `completeResponse` runs before a last-use
 * token is revoked; `reportChange` after, once the answer stands.
 */

/**
 * Puts a dynamic secret under a lease and turns a login's description into a token. Both run before a last-use
 * token goes, so the token's revocation takes the lease with it (as in Vault).
 */
export async function completeResponse(
  core: Core,
  mounted: Mounted,
  request: Request,
  response: Response | undefined,
): Promise<void> {
  if (response?.secret) await registerLease(core, mounted, request, response);
  if (response?.login) {
    response.auth = await issueLoginToken(core, mounted, request, response.login);
    delete response.login;
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
      // A batch token is never stored: its leases belong to its parent (none for an orphan), as in Vault.
      tokenHash:
        request.caller?.token.type === 'batch' ? request.caller.token.parentHash : (request.caller?.tokenId ?? ''),
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

/**
 * Puts a successful change of a secrets engine on the change stream (never its value). Reads, failures, auth
 * methods and the system backend are not changes of a secret.
 */
export async function reportChange(
  core: Core,
  mounted: Mounted,
  requestPath: string,
  record: PathRecord,
  request: Request,
  response: Response | undefined,
): Promise<void> {
  const succeeded = (response?.status ?? 200) < 400;
  if (!succeeded || !CHANGES.has(request.operation)) return;
  if (mounted.table !== 'mounts' || mounted.entry.type === 'system') return;
  const scope = record.changeScope ? record.changeScope(request) : { path: request.path, aclPath: request.path };
  if (!scope) return;
  const version = response?.data?.version;
  await core.changes.append({
    kind: scope.kind ?? (request.operation === 'delete' ? 'delete' : 'write'),
    path: mounted.prefix + scope.path,
    aclPath: mounted.prefix + scope.aclPath,
    requestPath,
    ...(typeof version === 'number' ? { version } : {}),
  });
}
