import type { Backend, BackendFactory } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { renewWhileRoleHolds } from '../token-fields.js';
import { loginPath } from './path-login.js';
import { roleFieldPaths } from './path-role-fields.js';
import { rolePaths } from './path-role.js';
import { secretIdPaths } from './path-secret-id.js';
import { tidyPath } from './path-tidy.js';
import { AppRoleStore } from './store.js';

/** How often the node that runs background jobs removes expired secret IDs (Vault: every minute). */
const TIDY_INTERVAL_MS = 60_000;

/**
 * The AppRole auth method, Vault's API: roles (role/:role_name) with their role ID, secret IDs issued per role
 * (stored only as salted HMACs, with use counts, TTLs and CIDR bindings), and login with both.
 */
export const appRoleBackend: BackendFactory = async ({ storage, system }): Promise<Backend> => {
  const store = new AppRoleStore(storage);
  await store.init();
  const holds = renewWhileRoleHolds((_storage, name) => store.readRole(name));
  let timer: NodeJS.Timeout | undefined;
  let tidying = false;
  const tidy = async (): Promise<void> => {
    if (tidying) return;
    tidying = true;
    try {
      await store.tidy();
    } catch {
      // Sealed or unmounted mid-way: the next run tries again.
    } finally {
      tidying = false;
    }
  };
  return {
    type: 'approle',
    help: 'Machines log in with a role ID and a secret ID, and get a token with the role’s policies.',
    paths: [
      loginPath(store),
      ...rolePaths(store),
      ...roleFieldPaths(store),
      ...secretIdPaths(store, system),
      tidyPath(store),
    ],
    renewAuth: async (renewal) => {
      // Only the role the token logged in with, not a later role of the same name; then as Vault's, while the
      // role exists and still grants the token's policies.
      const uid = renewal.internal.role_uid;
      const name = typeof renewal.internal.role === 'string' ? renewal.internal.role : '';
      const role = await store.readRole(name);
      if (role && typeof uid === 'string' && role.uid !== uid) {
        throw badRequest(`role "${name}" no longer exists; the token cannot be renewed`);
      }
      return holds(renewal);
    },
    start: () => {
      timer ??= setInterval(() => void tidy(), TIDY_INTERVAL_MS);
      timer.unref();
    },
    stop: async () => {
      clearInterval(timer);
      timer = undefined;
    },
    invalidate: (key) => {
      if (key === 'salt') store.forgetSalt();
    },
  };
};
