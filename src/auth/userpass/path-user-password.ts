import type { PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { checkPassword, hashPassword } from './password-hash.js';
import { usernameOf } from './path-users.js';
import { changeUser, readUser, USERNAME } from './user.js';

/** users/:username/password: sets a user's password (a user may be allowed only this, to change its own). */
export function userPasswordPath(): PathRecord {
  return {
    pattern: `users/${USERNAME}/password`,
    summary: "Sets a user's password.",
    fields: { password: { type: 'string', description: 'The new password; write-only.' } },
    operations: {
      update: async (req) => {
        const username = usernameOf(req);
        // Refused before the hash is made (it takes a while) when there is no such user, and again at the commit if
        // the user was deleted while it was made.
        if (!(await readUser(req.storage, username))) throw badRequest('username does not exist');
        const password_hash = await hashPassword(checkPassword(req.data.password));
        await changeUser(req.storage, username, (user) => {
          if (!user) throw badRequest('username does not exist');
          return { ...user, password_hash };
        });
        return undefined;
      },
    },
  };
}
