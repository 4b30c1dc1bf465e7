import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { tokenFields, tokenParamsFrom, tokenParamsOf, tokenParamsView } from '../token-fields.js';
import { checkPassword, hashPassword } from './password-hash.js';
import { changeUser, deleteUser, readUser, USER_PREFIX, USERNAME } from './user.js';

const fields: Record<string, Field> = {
  password: { type: 'string', description: 'Password of the user; write-only (stored as a salted scrypt hash).' },
  ...tokenFields,
};

export const usernameOf = (req: Request): string => (req.params.username ?? '').toLowerCase();

/**
 * A create or an update of users/:username, as Vault's one handler for both: the fields given, on the user as stored
 * when the write commits, or on a new one (which needs a password). The password is hashed first, outside the commit's
 * retries. A user deleted or made since the request was authorised asks the ACL again (assertExistenceAsAuthorised).
 */
async function writeUser(req: Request): Promise<undefined> {
  const given = req.data.password;
  // An empty password leaves it as it is, as Vault's update does.
  const hash = given === undefined || given === '' ? undefined : await hashPassword(checkPassword(given));
  await changeUser(req.storage, usernameOf(req), async (current) => {
    await assertExistenceAsAuthorised(req, current !== undefined);
    const password_hash = hash ?? current?.password_hash;
    if (!password_hash) throw badRequest('missing password');
    return { ...tokenParamsFrom(req.data, current), password_hash };
  });
  return undefined;
}

/** users/ (list) and users/:username: create, read, update, delete, as Vault's userpass. */
export function userPaths(): PathRecord[] {
  return [
    {
      pattern: 'users/?',
      summary: 'Lists the users.',
      operations: {
        list: async (req) => {
          const keys = await req.storage.list(USER_PREFIX);
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: `users/${USERNAME}`,
      summary: 'Manages a user: its password (write-only) and the token_* parameters of its logins.',
      fields,
      exists: async (req) => (await readUser(req.storage, usernameOf(req))) !== undefined,
      operations: {
        read: async (req) => {
          const user = await readUser(req.storage, usernameOf(req));
          if (!user) throw notFound();
          return { data: tokenParamsView(tokenParamsOf(user)) };
        },
        create: (req) => writeUser(req),
        update: (req) => writeUser(req),
        delete: async (req) => {
          await deleteUser(req.storage, usernameOf(req));
          return undefined;
        },
      },
    },
  ];
}
