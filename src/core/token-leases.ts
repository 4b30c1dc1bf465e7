import type { SecretType } from './backend.js';
import { badRequest } from './errors.js';
import type { ExpirationManager, LeaseEntry } from './expiration.js';
import type { TokenEntry, TokenLifecycle, TokenStore } from './token-store.js';

/** The secret type of a token's own lease. It is resolved by the core, not by a mount: an auth mount may be gone. */
export const TOKEN_LEASE_TYPE = 'token';

/**
 * Tokens are leases, as in Vault: a token with an expiry has a lease under its login path (auth/token/create/…,
 * auth/kubernetes/login/…), so the expiration manager revokes it and its children on time on the leader, re-arms
 * it after a restart, and revoking the prefix of an auth mount revokes every token it issued.
 */
export function tokenLeaseId(entry: TokenEntry): string {
  return `${entry.path.replace(/\/+$/, '')}/${entry.hash}`;
}

function tokenLease(entry: TokenEntry, mountPrefix: string): LeaseEntry {
  return {
    leaseId: tokenLeaseId(entry),
    mountPrefix,
    secretType: TOKEN_LEASE_TYPE,
    internal: { hash: entry.hash },
    tokenHash: '', // a token does not own its own lease; its children have leases of their own
    issueTime: entry.creationTime * 1000,
    expireTime: entry.expireTime,
    maxExpireTime: entry.expireTime,
    lastRenewalTime: Date.now(),
    // What sys/leases/lookup shows, as Vault does: the token's own flag. The lease itself is renewed only through
    // auth/token/renew*, which moves it; sys/leases/renew refuses a token's lease (see ExpirationManager.renew).
    renewable: entry.renewable,
    revokeAttempts: 0,
    lastRevokeError: '',
  };
}

/**
 * How the token store's lifecycle reaches the expiration manager. `mountOf` names the mount a token's path is under
 * (sys/ paths included: the built-in mount). A token outlives no mount: when none serves its path, the mount was
 * disabled or moved while the token was being issued, after its leases were revoked, so no revocation would ever
 * name this one; the token is refused (the token store then revokes it).
 */
export function tokenLifecycle(
  expiration: () => ExpirationManager,
  mountOf: (path: string) => string | undefined,
): TokenLifecycle {
  return {
    expires: async (entry, renewal) => {
      const mountPrefix = mountOf(entry.path);
      if (mountPrefix === undefined) {
        throw badRequest(`no mount serves "${entry.path}" any more (disabled or moved meanwhile): log in again`);
      }
      const lease = tokenLease(entry, mountPrefix);
      await (renewal ? expiration().extend(lease) : expiration().track(lease));
    },
    revoking: async (entry) => {
      await expiration().revokeByToken(entry.hash);
      await expiration().drop(tokenLeaseId(entry));
    },
  };
}

/** Revoking a token's lease revokes the token with its children. */
export function tokenSecretType(tokens: () => TokenStore): SecretType {
  return {
    revoke: async (lease) => {
      const hash = lease.internal.hash;
      if (typeof hash === 'string') await tokens().revokeTree(hash);
    },
  };
}
