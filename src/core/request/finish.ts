import type { Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { permissionDenied } from '../errors.js';
import { resolveTtl, type LeaseEntry } from '../expiration.js';
import { issueLoginToken } from '../login.js';
import type { Mounted } from '../mount-table.js';

/**
 * Step 4 of a request: what the core makes of the handler's answer. `completeResponse` runs before a last-use
 * token is revoked; `reportChange` (change-capture.ts) after, once the answer stands.
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
  // A batch token is never stored: its leases belong to its parent (none for an orphan), as in Vault.
  const tokenHash =
    request.caller?.token.type === 'batch' ? request.caller.token.parentHash : (request.caller?.tokenId ?? '');
  let lease: LeaseEntry;
  try {
    lease = await core.expiration.register({
      mountPrefix: mounted.prefix,
      requestPath: request.path,
      secret,
      ttl,
      maxTtl,
      tokenHash,
      tokenExpireTime: request.caller?.token.expireTime ?? 0,
    });
  } catch (err) {
    const revoke = mounted.backend.secrets?.[secret.type]?.revoke;
    // The lease's own failure is what the client hears about; a failed clean-up must not hide it.
    await revoke?.({ leaseId: '', internal: secret.internal, storage: mounted.storage, expireTime: new Date() }).catch(
      () => undefined,
    );
    throw err;
  }
  // The token's revocation may have listed its leases while the secret was being made, before this lease was
  // stored. Checked only now that the lease is stored: either that listing saw the lease, or this read sees the
  // revocation (marked before the listing) and the lease goes here. A failed revocation stays on record, retried.
  if (tokenHash && !(await core.tokens.stillLive(tokenHash))) {
    await core.expiration.revoke(lease.leaseId).catch(() => undefined);
    throw permissionDenied('permission denied: the token was revoked while this request ran');
  }
  response.lease = {
    leaseId: lease.leaseId,
    // Rounded down: capped by its token's expiry or a max TTL, a lease may end mid-second, and a holder must never
    // be told it lasts longer than it does.
    // (Never below 0: a token that ended while the secret was made leaves a lease already at its end.)
    ttl: Math.max(0, Math.floor((lease.expireTime - lease.issueTime) / 1000)),
    renewable: lease.renewable,
  };
}
