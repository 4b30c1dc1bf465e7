import { assertExistenceAsAuthorised } from '../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../core/backend.js';
import { notFound } from '../core/errors.js';
import type { Storage } from '../core/storage.js';
import { changeJson } from '../core/json-change.js';
import { getJson } from '../core/storage-view.js';
import { NO_TOKEN_PARAMS, tokenParamsView, type TokenParams } from './token-fields.js';

/**
 * The roles of an auth method that binds logins to roles (Kubernetes, JWT), Vault's `role` and `role/:name`:
 * stored under role/<lowercased name>, read with Vault's legacy token field names beside, written field by field
 * on update. A method gives only what its roles bind and how a write becomes one.
 */
export interface RoleKind<R extends TokenParams> {
  /** Names the method in the summaries ("Kubernetes", "JWT"). */
  method: string;
  /** What a role binds to policies, for the summary ("service accounts (by name and namespace)"). */
  binds: string;
  fields: Record<string, Field>;
  /** A role from a write; an update passes the current role, and only the fields the write names change. */
  from(data: Record<string, unknown>, current?: R): R;
}

const roleKey = (name: string): string => `role/${name.toLowerCase()}`;

/** A stored role; one written before a token field existed gets that field's default. */
export async function readStoredRole<R extends TokenParams>(storage: Storage, name: string): Promise<R | undefined> {
  const stored = await getJson<R>(storage, roleKey(name));
  return stored ? { ...NO_TOKEN_PARAMS, ...stored } : undefined;
}

export function rolePaths<R extends TokenParams>(kind: RoleKind<R>): PathRecord[] {
  const name = (req: Request): string => req.params.name ?? '';
  // On the role as stored when the write commits: a role deleted or made since the request was authorised asks the
  // ACL again (a token that may only update a role must not make one an operator just deleted).
  const writeRole = async (req: Request): Promise<undefined> => {
    await changeJson<R>(req.storage, roleKey(name(req)), async (stored) => {
      await assertExistenceAsAuthorised(req, stored !== undefined);
      return kind.from(req.data, stored && { ...NO_TOKEN_PARAMS, ...stored });
    });
    return undefined;
  };
  return [
    {
      pattern: 'role/?',
      summary: `Lists the ${kind.method} auth roles.`,
      operations: {
        list: async (req) => {
          const keys = await req.storage.list('role/');
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: 'role/(?<name>[\\w.@-]+)',
      summary: `Binds ${kind.binds} to policies.`,
      fields: kind.fields,
      exists: async (req) => (await readStoredRole<R>(req.storage, name(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await readStoredRole<R>(req.storage, name(req));
          if (!role) throw notFound();
          return { data: { ...role, ...tokenParamsView(role) } };
        },
        create: (req) => writeRole(req),
        update: (req) => writeRole(req),
        delete: async (req) => {
          await req.storage.delete(roleKey(name(req)));
          return undefined;
        },
      },
    },
  ];
}
