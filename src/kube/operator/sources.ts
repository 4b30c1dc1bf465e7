// The sources beyond KV, read through the same identity as KV: any Vault-style read that returns data
// (database/static-creds/<role>, other engines' paths), and a dynamic credential (database/creds/<role>) whose lease
// the operator then holds through sys/leases/{lookup,renew,revoke}. Errors name paths and roles, never values.
import { ApiError } from '../../client/errors.js';
import type { CofreAccess, Identity, SourceData } from './cofre-client.js';
import { SyncError, type FailureReason } from './errors.js';
import type { CofreSecretSource } from './types.js';

/** A freshly issued credential and its lease's times (ms since the epoch). */
export interface IssuedCredential {
  data: Record<string, unknown>;
  lease: {
    id: string;
    ttlMs: number;
    issueTime: number;
    expireTime: number;
    maxExpireTime: number;
    renewable: boolean;
  };
}

type Answer = {
  data?: Record<string, unknown> | null;
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
} | null;

/**
 * One request as the identity; a 403 is retried once with a fresh login (the cached token may have been revoked),
 * then reported as AccessDenied. Other API errors are `unavailable` with the server's message.
 */
async function call(
  access: CofreAccess,
  id: Identity,
  method: 'GET' | 'PUT',
  path: string,
  shown: string,
  body?: Record<string, unknown>,
  unavailable: FailureReason = 'SourceUnavailable',
): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const token = await access.token(id, attempt > 0);
    try {
      return (await access.client(id).request(method, path, { token, body, notFound: 'null', what: shown })) as Answer;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        if (attempt === 0) continue;
        throw new SyncError(
          'AccessDenied',
          `role "${id.role}" (service account ${id.namespace}/${id.serviceAccount}) may not ${shown}: permission denied`,
        );
      }
      const detail = err instanceof ApiError ? `${err.status}: ${err.errors.join('; ')}` : (err as Error).message;
      throw new SyncError(unavailable, `${shown} at ${id.address} failed (${detail})`);
    }
  }
}

/**
 * Mounts no CofreSecret reads from: `auth/token/lookup-self` answers the token the operator reads with (the
 * namespace's identity, whose policy may grant more than reads), `sys/` and `identity/` the server's own state, and
 * `cubbyhole/` the operator's token's private store. Copied into a Secret, each would reach whoever reads it.
 */
const NOT_SOURCES = new Set(['auth', 'sys', 'identity', 'cubbyhole']);

/**
 * Refuses a source that is, or could become, one of those: "." and ".." segments are refused anywhere, since the
 * HTTP client collapses them before sending ("./auth/token/lookup-self" reaches auth/token/lookup-self). Returns the
 * source as messages name it.
 */
export function checkSourcePath(source: CofreSecretSource): string {
  const shown = `${source.mount}/${source.path}`;
  const segments = shown.replace(/^\/+/, '').split('/');
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw new SyncError('SourceUnavailable', `${shown} is not a source: "." and ".." segments are not allowed`);
  }
  if (NOT_SOURCES.has(segments[0]!.trim().toLowerCase())) {
    throw new SyncError(
      'SourceUnavailable',
      `${shown} is not a source: paths under auth/, sys/, identity/ and cubbyhole/ are not copied into targets`,
    );
  }
  return shown;
}

/** type read: the data of <mount>/<path>. A lease on the answer is not ours to hold: type dynamic is for those. */
export async function readPath(access: CofreAccess, id: Identity, source: CofreSecretSource): Promise<SourceData> {
  const shown = checkSourcePath(source);
  const res = await call(access, id, 'GET', shown, `read ${shown}`);
  if (!res?.data) throw new SyncError('SourceNotFound', `${shown} does not exist (or answered no data)`);
  if (res.lease_id) {
    // Revoked at once: an unheld lease would live on as an orphaned credential until its TTL ends.
    await revokeLease(access, id, res.lease_id).catch(() => undefined);
    throw new SyncError('SourceUnavailable', `${shown} issues a leased credential: use source type dynamic`);
  }
  // A countdown (static-creds/ answers the seconds until the next rotation as `ttl`) changes on every read: as
  // content it would rewrite the target, and roll its workloads, on every resync. The rotation itself is an event.
  const { ttl, ...rest } = res.data;
  return { data: typeof ttl === 'number' ? rest : res.data, version: 0 };
}

