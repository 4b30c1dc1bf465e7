import type { BackendFactory } from '../../core/backend.js';
import { renewWhileRoleHolds } from '../token-fields.js';
import { KeySets } from './keys.js';
import { CONFIG_KEY, configPath } from './path-config.js';
import { loginPath } from './path-login.js';
import { jwtRolePaths, readRole } from './path-role.js';

/**
 * The JWT auth method, Vault-compatible (also mounted as "oidc", for its JWT part only): config (a JWKS URL, OIDC
 * discovery or static PEM keys), role/:name and login, which verifies a signed JWT with jose and the role's
 * bindings. The OIDC browser flow (oidc/auth_url, oidc/callback) is not built.
 */
export const jwtBackend: BackendFactory = () => {
  const keySets = new KeySets();
  return {
    type: 'jwt',
    help: 'Logs in with a JWT signed by a configured key set, against a role’s bound audiences and claims.',
    paths: [configPath(keySets), ...jwtRolePaths(), loginPath(keySets)],
    renewAuth: renewWhileRoleHolds((storage, name) => readRole(storage, name)),
    // Another node wrote the config: the next login builds its key resolver from what it reads.
    invalidate: (key) => {
      if (key === CONFIG_KEY) keySets.reset();
    },
  };
};
