import type { BackendFactory } from '../../core/backend.js';
import { renewWhileRoleHolds } from '../token-fields.js';
import { loginPath } from './path-login.js';
import { userPasswordPath } from './path-user-password.js';
import { userPoliciesPath } from './path-user-policies.js';
import { userPaths } from './path-users.js';
import { readUser } from './user.js';

/**
 * The userpass auth method, Vault-compatible: users/:username (password stored as a salted scrypt hash, token_*
 * parameters), users/:username/password, users/:username/policies, and login/:username. A token is renewed only
 * while its user exists and grants the policies the token has.
 */
export const userpassBackend: BackendFactory = () => ({
  type: 'userpass',
  help: 'Users log in with a username and password, and get a token with the user’s policies.',
  paths: [...userPaths(), userPasswordPath(), userPoliciesPath(), loginPath()],
  renewAuth: renewWhileRoleHolds((storage, username) => readUser(storage, username), 'user'),
});