/** type dynamic: issues a credential at <mount>/<path> and looks up its lease's times (max_expire_time included). */
export async function issueCredential(
  access: CofreAccess,
  id: Identity,
  source: CofreSecretSource,
): Promise<IssuedCredential> {
  const shown = checkSourcePath(source);
  const res = await call(access, id, 'GET', shown, `read ${shown}`);
  if (!res?.data) throw new SyncError('SourceNotFound', `${shown} does not exist (or answered no data)`);
  if (!res.lease_id) throw new SyncError('SourceUnavailable', `${shown} answered no lease: use source type read`);
  try {
    const seen = await lookupLease(access, id, res.lease_id);
    return { data: res.data, lease: { ...seen, ttlMs: (res.lease_duration ?? 0) * 1000 } };
  } catch (err) {
    // A credential whose lease we cannot follow would never be renewed nor revoked by us: it goes now.
    await revokeLease(access, id, res.lease_id).catch(() => undefined);
    throw err;
  }
}

export interface LeaseSeen {
  id: string;
  issueTime: number;
  expireTime: number;
  maxExpireTime: number;
  renewable: boolean;
}

export async function lookupLease(access: CofreAccess, id: Identity, leaseId: string): Promise<LeaseSeen> {
  const res = (await call(access, id, 'PUT', 'sys/leases/lookup', 'look up its lease', { lease_id: leaseId })) as {
    data?: { issue_time?: string; expire_time?: string | null; max_expire_time?: string | null; renewable?: boolean };
  } | null;
  const d = res?.data;
  if (!d?.issue_time) throw new SyncError('SourceUnavailable', `lease ${leaseId} not found`);
  const expireTime = Date.parse(d.expire_time ?? d.issue_time);
  return {
    id: leaseId,
    issueTime: Date.parse(d.issue_time),
    expireTime,
    // A server without max_expire_time (Vault): the lease is taken to end when it now expires, so it is replaced
    // two thirds into that rather than renewed into a max TTL nobody can see.
    maxExpireTime: d.max_expire_time ? Date.parse(d.max_expire_time) : expireTime,
    renewable: d.renewable !== false,
  };
}

/**
 * Renews by `ttlMs` from now (never past the max TTL, the server's rule); returns the new expiry. The lease ID goes
 * in the URL (sys/leases/renew/<id>), so a namespace's policy can allow renewing only its own source's leases
 * (`path "sys/leases/renew/database/creds/app/*"`); the same for revoke.
 */
export async function renewLease(access: CofreAccess, id: Identity, leaseId: string, ttlMs: number): Promise<number> {
  const increment = Math.max(1, Math.round(ttlMs / 1000));
  const res = await call(access, id, 'PUT', `sys/leases/renew/${leaseId}`, 'renew its lease', { increment });
  if (!res?.lease_id) throw new SyncError('SourceUnavailable', `renewing lease ${leaseId} answered no lease`);
  return Date.now() + (res.lease_duration ?? 0) * 1000;
}

/**
 * Whether a lease ID from status is one of this source's: status can be written by whoever may update the status
 * subresource, and the operator must not renew or revoke another source's (another namespace's) lease for them.
 */
export function isLeaseOf(source: CofreSecretSource, leaseId: string): boolean {
  return leaseId.startsWith(`${source.mount}/${source.path}/`) && !leaseId.includes('..');
}

export async function revokeLease(access: CofreAccess, id: Identity, leaseId: string): Promise<void> {
  await call(access, id, 'PUT', `sys/leases/revoke/${leaseId}`, 'revoke its lease');
}
