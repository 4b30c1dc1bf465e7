import type { AuthInfo, LoginAuth, Request } from './backend.js';
import { parseCidrs } from './cidr.js';
import type { Core } from './core.js';
import { badRequest } from './errors.js';
import { assertAssignable, isRootPolicy } from './policy/builtin.js';
import { resolveTtl, SYSTEM_MAX_TTL } from './expiration.js';
import type { Mounted } from './mount-table.js';
import { authView } from './token-views.js';
import type { TokenEntry } from './token-store.js';

/**
 * Issues the token of a successful login, as Vault's core does for every auth method: TTLs resolved from what
 * the login asked, the mount's tune and the system defaults; a lease under the login path (the token store's
 * lifecycle), so that the token ends on time and with its auth mount.
 */
export async function issueLoginToken(
  core: Core,
  mounted: Mounted,
  request: Request,
  login: LoginAuth,
): Promise<AuthInfo> {
  const period = login.period ?? 0;
  const { ttl, maxTtl } = resolveTtl({ ttl: login.ttl, maxTtl: login.maxTtl }, mounted.entry.config);
  if (login.boundCidrs) parseCidrs(login.boundCidrs, 'token_bound_cidrs');
  assertAssignable(login.policies);
  // As Vault: a login never makes a root token, whatever a role or user was given (token_policies = ["root"]); the
  // root policy comes only from the root token's creation, a child of a root token, or generate-root.
  if (login.policies.some(isRootPolicy)) throw badRequest('auth methods cannot create root tokens');
  const spec = {
    policies: login.policies.map((p) => p.toLowerCase()),
    meta: login.metadata ?? {},
    // Vault's: the mount path with "/" as "-", then the method's name for who logged in, no trailing "-".
    displayName: `${mounted.entry.path.replace(/\/+$/, '').replace(/\//g, '-')}-${login.displayName}`.replace(/-$/, ''),
    numUses: login.numUses ?? 0,
    ttl: period > 0 ? period : ttl,
    // A periodic token lives by renewal: only an explicit max TTL of the login bounds it.
    explicitMaxTtl: period > 0 ? login.maxTtl : maxTtl,
    period,
    renewable: login.renewable ?? true,
    parentHash: '',
    path: `${mounted.prefix}${request.path.replace(/\/+$/, '')}`,
    ...(login.boundCidrs && login.boundCidrs.length > 0 ? { boundCidrs: login.boundCidrs } : {}),
    ...(login.internal ? { internal: login.internal } : {}),
  };
  if (login.tokenType === 'batch') {
    // Not stored, not renewable, no use limit or period (the role refused those); it ends at its TTL.
    const { token, entry } = await core.tokens.createBatch({ ...spec, numUses: 0, period: 0, renewable: false });
    return authView(entry, token);
  }
  const prefix = mounted.prefix;
  const { token, entry } = await core.tokens.create(spec);
  // The method moved (sys/remount) while this login ran: the token names the old path, and its lease was registered
  // after the move had revoked every lease under that path, so nothing would end it with the old mount.
  if (mounted.prefix !== prefix) {
    await core.tokens.revokeTree(entry.hash);
    throw badRequest('the auth method was moved while this login ran: log in again at its new path');
  }
  return authView(entry, token);
}

/**
 * What bounds a token's renewal: the max TTL of the mount that issued it, and the say of its auth method, which
 * may refuse (its role was deleted) or tighten the limit. A token whose auth method is gone cannot be renewed.
 */
export async function renewalLimits(core: Core, entry: TokenEntry): Promise<{ maxTtl: number }> {
  const mounted = core.mounts.match(entry.path);
  if (!mounted || mounted.table !== 'auth') {
    throw badRequest('the auth method that issued this token is no longer enabled; the token cannot be renewed');
  }
  const mountMax = mounted.entry.config.max_lease_ttl || SYSTEM_MAX_TTL;
  const renew = mounted.backend.renewAuth;
  if (!renew) return { maxTtl: mountMax };
  const said = await renew({
    internal: entry.internal ?? {},
    metadata: entry.meta,
    policies: entry.policies,
    storage: mounted.storage,
  });
  const methodMax = said?.maxTtl ?? 0;
  return { maxTtl: methodMax > 0 ? Math.min(methodMax, mountMax) : mountMax };
}
