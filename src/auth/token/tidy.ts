import type { PathRecord } from '../../core/backend.js';
import type { Core } from '../../core/core.js';

/** One tidy at a time per server, as Vault's tidyLock. */
const running = new WeakMap<Core, Promise<void>>();

/**
 * Everything auth/token/tidy repairs: the token store's dangling indexes and unfinished revocations, then the
 * leases whose owning token no longer exists (revoked, as they would have been with it), then the lease index.
 */
export async function tidyTokens(core: Core): Promise<void> {
  await core.tokens.tidy();
  for (const owner of await core.expiration.leaseOwners()) {
    if (!(await core.tokens.exists(owner))) await core.expiration.revokeByToken(owner);
  }
  await core.expiration.tidy();
}

/** auth/token/tidy: started in the background and answered at once, as Vault (202 and a warning). */
export function tidyPath(core: Core): PathRecord {
  return {
    pattern: 'tidy',
    summary: 'Cleans up dangling token indexes, unfinished revocations and leases of tokens that are gone.',
    operations: {
      update: async () => {
        if (running.has(core)) return { data: null, warnings: ['Tidy operation already in progress.'] };
        const job = tidyTokens(core)
          .catch(() => undefined) // best effort, as Vault's: the next tidy tries again
          .finally(() => running.delete(core));
        running.set(core, job);
        return {
          status: 202,
          data: null,
          warnings: [
            "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.",
          ],
        };
      },
    },
  };
}

/** Waits for a tidy under way (tests, shutdown). */
export async function tidyDone(core: Core): Promise<void> {
  await running.get(core);
}
