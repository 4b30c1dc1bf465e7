import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { changeJson } from '../../core/json-change.js';
import type { Storage } from '../../core/storage.js';
import { getJson } from '../../core/storage-view.js';
import type { Connections } from './connections.js';
import { ROLE_PREFIX, type DynamicRole } from './types.js';
import { checkCredentialType, fieldsOver } from './request-fields.js';

const statements = (what: string): Field => ({
  type: 'string-slice',
  description: `${what} ({{name}}, {{password}}, {{expiration}} are filled in).`,
});

const roleFields: Record<string, Field> = {
  name: { type: 'string', description: 'The role name.' },
  db_name: { type: 'string', description: 'The database connection (config/<db_name>) the role uses.' },
  creation_statements: statements('Statements that create the user'),
  revocation_statements: statements("Statements that drop the user (default: the plugin's own)"),
  rollback_statements: statements('Statements that undo a failed creation'),
  renew_statements: statements('Statements run when the lease is renewed'),
  default_ttl: { type: 'duration', description: 'Default lease TTL (0: the mount default).' },
  max_ttl: { type: 'duration', description: 'Maximum lease TTL (0: the mount maximum).' },
  username_template: { type: 'string', description: "Overrides the connection's username template." },
  credential_type: { type: 'string', description: 'Only "password" is supported.' },
};

export async function readRole(storage: Storage, name: string): Promise<DynamicRole | undefined> {
  return getJson<DynamicRole>(storage, ROLE_PREFIX + name);
}

function roleFrom(req: Request, existing: DynamicRole | undefined): DynamicRole {
  const d = req.data;
  const pick = fieldsOver(d);
  const role: DynamicRole = {
    db_name: pick('db_name', existing?.db_name ?? ''),
    creation_statements: pick('creation_statements', existing?.creation_statements ?? []),
    revocation_statements: pick('revocation_statements', existing?.revocation_statements ?? []),
    rollback_statements: pick('rollback_statements', existing?.rollback_statements ?? []),
    renew_statements: pick('renew_statements', existing?.renew_statements ?? []),
    default_ttl: pick('default_ttl', existing?.default_ttl ?? 0),
    max_ttl: pick('max_ttl', existing?.max_ttl ?? 0),
    username_template: pick('username_template', existing?.username_template ?? ''),
  };
  if (role.db_name === '') throw badRequest('db_name is required');
  if (role.creation_statements.filter((s) => s.trim() !== '').length === 0) {
    throw badRequest('creation_statements are required');
  }
  if (role.max_ttl > 0 && role.default_ttl > role.max_ttl) throw badRequest('default_ttl cannot exceed max_ttl');
  checkCredentialType(d);
  return role;
}

export function rolePaths(storage: Storage, connections: Connections): PathRecord[] {
  const nameOf = (req: Request): string => req.params.name ?? '';
  return [
    {
      pattern: 'roles/?',
      summary: 'Lists dynamic roles.',
      operations: { list: async () => ({ data: { keys: await storage.list(ROLE_PREFIX) } }) },
    },
    {
      pattern: 'roles/(?<name>[^/]+)',
      summary: 'Configures a dynamic role: how its database users are created and dropped.',
      fields: roleFields,
      exists: async (req) => (await readRole(storage, nameOf(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await readRole(storage, nameOf(req));
          if (!role) throw notFound();
          return { data: { ...role, credential_type: 'password' } };
        },
        // On the role as stored when the write commits: a role deleted or made since the request was authorised
        // asks the ACL again (a token that may only update a role must not make one an operator just deleted).
        update: async (req) => {
          await changeJson<DynamicRole>(storage, ROLE_PREFIX + nameOf(req), async (current) => {
            await assertExistenceAsAuthorised(req, current !== undefined);
            const role = roleFrom(req, current);
            if (!(await connections.read(role.db_name))) {
              throw badRequest(`database connection "${role.db_name}" does not exist`);
            }
            return role;
          });
          return undefined;
        },
        delete: async (req) => {
          await storage.delete(ROLE_PREFIX + nameOf(req));
          return undefined;
        },
      },
    },
  ];
}
