import type { PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { checkPassword, hashPassword } from './password-hash.js';
import { usernameOf } from './path-users.js';
import { readUser, USERNAME, writeUser } from './user.js';

/** users/:username/password: sets a user's password (a user may be allowed only this, to change its own). */
export function userPasswordPath(): PathRecord {
  return {
    pattern: `users/${USERNAME}/password`,
    summary: "Sets a user's password.",
    fields: { password: { type: 'string', description: 'The new password; write-only.' } },
    operations: {
      update: async (req) => {
        const password = checkPassword(req.data.password);
        const user = await readUser(req.storage, usernameOf(req));
        if (!user) throw badRequest('username does not exist');
        await writeUser(req.storage, usernameOf(req), { ...user, password_hash: await hashPassword(password) });
        return undefined;
      },
    },
  };
}
