import { randomUUID } from 'node:crypto';
import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../../core/backend.js';
import { parseCidrs } from '../../core/cidr.js';
import { badRequest, notFound } from '../../core/errors.js';
import { cleanList, tokenFields, tokenParamsFrom, tokenParamsOf, tokenParamsView } from '../token-fields.js';
import { checkRoleName, type AppRole, type AppRoleStore } from './store.js';

/** A role name in a path: anything up to the next "/"; the handlers refuse what Vault would not accept. */
export const ROLE_IN_PATH = 'role/(?<role_name>[^/]+)';

export const roleNameOf = (req: Request): string => req.params.role_name ?? '';

export const roleFields: Record<string, Field> = {
  role_name: { type: 'string', description: 'Name of the role.' },
  role_id: { type: 'string', description: 'A custom role ID (default: a random UUID at creation).' },
  bind_secret_id: { type: 'bool', description: 'Require a secret ID at login (default true).' },
  secret_id_bound_cidrs: {
    type: 'string-list',
    description: 'CIDR blocks the login (with any secret ID of the role) must come from.',
  },
  bound_cidr_list: { type: 'string-list', description: 'Legacy alias of secret_id_bound_cidrs.' },
  secret_id_num_uses: { type: 'int', description: 'Logins each secret ID allows; 0 is unlimited.' },
  secret_id_ttl: { type: 'duration', description: 'Lifetime of secret IDs; 0 is the mount max TTL at most.' },
  local_secret_ids: { type: 'bool', description: 'Accepted for compatibility (Cofre has no replication).' },
  ...tokenFields,
};

/** A role from a write: an update changes only the fields it names, as Vault's does. */
export function roleFrom(name: string, data: Record<string, unknown>, current: AppRole | undefined): AppRole {
  const cidrs = data.secret_id_bound_cidrs ?? data.bound_cidr_list;
  const role: AppRole = {
    name,
    uid: current?.uid ?? randomUUID(),
    role_id: (data.role_id as string | undefined)?.trim() ?? current?.role_id ?? randomUUID(),
    bind_secret_id: (data.bind_secret_id as boolean | undefined) ?? current?.bind_secret_id ?? true,
    secret_id_bound_cidrs: cidrs === undefined ? (current?.secret_id_bound_cidrs ?? []) : cleanList(cidrs),
    secret_id_num_uses: (data.secret_id_num_uses as number | undefined) ?? current?.secret_id_num_uses ?? 0,
    secret_id_ttl: (data.secret_id_ttl as number | undefined) ?? current?.secret_id_ttl ?? 0,
    // Vault lets it be chosen only at creation; Cofre has no replication, so it only reads back.
    local_secret_ids: current ? current.local_secret_ids : ((data.local_secret_ids as boolean | undefined) ?? false),
    ...tokenParamsFrom(data, current),
  };
  if (role.role_id === '') throw badRequest('invalid role_id supplied, or failed to generate a role_id');
  parseCidrs(role.secret_id_bound_cidrs, 'secret_id_bound_cidrs');
  if (role.secret_id_num_uses < 0) throw badRequest('secret_id_num_uses cannot be negative');
  if (!role.bind_secret_id && role.secret_id_bound_cidrs.length === 0 && role.token_bound_cidrs.length === 0) {
    throw badRequest('at least one constraint should be enabled on the role');
  }
  return role;
}

/** What a role read shows: not its role ID (role/:name/role-id does) nor its internal uid. */
function roleView(role: AppRole): Record<string, unknown> {
  return {
    bind_secret_id: role.bind_secret_id,
    secret_id_bound_cidrs: role.secret_id_bound_cidrs,
    secret_id_num_uses: role.secret_id_num_uses,
    secret_id_ttl: role.secret_id_ttl,
    local_secret_ids: role.local_secret_ids,
    ...tokenParamsView(tokenParamsOf(role)),
  };
}

/** role/ (list), role/:role_name and role/:role_name/role-id. */
export function rolePaths(store: AppRoleStore): PathRecord[] {
  return [
    {
      pattern: 'role/?',
      summary: 'Lists the AppRoles.',
      operations: {
        list: async () => {
          const keys = await store.storage.list('role/');
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: ROLE_IN_PATH,
      summary: 'Creates, reads, updates or deletes an AppRole: what its logins need and the tokens they get.',
      fields: roleFields,
      // Runs before the ACL: it must not refuse anything, only tell create from update.
      exists: async (req) => (await store.readRole(roleNameOf(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await store.readRole(roleNameOf(req));
          if (!role) throw notFound();
          return { data: roleView(role) };
        },
        update: async (req) => {
          const name = checkRoleName(roleNameOf(req));
          await store.changeRole(name, async (current) => {
            // Deleted or made since the request was authorised (on this node or another): asks the ACL again.
            await assertExistenceAsAuthorised(req, current !== undefined);
            return roleFrom(name, req.data, current);
          });
          return undefined;
        },
        delete: async (req) => {
          const name = checkRoleName(roleNameOf(req));
          await store.roleLocks.run(name, async () => {
            const role = await store.readRole(name);
            if (role) await store.deleteRole(role);
          });
          return undefined;
        },
      },
    },
    {
      pattern: `${ROLE_IN_PATH}/role-id`,
      summary: "Reads or sets an AppRole's role ID.",
      fields: { role_name: roleFields.role_name!, role_id: { type: 'string', description: 'The new role ID.' } },
      operations: {
        read: async (req) => {
          const role = await store.readRole(roleNameOf(req));
          if (!role) throw notFound();
          return { data: { role_id: role.role_id } };
        },
        update: async (req) => {
          const name = checkRoleName(roleNameOf(req));
          const roleId = ((req.data.role_id as string | undefined) ?? '').trim();
          if (roleId === '') throw badRequest('missing role_id');
          await store.changeRole(name, (current) => {
            if (!current) throw badRequest(`role "${name}" does not exist`);
            return { ...current, role_id: roleId };
          });
          return undefined;
        },
      },
    },
  ];
}
