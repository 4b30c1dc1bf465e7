import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { tokenFields, tokenParamsFrom, tokenParamsOf, tokenParamsView } from '../token-fields.js';
import { checkPassword, hashPassword } from './password-hash.js';
import { deleteUser, readUser, USER_PREFIX, USERNAME, writeUser, type UserEntry } from './user.js';

const fields: Record<string, Field> = {
  password: { type: 'string', description: 'Password of the user; write-only (stored as a salted scrypt hash).' },
  ...tokenFields,
};

export const usernameOf = (req: Request): string => (req.params.username ?? '').toLowerCase();

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
        create: async (req) => {
          const password = checkPassword(req.data.password);
          const user: UserEntry = { ...tokenParamsFrom(req.data), password_hash: await hashPassword(password) };
          await writeUser(req.storage, usernameOf(req), user);
          return undefined;
        },
        update: async (req) => {
          const current = await readUser(req.storage, usernameOf(req));
          // Between the existence check and here, the user may have been deleted: then it is a creation.
          if (!current && (req.data.password === undefined || req.data.password === '')) {
            throw badRequest('missing password');
          }
          const user: UserEntry = { ...tokenParamsFrom(req.data, current) };
          const hash = current?.password_hash;
          // An empty password leaves it as it is, as Vault's update does.
          if (req.data.password !== undefined && req.data.password !== '') {
            user.password_hash = await hashPassword(checkPassword(req.data.password));
          } else if (hash) user.password_hash = hash;
          await writeUser(req.storage, usernameOf(req), user);
          return undefined;
        },
        delete: async (req) => {
          await deleteUser(req.storage, usernameOf(req));
          return undefined;
        },
      },
    },
  ];
}
