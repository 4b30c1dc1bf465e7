import type { PathRecord } from '../../core/backend.js';
import { addressAllowed } from '../../core/cidr.js';
import { badRequest, permissionDenied } from '../../core/errors.js';
import { loginAuthFrom } from '../token-fields.js';
import { checkPassword, hashPassword, needsRehash, verifyPassword } from './password-hash.js';
import { usernameOf } from './path-users.js';
import { changeUser, readUser, USERNAME } from './user.js';

/** Vault's answer to a wrong password and to an unknown user alike. */
const INVALID = 'invalid username or password';

/**
 * login/:username: a user proves who it is with its password. An unknown user is refused as a wrong password
 * is, after the same work (a hash against a random digest), so neither the answer nor its time tells whether
 * the name exists. The core issues the token from the user's token_* parameters.
 */
export function loginPath(): PathRecord {
  return {
    pattern: `login/${USERNAME}`,
    summary: 'Logs in with a username and password.',
    unauthenticated: true,
    fields: { password: { type: 'string', description: 'The password of the user.' } },
    operations: {
      update: async (req) => {
        const username = usernameOf(req);
        const password = checkPassword(req.data.password);
        const user = await readUser(req.storage, username);
        const matches = await verifyPassword(password, user?.password_hash);
        if (!user || !user.password_hash || !matches) throw badRequest(INVALID);
        if (!addressAllowed(user.token_bound_cidrs, req.remoteAddress)) throw permissionDenied();
        if (needsRehash(user.password_hash)) {
          // Parameters raised since the hash was made: rehash now that the password is at hand. The login does not
          // depend on it; the next one tries again.
          // Stored only over the hash it replaces: not on a user deleted or given a new password meanwhile.
          const password_hash = await hashPassword(password);
          const replaced = JSON.stringify(user.password_hash);
          await changeUser(req.storage, username, (current) =>
            current && JSON.stringify(current.password_hash) === replaced ? { ...current, password_hash } : undefined,
          ).catch(() => undefined);
        }
        return {
          login: loginAuthFrom(user, {
            displayName: username,
            metadata: { username },
            internal: { role: username },
          }),
        };
      },
    },
  };
}
